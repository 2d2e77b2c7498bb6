//! Health checks against real Pods: the apply-controller waits on Deployments whose Pods the
//! kube-scheduler places on a kwok fake node (Running and Ready without a kubelet), with the real
//! source-controller in-process as its producer (GitRepository → Apply, plain YAML).

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::{
    Api, Client,
    api::{ListParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use weir_api::{
    Apply, GitRepository,
    conditions::{self, types},
};
use weir_apply_controller::Config;
use weir_testenv::{TestCluster, git::Repo, kwok};

const SHARD_LABEL: &str = "weir.dev/test-shard";

struct Harness {
    client: Client,
    ns: String,
    applies: Api<Apply>,
    repos: Api<GitRepository>,
    _dir: tempfile::TempDir,
    source: Option<weir_source_controller::Running>,
    apply: Option<weir_apply_controller::Running>,
}

impl Harness {
    async fn new(prefix: &str) -> Harness {
        let cluster = TestCluster::shared().await.unwrap();
        kwok::shared(&cluster).await.unwrap();
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
            repos: Api::namespaced(client.clone(), &ns),
            client,
            ns,
            _dir: dir,
            source: Some(source),
            apply: Some(apply),
        }
    }

    async fn stop(&mut self) {
        if let Some(a) = self.apply.take() {
            a.stop().await;
        }
        if let Some(s) = self.source.take() {
            s.stop().await;
        }
    }

    fn labels(&self) -> Option<BTreeMap<String, String>> {
        Some(BTreeMap::from([(SHARD_LABEL.to_owned(), self.ns.clone())]))
    }

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

    /// Creates an Apply of GitRepository `repo` at `path` with `wait: true` and extra `spec`.
    async fn apply(&self, name: &str, repo: &str, path: &str, spec: serde_json::Value) {
        let mut full = serde_json::json!({
            "sourceRef": { "kind": "GitRepository", "name": repo },
            "path": path,
            "interval": "1h",
            "retryInterval": "2s",
            "timeout": "60s",
            "prune": true,
            "wait": true,
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

    async fn pods(&self) -> Vec<Pod> {
        Api::<Pod>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }
}

fn condition_status(obj: &Apply, kind: &str) -> Option<(String, String, String)> {
    let c = conditions::get(&obj.status.as_ref()?.conditions, kind)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn deployment(replicas: u32, node_selector: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      nodeSelector: {{{node_selector}}}
      containers:
      - name: web
        image: registry.invalid/web:1
"
    )
}

#[tokio::test]
async fn a_deployment_whose_pods_run_on_the_fake_node_becomes_healthy() {
    let mut h = Harness::new("apl-kwok-ok").await;
    let repo = Repo::new(&[("web/web.yaml", &deployment(2, "type: kwok"))]);
    h.git_repository("repo", &repo).await;
    h.apply("web", "repo", "web", serde_json::json!({})).await;
    let revision = format!("main@sha1:{}", repo.head());

    let ready = h
        .until("web", "Ready=True and Healthy=True", |o| {
            let s = o.status.as_ref()?;
            (conditions::is_true(&s.conditions, types::READY)
                && conditions::is_true(&s.conditions, types::HEALTHY)
                && s.last_applied_revision.as_deref() == Some(revision.as_str())
                && s.observed_generation == o.metadata.generation)
                .then(|| o.clone())
        })
        .await;
    assert!(!conditions::is_true(
        &ready.status.as_ref().unwrap().conditions,
        types::RECONCILING
    ));

    let deployment = Api::<Deployment>::namespaced(h.client.clone(), &h.ns)
        .get("web")
        .await
        .unwrap();
    let status = deployment.status.unwrap();
    assert_eq!(status.ready_replicas, Some(2));
    assert_eq!(status.available_replicas, Some(2));

    // The Pods really run on the fake node, Ready.
    let pods = h.pods().await;
    let running: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    assert_eq!(running.len(), 2, "{pods:#?}");
    for pod in running {
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some(kwok::NODE_NAME));
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(
            status
                .conditions
                .as_ref()
                .unwrap()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True"),
            "{status:#?}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn a_deployment_whose_pods_never_schedule_fails_its_health_check_after_the_timeout() {
    let mut h = Harness::new("apl-kwok-stuck").await;
    let repo = Repo::new(&[(
        "web/web.yaml",
        &deployment(1, "weir.dev/no-such-node: \"true\""),
    )]);
    h.git_repository("repo", &repo).await;
    h.apply("web", "repo", "web", serde_json::json!({ "timeout": "8s" }))
        .await;
    let revision = format!("main@sha1:{}", repo.head());

    // Applied, then waiting: Healthy=Unknown while Reconciling.
    let waiting = h
        .until("web", "Healthy=Unknown", |o| {
            let (status, _, _) = condition_status(o, types::HEALTHY)?;
            (status == "Unknown").then(|| o.clone())
        })
        .await;
    assert!(conditions::is_true(
        &waiting.status.as_ref().unwrap().conditions,
        types::RECONCILING
    ));

    // The Pod (created by the real controller-manager, which may lag under load) stays
    // Pending, unscheduled.
    let created = Instant::now();
    let pods = loop {
        let pods = h.pods().await;
        if !pods.is_empty() {
            break pods;
        }
        assert!(
            created.elapsed() < Duration::from_secs(30),
            "the controller-manager created no Pod for the Deployment"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for pod in &pods {
        assert_eq!(pod.spec.as_ref().unwrap().node_name, None, "{pod:#?}");
        assert_eq!(
            pod.status.as_ref().unwrap().phase.as_deref(),
            Some("Pending")
        );
    }

    let failed = h
        .until("web", "Ready=False with HealthCheckFailed", |o| {
            let (status, reason, _) = condition_status(o, types::READY)?;
            (status == "False"
                && reason == "HealthCheckFailed"
                && o.status.as_ref()?.observed_generation == o.metadata.generation)
                .then(|| o.clone())
        })
        .await;
    let (status, _, _) = condition_status(&failed, types::HEALTHY).unwrap();
    assert_eq!(status, "False");
    let (_, _, message) = condition_status(&failed, types::READY).unwrap();
    assert!(message.contains("Deployment.apps"), "{message}");
    assert_eq!(
        failed
            .status
            .as_ref()
            .unwrap()
            .last_applied_revision
            .as_deref(),
        Some(revision.as_str())
    );
    h.stop().await;
}
