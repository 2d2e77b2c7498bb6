//! The source-controller against a real kube-apiserver and real Git servers.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use weir_api::{
    GitRepository,
    conditions::{self, types},
    reconcile::request_patch,
};
use weir_artifact::{FetchOptions, Fetcher, UntarLimits, untar};
use weir_source_controller::{Config, Running};
use weir_testenv::{
    TestCluster,
    git::{HttpServer, Repo},
};

const SHARD_LABEL: &str = "weir.dev/test-shard";

struct Harness {
    client: Client,
    ns: String,
    api: Api<GitRepository>,
    storage: tempfile::TempDir,
    running: Option<Running>,
}

impl Harness {
    async fn new(prefix: &str) -> Harness {
        let cluster = TestCluster::shared().await.unwrap();
        cluster.install_crds(&weir_api::crds::all()).await.unwrap();
        let ns = cluster.namespace(prefix).await.unwrap();
        let client = cluster.client();
        let mut h = Harness {
            api: Api::namespaced(client.clone(), &ns),
            client,
            ns,
            storage: tempfile::tempdir().unwrap(),
            running: None,
        };
        h.start().await;
        h
    }

    fn config(&self) -> Config {
        Config {
            storage_path: self.storage.path().join("data"),
            storage_addr: "127.0.0.1:0".into(),
            metrics_addr: "127.0.0.1:0".into(),
            health_addr: "127.0.0.1:0".into(),
            watch_label_selector: Some(format!("{SHARD_LABEL}={}", self.ns)),
            default_timeout: Duration::from_secs(20),
            ..Config::default()
        }
    }

    async fn start(&mut self) {
        self.running = Some(
            weir_source_controller::start(self.client.clone(), self.config())
                .await
                .unwrap(),
        );
    }

    async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    fn repo(&self, name: &str, url: &str, spec: serde_json::Value) -> GitRepository {
        let mut full = serde_json::json!({ "url": url, "interval": "1h", "timeout": "20s" });
        full.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        let mut obj = GitRepository::new(name, serde_json::from_value(full).unwrap());
        obj.metadata.labels = Some(BTreeMap::from([(SHARD_LABEL.to_owned(), self.ns.clone())]));
        obj
    }

    async fn create(&self, obj: &GitRepository) {
        self.api.create(&PostParams::default(), obj).await.unwrap();
    }

    /// Polls the object until `check` returns `Some`, failing with the last status after 60 s.
    async fn until<T>(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&GitRepository) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            let obj = self.api.get(name).await.unwrap();
            if let Some(v) = check(&obj) {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}; status: {:#?}",
                obj.status
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn until_ready(&self, name: &str, revision: &str) -> GitRepository {
        self.until(name, &format!("Ready at {revision}"), |o| {
            let s = o.status.as_ref()?;
            let ready = conditions::is_true(&s.conditions, types::READY);
            (ready && s.artifact.as_ref()?.revision == revision).then(|| o.clone())
        })
        .await
    }

    async fn until_failed(&self, name: &str, reason: &str) -> GitRepository {
        self.until(name, &format!("Ready=False with reason {reason}"), |o| {
            let c = conditions::get(&o.status.as_ref()?.conditions, types::READY)?;
            (c.status == "False" && c.reason == reason).then(|| o.clone())
        })
        .await
    }

    /// Creates or replaces Secret `name` holding `data`.
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
        Api::<Secret>::namespaced(self.client.clone(), &self.ns)
            .patch(
                name,
                &PatchParams::apply("weir-tests").force(),
                &Patch::Apply(&secret),
            )
            .await
            .unwrap();
    }

    async fn request_reconcile(&self, name: &str, token: &str) {
        self.api
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(request_patch(token)),
            )
            .await
            .unwrap();
    }

    async fn patch_spec(&self, name: &str, spec: serde_json::Value) {
        self.api
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "spec": spec })),
            )
            .await
            .unwrap();
    }
}

/// Downloads and verifies the object's artifact and returns its files.
async fn artifact_files(obj: &GitRepository) -> BTreeMap<String, String> {
    let artifact = obj.status.as_ref().unwrap().artifact.as_ref().unwrap();
    let fetcher = Fetcher::new(FetchOptions {
        timeout: Duration::from_secs(10),
        ..FetchOptions::default()
    });
    let bytes = fetcher
        .fetch(&artifact.url, &artifact.digest)
        .await
        .unwrap();
    assert_eq!(artifact.size, Some(bytes.len() as i64));
    let dir = tempfile::tempdir().unwrap();
    untar(&bytes, dir.path(), &UntarLimits::default()).unwrap();
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.path().to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.insert(
                    p.strip_prefix(dir.path()).unwrap().display().to_string(),
                    std::fs::read_to_string(&p).unwrap(),
                );
            }
        }
    }
    files
}

