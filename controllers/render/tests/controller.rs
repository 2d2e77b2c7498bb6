//! The render-controller against a real kube-apiserver, with the real source-controller
//! in-process as its producer (and a test-made producer kind where a test needs bad artifacts
//! that weir's own source-controller never publishes).

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use k8s_openapi::{
    ByteString,
    api::core::v1::{ConfigMap, Secret},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, ResourceExt,
    api::{
        ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, ObjectMeta, Patch,
        PatchParams, PostParams,
    },
};
use weir_api::{
    Artifact, GitRepository, Render,
    conditions::{self, types},
    reconcile::request_patch,
};
use weir_artifact::{
    ArchiveBuilder, ArtifactKey, FetchOptions, Fetcher, PackedArtifact, Retention, Storage,
    UntarLimits, untar,
};
use weir_kustomize::yaml::{Value, parse_documents};
use weir_render_controller::{Config, Running};
use weir_testenv::{TestCluster, git::Repo};

const SHARD_LABEL: &str = "weir.dev/test-shard";

struct Harness {
    client: Client,
    ns: String,
    renders: Api<Render>,
    repos: Api<GitRepository>,
    dir: tempfile::TempDir,
    source: Option<weir_source_controller::Running>,
    running: Option<Running>,
}

impl Harness {
    async fn new(prefix: &str) -> Harness {
        Self::with_config(prefix, |_| {}).await
    }

    async fn with_config(prefix: &str, tweak: impl FnOnce(&mut Config)) -> Harness {
        let cluster = TestCluster::shared().await.unwrap();
        cluster.install_crds(&weir_api::crds::all()).await.unwrap();
        let ns = cluster.namespace(prefix).await.unwrap();
        let client = cluster.client();
        let dir = tempfile::tempdir().unwrap();
        let selector = format!("{SHARD_LABEL}={ns}");
        let source_config = weir_source_controller::Config {
            storage_path: dir.path().join("source"),
            storage_addr: "127.0.0.1:0".into(),
            metrics_addr: "127.0.0.1:0".into(),
            health_addr: "127.0.0.1:0".into(),
            watch_label_selector: Some(selector.clone()),
            default_timeout: Duration::from_secs(20),
            ..weir_source_controller::Config::default()
        };
        let source = weir_source_controller::start(client.clone(), source_config)
            .await
            .unwrap();
        let mut config = Config {
            storage_path: dir.path().join("render"),
            storage_addr: "127.0.0.1:0".into(),
            metrics_addr: "127.0.0.1:0".into(),
            health_addr: "127.0.0.1:0".into(),
            watch_label_selector: Some(selector),
            ..Config::default()
        };
        tweak(&mut config);
        let running = weir_render_controller::start(client.clone(), config)
            .await
            .unwrap();
        Harness {
            renders: Api::namespaced(client.clone(), &ns),
            repos: Api::namespaced(client.clone(), &ns),
            client,
            ns,
            dir,
            source: Some(source),
            running: Some(running),
        }
    }

