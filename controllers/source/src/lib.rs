//! weir's source-controller: fetches Git refs into reproducible, content-addressed tar.gz
//! artifacts, serves them over HTTP and publishes them in `GitRepository.status.artifact`.
//!
//! Embed it with [`start`] (a running controller you can stop) or run it as a process with
//! [`run`]. The reconciler is documented in [`reconcile`].
//!
//! It also serves the `Receiver` webhooks (`--webhook-addr`, default `:9292`): [`receiver`]
//! keeps each Receiver's `status.webhookPath` current, [`webhook`] verifies calls and sets
//! `reconcile.weir.dev/requestedAt` on the objects a Receiver lists.

pub mod config;
pub mod credentials;
pub mod error;
pub mod receiver;
pub mod reconcile;
pub mod webhook;

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use kube::{
    Api, Client,
    runtime::{Controller, WatchStreamExt, controller, events::Recorder, reflector, watcher},
};
use tokio::sync::watch;
use weir_api::{GitRepository, Receiver};
use weir_artifact::Storage;
use weir_runtime::{leader, metrics::Metrics, probes};

pub use config::Config;
pub use error::Error;

/// A running source-controller.
pub struct Running {
    /// `http://host:port` artifacts are advertised under.
    pub base_url: String,
    /// Where the artifact server listens.
    pub storage_addr: std::net::SocketAddr,
    /// Where the Receiver webhook server listens; `None` when disabled.
    pub webhook_addr: Option<std::net::SocketAddr>,
    /// Our `holderIdentity` in the Lease, with `--leader-elect`.
    pub leader_identity: Option<String>,
    stop: watch::Sender<bool>,
    stop_servers: watch::Sender<bool>,
    reconciler: tokio::task::JoinHandle<()>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops reconciling (waiting for in-flight reconciles), releases the Lease when leading,
    /// then stops serving artifacts, webhooks and probes.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.reconciler.await;
        let _ = self.stop_servers.send(true);
        for task in self.servers {
            let _ = task.await;
        }
    }
}