async fn event_reasons(client: &Client, ns: &str) -> Vec<String> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect()
}

#[tokio::test]
async fn file_repository_becomes_ready_then_follows_new_commits() {
    let h = Harness::new("src-file").await;
    let repo = Repo::new(&[
        ("deploy/app.yaml", "kind: ConfigMap\n"),
        (".github/ci.yaml", "x"),
    ]);
    h.create(&h.repo("app", &repo.file_url(), serde_json::json!({})))
        .await;

    let first = h
        .until_ready("app", &format!("main@sha1:{}", repo.head()))
        .await;
    let status = first.status.as_ref().unwrap();
    assert_eq!(status.observed_generation, first.metadata.generation);
    assert!(conditions::is_true(
        &status.conditions,
        types::ARTIFACT_IN_STORAGE
    ));
    assert!(conditions::get(&status.conditions, types::RECONCILING).is_none());
    assert!(conditions::get(&status.conditions, types::FETCH_FAILED).is_none());
    assert!(
        first
            .finalizers()
            .contains(&"source.weir.dev/finalizer".to_owned())
    );
    let artifact = status.artifact.as_ref().unwrap();
    assert!(
        artifact
            .url
            .contains(&format!("/gitrepository/{}/app/", h.ns)),
        "{}",
        artifact.url
    );
    assert_eq!(
        artifact_files(&first).await,
        BTreeMap::from([("deploy/app.yaml".to_owned(), "kind: ConfigMap\n".to_owned())])
    );

    // A new commit arrives at once when asked (the interval is an hour).
    let second = repo.commit(&[("deploy/app.yaml", "kind: Secret\n")], "change");
    h.request_reconcile("app", "t1").await;
    let updated = h.until_ready("app", &format!("main@sha1:{second}")).await;
    assert_eq!(
        updated
            .status
            .as_ref()
            .unwrap()
            .last_handled_reconcile_at
            .as_deref(),
        Some("t1")
    );
    assert_eq!(
        artifact_files(&updated).await["deploy/app.yaml"],
        "kind: Secret\n"
    );
    assert!(
        event_reasons(&h.client, &h.ns)
            .await
            .iter()
            .any(|r| r == "NewArtifact")
    );

    // Asking again with nothing new changes nothing but the handled request.
    h.request_reconcile("app", "t2").await;
    let same = h
        .until("app", "t2 handled", |o| {
            (o.status.as_ref()?.last_handled_reconcile_at.as_deref() == Some("t2"))
                .then(|| o.clone())
        })
        .await;
    assert_eq!(
        same.status.as_ref().unwrap().artifact,
        updated.status.as_ref().unwrap().artifact
    );
}

#[tokio::test]
async fn bad_ref_is_a_condition_and_the_last_artifact_stays_served() {
    let h = Harness::new("src-badref").await;
    let repo = Repo::new(&[("a.yaml", "a: 1\n")]);
    h.create(&h.repo(
        "app",
        &repo.file_url(),
        serde_json::json!({ "ref": { "branch": "main" } }),
    ))
    .await;
    let good = h
        .until_ready("app", &format!("main@sha1:{}", repo.head()))
        .await;

    h.patch_spec("app", serde_json::json!({ "ref": { "branch": "nope" } }))
        .await;
    let failed = h.until_failed("app", "RefNotFound").await;
    let status = failed.status.as_ref().unwrap();
    assert!(conditions::is_true(&status.conditions, types::FETCH_FAILED));
    assert!(
        conditions::get(&status.conditions, types::READY)
            .unwrap()
            .message
            .contains("nope")
    );
    assert_eq!(
        status.artifact,
        good.status.as_ref().unwrap().artifact,
        "the last good artifact is kept"
    );
    assert_eq!(
        artifact_files(&failed).await["a.yaml"],
        "a: 1\n",
        "and still served"
    );
    assert!(
        event_reasons(&h.client, &h.ns)
            .await
            .iter()
            .any(|r| r == "RefNotFound")
    );

    let invalid = h.repo(
        "range",
        &repo.file_url(),
        serde_json::json!({ "ref": { "semver": ">=banana" } }),
    );
    h.create(&invalid).await;
    let stalled = h.until_failed("range", "InvalidSpec").await;
    assert!(conditions::is_true(
        &stalled.status.as_ref().unwrap().conditions,
        types::STALLED
    ));

    h.patch_spec("app", serde_json::json!({ "ref": { "branch": "main" } }))
        .await;
    let healed = h
        .until("app", "Ready again", |o| {
            conditions::is_true(&o.status.as_ref()?.conditions, types::READY).then(|| o.clone())
        })
        .await;
    assert!(
        conditions::get(
            &healed.status.as_ref().unwrap().conditions,
            types::FETCH_FAILED
        )
        .is_none()
    );
}

