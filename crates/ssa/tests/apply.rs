//! The apply engine against a real kube-apiserver (and kube-controller-manager for status).

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    apps::v1::Deployment,
    batch::v1::Job,
    core::v1::{ConfigMap, Namespace, Service},
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams},
};
use weir_api::inventory::{InventoryEntry, ObjectId, ResourceInventory};
use weir_ssa::{
    Action, ApplyOptions, ApplyOutcome, Engine, Error, HealthStatus, OWNER_NAME_LABEL,
    OWNER_NAMESPACE_LABEL, ObjectRef, Owner, parse_manifests,
};
use weir_testenv::TestCluster;

/// A test's namespace, an admin client, and an engine whose client counts writes.
struct Harness {
    ns: String,
    admin: Client,
    engine: Engine,
    writes: Arc<AtomicUsize>,
}

impl Harness {
    async fn new(prefix: &str) -> Harness {
        let cluster = TestCluster::shared().await.unwrap();
        let ns = cluster.namespace(prefix).await.unwrap();
        let admin = cluster.client();
        let (counting, writes) = counting_client(admin.clone());
        let engine = Engine::new(counting, Owner::new(ns.clone(), "app"));
        Harness {
            ns,
            admin,
            engine,
            writes,
        }
    }

    async fn apply(&self, yaml: &str) -> Result<ApplyOutcome, Error> {
        self.apply_with(yaml, &ApplyOptions::default()).await
    }

    async fn apply_with(&self, yaml: &str, options: &ApplyOptions) -> Result<ApplyOutcome, Error> {
        let options = ApplyOptions {
            default_namespace: Some(self.ns.clone()),
            ..options.clone()
        };
        self.engine
            .apply(parse_manifests(yaml).unwrap(), &options)
            .await
    }

    fn configmaps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.admin.clone(), &self.ns)
    }

    fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
}

/// A client that counts every request that would change the cluster (not GETs, not dry-runs).
fn counting_client(client: Client) -> (Client, Arc<AtomicUsize>) {
    let writes = Arc::new(AtomicUsize::new(0));
    let counter = writes.clone();
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let is_write = request.method() != http::Method::GET
            && !request
                .uri()
                .query()
                .is_some_and(|q| q.contains("dryRun=All"));
        if is_write {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        let client = client.clone();
        async move { client.send(request).await }
    });
    (Client::new(service, "default"), writes)
}

fn configmap(name: &str, data: &str, annotations: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\ndata: {{{data}}}\n---\n"
    )
}

fn action(outcome: &ApplyOutcome, kind: &str, name: &str) -> Option<Action> {
    outcome
        .change_set
        .entries
        .iter()
        .find(|e| e.object.kind == kind && e.object.name == name)
        .map(|e| e.action)
}

fn unique_suffix(ns: &str) -> String {
    ns.rsplit('-').next().unwrap().to_owned()
}

/// CRD + a custom resource of it, a Namespace + objects in it, a ConfigMap, a Service and a
/// Deployment with no replicas, all in one set.
fn mixed_set(ns: &str, apps_ns: &str, group: &str, color: &str) -> String {
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  names: {{kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {{type: integer}}
---
apiVersion: {group}/v1
kind: Widget
metadata: {{name: w, namespace: {apps_ns}}}
spec: {{size: 3}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: {apps_ns}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {apps_ns}}}
data: {{color: {color}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: local, namespace: {ns}}}
data: {{a: "1"}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {apps_ns}}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {apps_ns}}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, image: "registry.invalid/web:1"}}]
"#
    )
}

