//! weir's apply-controller: server-side applies the manifests of a source artifact, keeps an
//! inventory, prunes what left it and waits for health, reporting in `Apply.status`.
//!
//! An Apply names any object with a `status.artifact` (a `Render`, a `GitRepository` of plain
//! YAML, a producer kind weir does not know). The controller downloads that artifact, verifies
//! its digest, extracts it safely, reads the YAML below `spec.path` ([`manifests`]) and applies it
//! with the [`weir_ssa`] engine as the Apply's ServiceAccount ([`impersonation`]). A new artifact
//! digest is applied at once ([`watch`]); the same artifact is re-applied every interval to
//! correct drift.
//!
//! Embed it with [`start`] (a running controller you can stop) or run it as a process with
//! [`run`]. The reconciler is documented in [`reconcile`].
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let kube_config = kube::Config::infer().await?;
//! let config = weir_apply_controller::Config {
//!     default_service_account: Some("deployer".into()),
//!     ..weir_apply_controller::Config::default()
//! };
//! let running = weir_apply_controller::start(kube_config, config).await?;
//! // … later
//! running.stop().await;
//! # Ok(()) }
//! ```

pub mod config;
pub mod error;
pub mod impersonation;
pub mod manifests;
pub mod recent;
pub mod reconcile;
pub mod source;
pub mod status;
pub mod watch;

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use kube::{
    Api,
    runtime::{Controller, controller, events::Recorder, watcher},
};
use tokio::sync::watch as signal;
use weir_api::Apply;
use weir_artifact::{FetchOptions, Fetcher, UntarLimits};
use weir_runtime::{metrics::Metrics, probes};

pub use config::Config;
pub use error::Error;

/// A running apply-controller.
pub struct Running {
    /// Where `/metrics` is served.
    pub metrics_addr: Option<std::net::SocketAddr>,
    stop: signal::Sender<bool>,
    sources: watch::SourceWatches,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops reconciling and watching, and waits for in-flight reconciles to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.sources.shutdown();
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

/// Starts the controller, its source watches and its probe endpoints. `kube_config` is the
/// controller's own identity; impersonating clients for ServiceAccounts are derived from it.
pub async fn start(kube_config: kube::Config, config: Config) -> Result<Running, Error> {
    let clients = impersonation::Clients::new(kube_config, config.default_service_account.clone())?;
    let client = clients.own();
    let metrics = Metrics::new();
    let ready = probes::Readiness::default();
    let (stop, stop_rx) = signal::channel(false);
    let mut tasks = Vec::new();
    let mut metrics_addr = None;
    for (addr, what) in [
        (&config.metrics_addr, "metrics"),
        (&config.health_addr, "health probes"),
    ] {
        let listener = probes::bind(addr, what)
            .await
            .map_err(|e| Error::Startup(e.to_string()))?;
        if metrics_addr.is_none() {
            metrics_addr = listener.local_addr().ok();
        }
        tasks.push(tokio::spawn(probes::serve(
            listener,
            metrics.clone(),
            ready.clone(),
            stopped(stop_rx.clone()),
        )));
    }

    let (trigger, triggered) = futures::channel::mpsc::unbounded();
    let sources = watch::SourceWatches::new(client.clone(), trigger, stop_rx.clone());
    let context = Arc::new(reconcile::Context {
        clients,
        metrics,
        recorder: Recorder::new(client.clone(), "weir-apply-controller".into()),
        fetcher: Fetcher::new(FetchOptions {
            max_bytes: config.max_artifact_bytes,
            ..FetchOptions::default()
        }),
        untar_limits: UntarLimits {
            max_total_bytes: config.max_unpacked_bytes,
            ..UntarLimits::default()
        },
        sources: sources.clone(),
        allow_cross_namespace: !config.no_cross_namespace_refs,
        kinds: weir_ssa::Kinds::new(),
        recent: recent::RecentApplies::default(),
    });
    let mut watch_config = watcher::Config::default();
    if let Some(selector) = &config.watch_label_selector {
        watch_config = watch_config.labels(selector);
    }
    let api: Api<Apply> = Api::all(client);
    let controller = Controller::new(api, watch_config)
        .reconcile_on(triggered)
        .with_config(controller::Config::default().concurrency(config.concurrent))
        .graceful_shutdown_on(stopped(stop_rx));
    ready.set(true);
    tasks.push(tokio::spawn(async move {
        controller
            .run(reconcile::reconcile, reconcile::error_policy, context)
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "reconcile error");
                }
            })
            .await;
    }));
    Ok(Running {
        metrics_addr,
        stop,
        sources,
        tasks,
    })
}

/// Runs until SIGTERM or Ctrl-C with the in-cluster (or kubeconfig) configuration.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let kube_config = kube::Config::infer().await?;
    let running = start(kube_config, config).await?;
    tracing::info!("apply-controller started");
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
