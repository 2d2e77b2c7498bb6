//! Receiver webhooks against a real kube-apiserver: the source-controller runs in-process with
//! its webhook server on loopback, calls are made over plain TCP, signatures and expected paths
//! are computed independently with Python's `hmac`/`hashlib`.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::BTreeMap,
    io::Write,
    net::SocketAddr,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{
    Api, Client, Resource,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde::de::DeserializeOwned;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use weir_api::{
    Apply, GitRepository, Receiver, Render,
    conditions::{self, types},
    reconcile::requested_at,
};
use weir_source_controller::{Config, Running};
use weir_testenv::{TestCluster, git::Repo};

const SHARD_LABEL: &str = "weir.dev/test-shard";
const TOKEN: &str = "s3cr3t-t0ken-Value";

struct Harness {
    client: Client,
    ns: String,
    _storage: tempfile::TempDir,
    running: Running,
    webhook: SocketAddr,
}

impl Harness {
    async fn new(prefix: &str) -> Harness {
        Harness::with_webhook(prefix, Some("127.0.0.1:0")).await
    }

    async fn with_webhook(prefix: &str, webhook_addr: Option<&str>) -> Harness {
        let cluster = TestCluster::shared().await.unwrap();
        cluster.install_crds(&weir_api::crds::all()).await.unwrap();
        let ns = cluster.namespace(prefix).await.unwrap();
        let client = cluster.client();
        let storage = tempfile::tempdir().unwrap();
        let config = Config {
            storage_path: storage.path().join("data"),
            storage_addr: "127.0.0.1:0".into(),
            metrics_addr: "127.0.0.1:0".into(),
            health_addr: "127.0.0.1:0".into(),
            webhook_addr: webhook_addr.map(str::to_owned),
            watch_label_selector: Some(format!("{SHARD_LABEL}={ns}")),
            default_timeout: Duration::from_secs(20),
            ..Config::default()
        };
        let running = weir_source_controller::start(client.clone(), config)
            .await
            .unwrap();
        // Unused (never connected to) when the webhook server is disabled.
        let webhook = running
            .webhook_addr
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9)));
        Harness {
            client,
            ns,
            _storage: storage,
            running,
            webhook,
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(SHARD_LABEL.to_owned(), self.ns.clone())])
    }

    async fn put_secret(&self, name: &str, data: &[(&str, &str)]) {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        };
        self.api::<Secret>()
            .patch(
                name,
                &PatchParams::apply("weir-tests").force(),
                &Patch::Apply(&secret),
            )
            .await
            .unwrap();
    }

    /// A GitRepository of a real (file://) repository, Ready.
    async fn git_repository(&self, name: &str, repo: &Repo) -> GitRepository {
        let mut obj = GitRepository::new(
            name,
            serde_json::from_value(serde_json::json!({
                "url": repo.file_url(), "interval": "1h", "timeout": "20s",
            }))
            .unwrap(),
        );
        obj.metadata.labels = Some(self.labels());
        self.api::<GitRepository>()
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
        until(&self.api::<GitRepository>(), name, "Ready", |o| {
            o.status
                .as_ref()
                .is_some_and(|s| conditions::is_true(&s.conditions, types::READY))
        })
        .await
    }

    /// Creates a Receiver with `spec` (secretRef `hook-token` unless given) and returns it
    /// once it reports a webhook path.
    async fn receiver(&self, name: &str, spec: serde_json::Value) -> Receiver {
        self.create_receiver(name, spec).await;
        until(&self.api::<Receiver>(), name, "a webhook path", |r| {
            r.status.as_ref().is_some_and(|s| s.webhook_path.is_some())
                && conditions::is_true(&r.status.as_ref().unwrap().conditions, types::READY)
        })
        .await
    }

    async fn create_receiver(&self, name: &str, spec: serde_json::Value) {
        let mut full = serde_json::json!({ "secretRef": { "name": "hook-token" } });
        full.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        let mut obj = Receiver::new(name, serde_json::from_value(full).unwrap());
        obj.metadata.labels = Some(self.labels());
        self.api::<Receiver>()
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }

    async fn call(
        &self,
        receiver: &Receiver,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        let path = receiver
            .status
            .as_ref()
            .unwrap()
            .webhook_path
            .clone()
            .unwrap();
        http(self.webhook, "POST", &path, headers, body).await
    }

    async fn requested_at<K>(&self, name: &str) -> Option<String>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let obj = self.api::<K>().get(name).await.unwrap();
        requested_at(obj.meta()).map(str::to_owned)
    }

    /// Waits until the GitRepository controller has handled `value`.
    async fn until_handled(&self, name: &str, value: &str) {
        until(
            &self.api::<GitRepository>(),
            name,
            &format!("lastHandledReconcileAt {value}"),
            |o| {
                o.status
                    .as_ref()
                    .and_then(|s| s.last_handled_reconcile_at.as_deref())
                    == Some(value)
            },
        )
        .await;
    }

    /// `InvalidSignature` Event notes recorded on Receiver `name`.
    async fn refusals(&self, name: &str) -> Vec<String> {
        let api: Api<k8s_openapi::api::events::v1::Event> = self.api();
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| {
                e.reason.as_deref() == Some("InvalidSignature")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
            })
            .map(|e| e.note.unwrap_or_default())
            .collect()
    }

    async fn until_refused(&self, name: &str) -> Vec<String> {
        let start = Instant::now();
        loop {
            let notes = self.refusals(name).await;
            if !notes.is_empty() {
                return notes;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no InvalidSignature event for {name}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Polls `name` until `check` holds, failing after 60 s with the object.
async fn until<K>(api: &Api<K>, name: &str, what: &str, check: impl Fn(&K) -> bool) -> K
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let start = Instant::now();
    loop {
        let obj = api.get(name).await.unwrap();
        if check(&obj) {
            return obj;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what} on {name}: {obj:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One HTTP/1.1 request over a fresh connection; returns the status code and the body.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: weir.test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer before reading the whole body (413); a failed write is fine then.
    let _ = stream.write_all(body).await;
    read_response(stream).await
}

async fn read_response(mut stream: TcpStream) -> (u16, String) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no response within 30 s"),
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.trim().to_owned())
}

/// Python's HMAC of `body` keyed with `key`, as lowercase hex (an implementation independent of
/// the controller's).
fn python_hmac(algorithm: &str, key: &str, body: &[u8]) -> String {
    python(
        "import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), sys.stdin.buffer.read(), getattr(hashlib, sys.argv[2])).hexdigest())",
        &[key, algorithm],
        body,
    )
}

fn python(script: &str, args: &[&str], stdin: &[u8]) -> String {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn git_target(name: &str) -> serde_json::Value {
    serde_json::json!([{ "kind": "GitRepository", "name": name }])
}

/// RFC 3339 with nine fractional digits, e.g. `2026-11-22T04:10:11.123456789Z`.
fn is_rfc3339_nanos(value: &str) -> bool {
    let Some((_, fraction)) = value.split_once('.') else {
        return false;
    };
    value.len() == "2026-11-22T04:10:11.123456789Z".len()
        && fraction.len() == 10
        && fraction.ends_with('Z')
        && fraction[..9].bytes().all(|b| b.is_ascii_digit())
}

#[tokio::test]
async fn generic_call_triggers_a_reconcile_and_replays_trigger_again() {
    let h = Harness::new("rcv-generic").await;
    let repo = Repo::new(&[("a.yaml", "a: 1\n")]);
    h.git_repository("app", &repo).await;
    h.put_secret("hook-token", &[("token", TOKEN)]).await;
    let receiver = h
        .receiver(
            "hook",
            serde_json::json!({ "type": "generic", "resources": git_target("app") }),
        )
        .await;

    // The path is Flux's: sha256(token + name + namespace).
    let digest = python(
        "import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
        &[],
        format!("{TOKEN}hook{}", h.ns).as_bytes(),
    );
    let status = receiver.status.as_ref().unwrap();
    assert_eq!(status.webhook_path, Some(format!("/hook/{digest}")));
    assert_eq!(status.observed_generation, receiver.metadata.generation);
    let ready = conditions::get(&status.conditions, types::READY).unwrap();
    assert!(!ready.message.contains(&digest) && !ready.message.contains(TOKEN));

    let sent = Instant::now();
    let (code, body) = h.call(&receiver, &[], b"{}").await;
    let answered = sent.elapsed();
    assert_eq!(
        (code, body.as_str()),
        (200, "requested a reconcile of 1 object(s)")
    );
    let first = h.requested_at::<GitRepository>("app").await.unwrap();
    assert!(is_rfc3339_nanos(&first), "{first}");
    h.until_handled("app", &first).await;
    eprintln!(
        "webhook call answered in {answered:?}; GitRepository handled the request {:?} after the call",
        sent.elapsed()
    );

    // Replaying the very same request works again, with a new value.
    let (code, _) = h.call(&receiver, &[], b"{}").await;
    assert_eq!(code, 200);
    let second = h.requested_at::<GitRepository>("app").await.unwrap();
    assert_ne!(first, second);
    h.until_handled("app", &second).await;

    // Routing: other paths, other methods.
    let path = status.webhook_path.clone().unwrap();
    let unknown = format!("/hook/{}", "0".repeat(64));
    assert_eq!(http(h.webhook, "POST", &unknown, &[], b"").await.0, 404);
    assert_eq!(
        http(h.webhook, "POST", "/hook/../metrics", &[], b"")
            .await
            .0,
        404
    );
    assert_eq!(
        http(h.webhook, "POST", &format!("{path}/x"), &[], b"")
            .await
            .0,
        404
    );
    assert_eq!(http(h.webhook, "GET", &path, &[], b"").await.0, 405);
    assert_eq!(
        h.requested_at::<GitRepository>("app").await.unwrap(),
        second
    );

    // Suspended: 503 (once the cache has seen the change), nothing patched.
    h.api::<Receiver>()
        .patch(
            "hook",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": { "suspend": true } })),
        )
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let (code, text) = h.call(&receiver, &[], b"{}").await;
        if code == 503 {
            break;
        }
        assert_eq!(code, 200, "{text}");
        assert!(start.elapsed() < Duration::from_secs(30), "never suspended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = h.requested_at::<GitRepository>("app").await;
    assert_eq!(h.call(&receiver, &[], b"{}").await.0, 503);
    assert_eq!(h.requested_at::<GitRepository>("app").await, before);
    h.running.stop().await;
}

#[tokio::test]
async fn generic_hmac_verifies_the_body_and_bounds_it() {
    let h = Harness::new("rcv-hmac").await;
    let repo = Repo::new(&[("a.yaml", "a: 1\n")]);
    h.git_repository("app", &repo).await;
    h.put_secret("hook-token", &[("token", TOKEN)]).await;
    let receiver = h
        .receiver(
            "hook",
            serde_json::json!({ "type": "generic-hmac", "resources": git_target("app") }),
        )
        .await;
    let body = br#"{"ref":"refs/heads/main"}"#;

    // Wrong signature, malformed signature, missing header: 401, nothing patched, an Event.
    let wrong = format!("sha256={}", python_hmac("sha256", "not-the-token", body));
    for headers in [
        vec![("X-Signature", wrong.as_str())],
        vec![("X-Signature", "sha256=zz")],
        vec![],
    ] {
        let (code, text) = h.call(&receiver, &headers, body).await;
        assert_eq!(code, 401, "{headers:?}: {text}");
        assert!(!text.contains(TOKEN));
    }
    assert_eq!(h.requested_at::<GitRepository>("app").await, None);
    let notes = h.until_refused("hook").await;
    for note in &notes {
        assert!(note.starts_with("generic-hmac: "), "{note}");
        assert!(
            !note.contains(TOKEN) && !note.contains(&wrong[7..]),
            "{note}"
        );
    }

    // The right signature (sha256 and sha512), sent twice: each call triggers.
    let mut seen = Vec::new();
    for algorithm in ["sha256", "sha256", "sha512"] {
        let signature = format!("{algorithm}={}", python_hmac(algorithm, TOKEN, body));
        let (code, text) = h
            .call(&receiver, &[("X-Signature", &signature)], body)
            .await;
        assert_eq!(code, 200, "{text}");
        let value = h.requested_at::<GitRepository>("app").await.unwrap();
        assert!(!seen.contains(&value));
        seen.push(value);
    }
    h.until_handled("app", seen.last().unwrap()).await;

    // Bodies over 1 MiB: refused by Content-Length, or while streaming a chunked body.
    let last = seen.last().cloned();
    let path = receiver
        .status
        .as_ref()
        .unwrap()
        .webhook_path
        .clone()
        .unwrap();
    let mut stream = TcpStream::connect(h.webhook).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: weir.test\r\nContent-Length: {}\r\n\r\n",
        2 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    assert_eq!(read_response(stream).await.0, 413);

    let big = vec![b'x'; 1024 * 1024 + 1];
    let signature = format!("sha256={}", python_hmac("sha256", TOKEN, &big));
    let mut stream = TcpStream::connect(h.webhook).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: weir.test\r\nTransfer-Encoding: chunked\r\nX-Signature: {signature}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let send = tokio::spawn(async move {
        for chunk in big.chunks(64 * 1024) {
            let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
            if writer.write_all(&framed).await.is_err() {
                return;
            }
        }
        let _ = writer.write_all(b"0\r\n\r\n").await;
    });
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), reader.read_to_end(&mut out)).await;
    send.await.unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 413"), "{text:?}");
    assert_eq!(h.requested_at::<GitRepository>("app").await, last);
    h.running.stop().await;
}

#[tokio::test]
async fn github_push_ping_and_event_filter() {
    let h = Harness::new("rcv-github").await;
    let repo = Repo::new(&[("a.yaml", "a: 1\n")]);
    h.git_repository("app", &repo).await;
    h.put_secret("hook-token", &[("token", TOKEN)]).await;
    let receiver = h
        .receiver(
            "gh",
            serde_json::json!({ "type": "github", "events": ["push"], "resources": git_target("app") }),
        )
        .await;
    let body = br#"{"zen":"Keep it logically awesome."}"#;
    let signature = format!("sha256={}", python_hmac("sha256", TOKEN, body));
    let signed = |event: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("X-GitHub-Event", event.to_owned()),
            ("X-Hub-Signature-256", signature.clone()),
        ]
    };
    let call = |headers: Vec<(&'static str, String)>| {
        let receiver = receiver.clone();
        let h = &h;
        async move {
            let borrowed: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            h.call(&receiver, &borrowed, body).await
        }
    };

    // ping: answered, nothing patched.
    assert_eq!(call(signed("ping")).await, (200, "pong".to_owned()));
    // An event not in spec.events: answered 200 and ignored.
    let (code, text) = call(signed("issues")).await;
    assert_eq!(code, 200);
    assert!(text.contains("'issues' is not in spec.events"), "{text}");
    assert_eq!(h.requested_at::<GitRepository>("app").await, None);

    // A bad signature and a missing one: 401 and an Event.
    let forged = format!("sha256={}", python_hmac("sha256", "guess", body));
    let (code, _) = call(vec![
        ("X-GitHub-Event", "push".into()),
        ("X-Hub-Signature-256", forged),
    ])
    .await;
    assert_eq!(code, 401);
    assert_eq!(call(vec![("X-GitHub-Event", "push".into())]).await.0, 401);
    assert_eq!(h.requested_at::<GitRepository>("app").await, None);
    let notes = h.until_refused("gh").await;
    assert!(
        notes
            .iter()
            .any(|n| n == "github: X-Hub-Signature-256 does not match the body"),
        "{notes:?}"
    );

    // push: patched, and the GitRepository reconciles.
    let (code, text) = call(signed("push")).await;
    assert_eq!(code, 200, "{text}");
    let value = h.requested_at::<GitRepository>("app").await.unwrap();
    h.until_handled("app", &value).await;
    h.running.stop().await;
}