#[tokio::test]
async fn mixed_set_is_created_then_unchanged_then_drift_is_corrected() {
    let h = Harness::new("ssa-mixed").await;
    let suffix = unique_suffix(&h.ns);
    let apps_ns = format!("{}-apps", h.ns);
    let group = format!("t{suffix}.example.com");
    let yaml = mixed_set(&h.ns, &apps_ns, &group, "blue");

    let first = h.apply(&yaml).await.unwrap();
    assert!(
        first
            .change_set
            .entries
            .iter()
            .all(|e| e.action == Action::Created),
        "{:?}",
        first.change_set
    );
    assert_eq!(first.change_set.entries.len(), 7);
    // Definitions first, in the documented order.
    let kinds: Vec<&str> = first
        .change_set
        .entries
        .iter()
        .map(|e| e.object.kind.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "CustomResourceDefinition",
            "Namespace",
            "ConfigMap",
            "ConfigMap",
            "Service",
            "Deployment",
            "Widget"
        ]
    );
    let ids: Vec<&str> = first
        .inventory
        .entries
        .iter()
        .map(|e| e.id.as_str())
        .collect();
    assert!(
        ids.contains(&format!("{apps_ns}_w_{group}_Widget").as_str()),
        "{ids:?}"
    );
    assert!(
        ids.contains(&format!("_{apps_ns}__Namespace").as_str()),
        "{ids:?}"
    );
    assert!(ids.contains(
        &format!("_widgets.{group}_apiextensions.k8s.io_CustomResourceDefinition").as_str()
    ));

    // Owner labels everywhere, written by weir-apply.
    let settings_api: Api<ConfigMap> = Api::namespaced(h.admin.clone(), &apps_ns);
    let settings = settings_api.get("settings").await.unwrap();
    assert_eq!(settings.labels()[OWNER_NAME_LABEL], "app");
    assert_eq!(settings.labels()[OWNER_NAMESPACE_LABEL], h.ns);
    assert!(
        settings
            .managed_fields()
            .iter()
            .any(|m| m.manager.as_deref() == Some("weir-apply"))
    );

    // Re-apply: nothing changes, nothing is written.
    let versions = resource_versions(&h, &apps_ns).await;
    let before = h.writes();
    let second = h.apply(&yaml).await.unwrap();
    assert!(
        second
            .change_set
            .entries
            .iter()
            .all(|e| e.action == Action::Unchanged),
        "{:?}",
        second.change_set
    );
    assert_eq!(h.writes(), before, "a no-op apply wrote to the cluster");
    assert_eq!(resource_versions(&h, &apps_ns).await, versions);
    assert_eq!(second.inventory, first.inventory);

    // Someone edits a field the set declares (an Update, as kubectl edit does): corrected.
    settings_api
        .patch(
            "settings",
            &PatchParams {
                field_manager: Some("kubectl-edit".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(serde_json::json!({"data": {"color": "red"}})),
        )
        .await
        .unwrap();
    let third = h.apply(&yaml).await.unwrap();
    assert_eq!(
        action(&third, "ConfigMap", "settings"),
        Some(Action::Configured)
    );
    assert_eq!(
        action(&third, "ConfigMap", "local"),
        Some(Action::Unchanged)
    );
    let settings = settings_api.get("settings").await.unwrap();
    assert_eq!(settings.data.unwrap()["color"], "blue");

    // Someone deletes an object: created again.
    let services: Api<Service> = Api::namespaced(h.admin.clone(), &apps_ns);
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    let fourth = h.apply(&yaml).await.unwrap();
    assert_eq!(action(&fourth, "Service", "web"), Some(Action::Created));
    assert_eq!(
        fourth.change_set.summary(),
        "1 created, 6 unchanged",
        "{:?}",
        fourth.change_set
    );

    // A change of the set itself.
    let fifth = h
        .apply(&mixed_set(&h.ns, &apps_ns, &group, "green"))
        .await
        .unwrap();
    assert_eq!(
        action(&fifth, "ConfigMap", "settings"),
        Some(Action::Configured)
    );
    assert_eq!(fifth.change_set.summary(), "1 configured, 6 unchanged");

    // Prune everything: the CR and the objects go before the namespace and the CRD.
    let pruned = h
        .engine
        .prune(&fifth.inventory, &ResourceInventory::default())
        .await
        .unwrap();
    assert!(pruned.entries.iter().all(|e| e.action == Action::Deleted));
    let order: Vec<&str> = pruned
        .entries
        .iter()
        .map(|e| e.object.kind.as_str())
        .collect();
    assert_eq!(order.last(), Some(&"CustomResourceDefinition"));
    assert_eq!(order[order.len() - 2], "Namespace");
    assert_eq!(order[0], "Widget");
    let crds: Api<CustomResourceDefinition> = Api::all(h.admin.clone());
    wait_gone(&crds, &format!("widgets.{group}")).await;
}

async fn resource_versions(h: &Harness, apps_ns: &str) -> BTreeMap<String, String> {
    let mut versions = BTreeMap::new();
    let cms: Api<ConfigMap> = Api::namespaced(h.admin.clone(), apps_ns);
    let deploys: Api<Deployment> = Api::namespaced(h.admin.clone(), apps_ns);
    let svcs: Api<Service> = Api::namespaced(h.admin.clone(), apps_ns);
    let nss: Api<Namespace> = Api::all(h.admin.clone());
    versions.insert(
        "cm".into(),
        cms.get("settings")
            .await
            .unwrap()
            .resource_version()
            .unwrap(),
    );
    versions.insert(
        "local".into(),
        h.configmaps()
            .get("local")
            .await
            .unwrap()
            .resource_version()
            .unwrap(),
    );
    versions.insert(
        "svc".into(),
        svcs.get("web").await.unwrap().resource_version().unwrap(),
    );
    // A Deployment's status changes under the controller-manager; its generation does not.
    versions.insert(
        "deploy".into(),
        deploys
            .get("web")
            .await
            .unwrap()
            .metadata
            .generation
            .unwrap()
            .to_string(),
    );
    versions.insert(
        "ns".into(),
        nss.get(apps_ns).await.unwrap().resource_version().unwrap(),
    );
    versions
}

async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.get_opt(name).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "{name} still present");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn prune_deletes_only_removed_objects_that_are_ours() {
    let h = Harness::new("ssa-prune").await;
    let all = [
        configmap("keep", "a: '1'", ""),
        configmap("gone", "a: '1'", ""),
        configmap("protected", "a: '1'", "apply.weir.dev/prune: disabled"),
    ]
    .concat();
    let first = h.apply(&all).await.unwrap();
    assert_eq!(first.inventory.entries.len(), 3);

    // An object someone else made, without our labels, that a stale inventory still names.
    h.configmaps()
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
            "metadata": {"name": "foreign"}, "data": {"a": "1"}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let mut old = first.inventory.clone();
    old.entries.push(InventoryEntry::new(
        &ObjectId {
            namespace: h.ns.clone(),
            name: "foreign".into(),
            group: String::new(),
            kind: "ConfigMap".into(),
        },
        "v1",
    ));
    // And one that is already gone.
    old.entries.push(InventoryEntry::new(
        &ObjectId {
            namespace: h.ns.clone(),
            name: "never-existed".into(),
            group: String::new(),
            kind: "ConfigMap".into(),
        },
        "v1",
    ));

    let second = h.apply(&configmap("keep", "a: '1'", "")).await.unwrap();
    let pruned = h.engine.prune(&old, &second.inventory).await.unwrap();
    let result: BTreeMap<String, Action> = pruned
        .entries
        .iter()
        .map(|e| (e.object.name.clone(), e.action))
        .collect();
    assert_eq!(
        result,
        BTreeMap::from([
            ("foreign".to_owned(), Action::Skipped),
            ("gone".to_owned(), Action::Deleted),
            ("protected".to_owned(), Action::Skipped),
        ])
    );
    let cms = h.configmaps();
    wait_gone(&cms, "gone").await;
    for name in ["keep", "protected", "foreign"] {
        assert!(
            cms.get_opt(name).await.unwrap().is_some(),
            "{name} was pruned"
        );
    }
}

