//! Two render-controllers with `--leader-elect` on one Lease, against a real kube-apiserver:
//! only the leader reconciles, both answer their probes, and stopping the leader hands over.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_api::{
    Render,
    conditions::{self, reasons, types},
};
use weir_render_controller::{Config, Running};
use weir_testenv::TestCluster;

const SHARD_LABEL: &str = "weir.dev/test-shard";
const LEASE_NAME: &str = "render-leader-test";

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

/// Reconciles of Renders this instance has counted (sum over results of
/// `weir_reconcile_total{kind="Render"}` on its own `/metrics`).
async fn reconciles(running: &Running) -> u64 {
    let (code, body) = get(running.metrics_addr, "/metrics").await;
    assert_eq!(code, 200);
    body.lines()
        .filter(|l| l.starts_with("weir_reconcile_total{kind=\"Render\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn holder(client: &Client, ns: &str) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), ns)
        .get_opt(LEASE_NAME)
        .await
        .unwrap()
        .and_then(|l| l.spec?.holder_identity)
}

async fn start(client: &Client, ns: &str, dir: &std::path::Path) -> Running {
    let mut config = Config {
        storage_path: dir.to_owned(),
        storage_addr: "127.0.0.1:0".into(),
        metrics_addr: "127.0.0.1:0".into(),
        health_addr: "127.0.0.1:0".into(),
        watch_label_selector: Some(format!("{SHARD_LABEL}={ns}")),
        ..Config::default()
    };
    config.leader_election.enabled = true;
    config.leader_election.namespace = ns.to_owned();
    config.leader_election.id = LEASE_NAME.to_owned();
    weir_render_controller::start(client.clone(), config)
        .await
        .unwrap()
}

/// Waits until the Render's status reports generation `generation` as waiting for its (missing)
/// source, which only a reconcile writes.
async fn until_observed(renders: &Api<Render>, name: &str, generation: i64) {
    let start = Instant::now();
    loop {
        let obj = renders.get(name).await.unwrap();
        let observed = obj.status.as_ref().is_some_and(|s| {
            s.observed_generation == Some(generation)
                && conditions::get(&s.conditions, types::READY)
                    .is_some_and(|c| c.reason == reasons::SOURCE_NOT_READY)
        });
        if observed {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "generation {generation} not reconciled; status: {:#?}",
            obj.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn only_the_leader_reconciles_and_a_standby_takes_over_when_it_stops() {
    let cluster = TestCluster::shared().await.unwrap();
    cluster.install_crds(&weir_api::crds::all()).await.unwrap();
    let ns = cluster.namespace("render-leader").await.unwrap();
    let client = cluster.client();
    let dir = tempfile::tempdir().unwrap();

    // The first instance finds no Lease and leads at once; the second stands by.
    let first = start(&client, &ns, &dir.path().join("first")).await;
    let first_id = first.leader_identity.clone().unwrap();
    let start_wait = Instant::now();
    while holder(&client, &ns).await.as_deref() != Some(first_id.as_str()) {
        assert!(
            start_wait.elapsed() < Duration::from_secs(10),
            "first never led"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = start(&client, &ns, &dir.path().join("second")).await;
    let second_id = second.leader_identity.clone().unwrap();
    assert_ne!(first_id, second_id);

    // A Render whose source does not exist: a reconcile records SourceNotReady for its generation.
    let renders: Api<Render> = Api::namespaced(client.clone(), &ns);
    let spec = serde_json::json!({
        "sourceRef": { "kind": "GitRepository", "name": "absent" },
        "interval": "1h",
        "path": "./one",
    });
    let mut render = Render::new("app", serde_json::from_value(spec).unwrap());
    render.metadata.labels = Some(BTreeMap::from([(SHARD_LABEL.to_owned(), ns.clone())]));
    renders
        .create(&PostParams::default(), &render)
        .await
        .unwrap();
    until_observed(&renders, "app", 1).await;
    // Give the standby every chance to (wrongly) reconcile too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(reconciles(&first).await > 0, "the leader reconciled");
    assert_eq!(reconciles(&second).await, 0, "the standby never reconciles");
    assert_eq!(
        holder(&client, &ns).await.as_deref(),
        Some(first_id.as_str())
    );

    // The standby answers its probes and its artifact server serves (a 404 for an artifact it
    // does not have, rather than a refused connection).
    assert_eq!(get(second.health_addr, "/readyz").await, (200, "ok".into()));
    assert_eq!(get(second.health_addr, "/healthz").await.0, 200);
    let missing = format!("/render/{ns}/app/{}.tar.gz", "0".repeat(64));
    assert_eq!(get(second.storage_addr, &missing).await.0, 404);

    // Stopping the leader releases the Lease: the standby takes over within a retry period or
    // two, not after the 15 s lease duration.
    let stopped = Instant::now();
    first.stop().await;
    while holder(&client, &ns).await.as_deref() != Some(second_id.as_str()) {
        assert!(
            stopped.elapsed() < Duration::from_secs(8),
            "the standby did not take over after the leader released"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // … and reconciles a new change.
    renders
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": { "path": "./two" } })),
        )
        .await
        .unwrap();
    until_observed(&renders, "app", 2).await;
    assert!(reconciles(&second).await > 0, "the new leader reconciled");
    assert_eq!(get(second.health_addr, "/readyz").await.0, 200);

    second.stop().await;
    assert_eq!(holder(&client, &ns).await, None, "released on stop");
}

/// The binary: SIGTERM stops reconciling, releases the Lease and exits 0; the identity names
/// the pod; logs are JSON lines.
#[tokio::test]
async fn the_binary_releases_the_lease_on_sigterm() {
    let cluster = TestCluster::shared().await.unwrap();
    cluster.install_crds(&weir_api::crds::all()).await.unwrap();
    let ns = cluster.namespace("render-sigterm").await.unwrap();
    let client = cluster.client();
    let dir = tempfile::tempdir().unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir-render-controller"))
        .args([
            "--leader-elect",
            "--leader-election-namespace",
            &ns,
            &format!("--leader-election-id={LEASE_NAME}"),
            "--metrics-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0",
            "--storage-addr=127.0.0.1:0",
            &format!("--watch-label-selector={SHARD_LABEL}={ns}"),
            "--log-format=json",
        ])
        .arg("--storage-path")
        .arg(dir.path())
        .env("KUBECONFIG", cluster.kubeconfig_path())
        .env("POD_NAME", "render-pod-0")
        .env_remove("POD_NAMESPACE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let identity = loop {
        if let Some(holder) = holder(&client, &ns).await {
            break holder;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the process never led"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let suffix = identity
        .strip_prefix("render-pod-0_")
        .unwrap_or_else(|| panic!("identity {identity:?} does not name the pod"));
    assert_eq!(suffix.len(), 16);

    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the process exits after SIGTERM")
        .unwrap();
    let logs = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}; logs:\n{logs}",
        output.status
    );
    assert_eq!(
        holder(&client, &ns).await,
        None,
        "released on SIGTERM; logs:\n{logs}"
    );
    let messages: Vec<String> = logs
        .lines()
        .map(|line| {
            let entry: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            entry["message"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    for wanted in ["became leader", "shutting down", "released leadership"] {
        assert!(
            messages.iter().any(|m| m == wanted),
            "no {wanted:?} in the logs:\n{logs}"
        );
    }
}

#[test]
fn contradictory_leader_election_flags_are_one_line_and_exit_2() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_weir-render-controller"))
        .args(["--leader-elect", "--leader-election-renew-deadline=20s"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.trim_end(),
        "leader election: the lease duration (15s) must be longer than the renew deadline (20s)"
    );
}
