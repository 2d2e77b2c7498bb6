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

use std::sync::Arc;

use kube::{
    Api,
    runtime::{controller, events::Recorder, watcher},
};
use tokio::sync::watch as signal;
use weir_api::Apply;
use weir_artifact::{FetchOptions, Fetcher, UntarLimits};
use weir_runtime::{
    leader,
    metrics::Metrics,
    probes,
    servers::{self, Reconciler, Servers, stopped},
    trigger,
};

pub use config::Config;
pub use error::Error;

/// A running apply-controller.
pub struct Running {
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
    /// when leading, then stops the probe endpoints.
    pub async fn stop(self) {
        self.reconciler.stop().await;
        self.servers.stop().await;
    }
}

/// Starts the controller, its source watches and its probe endpoints. `kube_config` is the
/// controller's own identity; impersonating clients for ServiceAccounts are derived from it.
///
/// With `--leader-elect` ([`Config::leader_election`]) the probes start at once and keep
/// answering whoever leads (a standby is Ready), while the reconcile loop and the source and
/// dependency watches run only while this process holds the Lease
/// ([`weir_runtime::leader::run_while_leader`]); after losing it the process stops reconciling
/// and campaigns again.
pub async fn start(kube_config: kube::Config, config: Config) -> Result<Running, Error> {
    // Built once here so a bad configuration fails at startup; every leadership term builds its
    // own (cheap) clients from the same configuration.
    let client =
        impersonation::Clients::new(kube_config.clone(), config.default_service_account.clone())?
            .own();
    let elector = config
        .leader_election
        .elector(client.clone())
        .map_err(|e| Error::Startup(e.to_string()))?;
    let leader_identity = elector.as_ref().map(|e| e.identity().to_owned());
    let metrics = Metrics::new();
    let ready = probes::Readiness::default();
    let mut servers = Servers::new();
    let (metrics_addr, health_addr) = servers
        .probes(&config.metrics_addr, &config.health_addr, &metrics, &ready)
        .await
        .map_err(|e| Error::Startup(e.to_string()))?;

    let mut watch_config = watcher::Config::default();
    if let Some(selector) = &config.watch_label_selector {
        watch_config = watch_config.labels(selector);
    }
    let kinds = weir_ssa::Kinds::new();
    // One term of reconciling: built afresh for every leadership, ended when `over` turns true.
    let term = move |over: signal::Receiver<bool>| {
        let (kube_config, config, metrics, kinds, watch_config) = (
            kube_config.clone(),
            config.clone(),
            metrics.clone(),
            kinds.clone(),
            watch_config.clone(),
        );
        async move {
            let clients =
                match impersonation::Clients::new(kube_config, config.default_service_account) {
                    Ok(clients) => clients,
                    // The same configuration worked at startup.
                    Err(e) => {
                        tracing::error!(error = %e, "building clients failed; not reconciling");
                        return;
                    }
                };
            let client = clients.own();
            let (trigger, triggered) = futures::channel::mpsc::unbounded();
            let sources = watch::SourceWatches::new(client.clone(), trigger, over.clone());
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
                kinds,
                recent: recent::RecentApplies::default(),
            });
            let api: Api<Apply> = Api::all(client);
            let controller = trigger::controller(api, watch_config)
                .reconcile_on(triggered)
                .with_config(controller::Config::default().concurrency(config.concurrent))
                .graceful_shutdown_on(stopped(over.clone()));
            let store = controller.store();
            let results = controller.run(reconcile::reconcile, reconcile::error_policy, context);
            leader::drive_controller(store, results, over).await;
            sources.shutdown();
        }
    };
    ready.set(true);
    let reconciler = Reconciler::spawn(|stop| leader::run_while_leader(elector, stop, term));
    Ok(Running {
        metrics_addr,
        health_addr,
        leader_identity,
        reconciler,
        servers,
    })
}

/// Runs until SIGTERM or Ctrl-C with the in-cluster (or kubeconfig) configuration.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let kube_config = kube::Config::infer().await?;
    let running = start(kube_config, config).await?;
    tracing::info!("apply-controller started");
    servers::terminated().await?;
    tracing::info!("shutting down");
    tokio::time::timeout(servers::SHUTDOWN_GRACE, running.stop())
        .await
        .ok();
    Ok(())
}