#[tokio::test]
async fn unknown_kind_rejects_the_whole_set_before_any_write() {
    let h = Harness::new("ssa-unknown").await;
    let new_ns = format!("{}-x", h.ns);
    let yaml = format!(
        "{}apiVersion: v1\nkind: Namespace\nmetadata: {{name: {new_ns}}}\n---\napiVersion: example.invalid/v1\nkind: Frobnicator\nmetadata: {{name: f}}\n",
        configmap("cm", "a: '1'", "")
    );
    let err = h.apply(&yaml).await.unwrap_err();
    assert_eq!(err.category(), "UnknownKind", "{err}");
    assert!(
        err.to_string().contains("Frobnicator.example.invalid"),
        "{err}"
    );
    assert_eq!(h.writes(), 0);
    assert!(h.configmaps().get_opt("cm").await.unwrap().is_none());
    let nss: Api<Namespace> = Api::all(h.admin.clone());
    assert!(nss.get_opt(&new_ns).await.unwrap().is_none());
}

#[tokio::test]
async fn schema_invalid_and_namespace_missing_objects_are_named() {
    let h = Harness::new("ssa-invalid").await;
    let yaml = format!(
        "{}apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: broken}}\nspec:\n  replicas: \"x\"\n  selector: {{matchLabels: {{app: b}}}}\n  template:\n    metadata: {{labels: {{app: b}}}}\n    spec: {{containers: [{{name: c, image: i}}]}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: elsewhere, namespace: {}-missing}}\n",
        configmap("cm", "a: '1'", ""),
        h.ns
    );
    let err = h.apply(&yaml).await.unwrap_err();
    let errors = err.object_errors();
    assert_eq!(errors.len(), 2, "{err}");
    let by_name: BTreeMap<String, &str> = errors
        .iter()
        .map(|e| (e.object().unwrap().name.clone(), e.category()))
        .collect();
    assert_eq!(by_name["broken"], "ValidationFailed", "{err}");
    assert_eq!(by_name["elsewhere"], "NamespaceMissing", "{err}");
    assert!(
        err.to_string()
            .contains(&format!("Deployment.apps {}/broken", h.ns)),
        "{err}"
    );
    assert_eq!(h.writes(), 0);
    assert!(h.configmaps().get_opt("cm").await.unwrap().is_none());
}

