//! Two apply-controllers with `--leader-elect` on one Lease, against a real kube-apiserver: only
//! the leader reconciles; a leader that finds another holder in the Lease stops reconciling and
//! campaigns again; when the foreign holder's lease expires one of them leads and reconciles.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::coordination::v1::Lease, apimachinery::pkg::apis::meta::v1::MicroTime, jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_api::{
    Apply,
    conditions::{self, reasons, types},
};
use weir_apply_controller::{Config, Running};
use weir_testenv::TestCluster;

const SHARD_LABEL: &str = "weir.dev/test-shard";
const LEASE_NAME: &str = "apply-leader-test";

/// `GET path` over plain HTTP/1.1: (status code, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let code = response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// Reconciles of Applies this instance has counted (its own `/metrics`).
async fn reconciles(running: &Running) -> u64 {
    let (code, body) = get(running.metrics_addr, "/metrics").await;
    assert_eq!(code, 200);
    body.lines()
        .filter(|l| l.starts_with("weir_reconcile_total{kind=\"Apply\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn lease(client: &Client, ns: &str) -> (Option<String>, i32) {
    let spec = Api::<Lease>::namespaced(client.clone(), ns)
        .get_opt(LEASE_NAME)
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .unwrap_or_default();
    (spec.holder_identity, spec.lease_transitions.unwrap_or(0))
}

async fn start(cluster: &TestCluster, ns: &str) -> Running {
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
    let election = &mut config.leader_election;
    election.enabled = true;
    election.namespace = ns.to_owned();
    election.id = LEASE_NAME.to_owned();
    election.lease_duration = Duration::from_secs(3);
    election.renew_deadline = Duration::from_secs(2);
    election.retry_period = Duration::from_millis(500);
    weir_apply_controller::start(kube_config, config)
        .await
        .unwrap()
}

async fn observed_generation(applies: &Api<Apply>, name: &str) -> Option<i64> {
    let obj = applies.get(name).await.unwrap();
    let s = obj.status?;
    conditions::get(&s.conditions, types::READY)
        .is_some_and(|c| c.reason == reasons::SOURCE_NOT_READY)
        .then_some(s.observed_generation?)
}

async fn until_observed(applies: &Api<Apply>, name: &str, generation: i64, within: Duration) {
    let start = Instant::now();
    while observed_generation(applies, name).await != Some(generation) {
        assert!(
            start.elapsed() < within,
            "generation {generation} not reconciled within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_leader_that_loses_the_lease_stops_reconciling_until_someone_leads_again() {
    let cluster = TestCluster::shared().await.unwrap();
    cluster.install_crds(&weir_api::crds::all()).await.unwrap();
    let ns = cluster.namespace("apply-leader").await.unwrap();
    let client = cluster.client();

    let first = start(&cluster, &ns).await;
    let first_id = first.leader_identity.clone().unwrap();
    let started = Instant::now();
    while lease(&client, &ns).await.0.as_deref() != Some(first_id.as_str()) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "first never led"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = start(&cluster, &ns).await;
    let second_id = second.leader_identity.clone().unwrap();

    // An Apply whose source does not exist: a reconcile records SourceNotReady.
    let applies: Api<Apply> = Api::namespaced(client.clone(), &ns);
    let spec = serde_json::json!({
        "sourceRef": { "kind": "GitRepository", "name": "absent" },
        "interval": "1h",
        "path": "./one",
        "prune": true,
    });
    let mut apply = Apply::new("app", serde_json::from_value(spec).unwrap());
    apply.metadata.labels = Some(BTreeMap::from([(SHARD_LABEL.to_owned(), ns.clone())]));
    applies
        .create(&PostParams::default(), &apply)
        .await
        .unwrap();
    until_observed(&applies, "app", 1, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(reconciles(&first).await > 0, "the leader reconciled");
    assert_eq!(reconciles(&second).await, 0, "the standby never reconciles");
    assert_eq!(get(second.health_addr, "/readyz").await, (200, "ok".into()));

    // Another holder writes itself into the Lease for 8 s. The leader notices at its next
    // renewal and stops reconciling; nobody may lead until those 8 s have passed.
    let taken = Instant::now();
    let now = serde_json::to_value(MicroTime(Timestamp::now())).unwrap();
    Api::<Lease>::namespaced(client.clone(), &ns)
        .patch(
            LEASE_NAME,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": {
                "holderIdentity": "intruder",
                "leaseDurationSeconds": 8,
                "renewTime": now,
            }})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    applies
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": { "path": "./two" } })),
        )
        .await
        .unwrap();
    let counted = (reconciles(&first).await, reconciles(&second).await);
    tokio::time::sleep(Duration::from_millis(7500).saturating_sub(taken.elapsed())).await;
    assert_eq!(
        observed_generation(&applies, "app").await,
        Some(1),
        "nobody reconciles while another identity holds the Lease"
    );
    assert_eq!(
        (reconciles(&first).await, reconciles(&second).await),
        counted
    );
    assert_eq!(lease(&client, &ns).await.0.as_deref(), Some("intruder"));
    assert_eq!(get(first.health_addr, "/readyz").await.0, 200);

    // The intruder never renews: once its lease expires one of ours leads and reconciles.
    until_observed(&applies, "app", 2, Duration::from_secs(10)).await;
    let (holder, transitions) = lease(&client, &ns).await;
    let holder = holder.unwrap();
    assert!(holder == first_id || holder == second_id, "{holder}");
    assert_eq!(
        transitions, 1,
        "created by the first leader, taken back once"
    );
    let (new_leader, before) = if holder == first_id {
        (&first, counted.0)
    } else {
        (&second, counted.1)
    };
    assert!(
        reconciles(new_leader).await > before,
        "the new leader reconciled"
    );

    first.stop().await;
    second.stop().await;
    assert_eq!(lease(&client, &ns).await.0, None, "released on stop");
}