#[tokio::test]
async fn gitlab_token_and_events() {
    let h = Harness::new("rcv-gitlab").await;
    let repo = Repo::new(&[("a.yaml", "a: 1\n")]);
    h.git_repository("app", &repo).await;
    h.put_secret("hook-token", &[("token", TOKEN)]).await;
    let receiver = h
        .receiver(
            "gl",
            serde_json::json!({ "type": "gitlab", "events": ["Push Hook"], "resources": git_target("app") }),
        )
        .await;

    let wrong = h
        .call(
            &receiver,
            &[("X-Gitlab-Token", "nope"), ("X-Gitlab-Event", "Push Hook")],
            b"{}",
        )
        .await;
    assert_eq!(wrong.0, 401);
    assert_eq!(
        h.call(&receiver, &[("X-Gitlab-Event", "Push Hook")], b"{}")
            .await
            .0,
        401
    );
    let notes = h.until_refused("gl").await;
    assert!(
        notes
            .iter()
            .all(|n| !n.contains(TOKEN) && !n.contains("nope")),
        "{notes:?}"
    );

    let tag = h
        .call(
            &receiver,
            &[
                ("X-Gitlab-Token", TOKEN),
                ("X-Gitlab-Event", "Tag Push Hook"),
            ],
            b"{}",
        )
        .await;
    assert_eq!(tag.0, 200);
    assert_eq!(h.requested_at::<GitRepository>("app").await, None);

    let push = h
        .call(
            &receiver,
            &[("X-Gitlab-Token", TOKEN), ("X-Gitlab-Event", "Push Hook")],
            b"{}",
        )
        .await;
    assert_eq!(push.0, 200, "{}", push.1);
    let value = h.requested_at::<GitRepository>("app").await.unwrap();
    h.until_handled("app", &value).await;
    h.running.stop().await;
}

