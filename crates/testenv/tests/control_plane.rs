//! The control plane is the real thing: the right version, controllers that act, a scheduler that
//! schedules, RBAC that denies, and processes that go away when the plane is dropped.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    core::v1::{Pod, ServiceAccount},
};
use kube::{
    Api, Client,
    api::{ListParams, PostParams},
};
use weir_testenv::{ControlPlane, ControlPlaneOptions, TestCluster, binaries::KUBERNETES_VERSION};

async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": "registry.invalid/app:1" }] },
            },
        },
    }))
    .unwrap()
}

#[tokio::test]
async fn apiserver_reports_the_pinned_version() {
    let cluster = TestCluster::shared().await.unwrap();
    let version = cluster.client().apiserver_version().await.unwrap();
    assert_eq!(version.git_version, KUBERNETES_VERSION);
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "35")
    );
}

#[tokio::test]
async fn controller_manager_reconciles_deployments_and_collects_garbage() {
    let cluster = TestCluster::shared().await.unwrap();
    let ns = cluster.namespace("kcm").await.unwrap();
    let client = cluster.client();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    deployments
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();

    // The deployment controller creates a ReplicaSet and reports status.
    eventually(
        "a ReplicaSet owned by the Deployment",
        Duration::from_secs(60),
        || async {
            let list = replicasets.list(&ListParams::default()).await.ok()?;
            (!list.items.is_empty()).then_some(())
        },
    )
    .await;
    eventually(
        "Deployment status from the controller",
        Duration::from_secs(60),
        || async {
            let d = deployments.get("web").await.ok()?;
            (d.status?.observed_generation == Some(1)).then_some(())
        },
    )
    .await;

    // Deleting the owner lets the garbage collector remove the dependents.
    deployments
        .delete("web", &Default::default())
        .await
        .unwrap();
    eventually(
        "garbage collection of the ReplicaSet",
        Duration::from_secs(60),
        || async {
            let list = replicasets.list(&ListParams::default()).await.ok()?;
            list.items.is_empty().then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn scheduler_evaluates_pods() {
    let cluster = TestCluster::shared().await.unwrap();
    let ns = cluster.namespace("scheduler").await.unwrap();
    let pods: Api<Pod> = Api::namespaced(cluster.client(), &ns);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "p" },
        "spec": {
            "containers": [{ "name": "c", "image": "registry.invalid/app:1" }],
            "nodeSelector": { "weir.dev/no-such-node": "true" },
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    // No node matches (other tests may register a kwok node in the shared cluster), so a running
    // scheduler marks the pod unschedulable; without a scheduler the condition never appears.
    let message = eventually(
        "the scheduler's PodScheduled condition",
        Duration::from_secs(60),
        || async {
            let p = pods.get("p").await.ok()?;
            let c = p
                .status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "PodScheduled")?;
            (c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
                .then(|| c.message.unwrap_or_default())
        },
    )
    .await;
    // "no nodes available to schedule pods" on an empty cluster; "0/N nodes are available: …"
    // once another test registered a node (the reason named depends on that node's taints).
    assert!(
        message.contains("no nodes available") || message.contains("nodes are available:"),
        "{message}"
    );
}

#[tokio::test]
async fn rbac_is_enforced_for_non_admin_identities() {
    let cluster = TestCluster::shared().await.unwrap();
    let ns = cluster.namespace("rbac").await.unwrap();
    let sa_api: Api<ServiceAccount> = Api::namespaced(cluster.client(), &ns);
    sa_api
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({ "metadata": { "name": "nobody" } }))
                .unwrap(),
        )
        .await
        .unwrap();
    // Impersonating a ServiceAccount without any RoleBinding must be forbidden.
    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(cluster.kubeconfig_path()).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{ns}:nobody"));
    let as_sa = Client::try_from(config).unwrap();
    let err = Api::<Pod>::namespaced(as_sa, &ns)
        .list(&ListParams::default())
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(status) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn a_private_plane_starts_fast_and_dropping_it_stops_every_process() {
    let started = Instant::now();
    let plane = ControlPlane::start(ControlPlaneOptions::default())
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let client = plane.client().await.unwrap();
    assert_eq!(
        client.apiserver_version().await.unwrap().git_version,
        KUBERNETES_VERSION
    );
    assert!(plane.kubeconfig_path().is_file());
    let pids: Vec<u32> = plane.pids().into_iter().map(|(_, pid)| pid).collect();
    let names: Vec<&str> = plane.pids().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["etcd", "kube-apiserver"],
        "minimal options start only etcd and the apiserver"
    );
    let dir = plane.dir().to_owned();
    // Warm start is a matter of seconds; generous bound for a loaded CI machine.
    assert!(elapsed < Duration::from_secs(60), "start took {elapsed:?}");

    drop(plane);
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} survived the drop"
        );
    }
    assert!(
        !dir.exists(),
        "temporary directory {} survived the drop",
        dir.display()
    );
}
