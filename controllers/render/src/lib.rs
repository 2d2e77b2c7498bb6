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

use std::sync::Arc;

use kube::{
    Api, Client,
    runtime::{controller, events::Recorder, watcher},
};
use tokio::sync::watch as signal;
use weir_api::Render;
use weir_artifact::{FetchOptions, Fetcher, Storage, UntarLimits};
use weir_runtime::{
    leader,
    metrics::Metrics,
    probes,
    servers::{self, Reconciler, Servers, stopped},
    trigger,
};

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
    reconciler: Reconciler,
    servers: Servers,
}

impl Running {
    /// Stops reconciling and watching (waiting for in-flight reconciles), releases the Lease
    /// when leading, then stops serving artifacts and probes.
    pub async fn stop(self) {
        self.reconciler.stop().await;
        self.servers.stop().await;
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
    let metrics = Metrics::new();
    let ready = probes::Readiness::default();
    let mut servers = Servers::new();
    let started = async {
        let (storage_addr, base_url) = servers
            .artifacts(
                &config.storage_addr,
                config.storage_adv_addr.as_deref(),
                storage.root().to_owned(),
            )
            .await?;
        let (metrics_addr, health_addr) = servers
            .probes(&config.metrics_addr, &config.health_addr, &metrics, &ready)
            .await?;
        Ok::<_, weir_runtime::Error>((storage_addr, base_url, metrics_addr, health_addr))
    };
    let (storage_addr, base_url, metrics_addr, health_addr) =
        started.await.map_err(|e| Error::Startup(e.to_string()))?;

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
            let controller = trigger::controller(api, watch_config.clone())
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
    let reconciler = Reconciler::spawn(|stop| leader::run_while_leader(elector, stop, term));
    Ok(Running {
        base_url,
        storage_addr,
        metrics_addr,
        health_addr,
        leader_identity,
        reconciler,
        servers,
    })
}

/// Runs until SIGTERM or Ctrl-C with the in-cluster (or kubeconfig) client.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let client = Client::try_default().await?;
    let running = start(client, config).await?;
    tracing::info!(artifacts = %running.base_url, "render-controller started");
    servers::terminated().await?;
    tracing::info!("shutting down");
    tokio::time::timeout(servers::SHUTDOWN_GRACE, running.stop())
        .await
        .ok();
    Ok(())
}