#[tokio::test]
async fn wildcard_with_match_labels_and_other_kinds() {
    let h = Harness::new("rcv-kinds").await;
    h.put_secret("hook-token", &[("token", TOKEN)]).await;
    // Renders and an Apply nobody reconciles here: only the annotation is checked.
    for (name, team) in [("blue", "a"), ("green", "a"), ("red", "b")] {
        let mut render = Render::new(
            name,
            serde_json::from_value(serde_json::json!({
                "sourceRef": { "kind": "GitRepository", "name": "app" }, "interval": "5m",
            }))
            .unwrap(),
        );
        render.metadata.labels = Some(BTreeMap::from([("team".to_owned(), team.to_owned())]));
        h.api::<Render>()
            .create(&PostParams::default(), &render)
            .await
            .unwrap();
    }
    let apply = Apply::new(
        "deploy",
        serde_json::from_value(serde_json::json!({
            "sourceRef": { "kind": "Render", "name": "blue" }, "interval": "5m", "prune": true,
        }))
        .unwrap(),
    );
    h.api::<Apply>()
        .create(&PostParams::default(), &apply)
        .await
        .unwrap();
    let receiver = h
        .receiver(
            "fanout",
            serde_json::json!({ "type": "generic", "resources": [
                { "kind": "Render", "name": "*", "matchLabels": { "team": "a" } },
                { "apiVersion": "apply.weir.dev/v1alpha1", "kind": "Apply", "name": "deploy" },
            ] }),
        )
        .await;
    let (code, text) = h.call(&receiver, &[], b"").await;
    assert_eq!(
        (code, text.as_str()),
        (200, "requested a reconcile of 3 object(s)")
    );
    assert!(h.requested_at::<Render>("blue").await.is_some());
    assert!(h.requested_at::<Render>("green").await.is_some());
    assert_eq!(h.requested_at::<Render>("red").await, None);
    assert!(h.requested_at::<Apply>("deploy").await.is_some());

    // A listed object that does not exist: 500 naming it, the others still patched.
    let missing = h
        .receiver(
            "missing",
            serde_json::json!({ "type": "generic", "resources": [
                { "kind": "Render", "name": "gone" },
                { "kind": "Render", "name": "red" },
            ] }),
        )
        .await;
    let (code, text) = h.call(&missing, &[], b"").await;
    assert_eq!(code, 500);
    assert!(
        text.contains(&format!("Render {}/gone: not found", h.ns)),
        "{text}"
    );
    assert!(h.requested_at::<Render>("red").await.is_some());
    h.running.stop().await;
}