fn job(image: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: once}}\nspec:\n  suspend: true\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{{name: c, image: \"{image}\"}}]\n"
    )
}

#[tokio::test]
async fn immutable_change_needs_force_and_force_recreates() {
    let h = Harness::new("ssa-immutable").await;
    let jobs: Api<Job> = Api::namespaced(h.admin.clone(), &h.ns);
    h.apply(&job("registry.invalid/a:1")).await.unwrap();
    let uid = jobs.get("once").await.unwrap().uid().unwrap();

    let before = h.writes();
    let err = h.apply(&job("registry.invalid/a:2")).await.unwrap_err();
    assert_eq!(err.category(), "ImmutableField", "{err}");
    assert!(err.to_string().contains("Job.batch"), "{err}");
    assert_eq!(h.writes(), before);

    let forced = h
        .apply_with(
            &job("registry.invalid/a:2"),
            &ApplyOptions {
                force: true,
                ..ApplyOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(action(&forced, "Job", "once"), Some(Action::Recreated));
    let live = jobs.get("once").await.unwrap();
    assert_ne!(live.uid().unwrap(), uid);
    let image = live.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("registry.invalid/a:2"));
}

#[tokio::test]
async fn service_cluster_ip_change_is_immutable_and_force_recreates() {
    let h = Harness::new("ssa-clusterip").await;
    let svc = |ip: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: s}}\nspec:\n  {ip}\n  selector: {{app: s}}\n  ports: [{{port: 80}}]\n"
        )
    };
    h.apply(&svc("")).await.unwrap();
    let err = h.apply(&svc("clusterIP: None")).await.unwrap_err();
    assert_eq!(err.category(), "ImmutableField", "{err}");
    assert!(err.to_string().contains("Service "), "{err}");
    let force = ApplyOptions {
        force: true,
        ..ApplyOptions::default()
    };
    let forced = h.apply_with(&svc("clusterIP: None"), &force).await.unwrap();
    assert_eq!(action(&forced, "Service", "s"), Some(Action::Recreated));
    let services: Api<Service> = Api::namespaced(h.admin.clone(), &h.ns);
    let ip = services.get("s").await.unwrap().spec.unwrap().cluster_ip;
    assert_eq!(ip.as_deref(), Some("None"));
}

