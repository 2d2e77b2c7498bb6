//! The artifact server and fetcher over real loopback TCP.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use weir_artifact::{
    ArchiveBuilder, ArtifactKey, FetchError, FetchOptions, Fetcher, PackedArtifact, Retention,
    Storage, StoredArtifact, server, sha256_digest, untar,
};

struct Served {
    addr: SocketAddr,
    storage: Storage,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::new(dir.path().join("storage"), Retention::default()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let root = storage.root().to_owned();
    tokio::spawn(async move {
        server::serve(listener, root, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Served {
        addr,
        storage,
        _dir: dir,
        stop: Some(tx),
    }
}

fn packed(files: &[(&str, &str)]) -> PackedArtifact {
    let mut b = ArchiveBuilder::new();
    for (p, c) in files {
        b.add_file(p, c.as_bytes().to_vec(), false).unwrap();
    }
    b.finish().unwrap()
}

fn store(s: &Served, files: &[(&str, &str)]) -> (StoredArtifact, String) {
    let key = ArtifactKey::new("GitRepository", "default", "app").unwrap();
    let stored = s.storage.store(&key, &packed(files)).unwrap();
    let url = Storage::url(&format!("http://{}", s.addr), &stored);
    (stored, url)
}

fn fast() -> FetchOptions {
    FetchOptions {
        timeout: Duration::from_secs(5),
        backoff: Duration::from_millis(10),
        ..FetchOptions::default()
    }
}

/// A raw HTTP/1.1 request, returning the status line.
async fn raw_get(addr: SocketAddr, method: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn served_artifact_downloads_verifies_and_extracts() {
    let s = serve().await;
    let (stored, url) = store(&s, &[("deploy/app.yaml", "kind: ConfigMap\n")]);
    let bytes = Fetcher::new(fast())
        .fetch(&url, &stored.digest)
        .await
        .unwrap();
    assert_eq!(sha256_digest(&bytes), stored.digest);
    let out = tempfile::tempdir().unwrap();
    untar(&bytes, out.path(), &Default::default()).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.path().join("deploy/app.yaml")).unwrap(),
        "kind: ConfigMap\n"
    );
    assert!(
        raw_get(s.addr, "HEAD", &format!("/{}", stored.relative_path))
            .await
            .contains("200")
    );
}

#[tokio::test]
async fn wrong_digest_is_refused() {
    let s = serve().await;
    let (_, url) = store(&s, &[("a", "1")]);
    let other = sha256_digest(b"something else");
    match Fetcher::new(fast()).fetch(&url, &other).await {
        Err(FetchError::DigestMismatch { expected, .. }) => assert_eq!(expected, other),
        r => panic!("expected a digest mismatch, got {r:?}"),
    }
}

#[tokio::test]
async fn missing_artifact_is_not_found_and_transient() {
    let s = serve().await;
    let digest = sha256_digest(b"never stored");
    let url = format!(
        "http://{}/gitrepository/default/app/{}.tar.gz",
        s.addr,
        &digest[7..]
    );
    let err = Fetcher::new(fast()).fetch(&url, &digest).await.unwrap_err();
    assert!(matches!(err, FetchError::NotFound { .. }), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn oversized_artifact_is_refused() {
    let s = serve().await;
    let (stored, url) = store(&s, &[("big", &"x".repeat(100_000))]);
    let limit = stored.size - 1;
    let err = Fetcher::new(FetchOptions {
        max_bytes: limit,
        ..fast()
    })
    .fetch(&url, &stored.digest)
    .await
    .unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { limit: l, .. } if l == limit),
        "{err:?}"
    );
}

#[tokio::test]
async fn server_serves_nothing_but_artifacts() {
    let s = serve().await;
    let (stored, _) = store(&s, &[("a", "1")]);
    std::fs::write(s.storage.root().join("secret.txt"), "no").unwrap();
    let hex = &stored.digest[7..];
    std::os::unix::fs::symlink(
        "/etc/passwd",
        s.storage.root().join(format!(
            "gitrepository/default/app/{}.tar.gz",
            "b".repeat(64)
        )),
    )
    .unwrap();
    for path in [
        "/".to_owned(),
        "/secret.txt".to_owned(),
        "/gitrepository/default/app/".to_owned(),
        format!("/gitrepository/default/app/../app/{hex}.tar.gz"),
        format!("/gitrepository/default/%2e%2e/{hex}.tar.gz"),
        "/../../etc/passwd".to_owned(),
        format!("/gitrepository/default/app/{}.tar.gz", "b".repeat(64)),
    ] {
        let status = raw_get(s.addr, "GET", &path).await;
        assert!(status.contains("404"), "{path}: {status}");
    }
    assert!(
        raw_get(s.addr, "DELETE", &format!("/{}", stored.relative_path))
            .await
            .contains("405")
    );
}

#[tokio::test]
async fn unreachable_server_fails_after_retries() {
    // Bind then drop a listener: nothing listens on that port.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let digest = sha256_digest(b"x");
    let url = format!(
        "http://{addr}/gitrepository/default/app/{}.tar.gz",
        &digest[7..]
    );
    let err = Fetcher::new(fast()).fetch(&url, &digest).await.unwrap_err();
    assert!(matches!(err, FetchError::Transport { .. }), "{err:?}");
    for (bad, _) in [
        ("https://x/a.tar.gz", ()),
        ("ftp://x/a", ()),
        ("not a url", ()),
    ] {
        assert!(
            matches!(
                Fetcher::new(fast()).fetch(bad, &digest).await,
                Err(FetchError::InvalidUrl { .. })
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        Fetcher::new(fast()).fetch(&url, "sha256:xyz").await,
        Err(FetchError::InvalidDigest(_))
    ));
}
