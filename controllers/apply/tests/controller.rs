//! The apply-controller against a real kube-apiserver (with kube-controller-manager), with the
//! real source- and render-controllers in-process as its producers: GitRepository → Render →
//! Apply, or GitRepository → Apply for plain YAML.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, ServiceAccount},
    rbac::v1::{Role, RoleBinding},
};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use weir_api::{
    Apply, GitRepository, Render,
    conditions::{self, types},
    reconcile::request_patch,
};
use weir_apply_controller::Config;
use weir_testenv::{TestCluster, git::Repo};

const SHARD_LABEL: &str = "weir.dev/test-shard";

struct Harness {
    cluster: TestCluster,
    client: Client,
    ns: String,
    applies: Api<Apply>,
    renders: Api<Render>,
    repos: Api<GitRepository>,
    _dir: tempfile::TempDir,
    source: Option<weir_source_controller::Running>,
    render: Option<weir_render_controller::Running>,
    apply: Option<weir_apply_controller::Running>,
}

impl Harness {
    async fn new(prefix: &str) -> Harness {
        let cluster = TestCluster::shared().await.unwrap();
        cluster.install_crds(&weir_api::crds::all()).await.unwrap();
        let ns = cluster.namespace(prefix).await.unwrap();
        let client = cluster.client();
        let dir = tempfile::tempdir().unwrap();
        let selector = format!("{SHARD_LABEL}={ns}");
        let source = weir_source_controller::start(
            client.clone(),
            weir_source_controller::Config {
                storage_path: dir.path().join("source"),
                storage_addr: "127.0.0.1:0".into(),
                metrics_addr: "127.0.0.1:0".into(),
                health_addr: "127.0.0.1:0".into(),
                watch_label_selector: Some(selector.clone()),
                default_timeout: Duration::from_secs(20),
                ..weir_source_controller::Config::default()
            },
        )
        .await
        .unwrap();
        let render = weir_render_controller::start(
            client.clone(),
            weir_render_controller::Config {
                storage_path: dir.path().join("render"),
                storage_addr: "127.0.0.1:0".into(),
                metrics_addr: "127.0.0.1:0".into(),
                health_addr: "127.0.0.1:0".into(),
                watch_label_selector: Some(selector.clone()),
                ..weir_render_controller::Config::default()
            },
        )
        .await
        .unwrap();
        let kubeconfig = Kubeconfig::read_from(cluster.kubeconfig_path()).unwrap();
        let kube_config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .unwrap();
        let apply = weir_apply_controller::start(
            kube_config,
            Config {
                metrics_addr: "127.0.0.1:0".into(),
                health_addr: "127.0.0.1:0".into(),
                watch_label_selector: Some(selector),
                ..Config::default()
            },
        )
        .await
        .unwrap();
        Harness {
            applies: Api::namespaced(client.clone(), &ns),
            renders: Api::namespaced(client.clone(), &ns),
            repos: Api::namespaced(client.clone(), &ns),
            cluster,
            client,
            ns,
            _dir: dir,
            source: Some(source),
            render: Some(render),
            apply: Some(apply),
        }
    }

