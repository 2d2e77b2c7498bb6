//! Leader election against a real kube-apiserver: several electors on one Lease.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use k8s_openapi::api::{coordination::v1::Lease, core::v1::ConfigMap};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
    runtime::{Controller, controller::Action, watcher},
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};
use weir_runtime::leader::{
    LeaderConfig, LeaderElector, Leadership, drive_controller, run_while_leader,
};
use weir_testenv::TestCluster;

const LEASE: Duration = Duration::from_secs(3);
const DEADLINE: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(500);

fn config(ns: &str, name: &str) -> LeaderConfig {
    LeaderConfig {
        lease_duration: LEASE,
        renew_deadline: DEADLINE,
        retry_period: RETRY,
        ..LeaderConfig::new(ns, name)
    }
}

async fn setup(prefix: &str) -> (Client, String) {
    let cluster = TestCluster::shared().await.unwrap();
    let ns = cluster.namespace(prefix).await.unwrap();
    (cluster.client(), ns)
}

fn electors(client: &Client, ns: &str, name: &str, n: usize) -> Vec<LeaderElector> {
    (0..n)
        .map(|_| LeaderElector::new(client.clone(), config(ns, name)).unwrap())
        .collect()
}

async fn lease(client: &Client, ns: &str, name: &str) -> (Option<String>, i32) {
    let lease = Api::<Lease>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap();
    let spec = lease.spec.unwrap_or_default();
    (spec.holder_identity, spec.lease_transitions.unwrap_or(0))
}

/// Campaigns in the background; the receiver gets the leadership once acquired.
fn campaign(
    elector: &LeaderElector,
    stop: &watch::Receiver<bool>,
) -> tokio::sync::oneshot::Receiver<(Leadership, Instant)> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (elector, stop) = (elector.clone(), stop.clone());
    tokio::spawn(async move {
        if let Some(leadership) = elector.acquire(stop).await {
            let _ = tx.send((leadership, Instant::now()));
        }
    });
    rx
}

#[tokio::test]
async fn one_of_two_leads_and_a_release_hands_over_at_once() {
    let (client, ns) = setup("leader-release").await;
    let [a, b]: [LeaderElector; 2] = electors(&client, &ns, "ctl", 2).try_into().ok().unwrap();
    let (_stop, stop_rx) = watch::channel(false);
    let mut ra = campaign(&a, &stop_rx);
    let mut rb = campaign(&b, &stop_rx);

    // Exactly one wins; the other keeps campaigning.
    let (leader, mut standby, standby_elector) = tokio::select! {
        won = &mut ra => (won.unwrap().0, rb, b.clone()),
        won = &mut rb => (won.unwrap().0, ra, a.clone()),
    };
    tokio::time::sleep(LEASE + RETRY).await;
    assert!(leader.is_leader(), "the leader kept renewing");
    assert!(
        standby.try_recv().is_err(),
        "the standby must not lead while the leader renews"
    );
    let (holder, transitions) = lease(&client, &ns, "ctl").await;
    assert_eq!(holder.as_deref(), Some(leader.identity()));
    assert_eq!(transitions, 0, "created by the first leader");

    let mut lost = leader.watch();
    let released = Instant::now();
    leader.release().await.unwrap();
    assert!(!*lost.borrow_and_update(), "release ends leadership");
    let (took_over, at) = tokio::time::timeout(Duration::from_secs(10), standby)
        .await
        .unwrap()
        .unwrap();
    let handover = at - released;
    eprintln!("handover after release: {handover:?}");
    assert!(
        handover <= RETRY.mul_f64(2.0 * 1.2) + Duration::from_secs(1),
        "a released lease is taken at the standby's next retry, took {handover:?}"
    );
    assert_eq!(took_over.identity(), standby_elector.identity());
    let (holder, transitions) = lease(&client, &ns, "ctl").await;
    assert_eq!(holder.as_deref(), Some(standby_elector.identity()));
    assert_eq!(transitions, 1, "one takeover");
    took_over.release().await.unwrap();
}