#[tokio::test]
async fn secret_problems_are_conditions_and_rotation_moves_the_path() {
    let h = Harness::new("rcv-secret").await;
    h.create_receiver(
        "hook",
        serde_json::json!({ "type": "generic", "resources": git_target("app") }),
    )
    .await;
    let reason = |r: &Receiver| {
        r.status
            .as_ref()
            .and_then(|s| conditions::get(&s.conditions, types::READY))
            .filter(|c| c.status == "False")
            .map(|c| c.reason.clone())
    };
    let failed = until(&h.api::<Receiver>(), "hook", "SecretNotFound", |r| {
        reason(r).as_deref() == Some("SecretNotFound")
    })
    .await;
    assert_eq!(failed.status.as_ref().unwrap().webhook_path, None);

    // The Secret appears without a token, then with one: the Secret watch reconciles at once.
    h.put_secret("hook-token", &[("other", "x")]).await;
    until(&h.api::<Receiver>(), "hook", "TokenMissing", |r| {
        reason(r).as_deref() == Some("TokenMissing")
    })
    .await;
    h.put_secret("hook-token", &[("token", TOKEN)]).await;
    let ready = until(&h.api::<Receiver>(), "hook", "Ready", |r| {
        r.status.as_ref().is_some_and(|s| s.webhook_path.is_some())
    })
    .await;
    let old_path = ready.status.unwrap().webhook_path.unwrap();

    // Rotating the token moves the path; the old one is gone.
    h.put_secret("hook-token", &[("token", "rotated-token")])
        .await;
    let rotated = until(&h.api::<Receiver>(), "hook", "a new path", |r| {
        r.status
            .as_ref()
            .and_then(|s| s.webhook_path.as_ref())
            .is_some_and(|p| *p != old_path)
    })
    .await;
    assert_eq!(http(h.webhook, "POST", &old_path, &[], b"").await.0, 404);
    assert!(rotated.status.unwrap().webhook_path.is_some());

    let events: Api<k8s_openapi::api::events::v1::Event> = h.api();
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(reasons.iter().any(|r| r == "SecretNotFound"), "{reasons:?}");
    h.running.stop().await;
}