    async fn stop(&mut self) {
        if let Some(a) = self.apply.take() {
            a.stop().await;
        }
        if let Some(r) = self.render.take() {
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

    /// Creates a Render of GitRepository `repo` at `path` (interval 1h).
    async fn render(&self, name: &str, repo: &str, path: &str) {
        let spec = serde_json::json!({
            "sourceRef": { "kind": "GitRepository", "name": repo },
            "path": path, "interval": "1h", "timeout": "30s",
        });
        let mut obj = Render::new(name, serde_json::from_value(spec).unwrap());
        obj.metadata.labels = self.labels();
        self.renders
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }

    /// Creates an Apply of `source` (`{kind, name}`), interval 1h, prune on, with extra `spec`
    /// fields.
    async fn apply(&self, name: &str, source: serde_json::Value, spec: serde_json::Value) {
        let mut full = serde_json::json!({
            "sourceRef": source,
            "interval": "1h",
            "retryInterval": "2s",
            "timeout": "30s",
            "prune": true,
            "targetNamespace": self.ns,
        });
        full.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        let mut obj = Apply::new(name, serde_json::from_value(full).unwrap());
        obj.metadata.labels = self.labels();
        self.applies
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }

    async fn patch_apply(&self, name: &str, patch: serde_json::Value) {
        self.applies
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    }

    /// Polls the Apply until `check` returns `Some`, failing with the last status after 90 s.
    async fn until<T>(&self, name: &str, what: &str, check: impl Fn(&Apply) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            let obj = self.applies.get_opt(name).await.unwrap();
            if let Some(v) = obj.as_ref().and_then(&check) {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "timed out waiting for {what}; status: {:#?}",
                obj.and_then(|o| o.status)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn until_ready(&self, name: &str, revision: &str) -> Apply {
        self.until(name, &format!("Ready at {revision}"), |o| {
            let s = o.status.as_ref()?;
            (conditions::is_true(&s.conditions, types::READY)
                && s.last_applied_revision.as_deref() == Some(revision)
                && s.observed_generation == o.metadata.generation)
                .then(|| o.clone())
        })
        .await
    }

    /// Waits for Ready=False with `reason` for the current generation.
    async fn until_failed(&self, name: &str, reason: &str) -> Apply {
        self.until(name, &format!("Ready=False with reason {reason}"), |o| {
            let s = o.status.as_ref()?;
            let c = conditions::get(&s.conditions, types::READY)?;
            (c.status == "False"
                && c.reason == reason
                && s.observed_generation == o.metadata.generation)
                .then(|| o.clone())
        })
        .await
    }

    async fn until_gone(&self, name: &str) {
        let start = Instant::now();
        while self.applies.get_opt(name).await.unwrap().is_some() {
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "Apply {name} still exists"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    async fn config_map(&self, name: &str) -> Option<ConfigMap> {
        self.config_maps().get_opt(name).await.unwrap()
    }

    /// Event reasons and notes in the test namespace.
    async fn events(&self) -> Vec<(String, String)> {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), &self.ns);
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect()
    }
}

fn config_map(name: &str, color: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  color: {color}\n")
}

fn ready_reason(obj: &Apply) -> (String, String) {
    let c = conditions::get(&obj.status.as_ref().unwrap().conditions, types::READY).unwrap();
    (c.reason.clone(), c.message.clone())
}

fn inventory_ids(obj: &Apply) -> Vec<String> {
    obj.status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .map(|i| i.entries.iter().map(|e| e.id.clone()).collect())
        .unwrap_or_default()
}

fn git_source(name: &str) -> serde_json::Value {
    serde_json::json!({ "kind": "GitRepository", "name": name })
}

fn render_source(name: &str) -> serde_json::Value {
    serde_json::json!({ "kind": "Render", "name": name })
}

#[tokio::test]
async fn applies_a_rendered_source_follows_changes_prunes_and_survives_a_broken_commit() {
    let mut h = Harness::new("apl-chain").await;
    let repo = Repo::new(&[
        (
            "deploy/kustomization.yaml",
            "resources:\n- a.yaml\n- b.yaml\n",
        ),
        ("deploy/a.yaml", &config_map("a", "blue")),
        ("deploy/b.yaml", &config_map("b", "green")),
    ]);
    h.git_repository("repo", &repo).await;
    h.render("rendered", "repo", "./deploy").await;
    h.apply("app", render_source("rendered"), serde_json::json!({}))
        .await;

    let first = format!("main@sha1:{}", repo.head());
    let applied = h.until_ready("app", &first).await;
    let ns = &h.ns;
    assert_eq!(
        inventory_ids(&applied),
        vec![format!("{ns}_a__ConfigMap"), format!("{ns}_b__ConfigMap")]
    );
    let status = applied.status.as_ref().unwrap();
    assert_eq!(
        status.last_attempted_revision.as_deref(),
        Some(first.as_str())
    );
    assert!(
        status
            .last_applied_digest
            .as_deref()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(status.history[0].result, "Succeeded");
    assert_eq!(status.history[0].revision, first);
    assert_eq!(ready_reason(&applied).0, "ApplySucceeded");
    assert!(conditions::get(&status.conditions, types::HEALTHY).is_none());
    let a = h.config_map("a").await.unwrap();
    let labels = a.metadata.labels.clone().unwrap();
    assert_eq!(labels["apply.weir.dev/name"], "app");
    assert_eq!(labels["apply.weir.dev/namespace"], *ns);
    assert_eq!(a.data.unwrap()["color"], "blue");
    assert!(
        a.metadata
            .managed_fields
            .unwrap()
            .iter()
            .any(|m| m.manager.as_deref() == Some("weir-apply")),
        "written with field manager weir-apply"
    );
    let events = h.events().await;
    assert!(
        events
            .iter()
            .any(|(r, n)| r == "ApplySucceeded" && n.contains("2 created")),
        "{events:?}"
    );

    // A change is applied (configured).
    repo.commit(&[("deploy/a.yaml", &config_map("a", "red"))], "red");
    h.refresh_source("repo", "1").await;
    let second = format!("main@sha1:{}", repo.head());
    h.until_ready("app", &second).await;
    assert_eq!(
        h.config_map("a").await.unwrap().data.unwrap()["color"],
        "red"
    );
    let events = h.events().await;
    assert!(
        events
            .iter()
            .any(|(r, n)| r == "ApplySucceeded" && n.contains("1 configured")),
        "{events:?}"
    );

    // A removed file is pruned.
    std::fs::remove_file(repo.work.join("deploy/b.yaml")).unwrap();
    repo.commit(
        &[("deploy/kustomization.yaml", "resources:\n- a.yaml\n")],
        "drop b",
    );
    h.refresh_source("repo", "2").await;
    let third = format!("main@sha1:{}", repo.head());
    let pruned = h.until_ready("app", &third).await;
    assert_eq!(inventory_ids(&pruned), vec![format!("{ns}_a__ConfigMap")]);
    let start = Instant::now();
    while h.config_map("b").await.is_some() {
        assert!(start.elapsed() < Duration::from_secs(30), "b not pruned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let history = &pruned.status.as_ref().unwrap().history;
    assert_eq!(
        history
            .iter()
            .map(|e| e.revision.clone())
            .collect::<Vec<_>>(),
        vec![third.clone(), second.clone(), first.clone()]
    );

    // A broken commit fails the Render; the Apply keeps its objects and its revision.
    repo.commit(
        &[(
            "deploy/kustomization.yaml",
            "resources:\n- a.yaml\n- missing.yaml\n",
        )],
        "broken",
    );
    h.refresh_source("repo", "3").await;
    let broken = format!("main@sha1:{}", repo.head());
    let start = Instant::now();
    loop {
        let render = h.renders.get("rendered").await.unwrap();
        let s = render.status.unwrap();
        let c = conditions::get(&s.conditions, types::READY).unwrap();
        if c.status == "False" && s.last_attempted_revision.as_deref() == Some(broken.as_str()) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "render never failed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let kept = h.applies.get("app").await.unwrap();
    let s = kept.status.as_ref().unwrap();
    assert!(conditions::is_true(&s.conditions, types::READY));
    assert_eq!(s.last_applied_revision.as_deref(), Some(third.as_str()));
    assert_eq!(inventory_ids(&kept), vec![format!("{ns}_a__ConfigMap")]);
    assert_eq!(
        h.config_map("a").await.unwrap().data.unwrap()["color"],
        "red"
    );
    h.stop().await;
}

#[tokio::test]
async fn plain_yaml_from_git_with_prune_off_keeps_removed_objects() {
    let mut h = Harness::new("apl-noprune").await;
    let repo = Repo::new(&[
        ("apps/a.yaml", &config_map("a", "blue")),
        ("apps/b.yaml", &config_map("b", "green")),
        ("README.md", "not applied\n"),
    ]);
    h.git_repository("repo", &repo).await;
    h.apply(
        "app",
        git_source("repo"),
        serde_json::json!({ "path": "./apps", "prune": false }),
    )
    .await;
    let first = format!("main@sha1:{}", repo.head());
    h.until_ready("app", &first).await;
    assert!(h.config_map("b").await.is_some());

    std::fs::remove_file(repo.work.join("apps/b.yaml")).unwrap();
    repo.commit(&[], "drop b");
    h.refresh_source("repo", "1").await;
    let second = format!("main@sha1:{}", repo.head());
    let applied = h.until_ready("app", &second).await;
    assert_eq!(
        inventory_ids(&applied),
        vec![format!("{}_a__ConfigMap", h.ns)]
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(h.config_map("b").await.is_some(), "prune: false keeps b");

    // Drift: an edit by another writer is corrected on the next apply (here asked for at once;
    // otherwise at the interval).
    h.config_maps()
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "data": { "color": "hacked" } })),
        )
        .await
        .unwrap();
    h.applies
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(request_patch("drift")),
        )
        .await
        .unwrap();
    h.until("app", "the request handled", |o| {
        (o.status.as_ref()?.last_handled_reconcile_at.as_deref() == Some("drift")).then_some(())
    })
    .await;
    assert_eq!(
        h.config_map("a").await.unwrap().data.unwrap()["color"],
        "blue"
    );
    h.stop().await;
}

#[tokio::test]
async fn bad_manifests_and_missing_sources_are_conditions() {
    let mut h = Harness::new("apl-bad").await;
    let repo = Repo::new(&[
        ("apps/a.yaml", &config_map("a", "blue")),
        (
            "apps/widget.yaml",
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n",
        ),
    ]);
    h.git_repository("repo", &repo).await;
    h.apply(
        "bad",
        git_source("repo"),
        serde_json::json!({ "path": "apps" }),
    )
    .await;
    let failed = h.until_failed("bad", "ValidationFailed").await;
    let (_, message) = ready_reason(&failed);
    assert!(message.contains("Widget.example.com"), "{message}");
    assert!(message.contains("unknown kind"), "{message}");
    let s = failed.status.as_ref().unwrap();
    assert_eq!(
        s.last_attempted_revision.as_deref(),
        Some(format!("main@sha1:{}", repo.head()).as_str())
    );
    assert_eq!(s.last_applied_revision, None);
    assert_eq!(s.history[0].result, "ValidationFailed");
    assert!(h.config_map("a").await.is_none(), "nothing is applied");

    // A source that does not exist is waiting, not stalled.
    h.apply("orphan", render_source("nowhere"), serde_json::json!({}))
        .await;
    let waiting = h.until_failed("orphan", "SourceNotReady").await;
    let s = waiting.status.as_ref().unwrap();
    assert!(!conditions::is_true(&s.conditions, types::STALLED));
    assert!(ready_reason(&waiting).1.contains("not found"));
    h.stop().await;
}

#[tokio::test]
async fn depends_on_waits_for_the_dependency_to_be_ready() {
    let mut h = Harness::new("apl-deps").await;
    let base = Repo::new(&[("a.yaml", &config_map("base", "blue"))]);
    let app = Repo::new(&[("a.yaml", &config_map("app", "green"))]);
    h.git_repository("app-repo", &app).await;
    h.apply("base", git_source("base-repo"), serde_json::json!({}))
        .await;
    h.apply(
        "app",
        git_source("app-repo"),
        serde_json::json!({ "dependsOn": [{ "name": "base" }] }),
    )
    .await;
    let waiting = h.until_failed("app", "DependencyNotReady").await;
    assert!(
        ready_reason(&waiting).1.contains("base"),
        "{:?}",
        ready_reason(&waiting)
    );
    assert!(h.config_map("app").await.is_none());

    // The dependency's source appears: base becomes Ready, then app proceeds.
    h.git_repository("base-repo", &base).await;
    h.until_ready("base", &format!("main@sha1:{}", base.head()))
        .await;
    h.until_ready("app", &format!("main@sha1:{}", app.head()))
        .await;
    assert!(h.config_map("app").await.is_some());
    h.stop().await;
}

#[tokio::test]
async fn a_suspended_apply_changes_nothing() {
    let mut h = Harness::new("apl-suspend").await;
    let repo = Repo::new(&[("a.yaml", &config_map("a", "blue"))]);
    h.git_repository("repo", &repo).await;
    h.apply("app", git_source("repo"), serde_json::json!({}))
        .await;
    let first = format!("main@sha1:{}", repo.head());
    h.until_ready("app", &first).await;

    h.patch_apply("app", serde_json::json!({ "spec": { "suspend": true } }))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    repo.commit(&[("a.yaml", &config_map("a", "red"))], "red");
    h.refresh_source("repo", "1").await;
    let second = format!("main@sha1:{}", repo.head());
    let start = Instant::now();
    loop {
        let source = h.repos.get("repo").await.unwrap();
        let revision = source.status.and_then(|s| s.artifact).map(|a| a.revision);
        if revision.as_deref() == Some(second.as_str()) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no new source artifact"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let suspended = h.applies.get("app").await.unwrap();
    assert_eq!(
        suspended.status.unwrap().last_applied_revision.as_deref(),
        Some(first.as_str())
    );
    assert_eq!(
        h.config_map("a").await.unwrap().data.unwrap()["color"],
        "blue"
    );

    h.patch_apply("app", serde_json::json!({ "spec": { "suspend": false } }))
        .await;
    h.until_ready("app", &second).await;
    assert_eq!(
        h.config_map("a").await.unwrap().data.unwrap()["color"],
        "red"
    );
    h.stop().await;
}

#[tokio::test]
async fn deletion_deletes_or_orphans_the_applied_objects() {
    let mut h = Harness::new("apl-delete").await;
    let repo = Repo::new(&[
        ("del/a.yaml", &config_map("deleted", "blue")),
        ("orphan/a.yaml", &config_map("orphaned", "blue")),
    ]);
    h.git_repository("repo", &repo).await;
    h.apply(
        "del",
        git_source("repo"),
        serde_json::json!({ "path": "del" }),
    )
    .await;
    h.apply(
        "orphan",
        git_source("repo"),
        serde_json::json!({ "path": "orphan", "deletionPolicy": "Orphan" }),
    )
    .await;
    let revision = format!("main@sha1:{}", repo.head());
    h.until_ready("del", &revision).await;
    h.until_ready("orphan", &revision).await;

    for name in ["del", "orphan"] {
        h.applies
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    h.until_gone("del").await;
    h.until_gone("orphan").await;
    let start = Instant::now();
    while h.config_map("deleted").await.is_some() {
        assert!(start.elapsed() < Duration::from_secs(30), "not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        h.config_map("orphaned").await.is_some(),
        "Orphan keeps objects"
    );
    h.stop().await;
}

#[tokio::test]
async fn impersonation_is_bound_by_the_service_accounts_rbac() {
    let mut h = Harness::new("apl-rbac").await;
    let other = h.cluster.namespace("apl-rbac-other").await.unwrap();
    let ns = h.ns.clone();
    // A ServiceAccount that may manage ConfigMaps in its own namespace only.
    let sa: ServiceAccount = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "deployer" }
    }))
    .unwrap();
    Api::<ServiceAccount>::namespaced(h.client.clone(), &ns)
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    let role: Role = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "deployer" },
        "rules": [{ "apiGroups": [""], "resources": ["configmaps"],
                    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"] }]
    }))
    .unwrap();
    Api::<Role>::namespaced(h.client.clone(), &ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "deployer" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer" },
        "subjects": [{ "kind": "ServiceAccount", "name": "deployer", "namespace": ns }]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(h.client.clone(), &ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    let repo = Repo::new(&[("a.yaml", &config_map("mine", "blue"))]);
    h.git_repository("repo", &repo).await;
    h.apply(
        "app",
        git_source("repo"),
        serde_json::json!({ "serviceAccountName": "deployer" }),
    )
    .await;
    h.until_ready("app", &format!("main@sha1:{}", repo.head()))
        .await;
    assert!(h.config_map("mine").await.is_some());

    // An object in another namespace is forbidden to the account: nothing of the set is written.
    repo.commit(
        &[
            ("a.yaml", &config_map("mine", "red")),
            (
                "b.yaml",
                &format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: theirs\n  namespace: {other}\ndata:\n  color: red\n"
                ),
            ),
        ],
        "reach out",
    );
    h.refresh_source("repo", "1").await;
    let failed = h.until_failed("app", "Forbidden").await;
    let (_, message) = ready_reason(&failed);
    assert!(
        message.contains(&format!("ConfigMap {other}/theirs")),
        "{message}"
    );
    assert!(
        message.contains(&format!("system:serviceaccount:{ns}:deployer")),
        "{message}"
    );
    assert_eq!(
        h.config_map("mine").await.unwrap().data.unwrap()["color"],
        "blue"
    );
    assert!(
        Api::<ConfigMap>::namespaced(h.client.clone(), &other)
            .get_opt("theirs")
            .await
            .unwrap()
            .is_none()
    );
    h.stop().await;
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: REPLICAS
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      nodeSelector: {weir.dev/no-such-node: \"true\"}
      containers:
      - name: web
        image: registry.invalid/web:1
";

#[tokio::test]
async fn wait_reports_health_from_the_controller_manager() {
    let mut h = Harness::new("apl-health").await;
    let repo = Repo::new(&[
        ("idle/web.yaml", &DEPLOYMENT.replace("REPLICAS", "0")),
        ("busy/web.yaml", &DEPLOYMENT.replace("REPLICAS", "1")),
    ]);
    h.git_repository("repo", &repo).await;
    // The kube-controller-manager rolls out a Deployment of zero replicas: healthy.
    h.apply(
        "idle",
        git_source("repo"),
        serde_json::json!({ "path": "idle", "wait": true }),
    )
    .await;
    let revision = format!("main@sha1:{}", repo.head());
    let healthy = h.until_ready("idle", &revision).await;
    let s = healthy.status.as_ref().unwrap();
    let c = conditions::get(&s.conditions, types::HEALTHY).unwrap();
    assert_eq!(c.status, "True");
    let deployment = Api::<Deployment>::namespaced(h.client.clone(), &h.ns)
        .get("web")
        .await
        .unwrap();
    assert_eq!(
        deployment.status.unwrap().observed_generation,
        deployment.metadata.generation
    );
    h.stop().await;

    // One replica never becomes available (no node matches, even when another test registered a
    // kwok node in the shared cluster): HealthCheckFailed after the timeout.
    let mut h = Harness::new("apl-unhealthy").await;
    h.git_repository("repo", &repo).await;
    h.apply(
        "busy",
        git_source("repo"),
        serde_json::json!({ "path": "busy", "wait": true, "timeout": "6s" }),
    )
    .await;
    let progressing = h
        .until("busy", "Healthy=Unknown", |o| {
            let s = o.status.as_ref()?;
            let c = conditions::get(&s.conditions, types::HEALTHY)?;
            (c.status == "Unknown").then(|| o.clone())
        })
        .await;
    assert!(conditions::is_true(
        &progressing.status.as_ref().unwrap().conditions,
        types::RECONCILING
    ));
    let failed = h.until_failed("busy", "HealthCheckFailed").await;
    let s = failed.status.as_ref().unwrap();
    assert_eq!(
        conditions::get(&s.conditions, types::HEALTHY)
            .unwrap()
            .status,
        "False"
    );
    assert!(
        ready_reason(&failed).1.contains("Deployment.apps"),
        "{:?}",
        ready_reason(&failed)
    );
    assert_eq!(s.last_applied_revision.as_deref(), Some(revision.as_str()));
    h.stop().await;
}