    async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
        if let Some(s) = self.source.take() {
            s.stop().await;
        }
    }

    fn labels(&self) -> Option<BTreeMap<String, String>> {
        Some(BTreeMap::from([(SHARD_LABEL.to_owned(), self.ns.clone())]))
    }

    /// Creates a GitRepository for `repo` (interval 1h: new commits arrive only when asked).
    async fn git_repository(&self, name: &str, repo: &Repo) {
        let spec =
            serde_json::json!({ "url": repo.file_url(), "interval": "1h", "timeout": "20s" });
        let mut obj = GitRepository::new(name, serde_json::from_value(spec).unwrap());
        obj.metadata.labels = self.labels();
        self.repos
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }

    /// Asks the source-controller to fetch now.
    async fn refresh_source(&self, name: &str, token: &str) {
        self.repos
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(request_patch(token)),
            )
            .await
            .unwrap();
    }

    /// Creates a Render reading GitRepository `repo` (interval 1h), with extra `spec` fields.
    async fn render(&self, name: &str, repo: &str, spec: serde_json::Value) {
        let mut full = serde_json::json!({
            "sourceRef": { "kind": "GitRepository", "name": repo },
            "interval": "1h",
            "timeout": "30s",
        });
        full.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        let mut obj = Render::new(name, serde_json::from_value(full).unwrap());
        obj.metadata.labels = self.labels();
        self.renders
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }

    async fn patch_render(&self, name: &str, patch: serde_json::Value) {
        self.renders
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    }

    /// Polls the Render until `check` returns `Some`, failing with the last status after 90 s.
    async fn until<T>(&self, name: &str, what: &str, check: impl Fn(&Render) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            let obj = self.renders.get(name).await.unwrap();
            if let Some(v) = check(&obj) {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "timed out waiting for {what}; status: {:#?}",
                obj.status
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn until_ready(&self, name: &str, revision: &str) -> Render {
        self.until(name, &format!("Ready at {revision}"), |o| {
            let s = o.status.as_ref()?;
            let ready = conditions::is_true(&s.conditions, types::READY);
            (ready
                && s.artifact.as_ref()?.revision == revision
                && s.observed_generation == o.metadata.generation)
                .then(|| o.clone())
        })
        .await
    }

    /// Waits for Ready=False with `reason` after an attempt at `revision` (any when `None`).
    async fn until_failed(&self, name: &str, reason: &str, revision: Option<&str>) -> Render {
        self.until(
            name,
            &format!("Ready=False with reason {reason} at {revision:?}"),
            |o| {
                let s = o.status.as_ref()?;
                let c = conditions::get(&s.conditions, types::READY)?;
                let attempted =
                    revision.is_none_or(|r| s.last_attempted_revision.as_deref() == Some(r));
                (c.status == "False"
                    && c.reason == reason
                    && attempted
                    && s.observed_generation == o.metadata.generation)
                    .then(|| o.clone())
            },
        )
        .await
    }

    async fn put_config_map(&self, name: &str, data: &[(&str, &str)]) {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        Api::<ConfigMap>::namespaced(self.client.clone(), &self.ns)
            .patch(
                name,
                &PatchParams::apply("weir-tests").force(),
                &Patch::Apply(&cm),
            )
            .await
            .unwrap();
    }

    async fn put_secret(&self, name: &str, data: &[(&str, &str)]) {
        let secret = Secret {
            metadata: ObjectMeta {
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

    async fn event_reasons(&self) -> Vec<String> {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), &self.ns);
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|e| e.reason)
            .collect()
    }
}

fn artifact(obj: &Render) -> Artifact {
    obj.status.as_ref().unwrap().artifact.clone().unwrap()
}

/// Downloads the Render's artifact, checks its digest and size, and returns `manifests.yaml`,
/// asserting it is the archive's only file.
async fn manifests(obj: &Render) -> String {
    let artifact = artifact(obj);
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
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, vec!["manifests.yaml".to_owned()]);
    std::fs::read_to_string(dir.path().join("manifests.yaml")).unwrap()
}

/// The rendered objects as JSON, for assertions on fields.
fn parse_objects(yaml: &str) -> Vec<serde_json::Value> {
    parse_documents(yaml)
        .unwrap()
        .iter()
        .filter(|v| !v.is_null())
        .map(Value::to_json)
        .collect()
}

fn find<'a>(objects: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {objects:#?}"))
}

const KUSTOMIZATION: &str = "resources:\n- cm.yaml\nnamePrefix: app-\nnamespace: team\n";

fn config_map(name: &str, color: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  color: {color}\n")
}

