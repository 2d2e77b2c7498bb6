//! The apply-controller's failure modes against a real kube-apiserver: bad input becomes a
//! condition naming the offending objects, nothing of the set is half-applied and nothing
//! applied before is lost.
//!
//! The source is a producer kind made by the test (a `Bucket` CRD whose `status.artifact` the
//! test writes, served by the test's own artifact server), so a test can publish exactly the
//! manifests it needs, and artifacts weir's own producers never publish (a lying digest).

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::{ConfigMap, Namespace, Service},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use weir_api::{
    Apply,
    conditions::{self, types},
};
use weir_apply_controller::Config;
use weir_artifact::{ArchiveBuilder, ArtifactKey, PackedArtifact, Retention, Storage};
use weir_testenv::TestCluster;

const SHARD_LABEL: &str = "weir.dev/test-shard";

/// The apply-controller, sharded to one test namespace, and a test-made producer.
struct Harness {
    cluster: TestCluster,
    client: Client,
    ns: String,
    applies: Api<Apply>,
    producer: TestProducer,
    apply: Option<weir_apply_controller::Running>,
}

impl Harness {
    async fn new(prefix: &str) -> Harness {
        Harness::with_config(prefix, |_| {}).await
    }

    async fn with_config(prefix: &str, tweak: impl FnOnce(&mut Config)) -> Harness {
        let cluster = TestCluster::shared().await.unwrap();
        cluster.install_crds(&weir_api::crds::all()).await.unwrap();
        let ns = cluster.namespace(prefix).await.unwrap();
        let client = cluster.client();
        let producer = TestProducer::start(&cluster, &client, &ns).await;
        let kubeconfig = Kubeconfig::read_from(cluster.kubeconfig_path()).unwrap();
        let kube_config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .unwrap();
        let mut config = Config {
            metrics_addr: "127.0.0.1:0".into(),
            health_addr: "127.0.0.1:0".into(),
            watch_label_selector: Some(format!("{SHARD_LABEL}={ns}")),
            ..Config::default()
        };
        tweak(&mut config);
        let apply = weir_apply_controller::start(kube_config, config)
            .await
            .unwrap();
        Harness {
            applies: Api::namespaced(client.clone(), &ns),
            cluster,
            client,
            ns,
            producer,
            apply: Some(apply),
        }
    }

    async fn stop(&mut self) {
        if let Some(a) = self.apply.take() {
            a.stop().await;
        }
        self.producer.stop();
    }

    fn labels(&self) -> Option<BTreeMap<String, String>> {
        Some(BTreeMap::from([(SHARD_LABEL.to_owned(), self.ns.clone())]))
    }

    /// Creates an Apply of bucket `bucket` (in `bucket_ns`, default this namespace), interval
    /// 1h, retry 2s, prune on, with extra `spec` fields.
    async fn apply_of(
        &self,
        name: &str,
        bucket: &str,
        bucket_ns: Option<&str>,
        spec: serde_json::Value,
    ) {
        let mut source = serde_json::json!({
            "apiVersion": "test.weir.dev/v1", "kind": "Bucket", "name": bucket,
        });
        if let Some(ns) = bucket_ns {
            source["namespace"] = ns.into();
        }
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

    async fn apply(&self, name: &str, bucket: &str, spec: serde_json::Value) {
        self.apply_of(name, bucket, None, spec).await;
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

    /// Waits for Ready=False with `reason` for the current generation, after an attempt at
    /// `revision` when one is given.
    async fn until_failed(&self, name: &str, reason: &str, revision: Option<&str>) -> Apply {
        self.until(name, &format!("Ready=False with reason {reason}"), |o| {
            let s = o.status.as_ref()?;
            let c = conditions::get(&s.conditions, types::READY)?;
            (c.status == "False"
                && c.reason == reason
                && s.observed_generation == o.metadata.generation
                && revision.is_none_or(|r| s.last_attempted_revision.as_deref() == Some(r)))
            .then(|| o.clone())
        })
        .await
    }

    fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    async fn config_map(&self, name: &str) -> Option<ConfigMap> {
        self.config_maps().get_opt(name).await.unwrap()
    }

    async fn color(&self, name: &str) -> Option<String> {
        self.config_map(name)
            .await
            .and_then(|c| c.data)
            .and_then(|d| d.get("color").cloned())
    }
}

/// A producer kind weir does not know, made by the test: a CRD whose objects carry a
/// `status.artifact` the test writes, served by the test's own artifact server.
struct TestProducer {
    api: Api<DynamicObject>,
    resource: ApiResource,
    client: Client,
    storage: Storage,
    base_url: String,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestProducer {
    async fn start(cluster: &TestCluster, client: &Client, ns: &str) -> TestProducer {
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
            api: Api::namespaced_with(client.clone(), ns, &resource),
            resource,
            client: client.clone(),
            storage,
            base_url,
            _dir: dir,
            stop: Some(stop),
        }
    }

    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Publishes `files` as bucket `name`'s artifact at `revision`; `digest` overrides the
    /// published digest (to lie about it).
    async fn publish(
        &self,
        name: &str,
        revision: &str,
        files: &[(&str, &str)],
        digest: Option<&str>,
    ) {
        self.publish_in(None, name, revision, files, digest).await;
    }

    /// [`TestProducer::publish`] into namespace `ns` (default the harness's).
    async fn publish_in(
        &self,
        ns: Option<&str>,
        name: &str,
        revision: &str,
        files: &[(&str, &str)],
        digest: Option<&str>,
    ) {
        let api = match ns {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &self.resource),
            None => self.api.clone(),
        };
        let packed = archive(files);
        let key = ArtifactKey::new("Bucket", "test", name).unwrap();
        let stored = self.storage.store(&key, &packed).unwrap();
        let artifact = serde_json::json!({
            "url": Storage::url(&self.base_url, &stored),
            "revision": revision,
            "digest": digest.unwrap_or(&stored.digest),
            "size": stored.size,
            "lastUpdateTime": "2026-01-01T00:00:00Z",
        });
        if api.get_opt(name).await.unwrap().is_none() {
            let obj = DynamicObject::new(name, &self.resource)
                .data(serde_json::json!({ "status": { "artifact": artifact } }));
            api.create(&PostParams::default(), &obj).await.unwrap();
        } else {
            api.patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "status": { "artifact": artifact } })),
            )
            .await
            .unwrap();
        }
    }
}