#[tokio::test]
async fn a_slow_client_neither_blocks_others_nor_stays_forever() {
    let h = Harness::new("rcv-slow").await;
    h.put_secret("hook-token", &[("token", TOKEN)]).await;
    let receiver = h
        .receiver(
            "hook",
            serde_json::json!({ "type": "generic", "resources": git_target("nothing") }),
        )
        .await;
    // Half a request line and then silence.
    let mut slow = TcpStream::connect(h.webhook).await.unwrap();
    slow.write_all(b"POST /hook/ab").await.unwrap();
    let started = Instant::now();

    // Others are served meanwhile (the target does not exist: 500, but served).
    let (code, text) = h.call(&receiver, &[], b"").await;
    assert_eq!(code, 500, "{text}");

    // The server gives up on the slow one after its header timeout (10 s).
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "slow connection still open after 30 s");
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    h.running.stop().await;
}

#[tokio::test]
async fn receivers_are_reconciled_with_the_webhook_server_disabled() {
    let h = Harness::with_webhook("rcv-off", None).await;
    assert_eq!(h.running.webhook_addr, None);
    h.put_secret("hook-token", &[("token", TOKEN)]).await;
    let receiver = h
        .receiver(
            "hook",
            serde_json::json!({ "type": "generic", "resources": git_target("app") }),
        )
        .await;
    assert!(receiver.status.unwrap().webhook_path.is_some());
    h.running.stop().await;
}