#[tokio::test]
async fn renders_a_git_source_and_follows_new_commits() {
    let mut h = Harness::new("rnd-git").await;
    let repo = Repo::new(&[
        ("deploy/kustomization.yaml", KUSTOMIZATION),
        ("deploy/cm.yaml", &config_map("config", "blue")),
        ("README.md", "hello\n"),
    ]);
    h.git_repository("repo", &repo).await;
    h.render("app", "repo", serde_json::json!({ "path": "./deploy" }))
        .await;

    let first_revision = format!("main@sha1:{}", repo.head());
    let first = h.until_ready("app", &first_revision).await;
    let status = first.status.as_ref().unwrap();
    assert_eq!(status.object_count, Some(1));
    assert_eq!(
        status.last_attempted_revision.as_deref(),
        Some(first_revision.as_str())
    );
    assert!(conditions::get(&status.conditions, types::RECONCILING).is_none());
    assert!(conditions::get(&status.conditions, types::STALLED).is_none());
    assert!(
        first
            .finalizers()
            .contains(&"render.weir.dev/finalizer".to_owned())
    );
    let first_artifact = artifact(&first);
    assert!(
        first_artifact
            .url
            .contains(&format!("/render/{}/app/", h.ns)),
        "{}",
        first_artifact.url
    );
    assert_eq!(
        manifests(&first).await,
        "apiVersion: v1\ndata:\n  color: blue\nkind: ConfigMap\nmetadata:\n  name: app-config\n  namespace: team\n"
    );
    assert!(h.event_reasons().await.iter().any(|r| r == "NewArtifact"));

    // A new commit: the source publishes a new artifact and the source watch renders at once
    // (both intervals are an hour).
    let second = repo.commit(
        &[("deploy/cm.yaml", &config_map("config", "green"))],
        "green",
    );
    h.refresh_source("repo", "second").await;
    let updated = h.until_ready("app", &format!("main@sha1:{second}")).await;
    let second_artifact = artifact(&updated);
    assert_ne!(second_artifact.digest, first_artifact.digest);
    assert!(manifests(&updated).await.contains("color: green"));

    // A commit that does not change the output publishes nothing new: same file, same digest;
    // only the revision follows the source.
    let third = repo.commit(&[("README.md", "changed\n")], "docs");
    h.refresh_source("repo", "third").await;
    let same = h.until_ready("app", &format!("main@sha1:{third}")).await;
    let third_artifact = artifact(&same);
    assert_eq!(third_artifact.digest, second_artifact.digest);
    assert_eq!(third_artifact.url, second_artifact.url);
    assert_eq!(
        third_artifact.last_update_time,
        second_artifact.last_update_time
    );

    // An empty commit: the source publishes a new revision with the same digest, and the
    // Render follows the revision without publishing anything new.
    let fourth = repo.commit(&[], "empty");
    h.refresh_source("repo", "fourth").await;
    let empty = h.until_ready("app", &format!("main@sha1:{fourth}")).await;
    assert_eq!(artifact(&empty).digest, second_artifact.digest);

    // A requested reconcile renders again (nothing new) and is acknowledged.
    h.patch_render("app", request_patch("t1")).await;
    let handled = h
        .until("app", "t1 handled", |o| {
            (o.status.as_ref()?.last_handled_reconcile_at.as_deref() == Some("t1"))
                .then(|| o.clone())
        })
        .await;
    assert_eq!(artifact(&handled), artifact(&empty));

    // Deletion removes the stored artifacts, then releases the object.
    let stored = h.dir.path().join(format!("render/render/{}/app", h.ns));
    assert!(stored.is_dir(), "{}", stored.display());
    h.renders
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    let start = Instant::now();
    while h.renders.get_opt("app").await.unwrap().is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "finalizer never released the object"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!stored.exists(), "stored artifacts must go with the object");
    h.stop().await;
}

