//! The apply-controller's failure modes against a real kube-apiserver: bad input becomes a
//! condition naming the offending objects, nothing of the set is half-applied and nothing
//! applied before is lost.
//!
//! The source is a producer kind made by the test (a `Bucket` CRD whose `status.artifact` the
//! test writes, served by the test's own artifact server), so a test can publish exactly the
//! manifests it needs, and artifacts weir's own producers never publish (a lying digest).

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use weir_api::conditions::{self, types};

mod support;
use support::*;

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