fn archive(files: &[(&str, &str)]) -> PackedArtifact {
    let mut b = ArchiveBuilder::new();
    for (path, content) in files {
        b.add_file(path, content.as_bytes().to_vec(), false)
            .unwrap();
    }
    b.finish().unwrap()
}

fn config_map(name: &str, color: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  color: {color}\n")
}

fn ready(obj: &Apply) -> (String, String) {
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

fn last_applied(obj: &Apply) -> (Option<String>, Option<String>) {
    let s = obj.status.as_ref().unwrap();
    (
        s.last_applied_revision.clone(),
        s.last_applied_digest.clone(),
    )
}

#[tokio::test]
async fn a_digest_mismatch_fails_the_fetch_and_keeps_what_was_applied() {
    let mut h = Harness::new("aplf-digest").await;
    let ns = h.ns.clone();
    h.producer
        .publish("b", "v1", &[("a.yaml", &config_map("a", "blue"))], None)
        .await;
    h.apply("app", "b", serde_json::json!({})).await;
    let good = h.until_ready("app", "v1").await;
    assert_eq!(inventory_ids(&good), vec![format!("{ns}_a__ConfigMap")]);
    let a_before = h.config_map("a").await.unwrap();

    // v2 holds only c (applying it would prune a), and its published digest is a lie.
    let lie = format!("sha256:{}", "a".repeat(64));
    h.producer
        .publish(
            "b",
            "v2",
            &[("c.yaml", &config_map("c", "red"))],
            Some(&lie),
        )
        .await;
    let failed = h
        .until_failed("app", "ArtifactFetchFailed", Some("v2"))
        .await;
    let (_, message) = ready(&failed);
    assert!(message.contains("digest"), "{message}");
    assert!(
        !conditions::is_true(&failed.status.as_ref().unwrap().conditions, types::STALLED),
        "a bad artifact is not Stalled: a new one may fix it"
    );
    assert_eq!(last_applied(&failed), last_applied(&good));
    assert_eq!(inventory_ids(&failed), vec![format!("{ns}_a__ConfigMap")]);
    assert_eq!(failed.status.as_ref().unwrap().history[0].revision, "v2");
    assert_eq!(
        failed.status.as_ref().unwrap().history[0].result,
        "ArtifactFetchFailed"
    );
    // Retries (every 2 s) change nothing either.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let a_after = h.config_map("a").await.expect("a is not pruned");
    assert_eq!(
        a_after.metadata.resource_version, a_before.metadata.resource_version,
        "a untouched"
    );
    assert!(h.config_map("c").await.is_none(), "nothing of v2 applied");
    let still = h.applies.get("app").await.unwrap();
    assert_eq!(inventory_ids(&still), vec![format!("{ns}_a__ConfigMap")]);

    // An honest artifact recovers.
    h.producer
        .publish("b", "v3", &[("c.yaml", &config_map("c", "red"))], None)
        .await;
    let recovered = h.until_ready("app", "v3").await;
    assert_eq!(
        inventory_ids(&recovered),
        vec![format!("{ns}_c__ConfigMap")]
    );
    assert_eq!(h.color("c").await.as_deref(), Some("red"));
    h.stop().await;
}

#[tokio::test]
async fn an_ownership_conflict_names_the_object_until_force_takes_the_fields() {
    let mut h = Harness::new("aplf-conflict").await;
    let ns = h.ns.clone();
    // Another server-side-apply manager owns data.color of `a`.
    let theirs: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "a" }, "data": { "color": "red" },
    }))
    .unwrap();
    h.config_maps()
        .patch(
            "a",
            &PatchParams::apply("other-tool"),
            &Patch::Apply(&theirs),
        )
        .await
        .unwrap();

    h.producer
        .publish(
            "b",
            "v1",
            &[
                ("a.yaml", &config_map("a", "blue")),
                ("z.yaml", &config_map("z", "blue")),
            ],
            None,
        )
        .await;
    h.apply("app", "b", serde_json::json!({})).await;
    let failed = h.until_failed("app", "Conflict", Some("v1")).await;
    let (_, message) = ready(&failed);
    assert!(message.contains(&format!("ConfigMap {ns}/a")), "{message}");
    assert!(message.contains("other-tool"), "{message}");
    assert!(
        !message.contains(&format!("ConfigMap {ns}/z")),
        "only the offending object is named: {message}"
    );
    let s = failed.status.as_ref().unwrap();
    assert_eq!(s.last_applied_revision, None);
    assert!(inventory_ids(&failed).is_empty());
    assert_eq!(h.color("a").await.as_deref(), Some("red"), "a untouched");
    assert!(
        h.config_map("z").await.is_none(),
        "nothing of the set applied"
    );

    // force: true takes the fields.
    h.patch_apply("app", serde_json::json!({ "spec": { "force": true } }))
        .await;
    let applied = h.until_ready("app", "v1").await;
    assert_eq!(
        inventory_ids(&applied),
        vec![format!("{ns}_a__ConfigMap"), format!("{ns}_z__ConfigMap")]
    );
    let a = h.config_map("a").await.unwrap();
    assert_eq!(a.data.as_ref().unwrap()["color"], "blue");
    let color_owners: Vec<String> = a
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.to_string().contains("f:color"))
        })
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(color_owners, vec!["weir-apply".to_owned()]);
    assert_eq!(h.color("z").await.as_deref(), Some("blue"));
    h.stop().await;
}

