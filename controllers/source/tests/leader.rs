//! Two source-controllers with `--leader-elect` on one Lease, against a real kube-apiserver and a
//! real Git repository: only the leader reconciles, the standby stays Ready and keeps serving,
//! and stopping the leader hands over to a standby that publishes the artifact itself.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use weir_api::{
    GitRepository,
    conditions::{self, types},
    reconcile::request_patch,
};
use weir_artifact::{FetchOptions, Fetcher};
use weir_source_controller::{Config, Running};
use weir_testenv::{TestCluster, git::Repo};

const SHARD_LABEL: &str = "weir.dev/test-shard";
const LEASE_NAME: &str = "source-leader-test";

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
        webhook_addr: Some("127.0.0.1:0".into()),
        watch_label_selector: Some(format!("{SHARD_LABEL}={ns}")),
        ..Config::default()
    };
    config.leader_election.enabled = true;
    config.leader_election.namespace = ns.to_owned();
    config.leader_election.id = LEASE_NAME.to_owned();
    config.leader_election.lease_duration = Duration::from_secs(4);
    config.leader_election.renew_deadline = Duration::from_secs(3);
    config.leader_election.retry_period = Duration::from_millis(500);
    weir_source_controller::start(client.clone(), config)
        .await
        .unwrap()
}

/// Polls until the GitRepository has handled request `token` and its artifact is served under
/// `base_url`; fails with the status after 60 s.
async fn until_handled(api: &Api<GitRepository>, token: &str, base_url: &str) -> GitRepository {
    let start = Instant::now();
    loop {
        let obj = api.get("repo").await.unwrap();
        let done = obj.status.as_ref().is_some_and(|s| {
            s.last_handled_reconcile_at.as_deref() == Some(token)
                && conditions::is_true(&s.conditions, types::READY)
                && s.artifact
                    .as_ref()
                    .is_some_and(|a| a.url.starts_with(base_url))
        });
        if done {
            return obj;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "request {token} not handled by the instance at {base_url}; status: {:#?}",
            obj.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn only_the_leader_reconciles_and_a_standby_takes_over_and_serves() {
    let cluster = TestCluster::shared().await.unwrap();
    cluster.install_crds(&weir_api::crds::all()).await.unwrap();
    let ns = cluster.namespace("source-leader").await.unwrap();
    let client = cluster.client();
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::new(&[("app/cm.yaml", "kind: ConfigMap\n")]);

    // The first instance finds no Lease and leads; the second, started after, stands by.
    let first = start(&client, &ns, &dir.path().join("first")).await;
    let start_wait = Instant::now();
    while holder(&client, &ns).await.as_deref() != first.leader_identity.as_deref() {
        assert!(
            start_wait.elapsed() < Duration::from_secs(30),
            "the first instance never led"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = start(&client, &ns, &dir.path().join("second")).await;

    let api: Api<GitRepository> = Api::namespaced(client.clone(), &ns);
    let mut obj = GitRepository::new(
        "repo",
        serde_json::from_value(serde_json::json!({
            "url": repo.file_url(), "interval": "1h", "ref": { "branch": "main" }
        }))
        .unwrap(),
    );
    obj.metadata.labels = Some(BTreeMap::from([(SHARD_LABEL.to_owned(), ns.clone())]));
    obj.metadata.annotations = Some(BTreeMap::from([(
        weir_api::reconcile::REQUESTED_AT_ANNOTATION.to_owned(),
        "one".to_owned(),
    )]));
    api.create(&PostParams::default(), &obj).await.unwrap();
    // Only the leader reconciles: the artifact is published under its server, and the standby's
    // storage stays empty.
    let ready = until_handled(&api, "one", &first.base_url).await;
    let artifact = ready.status.unwrap().artifact.unwrap();
    let fetcher = Fetcher::new(FetchOptions::default());
    fetcher
        .fetch(&artifact.url, &artifact.digest)
        .await
        .unwrap();
    assert!(
        !dir.path().join("second/gitrepository").exists(),
        "the standby stored an artifact"
    );
    // The standby keeps its webhook server up (an unknown hook is 404, not a refused connection).
    let hook = second.webhook_addr.unwrap();
    let response = post_empty(hook, "/hook/0000").await;
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");

    // The leader stops (SIGTERM path: releases the Lease); the standby leads at once and
    // re-publishes from its own storage and server.
    first.stop().await;
    let handover = Instant::now();
    while holder(&client, &ns).await.as_deref() != second.leader_identity.as_deref() {
        assert!(
            handover.elapsed() < Duration::from_secs(20),
            "the standby never took over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.patch(
        "repo",
        &PatchParams::default(),
        &Patch::Merge(request_patch("two")),
    )
    .await
    .unwrap();
    let moved = until_handled(&api, "two", &second.base_url).await;
    let artifact2 = moved.status.unwrap().artifact.unwrap();
    assert_eq!(
        artifact2.digest, artifact.digest,
        "same tree, same reproducible artifact"
    );
    fetcher
        .fetch(&artifact2.url, &artifact2.digest)
        .await
        .unwrap();
    second.stop().await;
    assert_eq!(holder(&client, &ns).await, None, "stop releases the Lease");
}

/// A bare HTTP/1.1 POST with an empty body; returns the raw response.
async fn post_empty(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!(
                "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}