#[tokio::test]
async fn bad_input_in_the_source_is_a_condition_and_the_last_artifact_stays_served() {
    let h = Harness::new("rnd-bad").await;
    let repo = Repo::new(&[
        ("deploy/kustomization.yaml", KUSTOMIZATION),
        ("deploy/cm.yaml", &config_map("config", "blue")),
    ]);
    h.git_repository("repo", &repo).await;
    h.render("app", "repo", serde_json::json!({ "path": "deploy" }))
        .await;
    let good = h
        .until_ready("app", &format!("main@sha1:{}", repo.head()))
        .await;
    let good_artifact = artifact(&good);
    let good_manifests = manifests(&good).await;

    /// One broken commit: files to write, files to delete first, and a fragment the condition
    /// message must contain.
    struct Case {
        name: &'static str,
        write: Vec<(&'static str, String)>,
        remove: &'static [&'static str],
        fragment: &'static str,
    }
    let kustomization = |body: &str| ("deploy/kustomization.yaml", body.to_owned());
    let cases = vec![
        Case {
            name: "malformed YAML",
            write: vec![(
                "deploy/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed\n".to_owned(),
            )],
            remove: &[],
            fragment: "cm.yaml",
        },
        Case {
            name: "missing file",
            write: vec![
                ("deploy/cm.yaml", config_map("config", "blue")),
                kustomization("resources:\n- cm.yaml\n- missing.yaml\n"),
            ],
            remove: &[],
            fragment: "missing.yaml",
        },
        Case {
            name: "duplicate ids",
            write: vec![
                kustomization("resources:\n- cm.yaml\n- copy.yaml\n"),
                ("deploy/copy.yaml", config_map("config", "red")),
            ],
            remove: &[],
            fragment: "already registered id",
        },
        Case {
            name: "path escape",
            write: vec![kustomization(
                "resources:\n- ../../../../../../etc/hostname\n",
            )],
            remove: &["deploy/copy.yaml"],
            fragment: "etc/hostname",
        },
        Case {
            name: "cyclic bases",
            write: vec![
                kustomization("resources:\n- ../base\n"),
                (
                    "base/kustomization.yaml",
                    "resources:\n- ../deploy\n".to_owned(),
                ),
            ],
            remove: &[],
            fragment: "cycle",
        },
        Case {
            name: "unknown patch target",
            write: vec![kustomization(
                "resources:\n- cm.yaml\npatches:\n- patch: |\n    apiVersion: v1\n    kind: ConfigMap\n    metadata:\n      name: nope\n    data:\n      a: b\n",
            )],
            remove: &["base/kustomization.yaml"],
            fragment: "nope",
        },
    ];
    for (i, case) in cases.into_iter().enumerate() {
        let name = case.name;
        for path in case.remove {
            std::fs::remove_file(repo.work.join(path)).unwrap();
        }
        let files: Vec<(&str, &str)> = case.write.iter().map(|(p, c)| (*p, c.as_str())).collect();
        let commit = repo.commit(&files, name);
        let revision = format!("main@sha1:{commit}");
        h.refresh_source("repo", &format!("case-{i}")).await;
        let failed = h.until_failed("app", "BuildFailed", Some(&revision)).await;
        let status = failed.status.as_ref().unwrap();
        let ready = conditions::get(&status.conditions, types::READY).unwrap();
        assert!(
            ready.message.contains(case.fragment),
            "{name}: message {:?} lacks {:?}",
            ready.message,
            case.fragment
        );
        assert!(!ready.message.contains('\n'), "{name}: {:?}", ready.message);
        assert!(
            conditions::get(&status.conditions, types::STALLED).is_none(),
            "{name}: a new commit can fix it, so not Stalled"
        );
        assert_eq!(
            status.artifact.as_ref(),
            Some(&good_artifact),
            "{name}: the last good artifact is kept"
        );
        assert_eq!(
            manifests(&failed).await,
            good_manifests,
            "{name}: and still served"
        );
    }
    assert!(h.event_reasons().await.iter().any(|r| r == "BuildFailed"));

    // A path that is not in the artifact is a spec problem the same way.
    h.patch_render("app", serde_json::json!({ "spec": { "path": "nowhere" } }))
        .await;
    let missing = h.until_failed("app", "BuildFailed", None).await;
    assert!(
        conditions::get(&missing.status.as_ref().unwrap().conditions, types::READY)
            .unwrap()
            .message
            .contains("nowhere")
    );

    // Fixing the source heals the Render.
    std::fs::remove_dir_all(repo.work.join("base")).unwrap();
    let fixed = repo.commit(
        &[
            ("deploy/kustomization.yaml", KUSTOMIZATION),
            ("deploy/cm.yaml", &config_map("config", "purple")),
        ],
        "fixed",
    );
    h.patch_render("app", serde_json::json!({ "spec": { "path": "deploy" } }))
        .await;
    h.refresh_source("repo", "fixed").await;
    let healed = h.until_ready("app", &format!("main@sha1:{fixed}")).await;
    assert!(manifests(&healed).await.contains("color: purple"));
}