/// Completes once `stop` is sent. Spelled out (not `async fn`) to state the `Send + Sync`
/// bounds that `Controller::graceful_shutdown_on` requires.
#[allow(clippy::manual_async_fn)]
pub(crate) fn stopped(
    mut rx: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Starts the controller, its artifact server, its webhook server and its probe endpoints.
///
/// With `--leader-elect` ([`Config::leader_election`]) the artifact server, the webhook server
/// and the probes start at once and keep serving whoever leads (a standby is Ready, serves the
/// artifacts it stored and accepts webhooks), while the GitRepository and Receiver reconcile
/// loops run only while this process holds the Lease
/// ([`weir_runtime::leader::run_while_leader`]); after losing it the process stops reconciling
/// and campaigns again.
pub async fn start(client: Client, config: Config) -> Result<Running, Error> {
    let elector = config
        .leader_election
        .elector(client.clone())
        .map_err(|e| Error::Startup(e.to_string()))?;
    let leader_identity = elector.as_ref().map(|e| e.identity().to_owned());
    let storage = Storage::new(&config.storage_path, config.retention.clone())
        .map_err(|e| Error::Startup(e.to_string()))?;
    let storage_listener = probes::bind(&config.storage_addr, "artifact server")
        .await
        .map_err(|e| Error::Startup(e.to_string()))?;
    let storage_addr = storage_listener
        .local_addr()
        .map_err(|e| Error::Startup(e.to_string()))?;
    let adv = config
        .storage_adv_addr
        .clone()
        .unwrap_or_else(|| storage_addr.to_string());
    let base_url = if adv.contains("://") {
        adv
    } else {
        format!("http://{adv}")
    };
    let metrics = Metrics::new();
    let ready = probes::Readiness::default();
    let (stop, stop_rx) = watch::channel(false);
    let (stop_servers, servers_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let root = storage.root().to_owned();
    let rx = servers_rx.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = weir_artifact::server::serve(storage_listener, root, stopped(rx)).await {
            tracing::error!(error = %e, "artifact server failed");
        }
    }));
    for (addr, what) in [
        (&config.metrics_addr, "metrics"),
        (&config.health_addr, "health probes"),
    ] {
        let listener = probes::bind(addr, what)
            .await
            .map_err(|e| Error::Startup(e.to_string()))?;
        tasks.push(tokio::spawn(probes::serve(
            listener,
            metrics.clone(),
            ready.clone(),
            stopped(servers_rx.clone()),
        )));
    }

    let mut watch_config = watcher::Config::default();
    if let Some(selector) = &config.watch_label_selector {
        watch_config = watch_config.labels(selector);
    }
    let webhook_addr =
        start_webhook(&client, &config, &watch_config, &servers_rx, &mut tasks).await?;

    // One term of reconciling: built afresh for every leadership, ended when `over` turns true.
    let term = {
        let base_url = base_url.clone();
        move |over: watch::Receiver<bool>| {
            let context = Arc::new(reconcile::Context {
                client: client.clone(),
                storage: storage.clone(),
                base_url: base_url.clone(),
                metrics: metrics.clone(),
                recorder: Recorder::new(client.clone(), "weir-source-controller".into()),
                limits: config.limits.clone(),
                default_timeout: config.default_timeout,
            });
            let receivers = Arc::new(receiver::Context {
                client: client.clone(),
                recorder: Recorder::new(client.clone(), "weir-source-controller".into()),
                metrics: metrics.clone(),
                no_cross_namespace_refs: config.no_cross_namespace_refs,
            });
            let receiver_loop = receiver::run(
                receivers,
                watch_config.clone(),
                config.concurrent,
                over.clone(),
            );
            let api: Api<GitRepository> = Api::all(client.clone());
            let controller = Controller::new(api, watch_config.clone())
                .with_config(controller::Config::default().concurrency(config.concurrent))
                .graceful_shutdown_on(stopped(over.clone()));
            let store = controller.store();
            async move {
                let results =
                    controller.run(reconcile::reconcile, reconcile::error_policy, context);
                futures::future::join(
                    leader::drive_controller(store, results, over),
                    receiver_loop,
                )
                .await;
            }
        }
    };
    ready.set(true);
    let reconciler = tokio::spawn(leader::run_while_leader(elector, stop_rx, term));
    Ok(Running {
        base_url,
        storage_addr,
        webhook_addr,
        leader_identity,
        stop,
        stop_servers,
        reconciler,
        servers: tasks,
    })
}

/// Binds and spawns the Receiver webhook server and the Receiver cache it reads, unless
/// `--webhook-addr` disabled it. Both run on every replica, leader or not.
async fn start_webhook(
    client: &Client,
    config: &Config,
    watch_config: &watcher::Config,
    stop_rx: &watch::Receiver<bool>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<Option<std::net::SocketAddr>, Error> {
    let Some(addr) = &config.webhook_addr else {
        return Ok(None);
    };
    let listener = probes::bind(addr, "webhook server")
        .await
        .map_err(|e| Error::Startup(e.to_string()))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Startup(e.to_string()))?;
    let (store, writer) = reflector::store();
    let cache = reflector(
        writer,
        watcher(Api::<Receiver>::all(client.clone()), watch_config.clone()),
    )
    .default_backoff()
    .applied_objects();
    let rx = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        tokio::select! {
            () = cache.for_each(|_| async {}) => {}
            () = stopped(rx) => {}
        }
    }));
    let webhook = Arc::new(webhook::Webhook::new(
        client.clone(),
        store,
        Recorder::new(client.clone(), "weir-source-controller".into()),
        config.no_cross_namespace_refs,
        webhook::Limits::default(),
    ));
    tasks.push(tokio::spawn(webhook::serve(
        listener,
        webhook,
        stop_rx.clone(),
    )));
    Ok(Some(bound))
}

/// Runs until SIGTERM or Ctrl-C with the in-cluster (or kubeconfig) client.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let client = Client::try_default().await?;
    let running = start(client, config).await?;
    tracing::info!(artifacts = %running.base_url, webhook = ?running.webhook_addr, "source-controller started");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    tokio::time::timeout(Duration::from_secs(30), running.stop())
        .await
        .ok();
    Ok(())
}