#[tokio::test]
async fn conflict_with_another_apply_manager_needs_force() {
    let h = Harness::new("ssa-conflict").await;
    h.configmaps()
        .patch(
            "shared",
            &PatchParams::apply("other-tool"),
            &Patch::Apply(serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "shared"}, "data": {"k": "theirs"}})),
        )
        .await
        .unwrap();
    let yaml = configmap("shared", "k: ours", "");
    let err = h.apply(&yaml).await.unwrap_err();
    assert_eq!(err.category(), "Conflict", "{err}");
    match err.object_errors()[0] {
        Error::Conflict {
            managers, object, ..
        } => {
            assert_eq!(managers, &["other-tool"]);
            assert_eq!(object.name, "shared");
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        h.configmaps().get("shared").await.unwrap().data.unwrap()["k"],
        "theirs"
    );

    // ssa: Merge never forces, even with the force option.
    let merge = configmap("shared", "k: ours", "apply.weir.dev/ssa: Merge");
    let force = ApplyOptions {
        force: true,
        ..ApplyOptions::default()
    };
    assert_eq!(
        h.apply_with(&merge, &force).await.unwrap_err().category(),
        "Conflict"
    );

    let forced = h.apply_with(&yaml, &force).await.unwrap();
    assert_eq!(
        action(&forced, "ConfigMap", "shared"),
        Some(Action::Configured)
    );
    assert_eq!(
        h.configmaps().get("shared").await.unwrap().data.unwrap()["k"],
        "ours"
    );
}

#[tokio::test]
async fn if_not_present_ignore_and_reconcile_disabled_are_honoured() {
    let h = Harness::new("ssa-policies").await;
    let set = |value: &str| {
        [
            configmap(
                "once",
                &format!("k: '{value}'"),
                "apply.weir.dev/ssa: IfNotPresent",
            ),
            configmap(
                "ignored",
                &format!("k: '{value}'"),
                "apply.weir.dev/ssa: Ignore",
            ),
            configmap(
                "frozen",
                &format!("k: '{value}'"),
                "apply.weir.dev/reconcile: disabled",
            ),
        ]
        .concat()
    };
    let first = h.apply(&set("1")).await.unwrap();
    assert_eq!(action(&first, "ConfigMap", "once"), Some(Action::Created));
    assert_eq!(
        action(&first, "ConfigMap", "ignored"),
        Some(Action::Skipped)
    );
    assert_eq!(action(&first, "ConfigMap", "frozen"), Some(Action::Skipped));
    assert!(h.configmaps().get_opt("ignored").await.unwrap().is_none());
    // Skipped objects stay in the inventory, so they are never pruned for being skipped.
    assert_eq!(first.inventory.entries.len(), 3);

    let second = h.apply(&set("2")).await.unwrap();
    assert_eq!(action(&second, "ConfigMap", "once"), Some(Action::Skipped));
    assert_eq!(
        h.configmaps().get("once").await.unwrap().data.unwrap()["k"],
        "1"
    );
}

#[tokio::test]
async fn health_of_zero_replica_deployment_becomes_current_and_unbound_pvc_is_in_progress() {
    let h = Harness::new("ssa-health").await;
    let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: idle}\nspec:\n  replicas: 0\n  selector: {matchLabels: {app: idle}}\n  template:\n    metadata: {labels: {app: idle}}\n    spec: {containers: [{name: c, image: registry.invalid/idle:1}]}\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Mi}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n";
    let outcome = h.apply(yaml).await.unwrap();
    let objects: Vec<ObjectRef> = outcome
        .change_set
        .entries
        .iter()
        .map(|e| e.object.clone())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let verdicts = loop {
        let verdicts: BTreeMap<String, (HealthStatus, String)> = h
            .engine
            .check_health(&objects)
            .await
            .into_iter()
            .map(|(o, v)| (o.kind, (v.status, v.message)))
            .collect();
        if verdicts["Deployment"].0 == HealthStatus::Current {
            break verdicts;
        }
        assert!(Instant::now() < deadline, "{verdicts:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        verdicts["PersistentVolumeClaim"].0,
        HealthStatus::InProgress,
        "{verdicts:?}"
    );
    assert_eq!(verdicts["ConfigMap"].0, HealthStatus::Current);

    // A missing object is Unknown, not an error.
    let mut gone = objects[0].clone();
    gone.name = "nope".into();
    let v = h.engine.check_health(&[gone]).await;
    assert_eq!(v[0].1.status, HealthStatus::Unknown);
}

/// Keeps `DynamicObject` in the import list honest: the engine takes parsed objects.
#[test]
fn parsed_objects_are_dynamic_objects() {
    let objects: Vec<DynamicObject> = parse_manifests(&configmap("a", "", "")).unwrap();
    assert_eq!(objects[0].name_any(), "a");
}