#[tokio::test]
async fn overlay_fields_apply_on_top_of_the_source() {
    let h = Harness::new("rnd-overlay").await;
    let repo = Repo::new(&[(
        "app/web.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.0\n",
    )]);
    h.git_repository("repo", &repo).await;
    h.render(
        "app",
        "repo",
        serde_json::json!({
            "path": "app",
            "targetNamespace": "prod",
            "namePrefix": "p-",
            "nameSuffix": "-s",
            "commonMetadata": { "labels": { "team": "a" }, "annotations": { "owner": "b" } },
            "images": [{ "name": "nginx", "newTag": "1.27" }],
            "patches": [{
                "patch": "- op: replace\n  path: /spec/replicas\n  value: 3\n",
                "target": { "kind": "Deployment" },
            }],
        }),
    )
    .await;
    let ready = h
        .until_ready("app", &format!("main@sha1:{}", repo.head()))
        .await;
    let objects = parse_objects(&manifests(&ready).await);
    assert_eq!(objects.len(), 1);
    let web = find(&objects, "Deployment", "p-web-s");
    assert_eq!(web["metadata"]["namespace"], "prod");
    assert_eq!(web["metadata"]["labels"]["team"], "a");
    assert_eq!(web["metadata"]["annotations"]["owner"], "b");
    assert_eq!(
        web["spec"]["selector"]["matchLabels"],
        serde_json::json!({ "app": "web" }),
        "commonMetadata labels stay out of selectors"
    );
    assert_eq!(web["spec"]["replicas"], 3);
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
}

const SUBSTITUTED: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: ${REPLICAS}\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: nginx:${TAG:=1.25}\n        env:\n        - name: GREETING\n          value: ${GREETING}\n";
const OPTED_OUT: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: script\n  annotations:\n    render.weir.dev/substitute: disabled\ndata:\n  run: echo ${HOME}\n";

