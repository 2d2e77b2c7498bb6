#!/usr/bin/env python3
"""Minimal smart-HTTP git server: wraps `git http-backend` (CGI) behind http.server.

Usage:
  git_http_server.py --root DIR [--port 0] [--port-file F] [--user U:P] [--bearer TOKEN]
                     [--log F] [--tls-cert CERT.pem --tls-key KEY.pem]
Serves every repo under DIR (GIT_HTTP_EXPORT_ALL=1) at http://127.0.0.1:PORT/<path-under-DIR>.
If --user and/or --bearer are given, each request must carry a matching
`Authorization: Basic ...` or `Authorization: Bearer ...` header, else 401 + WWW-Authenticate.
Handles `Transfer-Encoding: chunked` and `Content-Encoding: gzip` request bodies and the
`Git-Protocol` header (protocol v2). Listens on 127.0.0.1 only. Prints "PORT <n>" on stdout.
"""
import argparse
import base64
import gzip
import http.server
import os
import subprocess
import sys
import threading
import zlib


def read_chunked(rfile):
    body = bytearray()
    while True:
        line = rfile.readline()
        if not line:
            raise IOError("EOF in chunk size line")
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            # consume trailers until the empty line
            while True:
                t = rfile.readline()
                if t in (b"\r\n", b"\n", b""):
                    break
            return bytes(body)
        remaining = size
        while remaining:
            chunk = rfile.read(remaining)
            if not chunk:
                raise IOError("EOF in chunk data")
            body += chunk
            remaining -= len(chunk)
        rfile.readline()  # CRLF after each chunk


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "git-http-test/1.0"

    def log_message(self, fmt, *args):
        if self.server.log:
            with self.server.log_lock, open(self.server.log, "a") as f:
                f.write("%s %s\n" % (self.address_string(), fmt % args))

    def _authorized(self):
        want_basic, want_bearer = self.server.basic, self.server.bearer
        if not want_basic and not want_bearer:
            return True, None
        auth = self.headers.get("Authorization", "")
        if want_basic and auth.startswith("Basic "):
            try:
                if base64.b64decode(auth[6:].strip()).decode() == want_basic:
                    return True, want_basic.split(":", 1)[0]
            except Exception:
                pass
        if want_bearer and auth.startswith("Bearer ") and auth[7:].strip() == want_bearer:
            return True, "bearer"
        return False, None

    def _send(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        ok, user = self._authorized()
        if self.server.log:
            self.log_message("%s %s AUTH-HEADER=%r ok=%s TE=%r CE=%r", self.command, self.path,
                             self.headers.get("Authorization"), ok,
                             self.headers.get("Transfer-Encoding"), self.headers.get("Content-Encoding"))
        if not ok:
            # drain the request body so the connection stays usable
            self._read_body()
            self._send(401, [("WWW-Authenticate", 'Basic realm="git"'),
                             ("Content-Type", "text/plain")], b"auth required\n")
            return
        try:
            body = self._read_body()
        except Exception as e:
            self._send(400, [("Content-Type", "text/plain")], ("bad body: %s\n" % e).encode())
            self.close_connection = True
            return
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": self.server.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.server.server_address[1]),
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
        }
        if user:
            env["REMOTE_USER"] = user
        gp = self.headers.get("Git-Protocol")
        if gp:
            env["GIT_PROTOCOL"] = gp
        proc = subprocess.run(["git", "http-backend"], input=body, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.stderr and self.server.log:
            self.log_message("http-backend stderr: %r", proc.stderr[:2000])
        out = proc.stdout
        sep = out.find(b"\r\n\r\n")
        sep_len = 4
        if sep < 0:
            sep, sep_len = out.find(b"\n\n"), 2
        if sep < 0:
            self._send(500, [("Content-Type", "text/plain")],
                       b"bad CGI output\n" + proc.stderr)
            return
        head, payload = out[:sep], out[sep + sep_len:]
        status, headers = 200, []
        for line in head.replace(b"\r\n", b"\n").split(b"\n"):
            if not line.strip():
                continue
            k, _, v = line.decode("latin-1").partition(":")
            k, v = k.strip(), v.strip()
            if k.lower() == "status":
                status = int(v.split()[0])
            elif k.lower() not in ("content-length", "transfer-encoding", "connection"):
                headers.append((k, v))
        self._send(status, headers, payload)

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            body = read_chunked(self.rfile)
        else:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
        enc = self.headers.get("Content-Encoding", "").lower()
        if enc in ("gzip", "x-gzip"):
            body = gzip.decompress(body)
        elif enc == "deflate":
            body = zlib.decompress(body)
        return body

    do_GET = _handle
    do_POST = _handle
    do_HEAD = _handle


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--user", help="required basic auth as user:password")
    ap.add_argument("--bearer", help="accepted bearer token")
    ap.add_argument("--log")
    ap.add_argument("--tls-cert", help="PEM cert chain; enables https")
    ap.add_argument("--tls-key", help="PEM private key for --tls-cert")
    a = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    if a.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.root = os.path.abspath(a.root)
    srv.basic, srv.bearer, srv.log = a.user, a.bearer, a.log
    srv.log_lock = threading.Lock()
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, a.port_file)
    print("PORT %d" % port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