#[tokio::test]
async fn a_dead_leader_is_replaced_after_its_lease_expires_and_not_before() {
    let (client, ns) = setup("leader-dead").await;
    let [a, b]: [LeaderElector; 2] = electors(&client, &ns, "ctl", 2).try_into().ok().unwrap();
    let (_stop, stop_rx) = watch::channel(false);
    let (leader, _) = campaign(&a, &stop_rx).await.unwrap();
    let standby = campaign(&b, &stop_rx);
    // Let the standby observe a few renewals.
    tokio::time::sleep(RETRY * 4).await;

    // The leader dies: it stops renewing and never releases.
    let died = Instant::now();
    drop(leader);
    let (took_over, at) = tokio::time::timeout(Duration::from_secs(15), standby)
        .await
        .unwrap()
        .unwrap();
    let after = at - died;
    eprintln!("takeover after the leader died: {after:?} (lease {LEASE:?})");
    // The last renewal happened at most one retry period before the death, and the standby
    // counts the lease duration from when it saw that renewal.
    assert!(
        after >= LEASE - RETRY,
        "took over after {after:?}, before the lease ({LEASE:?}) could have expired"
    );
    assert!(
        after <= LEASE + RETRY.mul_f64(2.0 * 1.2) + Duration::from_secs(1),
        "took over only after {after:?}"
    );
    let (holder, transitions) = lease(&client, &ns, "ctl").await;
    assert_eq!(holder.as_deref(), Some(b.identity()));
    assert_eq!(transitions, 1);
    took_over.release().await.unwrap();
}

#[tokio::test]
async fn a_leader_that_finds_another_holder_steps_down() {
    let (client, ns) = setup("leader-stolen").await;
    // A renew deadline far longer than the retry period, so stepping down because of the other
    // holder is told apart from stepping down because renewals "failed".
    let slow_deadline = LeaderConfig {
        lease_duration: Duration::from_secs(10),
        renew_deadline: Duration::from_secs(8),
        ..config(&ns, "ctl")
    };
    let a = &LeaderElector::new(client.clone(), slow_deadline).unwrap();
    let (_stop, stop_rx) = watch::channel(false);
    let (leader, _) = campaign(a, &stop_rx).await.unwrap();
    // Someone else (an operator, a replica with a skewed view) writes itself in as the holder.
    let stolen = Instant::now();
    Api::<Lease>::namespaced(client.clone(), &ns)
        .patch(
            "ctl",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": { "holderIdentity": "intruder" } })),
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), leader.lost())
        .await
        .expect("the leader notices the new holder");
    assert!(
        stolen.elapsed() <= RETRY * 2 + Duration::from_millis(1500),
        "stepped down after {:?}",
        stolen.elapsed()
    );
    assert!(!leader.is_leader());
    // Releasing a lease we no longer hold leaves the other holder in place.
    leader.release().await.unwrap();
    let (holder, _) = lease(&client, &ns, "ctl").await;
    assert_eq!(holder.as_deref(), Some("intruder"));
}

#[tokio::test]
async fn racing_candidates_never_lead_together_and_each_takeover_is_counted() {
    let (client, ns) = setup("leader-race").await;
    const N: usize = 4;
    let leaders = Arc::new(AtomicUsize::new(0));
    let overlap = Arc::new(AtomicBool::new(false));
    let (_stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    // All start at once on a Lease that does not exist: the creates and, after every release,
    // the updates race on one resourceVersion.
    for elector in electors(&client, &ns, "ctl", N) {
        let (leaders, overlap, stop, client, ns) = (
            leaders.clone(),
            overlap.clone(),
            stop_rx.clone(),
            client.clone(),
            ns.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let leadership = elector.acquire(stop).await.unwrap();
            if leaders.fetch_add(1, Ordering::SeqCst) != 0 {
                overlap.store(true, Ordering::SeqCst);
            }
            let (holder, _) = lease(&client, &ns, "ctl").await;
            assert_eq!(holder.as_deref(), Some(elector.identity()));
            tokio::time::sleep(RETRY * 2).await;
            let (holder, _) = lease(&client, &ns, "ctl").await;
            assert_eq!(holder.as_deref(), Some(elector.identity()));
            assert!(leadership.is_leader());
            leaders.fetch_sub(1, Ordering::SeqCst);
            leadership.release().await.unwrap();
        }));
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .unwrap()
            .unwrap();
    }
    assert!(!overlap.load(Ordering::SeqCst), "two leaders at once");
    let (holder, transitions) = lease(&client, &ns, "ctl").await;
    assert_eq!(holder, None, "the last leader released");
    assert_eq!(transitions, N as i32 - 1, "one transition per takeover");
}