fn service(cluster_ip: Option<&str>, version: &str) -> String {
    let ip = cluster_ip
        .map(|ip| format!("  clusterIP: {ip}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels:\n    version: {version}\nspec:\n{ip}  selector:\n    app: web\n  ports:\n  - port: 80\n    targetPort: 8080\n"
    )
}

#[tokio::test]
async fn an_immutable_field_change_is_refused_until_force_recreates_the_object() {
    let mut h = Harness::new("aplf-immutable").await;
    let ns = h.ns.clone();
    let services: Api<Service> = Api::namespaced(h.client.clone(), &ns);
    h.producer
        .publish(
            "b",
            "v1",
            &[
                ("svc.yaml", &service(None, "v1")),
                ("a.yaml", &config_map("a", "blue")),
            ],
            None,
        )
        .await;
    h.apply("app", "b", serde_json::json!({})).await;
    let good = h.until_ready("app", "v1").await;
    let before = services.get("web").await.unwrap();
    let allocated = before.spec.as_ref().unwrap().cluster_ip.clone().unwrap();
    assert_ne!(allocated, "None");

    // v2 makes the Service headless: clusterIP may not change once set.
    h.producer
        .publish(
            "b",
            "v2",
            &[
                ("svc.yaml", &service(Some("None"), "v2")),
                ("a.yaml", &config_map("a", "red")),
            ],
            None,
        )
        .await;
    let failed = h.until_failed("app", "ImmutableField", Some("v2")).await;
    let (_, message) = ready(&failed);
    assert!(message.contains(&format!("Service {ns}/web")), "{message}");
    assert!(message.contains("force"), "{message}");
    assert_eq!(last_applied(&failed), last_applied(&good));
    assert_eq!(inventory_ids(&failed), inventory_ids(&good));
    let after = services.get("web").await.unwrap();
    assert_eq!(after.metadata.uid, before.metadata.uid, "not recreated");
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "old Service untouched"
    );
    assert_eq!(
        h.color("a").await.as_deref(),
        Some("blue"),
        "nothing of the set applied"
    );

    // force: true deletes and recreates the Service.
    h.patch_apply("app", serde_json::json!({ "spec": { "force": true } }))
        .await;
    let applied = h.until_ready("app", "v2").await;
    let recreated = services.get("web").await.unwrap();
    assert_ne!(recreated.metadata.uid, before.metadata.uid, "recreated");
    assert_eq!(
        recreated.spec.as_ref().unwrap().cluster_ip.as_deref(),
        Some("None")
    );
    assert_eq!(recreated.metadata.labels.as_ref().unwrap()["version"], "v2");
    assert_eq!(h.color("a").await.as_deref(), Some("red"));
    assert_eq!(inventory_ids(&applied), inventory_ids(&good));
    h.stop().await;
}