#[tokio::test]
async fn substitution_from_config_maps_secrets_and_the_spec() {
    let h = Harness::new("rnd-subst").await;
    let repo = Repo::new(&[
        ("app/web.yaml", SUBSTITUTED),
        ("app/script.yaml", OPTED_OUT),
    ]);
    h.git_repository("repo", &repo).await;
    h.put_config_map(
        "vars",
        &[("REPLICAS", "2"), ("GREETING", "from-config-map")],
    )
    .await;
    h.put_secret("secret-vars", &[("GREETING", "from-secret")])
        .await;
    let revision = format!("main@sha1:{}", repo.head());

    h.render(
        "app",
        "repo",
        serde_json::json!({
            "path": "app",
            "substitute": { "TAG": "1.27" },
            "substituteFrom": [
                { "kind": "ConfigMap", "name": "vars" },
                { "kind": "Secret", "name": "secret-vars" },
                { "kind": "ConfigMap", "name": "not-there", "optional": true },
            ],
        }),
    )
    .await;
    let ready = h.until_ready("app", &revision).await;
    let objects = parse_objects(&manifests(&ready).await);
    let web = find(&objects, "Deployment", "web");
    assert_eq!(
        web["spec"]["replicas"],
        serde_json::json!(2),
        "decoded again after substitution: a number, not a string"
    );
    let container = &web["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"], "nginx:1.27",
        "the spec wins over defaults"
    );
    assert_eq!(
        container["env"][0]["value"], "from-secret",
        "later substituteFrom entries win"
    );
    assert_eq!(
        find(&objects, "ConfigMap", "script")["data"]["run"],
        "echo ${HOME}",
        "objects can opt out"
    );

    // Dropping the ConfigMap leaves REPLICAS undefined: a failure, and the last good
    // artifact stays published and served.
    let good = artifact(&ready);
    let good_manifests = manifests(&ready).await;
    h.patch_render(
        "app",
        serde_json::json!({ "spec": { "substituteFrom": [{ "kind": "Secret", "name": "secret-vars" }] } }),
    )
    .await;
    let failed = h.until_failed("app", "SubstitutionFailed", None).await;
    assert_eq!(artifact(&failed), good);
    assert_eq!(manifests(&failed).await, good_manifests);

    // Strict: a variable without a value or default fails, naming it; nothing is published.
    h.render(
        "strict",
        "repo",
        serde_json::json!({ "path": "app", "substitute": { "TAG": "1.27" } }),
    )
    .await;
    let strict = h
        .until_failed("strict", "SubstitutionFailed", Some(&revision))
        .await;
    let status = strict.status.as_ref().unwrap();
    let message = &conditions::get(&status.conditions, types::READY)
        .unwrap()
        .message;
    assert!(message.contains("REPLICAS"), "{message}");
    assert!(status.artifact.is_none());

    // A required ConfigMap that does not exist fails until it does.
    h.render(
        "needs-cm",
        "repo",
        serde_json::json!({
            "path": "app",
            "substituteFrom": [{ "kind": "ConfigMap", "name": "late" }],
        }),
    )
    .await;
    let waiting = h
        .until_failed("needs-cm", "SubstitutionFailed", Some(&revision))
        .await;
    assert!(
        conditions::get(&waiting.status.as_ref().unwrap().conditions, types::READY)
            .unwrap()
            .message
            .contains("'late' not found")
    );
    h.put_config_map("late", &[("REPLICAS", "5"), ("GREETING", "hi")])
        .await;
    h.patch_render("needs-cm", request_patch("late-exists"))
        .await;
    let healed = h.until_ready("needs-cm", &revision).await;
    let objects = parse_objects(&manifests(&healed).await);
    assert_eq!(find(&objects, "Deployment", "web")["spec"]["replicas"], 5);
    assert!(
        h.event_reasons()
            .await
            .iter()
            .any(|r| r == "SubstitutionFailed")
    );
}

#[tokio::test]
async fn a_missing_source_is_waiting_not_failed() {
    let h = Harness::new("rnd-wait").await;
    h.render("app", "later", serde_json::json!({})).await;
    let waiting = h.until_failed("app", "SourceNotReady", None).await;
    let status = waiting.status.as_ref().unwrap();
    assert!(
        conditions::get(&status.conditions, types::STALLED).is_none(),
        "waiting is not Stalled"
    );
    assert!(status.artifact.is_none());
    assert!(
        conditions::get(&status.conditions, types::READY)
            .unwrap()
            .message
            .contains("/later' not found")
    );

    let repo = Repo::new(&[("cm.yaml", &config_map("config", "blue"))]);
    h.git_repository("later", &repo).await;
    let ready = h
        .until_ready("app", &format!("main@sha1:{}", repo.head()))
        .await;
    assert!(manifests(&ready).await.contains("name: config"));
}