/// A TCP proxy in front of the apiserver whose connections can be cut, to make renewals fail.
struct CuttableProxy {
    addr: std::net::SocketAddr,
    cut: watch::Sender<bool>,
}

impl CuttableProxy {
    async fn start(upstream: std::net::SocketAddr) -> CuttableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, cut_rx) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut cut_rx = cut_rx.clone();
                tokio::spawn(async move {
                    if *cut_rx.borrow() {
                        return; // refuse: drop the connection at once
                    }
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_rx.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        CuttableProxy { addr, cut }
    }
}

/// A client for the shared cluster that talks through a [`CuttableProxy`].
async fn client_through_proxy(cluster: &TestCluster) -> (Client, CuttableProxy) {
    let kubeconfig = kube::config::Kubeconfig::read_from(cluster.kubeconfig_path()).unwrap();
    let mut kube_config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let upstream = format!(
        "{}:{}",
        kube_config.cluster_url.host().unwrap(),
        kube_config.cluster_url.port_u16().unwrap()
    );
    let upstream = tokio::net::lookup_host(upstream)
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = CuttableProxy::start(upstream).await;
    kube_config.cluster_url = format!("https://{}", proxy.addr).parse().unwrap();
    (Client::try_from(kube_config).unwrap(), proxy)
}

#[tokio::test]
async fn a_leader_that_cannot_renew_steps_down_within_the_renew_deadline() {
    let cluster = TestCluster::shared().await.unwrap();
    let ns = cluster.namespace("leader-cut").await.unwrap();
    let (through_proxy, proxy) = client_through_proxy(&cluster).await;

    let elector = LeaderElector::new(through_proxy, config(&ns, "ctl")).unwrap();
    let standby = &electors(&cluster.client(), &ns, "ctl", 1)[0];
    let (_stop, stop_rx) = watch::channel(false);
    let (leader, _) = campaign(&elector, &stop_rx).await.unwrap();
    tokio::time::sleep(RETRY * 3).await;
    assert!(leader.is_leader(), "renewing through the proxy works");
    let standby = campaign(standby, &stop_rx);

    let cut = Instant::now();
    proxy.cut.send_replace(true);
    tokio::time::timeout(LEASE * 2, leader.lost())
        .await
        .expect("the leader steps down");
    let stepped_down = cut.elapsed();
    eprintln!("step-down after the apiserver became unreachable: {stepped_down:?}");
    assert!(
        stepped_down <= DEADLINE + Duration::from_millis(700),
        "stepped down {stepped_down:?} after the apiserver became unreachable (deadline {DEADLINE:?})"
    );
    // The standby takes over only after the leader stepped down.
    let (took_over, at) = tokio::time::timeout(Duration::from_secs(15), standby)
        .await
        .unwrap()
        .unwrap();
    assert!(
        at - cut > stepped_down,
        "the standby took over ({:?}) before the leader stepped down ({stepped_down:?})",
        at - cut
    );
    took_over.release().await.unwrap();
    drop(leader);
}