#[tokio::test]
async fn a_cross_namespace_source_is_access_denied_when_refused() {
    let mut h = Harness::with_config("aplf-xns", |c| c.no_cross_namespace_refs = true).await;
    let other = h.cluster.namespace("aplf-xns-other").await.unwrap();
    h.producer
        .publish_in(
            Some(&other),
            "b",
            "v1",
            &[("a.yaml", &config_map("a", "blue"))],
            None,
        )
        .await;
    h.apply_of("app", "b", Some(&other), serde_json::json!({}))
        .await;
    let denied = h.until_failed("app", "AccessDenied", None).await;
    let s = denied.status.as_ref().unwrap();
    let stalled = conditions::get(&s.conditions, types::STALLED).expect("Stalled condition");
    assert_eq!(stalled.status, "True");
    assert_eq!(stalled.reason, "AccessDenied");
    let (_, message) = ready(&denied);
    assert!(message.contains(&other), "{message}");
    assert_eq!(s.last_applied_revision, None);
    assert_eq!(s.last_attempted_revision, None, "the source is never read");
    assert!(h.config_map("a").await.is_none());

    // The same source in the Apply's own namespace is fine.
    h.producer
        .publish("b", "v1", &[("a.yaml", &config_map("a", "blue"))], None)
        .await;
    h.apply("local", "b", serde_json::json!({})).await;
    h.until_ready("local", "v1").await;
    h.stop().await;
}

#[tokio::test]
async fn a_missing_namespace_fails_the_whole_set_unless_the_set_creates_it() {
    let mut h = Harness::new("aplf-nsmiss").await;
    let ns = h.ns.clone();
    let missing = format!("{ns}-absent");
    let elsewhere = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  namespace: {missing}\ndata:\n  color: green\n"
    );
    h.producer
        .publish(
            "b",
            "v1",
            &[("a.yaml", &config_map("a", "blue")), ("b.yaml", &elsewhere)],
            None,
        )
        .await;
    h.apply("app", "b", serde_json::json!({})).await;
    let failed = h.until_failed("app", "ValidationFailed", Some("v1")).await;
    let (_, message) = ready(&failed);
    assert!(
        message.contains(&format!("ConfigMap {missing}/b")),
        "{message}"
    );
    assert!(
        !message.contains(&format!("ConfigMap {ns}/a")),
        "only the offending object is named: {message}"
    );
    let s = failed.status.as_ref().unwrap();
    assert_eq!(s.last_applied_revision, None);
    assert!(inventory_ids(&failed).is_empty());
    assert!(
        h.config_map("a").await.is_none(),
        "nothing of the set applied"
    );
    let namespaces: Api<Namespace> = Api::all(h.client.clone());
    assert!(namespaces.get_opt(&missing).await.unwrap().is_none());

    // With the Namespace in the set, it is created first and the set applies.
    let namespace = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {missing}\n");
    h.producer
        .publish(
            "b",
            "v2",
            &[
                ("a.yaml", &config_map("a", "blue")),
                ("b.yaml", &elsewhere),
                ("ns.yaml", &namespace),
            ],
            None,
        )
        .await;
    let applied = h.until_ready("app", "v2").await;
    assert_eq!(h.color("a").await.as_deref(), Some("blue"));
    let b = Api::<ConfigMap>::namespaced(h.client.clone(), &missing)
        .get("b")
        .await
        .unwrap();
    assert_eq!(b.data.unwrap()["color"], "green");
    assert_eq!(
        inventory_ids(&applied).len(),
        3,
        "{:?}",
        inventory_ids(&applied)
    );

    // Deleting the Apply cleans up, the Namespace last.
    h.applies
        .delete("app", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    let start = Instant::now();
    while h.applies.get_opt("app").await.unwrap().is_some() {
        assert!(start.elapsed() < Duration::from_secs(90), "app not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    h.stop().await;
}
