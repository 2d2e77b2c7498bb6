//! The artifact HTTP server: serves `<kind>/<namespace>/<name>/<sha256 hex>.tar.gz` files from
//! the storage root, nothing else: no directory listings, no other names, no links.

use std::{future::Future, path::PathBuf, pin::pin};

use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::{io::AsyncReadExt, net::TcpListener};

use crate::error::{Error, Result};

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Serves the storage `root` on `listener` until `shutdown` completes. Connections in flight
/// are finished in the background.
pub async fn serve(
    listener: TcpListener,
    root: PathBuf,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted.map_err(|e| Error::Server(format!("accept: {e}")))?,
            () = &mut shutdown => return Ok(()),
        };
        let root = root.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let root = root.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&root, req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "artifact connection ended with an error");
            }
        });
    }
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *r.status_mut() = status;
    r
}

/// The storage-relative path a request may name, or `None`.
fn artifact_path(path: &str) -> Option<&str> {
    let rel = path.strip_prefix('/')?;
    let parts: Vec<&str> = rel.split('/').collect();
    let [kind, namespace, name, file] = parts.as_slice() else {
        return None;
    };
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !s.starts_with('.')
            && !s.contains("..")
    };
    let hex = file.strip_suffix(".tar.gz")?;
    let hex_ok = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (name_ok(kind) && name_ok(namespace) && name_ok(name) && hex_ok).then_some(rel)
}

async fn handle(root: &std::path::Path, req: Request<Incoming>) -> Response<Body> {
    let head = req.method() == Method::HEAD;
    if !(head || req.method() == Method::GET) {
        let mut r = empty(StatusCode::METHOD_NOT_ALLOWED);
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let Some(rel) = artifact_path(req.uri().path()) else {
        return empty(StatusCode::NOT_FOUND);
    };
    let path = root.join(rel);
    // Never follow a link, even one planted inside the storage root.
    match tokio::fs::symlink_metadata(&path).await {
        Ok(meta) if meta.is_file() => {}
        _ => return empty(StatusCode::NOT_FOUND),
    }
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => return empty(StatusCode::NOT_FOUND),
    };
    let len = match file.metadata().await {
        Ok(m) => m.len(),
        Err(_) => return empty(StatusCode::INTERNAL_SERVER_ERROR),
    };
    let digest = rel
        .rsplit('/')
        .next()
        .and_then(|f| f.strip_suffix(".tar.gz"))
        .unwrap_or_default();
    let body: Body = if head {
        Empty::new().map_err(|never| match never {}).boxed_unsync()
    } else {
        let chunks = futures::stream::unfold(file, |mut file| async move {
            let mut buf = vec![0u8; 64 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Frame::data(Bytes::from(buf))), file))
                }
                Err(e) => Some((Err(e), file)),
            }
        });
        StreamBody::new(chunks.boxed()).boxed_unsync()
    };
    let mut r = Response::new(body);
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/gzip"),
    );
    headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
    if let Ok(etag) = header::HeaderValue::from_str(&format!("\"sha256:{digest}\"")) {
        headers.insert(header::ETAG, etag);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::artifact_path;

    #[test]
    fn only_artifact_names_are_servable() {
        let hex = "a".repeat(64);
        assert!(artifact_path(&format!("/gitrepository/default/podinfo/{hex}.tar.gz")).is_some());
        for bad in [
            format!("/gitrepository/default/{hex}.tar.gz"),
            format!("/gitrepository/../podinfo/{hex}.tar.gz"),
            format!("/gitrepository/default/podinfo/../{hex}.tar.gz"),
            format!("/gitrepository/default/podinfo/x/{hex}.tar.gz"),
            format!("/gitrepository/default/.hidden/{hex}.tar.gz"),
            format!("/gitrepository/default/podinfo/{}.tar.gz", "A".repeat(64)),
            "/gitrepository/default/podinfo/".to_owned(),
            "/".to_owned(),
            format!("/gitrepository/%2e%2e/podinfo/{hex}.tar.gz"),
            format!("//etc/default/podinfo/{hex}.tar.gz"),
        ] {
            assert!(artifact_path(&bad).is_none(), "{bad}");
        }
    }
}