#[tokio::test]
async fn run_while_leader_runs_one_term_per_leadership_and_releases_on_stop() {
    let (client, ns) = setup("leader-terms").await;
    let [a, b]: [LeaderElector; 2] = electors(&client, &ns, "ctl", 2).try_into().ok().unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let terms = Arc::new(AtomicUsize::new(0));
    let spawn = |elector: LeaderElector| {
        let (stop, stop_rx) = watch::channel(false);
        let (running, terms) = (running.clone(), terms.clone());
        let task = tokio::spawn(run_while_leader(Some(elector), stop_rx, move |mut over| {
            let (running, terms) = (running.clone(), terms.clone());
            async move {
                terms.fetch_add(1, Ordering::SeqCst);
                running.fetch_add(1, Ordering::SeqCst);
                let _ = over.wait_for(|over| *over).await;
                running.fetch_sub(1, Ordering::SeqCst);
            }
        }));
        (stop, task)
    };
    let (stop_a, task_a) = spawn(a.clone());
    tokio::time::sleep(RETRY * 2).await;
    let (stop_b, task_b) = spawn(b.clone());
    tokio::time::sleep(LEASE).await;
    assert_eq!(running.load(Ordering::SeqCst), 1, "exactly one term runs");
    assert_eq!(
        lease(&client, &ns, "ctl").await.0.as_deref(),
        Some(a.identity())
    );

    // Stopping the leader ends its term, releases, and the other starts a term at once.
    let stopped = Instant::now();
    stop_a.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), task_a)
        .await
        .unwrap()
        .unwrap();
    while lease(&client, &ns, "ctl").await.0.as_deref() != Some(b.identity()) {
        assert!(stopped.elapsed() < Duration::from_secs(3), "no handover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(running.load(Ordering::SeqCst), 1);
    assert_eq!(terms.load(Ordering::SeqCst), 2);

    stop_b.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), task_b)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(running.load(Ordering::SeqCst), 0);
    assert_eq!(lease(&client, &ns, "ctl").await.0, None, "released on stop");
}

/// Completes when `rx` turns true (the shape `Controller::graceful_shutdown_on` takes).
#[allow(clippy::manual_async_fn)]
fn turned_true(
    mut rx: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
    async move {
        let _ = rx.wait_for(|v| *v).await;
    }
}

/// Regression: kube's graceful shutdown waits for the controller's first list, which the
/// shutdown itself stops; a term ended before that list completed used to hang forever (a
/// SIGTERM right after winning the Lease never exited).
#[tokio::test]
async fn a_controller_stopped_before_its_first_list_ends_at_once() {
    let cluster = TestCluster::shared().await.unwrap();
    let (client, proxy) = client_through_proxy(&cluster).await;
    proxy.cut.send_replace(true); // the first list never completes
    let (over, over_rx) = watch::channel(false);
    let controller = Controller::new(Api::<ConfigMap>::all(client), watcher::Config::default())
        .graceful_shutdown_on(turned_true(over_rx.clone()));
    let store = controller.store();
    let results = controller.run(
        |_, _| async { Ok::<_, kube::Error>(Action::await_change()) },
        |_, _, _| Action::await_change(),
        Arc::new(()),
    );
    let task = tokio::spawn(drive_controller(store, results, over_rx));
    tokio::time::sleep(Duration::from_millis(500)).await;
    over.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the term ends without waiting for a list that will never complete")
        .unwrap();
}

/// After the first list, ending a term is graceful: an in-flight reconcile finishes.
#[tokio::test]
async fn a_synced_controller_finishes_in_flight_reconciles_before_ending() {
    let (client, ns) = setup("leader-graceful").await;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let cm = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some("one".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    config_maps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let started = Arc::new(tokio::sync::Notify::new());
    let finished = Arc::new(AtomicBool::new(false));
    let (over, over_rx) = watch::channel(false);
    let controller = Controller::new(config_maps, watcher::Config::default())
        .graceful_shutdown_on(turned_true(over_rx.clone()));
    let store = controller.store();
    let results = controller.run(
        |_, ctx: Arc<(Arc<tokio::sync::Notify>, Arc<AtomicBool>)>| async move {
            ctx.0.notify_one();
            tokio::time::sleep(Duration::from_secs(1)).await;
            ctx.1.store(true, Ordering::SeqCst);
            Ok::<_, kube::Error>(Action::await_change())
        },
        |_, _, _| Action::await_change(),
        Arc::new((started.clone(), finished.clone())),
    );
    let task = tokio::spawn(drive_controller(store, results, over_rx));
    tokio::time::timeout(Duration::from_secs(30), started.notified())
        .await
        .expect("the ConfigMap is reconciled");
    over.send_replace(true);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    assert!(
        finished.load(Ordering::SeqCst),
        "the term ended before its in-flight reconcile finished"
    );
}
