//! The harness shared by `failures.rs` and `partial.rs`: an in-process apply-controller sharded
//! to the test's namespace, and a test-made producer kind (`Bucket`) with its own artifact server,
//! so a test publishes exactly the manifests (and digests) it needs.

#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::ConfigMap,
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

pub(crate) const SHARD_LABEL: &str = "weir.dev/test-shard";

/// The apply-controller, sharded to one test namespace, and a test-made producer.
pub(crate) struct Harness {
    pub(crate) cluster: TestCluster,
    pub(crate) client: Client,
    pub(crate) ns: String,
    pub(crate) applies: Api<Apply>,
    pub(crate) producer: TestProducer,
    pub(crate) apply: Option<weir_apply_controller::Running>,
}

impl Harness {
    pub(crate) async fn new(prefix: &str) -> Harness {
        Harness::with_config(prefix, |_| {}).await
    }

    pub(crate) async fn with_config(prefix: &str, tweak: impl FnOnce(&mut Config)) -> Harness {
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

    pub(crate) async fn stop(&mut self) {
        if let Some(a) = self.apply.take() {
            a.stop().await;
        }
        self.producer.stop();
    }

    pub(crate) fn labels(&self) -> Option<BTreeMap<String, String>> {
        Some(BTreeMap::from([(SHARD_LABEL.to_owned(), self.ns.clone())]))
    }

    /// Creates an Apply of bucket `bucket` (in `bucket_ns`, default this namespace), interval
    /// 1h, retry 2s, prune on, with extra `spec` fields.
    pub(crate) async fn apply_of(
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

    pub(crate) async fn apply(&self, name: &str, bucket: &str, spec: serde_json::Value) {
        self.apply_of(name, bucket, None, spec).await;
    }

    pub(crate) async fn patch_apply(&self, name: &str, patch: serde_json::Value) {
        self.applies
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    }

    /// Polls the Apply until `check` returns `Some`, failing with the last status after 90 s.
    pub(crate) async fn until<T>(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&Apply) -> Option<T>,
    ) -> T {
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

    pub(crate) async fn until_ready(&self, name: &str, revision: &str) -> Apply {
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
    pub(crate) async fn until_failed(
        &self,
        name: &str,
        reason: &str,
        revision: Option<&str>,
    ) -> Apply {
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

    pub(crate) fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub(crate) async fn config_map(&self, name: &str) -> Option<ConfigMap> {
        self.config_maps().get_opt(name).await.unwrap()
    }

    pub(crate) async fn color(&self, name: &str) -> Option<String> {
        self.config_map(name)
            .await
            .and_then(|c| c.data)
            .and_then(|d| d.get("color").cloned())
    }
}

/// A producer kind weir does not know, made by the test: a CRD whose objects carry a
/// `status.artifact` the test writes, served by the test's own artifact server.
pub(crate) struct TestProducer {
    pub(crate) api: Api<DynamicObject>,
    pub(crate) resource: ApiResource,
    pub(crate) client: Client,
    pub(crate) storage: Storage,
    pub(crate) base_url: String,
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestProducer {
    pub(crate) async fn start(cluster: &TestCluster, client: &Client, ns: &str) -> TestProducer {
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

    pub(crate) fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Publishes `files` as bucket `name`'s artifact at `revision`; `digest` overrides the
    /// published digest (to lie about it).
    pub(crate) async fn publish(
        &self,
        name: &str,
        revision: &str,
        files: &[(&str, &str)],
        digest: Option<&str>,
    ) {
        self.publish_in(None, name, revision, files, digest).await;
    }

    /// [`TestProducer::publish`] into namespace `ns` (default the harness's).
    pub(crate) async fn publish_in(
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

pub(crate) fn archive(files: &[(&str, &str)]) -> PackedArtifact {
    let mut b = ArchiveBuilder::new();
    for (path, content) in files {
        b.add_file(path, content.as_bytes().to_vec(), false)
            .unwrap();
    }
    b.finish().unwrap()
}

pub(crate) fn config_map(name: &str, color: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  color: {color}\n")
}

pub(crate) fn ready(obj: &Apply) -> (String, String) {
    let c = conditions::get(&obj.status.as_ref().unwrap().conditions, types::READY).unwrap();
    (c.reason.clone(), c.message.clone())
}

pub(crate) fn inventory_ids(obj: &Apply) -> Vec<String> {
    obj.status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .map(|i| i.entries.iter().map(|e| e.id.clone()).collect())
        .unwrap_or_default()
}

pub(crate) fn last_applied(obj: &Apply) -> (Option<String>, Option<String>) {
    let s = obj.status.as_ref().unwrap();
    (
        s.last_applied_revision.clone(),
        s.last_applied_digest.clone(),
    )
}