#[tokio::test]
async fn credentials_come_from_the_secret() {
    let h = Harness::new("src-auth").await;
    let repo = Repo::new(&[("a.yaml", "a: 1\n")]);
    let server = HttpServer::start(repo.bare.parent().unwrap(), &["--user", "alice:s3cret"]);
    h.create(&h.repo(
        "app",
        &server.url("repo.git"),
        serde_json::json!({ "secretRef": { "name": "creds" } }),
    ))
    .await;
    let missing = h.until_failed("app", "SecretNotFound").await;
    assert!(
        conditions::get(&missing.status.as_ref().unwrap().conditions, types::READY)
            .unwrap()
            .message
            .contains("creds")
    );

    h.put_secret(
        "creds",
        &[("username", "alice"), ("password", "wrong-password")],
    )
    .await;
    h.request_reconcile("app", "with-secret").await;
    let refused = h.until_failed("app", "AuthenticationFailed").await;
    let text = serde_json::to_string(&refused.status).unwrap();
    assert!(
        !text.contains("wrong-password"),
        "a password leaked into the status: {text}"
    );

    h.put_secret("creds", &[("username", "alice"), ("password", "s3cret")])
        .await;
    h.request_reconcile("app", "fixed").await;
    let ok = h
        .until_ready("app", &format!("main@sha1:{}", repo.head()))
        .await;
    assert_eq!(artifact_files(&ok).await["a.yaml"], "a: 1\n");
}

#[tokio::test]
async fn restart_with_empty_storage_recreates_the_artifact_and_deletion_cleans_up() {
    let mut h = Harness::new("src-restart").await;
    let repo = Repo::new(&[("a.yaml", "a: 1\n")]);
    h.create(&h.repo("app", &repo.file_url(), serde_json::json!({})))
        .await;
    let revision = format!("main@sha1:{}", repo.head());
    let before = h.until_ready("app", &revision).await;
    let digest = before
        .status
        .as_ref()
        .unwrap()
        .artifact
        .as_ref()
        .unwrap()
        .digest
        .clone();

    h.stop().await;
    std::fs::remove_dir_all(h.storage.path().join("data")).unwrap();
    h.start().await;
    h.request_reconcile("app", "after-restart").await;
    let after = h
        .until("app", "artifact re-created on the new server", |o| {
            let s = o.status.as_ref()?;
            (s.last_handled_reconcile_at.as_deref() == Some("after-restart")).then(|| o.clone())
        })
        .await;
    let artifact = after.status.as_ref().unwrap().artifact.clone().unwrap();
    assert_eq!(
        artifact.digest, digest,
        "same tree, same reproducible digest"
    );
    assert_eq!(
        artifact_files(&after).await["a.yaml"],
        "a: 1\n",
        "served again by the restarted controller"
    );

    let stored = h
        .storage
        .path()
        .join(format!("data/gitrepository/{}/app", h.ns));
    assert!(stored.is_dir());
    h.api.delete("app", &DeleteParams::default()).await.unwrap();
    let start = Instant::now();
    while h.api.get_opt("app").await.unwrap().is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "finalizer never released the object"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !stored.exists(),
        "stored artifacts must be removed with the object"
    );
    h.stop().await;
}

#[tokio::test]
async fn suspended_objects_are_left_alone() {
    let h = Harness::new("src-suspend").await;
    let repo = Repo::new(&[("a.yaml", "1")]);
    h.create(&h.repo("app", &repo.file_url(), serde_json::json!({})))
        .await;
    let ready = h
        .until_ready("app", &format!("main@sha1:{}", repo.head()))
        .await;
    h.patch_spec("app", serde_json::json!({ "suspend": true }))
        .await;
    repo.commit(&[("a.yaml", "2")], "while suspended");
    h.request_reconcile("app", "suspended").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = h.api.get("app").await.unwrap();
    assert_eq!(
        still.status.as_ref().unwrap().artifact,
        ready.status.as_ref().unwrap().artifact
    );
    assert_ne!(
        still
            .status
            .as_ref()
            .unwrap()
            .last_handled_reconcile_at
            .as_deref(),
        Some("suspended")
    );
}