#[tokio::test]
async fn suspended_renders_are_left_alone() {
    let h = Harness::new("rnd-suspend").await;
    let repo = Repo::new(&[("cm.yaml", &config_map("config", "blue"))]);
    h.git_repository("repo", &repo).await;
    h.render("app", "repo", serde_json::json!({})).await;
    let first = format!("main@sha1:{}", repo.head());
    let ready = h.until_ready("app", &first).await;

    h.patch_render("app", serde_json::json!({ "spec": { "suspend": true } }))
        .await;
    let second = repo.commit(&[("cm.yaml", &config_map("config", "green"))], "green");
    h.refresh_source("repo", "while-suspended").await;
    // Wait until the source has the new revision, then give the render-controller time to
    // (not) act on it.
    let start = Instant::now();
    loop {
        let source = h.repos.get("repo").await.unwrap();
        let revision = source.status.and_then(|s| s.artifact).map(|a| a.revision);
        if revision.as_deref() == Some(format!("main@sha1:{second}").as_str()) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "source never updated"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = h.renders.get("app").await.unwrap();
    assert_eq!(
        still.status.as_ref().unwrap().artifact,
        ready.status.as_ref().unwrap().artifact
    );

    h.patch_render("app", serde_json::json!({ "spec": { "suspend": false } }))
        .await;
    let resumed = h.until_ready("app", &format!("main@sha1:{second}")).await;
    assert!(manifests(&resumed).await.contains("color: green"));
}

/// A producer kind weir does not know, made by the test: a CRD whose objects carry a
/// `status.artifact` the test writes, served by the test's own artifact server.
struct TestProducer {
    api: Api<DynamicObject>,
    resource: ApiResource,
    storage: Storage,
    base_url: String,
    _dir: tempfile::TempDir,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl TestProducer {
    async fn start(h: &Harness) -> TestProducer {
        let crd: CustomResourceDefinition = serde_json::from_value(serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": { "name": "buckets.test.weir.dev" },
            "spec": {
                "group": "test.weir.dev",
                "names": { "kind": "Bucket", "plural": "buckets", "singular": "bucket", "listKind": "BucketList" },
                "scope": "Namespaced",
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } },
                }],
            },
        }))
        .unwrap();
        let cluster = TestCluster::shared().await.unwrap();
        cluster.install_crds(&[crd]).await.unwrap();
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("test.weir.dev", "v1", "Bucket"),
            "buckets",
        );
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(dir.path(), Retention::default()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let root = storage.root().to_owned();
        tokio::spawn(async move {
            let _ = weir_artifact::server::serve(listener, root, async {
                let _ = stopped.await;
            })
            .await;
        });
        TestProducer {
            api: Api::namespaced_with(h.client.clone(), &h.ns, &resource),
            resource,
            storage,
            base_url,
            _dir: dir,
            stop,
        }
    }

    /// Stores `packed` and publishes it as bucket `name`'s artifact at `revision`; `digest`
    /// overrides the published digest (to lie about it).
    async fn publish(
        &self,
        name: &str,
        revision: &str,
        packed: &PackedArtifact,
        digest: Option<&str>,
    ) {
        let key = ArtifactKey::new("Bucket", "test", name).unwrap();
        let stored = self.storage.store(&key, packed).unwrap();
        let artifact = serde_json::json!({
            "url": Storage::url(&self.base_url, &stored),
            "revision": revision,
            "digest": digest.unwrap_or(&stored.digest),
            "size": stored.size,
            "lastUpdateTime": "2026-01-01T00:00:00Z",
        });
        if self.api.get_opt(name).await.unwrap().is_none() {
            let obj = DynamicObject::new(name, &self.resource)
                .data(serde_json::json!({ "status": { "artifact": artifact } }));
            self.api.create(&PostParams::default(), &obj).await.unwrap();
        } else {
            self.api
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({ "status": { "artifact": artifact } })),
                )
                .await
                .unwrap();
        }
    }

    /// Publishes a URL that the server answers with 404.
    async fn publish_missing(&self, name: &str, revision: &str) {
        let digest = format!("sha256:{}", "0".repeat(64));
        let artifact = serde_json::json!({
            "url": format!("{}/bucket/test/{name}/{}.tar.gz", self.base_url, "0".repeat(64)),
            "revision": revision,
            "digest": digest,
            "lastUpdateTime": "2026-01-01T00:00:00Z",
        });
        self.api
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "status": { "artifact": artifact } })),
            )
            .await
            .unwrap();
    }
}

