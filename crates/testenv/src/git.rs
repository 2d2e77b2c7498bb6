//! Real Git repositories and servers: repositories built with the git CLI, served over
//! `file://` and over smart HTTP by `git http-backend` behind a small Python server (basic and
//! bearer auth). For tests and the demo; every helper panics on failure, as a test should.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Runs git with a fixed identity and dates, failing the test on error; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "weir")
        .env("GIT_AUTHOR_EMAIL", "weir@example.invalid")
        .env("GIT_COMMITTER_NAME", "weir")
        .env("GIT_COMMITTER_EMAIL", "weir@example.invalid")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A working repository and a bare clone that servers serve.
pub struct Repo {
    /// Holds everything; removed on drop.
    pub dir: tempfile::TempDir,
    /// The working repository.
    pub work: PathBuf,
    /// The bare repository servers serve.
    pub bare: PathBuf,
}

impl Repo {
    /// A repository whose default branch is `main`, with one commit holding `files`.
    pub fn new(files: &[(&str, &str)]) -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        let repo = Repo {
            bare: dir.path().join("srv/repo.git"),
            work,
            dir,
        };
        repo.commit(files, "initial");
        std::fs::create_dir_all(repo.bare.parent().unwrap()).unwrap();
        git(
            repo.dir.path(),
            &[
                "clone",
                "-q",
                "--bare",
                repo.work.to_str().unwrap(),
                repo.bare.to_str().unwrap(),
            ],
        );
        repo
    }

    /// Writes `files`, commits (even when nothing changed), pushes to the bare repository if it
    /// exists, and returns the commit id.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            let p = self.work.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
        }
        git(&self.work, &["add", "-A"]);
        git(
            &self.work,
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        self.push();
        self.head()
    }

    /// A repository for ref tests: commit `first` (`v.txt` = `1`, annotated tag `v6.9.4`),
    /// `second` on main (`2`, tags `6.10.0` and `v7.0.0-rc.1`), branch `dev` from `first`
    /// (`dev`), and `refs/pull/1/head` at `first` on the served repository.
    pub fn with_refs() -> RefsFixture {
        let repo = Repo::new(&[("v.txt", "1")]);
        let first = repo.head();
        git(&repo.work, &["tag", "-a", "v6.9.4", "-m", "annotated"]);
        let second = repo.commit(&[("v.txt", "2")], "second");
        git(&repo.work, &["tag", "6.10.0"]);
        git(&repo.work, &["tag", "v7.0.0-rc.1"]);
        git(&repo.work, &["checkout", "-q", "-b", "dev", &first]);
        let dev = repo.commit(&[("v.txt", "dev")], "dev");
        git(&repo.work, &["checkout", "-q", "main"]);
        repo.push();
        git(&repo.bare, &["update-ref", "refs/pull/1/head", &first]);
        RefsFixture {
            repo,
            first,
            second,
            dev,
        }
    }

    /// Pushes all branches and tags to the bare repository.
    pub fn push(&self) {
        if self.bare.exists() {
            git(
                &self.work,
                &[
                    "push",
                    "-q",
                    "--force",
                    "--all",
                    self.bare.to_str().unwrap(),
                ],
            );
            git(
                &self.work,
                &[
                    "push",
                    "-q",
                    "--force",
                    "--tags",
                    self.bare.to_str().unwrap(),
                ],
            );
        }
    }

    /// The working repository's HEAD commit.
    pub fn head(&self) -> String {
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// `file://` URL of the bare repository.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.bare.display())
    }
}

/// What [`Repo::with_refs`] made.
pub struct RefsFixture {
    /// The repository.
    pub repo: Repo,
    /// The first commit (`v6.9.4`, `refs/pull/1/head`, parent of `dev`).
    pub first: String,
    /// The tip of main (`6.10.0`, `v7.0.0-rc.1`).
    pub second: String,
    /// The tip of `dev`.
    pub dev: String,
}

/// The smart-HTTP server script (CGI wrapper around `git http-backend`).
const SERVER_SCRIPT: &str = include_str!("../assets/git_http_server.py");

/// `git http-backend` behind the test server, on a random loopback port.
pub struct HttpServer {
    child: Child,
    /// The CA that signed the server's certificate, when serving https.
    pub ca_pem: Option<String>,
    _tls: Option<tempfile::TempDir>,
    /// The loopback port.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl HttpServer {
    /// Serves every repository under `root`; `extra` are server flags (`--user u:p`, `--bearer t`).
    pub fn start(root: &Path, extra: &[&str]) -> HttpServer {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let script = dir.path().join("git_http_server.py");
        std::fs::write(&script, SERVER_SCRIPT).unwrap();
        let child = Command::new("python3")
            .arg(script)
            .arg("--root")
            .arg(root)
            .arg("--port-file")
            .arg(&port_file)
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let start = Instant::now();
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                break text.trim().parse().unwrap();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "git http server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        HttpServer {
            child,
            port,
            _dir: dir,
            ca_pem: None,
            _tls: None,
        }
    }

    /// URL of repository `repo` (relative to the served root).
    pub fn url(&self, repo: &str) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}/{repo}", self.port)
    }

    /// Like [`HttpServer::start`] but over TLS with a certificate for 127.0.0.1 from a fresh CA;
    /// the CA is in [`HttpServer::ca_pem`].
    pub fn start_tls(root: &Path, extra: &[&str]) -> HttpServer {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "weir-test-git-ca");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
        let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let mut args: Vec<&str> = extra.to_vec();
        let (c, k) = (
            cert_path.to_str().unwrap().to_owned(),
            key_path.to_str().unwrap().to_owned(),
        );
        args.extend(["--tls-cert", c.as_str(), "--tls-key", k.as_str()]);
        let mut server = HttpServer::start(root, &args);
        server.ca_pem = Some(ca_cert.pem());
        server._tls = Some(dir);
        server
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's `sshd` on a random loopback port with a generated host key and a generated client
/// key authorized for the current user. The tests run as root (as CI does): sshd needs it to
/// switch to the logging-in user.
pub struct SshServer {
    child: Child,
    /// The loopback port.
    pub port: u16,
    /// The client's private key (OpenSSH format), as a Secret's `identity` would hold it.
    pub client_key: String,
    /// The server's public host key line (`ssh-ed25519 AAAA…`).
    pub host_key: String,
    dir: tempfile::TempDir,
}

impl SshServer {
    /// Starts sshd and waits until it accepts connections.
    pub fn start() -> SshServer {
        let dir = tempfile::tempdir().unwrap();
        let keygen = |name: &str| {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(dir.path().join(name))
                .output()
                .expect("ssh-keygen runs (install openssh-client)");
            assert!(
                out.status.success(),
                "ssh-keygen: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        keygen("host_key");
        keygen("client_key");
        std::fs::copy(
            dir.path().join("client_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        // sshd's privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nLogLevel ERROR\n"
        );
        std::fs::write(dir.path().join("sshd_config"), config).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(dir.path().join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd runs (apt-get install openssh-server)");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "sshd did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        let host_key = read("host_key.pub")
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        SshServer {
            child,
            port,
            client_key: read("client_key"),
            host_key,
            dir,
        }
    }

    /// A known_hosts line for this server.
    pub fn known_hosts(&self) -> String {
        format!("[127.0.0.1]:{} {}\n", self.port, self.host_key)
    }

    /// `ssh://` URL of the repository at `path` on this machine.
    pub fn url(&self, path: &Path) -> String {
        let user = std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "root".into());
        format!("ssh://{user}@127.0.0.1:{}{}", self.port, path.display())
    }

    /// The directory holding the server's keys and configuration.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