/// Regression: a reconcile that found the stored file current kept whatever URL the status
/// held, so after a restart on another address the artifact pointed at a dead server.
#[tokio::test]
async fn regression_artifact_url_follows_the_serving_address_after_restart() {
    let mut h = Harness::new("src-relocate").await;
    let repo = Repo::new(&[("a.yaml", "a: 1\n")]);
    h.create(&h.repo("app", &repo.file_url(), serde_json::json!({})))
        .await;
    let revision = format!("main@sha1:{}", repo.head());
    let before = h.until_ready("app", &revision).await;
    let old = before.status.as_ref().unwrap().artifact.clone().unwrap();

    // Same storage (the file stays), new random port for the artifact server.
    h.stop().await;
    h.start().await;
    let new_base = h.running.as_ref().unwrap().base_url.clone();
    assert!(
        !old.url.starts_with(&new_base),
        "the test needs a new address"
    );
    h.request_reconcile("app", "relocate").await;
    let after = h
        .until("app", "artifact URL on the new address", |o| {
            let a = o.status.as_ref()?.artifact.as_ref()?;
            a.url.starts_with(&new_base).then(|| o.clone())
        })
        .await;
    let artifact = after.status.as_ref().unwrap().artifact.clone().unwrap();
    assert_eq!(
        (artifact.digest.as_str(), artifact.revision.as_str()),
        (old.digest.as_str(), old.revision.as_str())
    );
    assert_eq!(artifact_files(&after).await["a.yaml"], "a: 1\n");
    h.stop().await;
}

#[tokio::test]
async fn ssh_and_bearer_credentials_from_secrets() {
    let h = Harness::new("src-transports").await;
    let repo = Repo::new(&[("a.yaml", "a: 1\n")]);
    let revision = format!("main@sha1:{}", repo.head());
    let ssh = weir_testenv::git::SshServer::start();
    let known_hosts = ssh.known_hosts();
    h.put_secret(
        "ssh",
        &[("identity", &ssh.client_key), ("known_hosts", &known_hosts)],
    )
    .await;
    h.create(&h.repo(
        "over-ssh",
        &ssh.url(&repo.bare),
        serde_json::json!({ "secretRef": { "name": "ssh" } }),
    ))
    .await;

    let http = HttpServer::start(repo.bare.parent().unwrap(), &["--bearer", "tok123"]);
    h.put_secret("token", &[("bearerToken", "tok123")]).await;
    h.create(&h.repo(
        "over-http",
        &http.url("repo.git"),
        serde_json::json!({ "secretRef": { "name": "token" } }),
    ))
    .await;

    let via_ssh = h.until_ready("over-ssh", &revision).await;
    let via_http = h.until_ready("over-http", &revision).await;
    assert_eq!(
        via_ssh
            .status
            .as_ref()
            .unwrap()
            .artifact
            .as_ref()
            .unwrap()
            .digest,
        via_http
            .status
            .as_ref()
            .unwrap()
            .artifact
            .as_ref()
            .unwrap()
            .digest,
        "same tree over either transport, same artifact"
    );

    // A known_hosts that does not match the server: Ready=False, nothing fetched.
    let other = weir_testenv::git::SshServer::start();
    let wrong = format!("[127.0.0.1]:{} {}\n", ssh.port, other.host_key);
    h.put_secret(
        "ssh-wrong",
        &[("identity", &ssh.client_key), ("known_hosts", &wrong)],
    )
    .await;
    h.create(&h.repo(
        "mismatch",
        &ssh.url(&repo.bare),
        serde_json::json!({ "secretRef": { "name": "ssh-wrong" } }),
    ))
    .await;
    let refused = h
        .until_failed("mismatch", "HostKeyVerificationFailed")
        .await;
    assert!(refused.status.as_ref().unwrap().artifact.is_none());
}