fn archive(files: &[(&str, &[u8])]) -> PackedArtifact {
    let mut b = ArchiveBuilder::new();
    for (path, content) in files {
        b.add_file(path, content.to_vec(), false).unwrap();
    }
    b.finish().unwrap()
}

/// A tar.gz holding a symbolic link, which weir's packer never writes.
fn archive_with_symlink() -> PackedArtifact {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    header.set_path("cm.yaml").unwrap();
    header.set_link_name("/etc/passwd").unwrap();
    header.set_cksum();
    tar.append(&header, std::io::empty()).unwrap();
    let bytes = tar.into_inner().unwrap().finish().unwrap();
    let digest = weir_artifact::sha256_digest(&bytes);
    PackedArtifact {
        bytes,
        digest,
        files: 1,
    }
}

/// Bytes that do not compress (xorshift), to make an artifact large on the wire.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn any_kind_with_an_artifact_is_a_source_and_bad_artifacts_are_refused() {
    let mut h = Harness::with_config("rnd-any", |c| c.max_source_bytes = 64 << 10).await;
    let producer = TestProducer::start(&h).await;
    let cm = config_map("config", "blue");
    producer
        .publish("b", "v1", &archive(&[("cm.yaml", cm.as_bytes())]), None)
        .await;
    h.render(
        "app",
        "unused",
        serde_json::json!({
            "sourceRef": { "apiVersion": "test.weir.dev/v1", "kind": "Bucket", "name": "b" },
        }),
    )
    .await;
    let v1 = h.until_ready("app", "v1").await;
    assert!(manifests(&v1).await.contains("color: blue"));

    // A new artifact on an unknown kind triggers a render through the dynamic watch.
    let green = config_map("config", "green");
    producer
        .publish("b", "v2", &archive(&[("cm.yaml", green.as_bytes())]), None)
        .await;
    let v2 = h.until_ready("app", "v2").await;
    let good = artifact(&v2);
    let good_manifests = manifests(&v2).await;
    assert!(good_manifests.contains("color: green"));

    let wrong_digest = format!("sha256:{}", "a".repeat(64));
    let cases: Vec<(&str, PackedArtifact, Option<&str>, &str, &str)> = vec![
        (
            "v3-symlink",
            archive_with_symlink(),
            None,
            "ArtifactFetchFailed",
            "cm.yaml",
        ),
        (
            "v4-digest",
            archive(&[("cm.yaml", b"tampered")]),
            Some(&wrong_digest),
            "ArtifactFetchFailed",
            "digest",
        ),
        (
            "v5-oversized",
            archive(&[("big.bin", &noise(200 << 10))]),
            None,
            "ArtifactFetchFailed",
            "limit",
        ),
    ];
    for (revision, packed, digest, reason, fragment) in cases {
        producer.publish("b", revision, &packed, digest).await;
        let failed = h.until_failed("app", reason, Some(revision)).await;
        let status = failed.status.as_ref().unwrap();
        let message = &conditions::get(&status.conditions, types::READY)
            .unwrap()
            .message;
        assert!(message.contains(fragment), "{revision}: {message}");
        assert_eq!(status.artifact.as_ref(), Some(&good), "{revision}");
        assert_eq!(manifests(&failed).await, good_manifests, "{revision}");
    }

    // A 404 is the producer not being ready yet: waiting, not failed.
    producer.publish_missing("b", "v6-missing").await;
    let waiting = h
        .until_failed("app", "SourceNotReady", Some("v6-missing"))
        .await;
    assert!(
        conditions::get(&waiting.status.as_ref().unwrap().conditions, types::STALLED).is_none()
    );
    assert_eq!(artifact(&waiting), good);
    let _ = producer.stop.send(());
    h.stop().await;
}
