//! `trigger::controller` against a real kube-apiserver: a change of intent reconciles, a change of
//! anything else (what a controller's own status write is) does not.

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

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
    runtime::{controller::Action, watcher},
};
use weir_runtime::trigger;
use weir_testenv::TestCluster;

async fn until_count(count: &AtomicUsize, wanted: usize, what: &str) {
    let start = Instant::now();
    while count.load(Ordering::SeqCst) < wanted {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: {} reconciles, wanted {wanted}",
            count.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn only_changes_of_intent_reconcile() {
    let cluster = TestCluster::shared().await.unwrap();
    let ns = cluster.namespace("trigger").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), &ns);
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("obj".into());
    cm.metadata.labels = Some(BTreeMap::from([("weir.dev/trigger".into(), ns.clone())]));
    cm.data = Some(BTreeMap::from([("k".into(), "0".into())]));
    api.create(&PostParams::default(), &cm).await.unwrap();

    let count = Arc::new(AtomicUsize::new(0));
    let config = watcher::Config::default().labels(&format!("weir.dev/trigger={ns}"));
    let controller = trigger::controller(api.clone(), config);
    let counted = count.clone();
    let task = tokio::spawn(async move {
        controller
            .run(
                move |_obj: Arc<ConfigMap>, counted: Arc<Arc<AtomicUsize>>| async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, kube::Error>(Action::await_change())
                },
                |_obj, _e: &kube::Error, _ctx| Action::await_change(),
                Arc::new(counted),
            )
            .for_each(|_| async {})
            .await;
    });

    // First sight reconciles.
    until_count(&count, 1, "first sight").await;
    // Data is neither spec-with-generation nor metadata: like a status write, it is ignored.
    for i in 1..=3 {
        api.patch(
            "obj",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "data": { "k": i.to_string() } })),
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "a status-like change reconciled"
    );

    // A reconcile request (annotation) does.
    api.patch(
        "obj",
        &PatchParams::default(),
        &Patch::Merge(weir_api::reconcile::request_patch("now")),
    )
    .await
    .unwrap();
    until_count(&count, 2, "requestedAt").await;
    // So does a new finalizer.
    api.patch(
        "obj",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "metadata": { "finalizers": ["weir.dev/test"] } })),
    )
    .await
    .unwrap();
    until_count(&count, 3, "finalizer").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(count.load(Ordering::SeqCst), 3, "one reconcile per change");

    api.patch(
        "obj",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "metadata": { "finalizers": null } })),
    )
    .await
    .unwrap();
    task.abort();
}
