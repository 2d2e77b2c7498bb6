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

use futures::StreamExt;
use kube::{
    Api, Client,
    runtime::{Controller, controller, events::Recorder, watcher},
};
use tokio::sync::watch as signal;
use weir_api::Render;
use weir_artifact::{FetchOptions, Fetcher, Storage, UntarLimits};
use weir_runtime::{metrics::Metrics, probes};

pub use config::Config;
pub use error::Error;

/// A running render-controller.
pub struct Running {
    /// `http://host:port` artifacts are advertised under.
    pub base_url: String,
    /// Where the artifact server listens.
    pub storage_addr: std::net::SocketAddr,
    stop: signal::Sender<bool>,
    sources: watch::SourceWatches,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops reconciling, watching and serving, and waits for in-flight reconciles to finish.
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

/// Starts the controller, its source watches, its artifact server and its probe endpoints.
pub async fn start(client: Client, config: Config) -> Result<Running, Error> {
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
    let mut tasks = Vec::new();

    let root = storage.root().to_owned();
    let rx = stop_rx.clone();
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
            stopped(stop_rx.clone()),
        )));
    }

    let (trigger, triggered) = futures::channel::mpsc::unbounded();
    let sources = watch::SourceWatches::new(client.clone(), trigger, stop_rx.clone());
    let context = Arc::new(reconcile::Context {
        client: client.clone(),
        storage,
        base_url: base_url.clone(),
        metrics,
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
    let mut watch_config = watcher::Config::default();
    if let Some(selector) = &config.watch_label_selector {
        watch_config = watch_config.labels(selector);
    }
    let api: Api<Render> = Api::all(client);
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
        base_url,
        storage_addr,
        stop,
        sources,
        tasks,
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