#[tokio::test]
async fn the_apiserver_refuses_bad_receivers_with_readable_messages() {
    let cluster = TestCluster::shared().await.unwrap();
    cluster.install_crds(&weir_api::crds::all()).await.unwrap();
    let ns = cluster.namespace("rcv-schema").await.unwrap();
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        cluster.client(),
        &ns,
        &kube::api::ApiResource::erase::<Receiver>(&()),
    );
    for (spec, needle) in [
        (
            serde_json::json!({ "type": "generic", "secretRef": { "name": "t" },
                "resources": [{ "kind": "Render", "name": "*" }] }),
            "name '*' needs matchLabels",
        ),
        (
            serde_json::json!({ "type": "bitbucket", "secretRef": { "name": "t" },
                "resources": [{ "kind": "Render", "name": "a" }] }),
            "Unsupported value: \"bitbucket\"",
        ),
        (
            serde_json::json!({ "type": "generic", "secretRef": { "name": "t" }, "resources": [] }),
            "spec.resources",
        ),
    ] {
        let obj: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.weir.dev/v1alpha1", "kind": "Receiver",
            "metadata": { "name": "bad" }, "spec": spec,
        }))
        .unwrap();
        let err = api.create(&PostParams::default(), &obj).await.unwrap_err();
        let kube::Error::Api(status) = err else {
            panic!("expected an API error, got {err}");
        };
        assert_eq!(status.code, 422);
        assert!(status.message.contains(needle), "{}", status.message);
    }
}
