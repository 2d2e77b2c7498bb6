//! weir's render-controller: renders source artifacts with kustomize semantics and publishes the
//! manifests in `Render.status.artifact`.
//!
//! A Render names any object with a `status.artifact` (a `GitRepository`, another Render, a
//! producer kind weir does not know). The controller downloads that artifact, verifies its
//! digest, extracts it safely, builds `spec.path` with [`weir_kustomize`] plus the Render's
//! overlay fields, substitutes variables as Flux's `postBuild` does, and publishes the result
//! as its own reproducible tar.gz holding one file, [`render::MANIFESTS_FILE`], served by its
//! own artifact server. `revision` is the source's; the digest changes only when the rendered
//! objects do.
//!
//! Embed it with [`start`] (a running controller you can stop) or run it as a process with
//! [`run`]. The reconciler is documented in [`reconcile`], the source watches in [`watch`].

pub mod config;
pub mod error;
pub mod overlay;
pub mod recent;
pub mod reconcile;
pub mod render;
pub mod source;
pub mod variables;
pub mod watch;

use std::{sync::Arc, time::Duration};

use kube::{
    Api, Client,
    runtime::{Controller, controller, events::Recorder, watcher},
};
use tokio::sync::watch as signal;
use weir_api::Render;
use weir_artifact::{FetchOptions, Fetcher, Storage, UntarLimits};
use weir_runtime::{leader, metrics::Metrics, probes};

pub use config::Config;
pub use error::Error;

/// A running render-controller.
pub struct Running {
    /// `http://host:port` artifacts are advertised under.
    pub base_url: String,
    /// Where the artifact server listens.
    pub storage_addr: std::net::SocketAddr,
    /// Where `/metrics` is served.
    pub metrics_addr: std::net::SocketAddr,
    /// Where `/healthz` and `/readyz` are served.
    pub health_addr: std::net::SocketAddr,
    /// Our `holderIdentity` in the Lease, with `--leader-elect`.
    pub leader_identity: Option<String>,
    stop: signal::Sender<bool>,
    stop_servers: signal::Sender<bool>,
    reconciler: tokio::task::JoinHandle<()>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops reconciling and watching (waiting for in-flight reconciles), releases the Lease
    /// when leading, then stops serving artifacts and probes.
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
fn stopped(
    mut rx: signal::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Starts the controller, its source watches, its artifact server and its probe endpoints.
///
/// With `--leader-elect` ([`Config::leader_election`]) the artifact server and the probes start
/// at once and keep serving whoever leads (a standby is Ready and serves the artifacts it
/// stored), while the reconcile loop and the source watches run only while this process holds
/// the Lease ([`weir_runtime::leader::run_while_leader`]); after losing it the process stops
/// reconciling and campaigns again.
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
    let (stop, stop_rx) = signal::channel(false);
    let (stop_servers, servers_rx) = signal::channel(false);
    let mut servers = Vec::new();

    let root = storage.root().to_owned();
    let rx = servers_rx.clone();
    servers.push(tokio::spawn(async move {
        if let Err(e) = weir_artifact::server::serve(storage_listener, root, stopped(rx)).await {
            tracing::error!(error = %e, "artifact server failed");
        }
    }));
    let mut addrs = Vec::new();
    for (addr, what) in [
        (&config.metrics_addr, "metrics"),
        (&config.health_addr, "health probes"),
    ] {
        let listener = probes::bind(addr, what)
            .await
            .map_err(|e| Error::Startup(e.to_string()))?;
        addrs.push(
            listener
                .local_addr()
                .map_err(|e| Error::Startup(e.to_string()))?,
        );
        servers.push(tokio::spawn(probes::serve(
            listener,
            metrics.clone(),
            ready.clone(),
            stopped(servers_rx.clone()),
        )));
    }
    let [metrics_addr, health_addr] = addrs[..] else {
        return Err(Error::Startup("probe listeners missing".into()));
    };

    let mut watch_config = watcher::Config::default();
    if let Some(selector) = &config.watch_label_selector {
        watch_config = watch_config.labels(selector);
    }
    // One term of reconciling: built afresh for every leadership, ended when `over` turns true.
    let term = {
        let base_url = base_url.clone();
        move |over: signal::Receiver<bool>| {
            let (trigger, triggered) = futures::channel::mpsc::unbounded();
            let sources = watch::SourceWatches::new(client.clone(), trigger, over.clone());
            let context = Arc::new(reconcile::Context {
                client: client.clone(),
                storage: storage.clone(),
                base_url: base_url.clone(),
                metrics: metrics.clone(),
                recorder: Recorder::new(client.clone(), "weir-render-controller".into()),
                fetcher: Fetcher::new(FetchOptions {
                    max_bytes: config.max_source_bytes,
                    ..FetchOptions::default()
                }),
                untar_limits: UntarLimits {
                    max_total_bytes: config.max_unpacked_bytes,
                    ..UntarLimits::default()
                },
                sources: sources.clone(),
                allow_cross_namespace: !config.no_cross_namespace_refs,
                recent: recent::RecentRenders::default(),
            });
            let api: Api<Render> = Api::all(client.clone());
            let controller = Controller::new(api, watch_config.clone())
                .reconcile_on(triggered)
                .with_config(controller::Config::default().concurrency(config.concurrent))
                .graceful_shutdown_on(stopped(over.clone()));
            let store = controller.store();
            async move {
                let results =
                    controller.run(reconcile::reconcile, reconcile::error_policy, context);
                leader::drive_controller(store, results, over).await;
                sources.shutdown();
            }
        }
    };
    ready.set(true);
    let reconciler = tokio::spawn(leader::run_while_leader(elector, stop_rx, term));
    Ok(Running {
        base_url,
        storage_addr,
        metrics_addr,
        health_addr,
        leader_identity,
        stop,
        stop_servers,
        reconciler,
        servers,
    })
}

/// Runs until SIGTERM or Ctrl-C with the in-cluster (or kubeconfig) client.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let client = Client::try_default().await?;
    let running = start(client, config).await?;
    tracing::info!(artifacts = %running.base_url, "render-controller started");
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