#[tokio::test]
async fn turning_on_recurse_submodules_rebuilds_the_same_revision() {
    let h = Harness::new("src-submodules").await;
    let lib = Repo::new(&[("lib.yaml", "lib\n")]);
    let app = Repo::new(&[("app.yaml", "app\n")]);
    weir_testenv::git::git(
        &app.work,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            &lib.file_url(),
            "vendor/lib",
        ],
    );
    let head = app.commit(&[], "add submodule");
    let revision = format!("main@sha1:{head}");

    h.create(&h.repo("app", &app.file_url(), serde_json::json!({})))
        .await;
    let flat = h.until_ready("app", &revision).await;
    assert_eq!(
        artifact_files(&flat).await.keys().collect::<Vec<_>>(),
        ["app.yaml"]
    );
    let flat_digest = flat
        .status
        .as_ref()
        .unwrap()
        .artifact
        .as_ref()
        .unwrap()
        .digest
        .clone();

    h.patch_spec("app", serde_json::json!({ "recurseSubmodules": true }))
        .await;
    let deep = h
        .until("app", "an artifact with the submodule", |o| {
            let s = o.status.as_ref()?;
            (s.observed_recurse_submodules == Some(true)
                && conditions::is_true(&s.conditions, types::READY))
            .then(|| o.clone())
        })
        .await;
    let artifact = deep.status.as_ref().unwrap().artifact.clone().unwrap();
    assert_eq!(artifact.revision, revision, "same commit");
    assert_ne!(artifact.digest, flat_digest, "different content");
    assert_eq!(artifact_files(&deep).await["vendor/lib/lib.yaml"], "lib\n");
}

#[tokio::test]
async fn every_ref_kind_over_https_with_a_custom_ca() {
    let h = Harness::new("src-refs").await;
    let weir_testenv::git::RefsFixture {
        repo,
        first,
        second,
        dev,
    } = Repo::with_refs();

    let server = HttpServer::start_tls(repo.bare.parent().unwrap(), &["--user", "alice:s3cret"]);
    let ca = server.ca_pem.clone().unwrap();
    h.put_secret(
        "https",
        &[
            ("username", "alice"),
            ("password", "s3cret"),
            ("ca.crt", &ca),
        ],
    )
    .await;

    let url = server.url("repo.git");
    let cases = [
        (
            "default",
            serde_json::json!(null),
            format!("main@sha1:{second}"),
        ),
        (
            "branch",
            serde_json::json!({ "branch": "dev" }),
            format!("dev@sha1:{dev}"),
        ),
        (
            "tag",
            serde_json::json!({ "tag": "v6.9.4" }),
            format!("v6.9.4@sha1:{first}"),
        ),
        (
            "semver",
            serde_json::json!({ "semver": ">=6.0.0 <7.0.0" }),
            format!("6.10.0@sha1:{second}"),
        ),
        (
            "commit",
            serde_json::json!({ "commit": first }),
            format!("sha1:{first}"),
        ),
        (
            "name",
            serde_json::json!({ "name": "refs/pull/1/head" }),
            format!("refs/pull/1/head@sha1:{first}"),
        ),
    ];
    for (name, reference, _) in &cases {
        let mut spec = serde_json::json!({ "secretRef": { "name": "https" } });
        if !reference.is_null() {
            spec["ref"] = reference.clone();
        }
        h.create(&h.repo(name, &url, spec)).await;
    }
    for (name, _, revision) in &cases {
        h.until_ready(name, revision).await;
    }
}

#[tokio::test]
async fn fetches_show_reconciling_and_the_interval_picks_up_commits() {
    use futures::{StreamExt, TryStreamExt};
    let h = Harness::new("src-progress").await;
    let repo = Repo::new(&[("a.yaml", "1")]);
    // Watch from before creation: every state the object passes through is seen.
    let mut events = h
        .api
        .watch(&kube::api::WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let mut obj = h.repo("app", &repo.file_url(), serde_json::json!({}));
    obj.spec.interval = "2s".into();
    h.create(&obj).await;

    let mut saw_reconciling = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let event = tokio::time::timeout_at(deadline.into(), events.try_next())
            .await
            .expect("Ready in time")
            .unwrap()
            .unwrap();
        let kube::api::WatchEvent::Modified(o) = event else {
            continue;
        };
        let Some(s) = o.status else { continue };
        if conditions::is_true(&s.conditions, types::RECONCILING) {
            saw_reconciling = true;
            assert_eq!(
                conditions::get(&s.conditions, types::READY).unwrap().status,
                "Unknown"
            );
        }
        if conditions::is_true(&s.conditions, types::READY) {
            assert!(
                conditions::get(&s.conditions, types::RECONCILING).is_none(),
                "Reconciling must go when done"
            );
            break;
        }
    }
    assert!(
        saw_reconciling,
        "a fetch must show Reconciling=True while it runs"
    );

    // No request: the 2 s interval alone brings the new commit.
    let next = repo.commit(&[("a.yaml", "2")], "next");
    h.until_ready("app", &format!("main@sha1:{next}")).await;
}
