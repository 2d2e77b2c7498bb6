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

use std::sync::Arc;

use futures::StreamExt;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, controller, events::Recorder, reflector, watcher},
};
use tokio::sync::watch;
use weir_api::{GitRepository, Receiver};
use weir_artifact::Storage;
use weir_runtime::{
    leader,
    metrics::Metrics,
    probes,
    servers::{self, Reconciler, Servers, stopped},
    trigger,
};

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
    reconciler: Reconciler,
    servers: Servers,
}

impl Running {
    /// Stops reconciling (waiting for in-flight reconciles), releases the Lease when leading,
    /// then stops serving artifacts, webhooks and probes.
    pub async fn stop(self) {
        self.reconciler.stop().await;
        self.servers.stop().await;
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
    let metrics = Metrics::new();
    let ready = probes::Readiness::default();
    let mut servers = Servers::new();
    let (storage_addr, base_url) = servers
        .artifacts(
            &config.storage_addr,
            config.storage_adv_addr.as_deref(),
            storage.root().to_owned(),
        )
        .await
        .map_err(|e| Error::Startup(e.to_string()))?;
    servers
        .probes(&config.metrics_addr, &config.health_addr, &metrics, &ready)
        .await
        .map_err(|e| Error::Startup(e.to_string()))?;

    let mut watch_config = watcher::Config::default();
    if let Some(selector) = &config.watch_label_selector {
        watch_config = watch_config.labels(selector);
    }
    let webhook_addr = start_webhook(&client, &config, &watch_config, &mut servers).await?;

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
            let controller = trigger::controller(api, watch_config.clone())
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
    let reconciler = Reconciler::spawn(|stop| leader::run_while_leader(elector, stop, term));
    Ok(Running {
        base_url,
        storage_addr,
        webhook_addr,
        leader_identity,
        reconciler,
        servers,
    })
}

/// Binds and spawns the Receiver webhook server and the Receiver cache it reads, unless
/// `--webhook-addr` disabled it. Both run on every replica, leader or not.
async fn start_webhook(
    client: &Client,
    config: &Config,
    watch_config: &watcher::Config,
    servers: &mut Servers,
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
    let rx = servers.stopping();
    servers.spawn(async move {
        tokio::select! {
            () = cache.for_each(|_| async {}) => {}
            () = stopped(rx) => {}
        }
    });
    let webhook = Arc::new(webhook::Webhook::new(
        client.clone(),
        store,
        Recorder::new(client.clone(), "weir-source-controller".into()),
        config.no_cross_namespace_refs,
        webhook::Limits::default(),
    ));
    servers.spawn(webhook::serve(listener, webhook, servers.stopping()));
    Ok(Some(bound))
}

/// Runs until SIGTERM or Ctrl-C with the in-cluster (or kubeconfig) client.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let client = Client::try_default().await?;
    let running = start(client, config).await?;
    tracing::info!(artifacts = %running.base_url, webhook = ?running.webhook_addr, "source-controller started");
    servers::terminated().await?;
    tracing::info!("shutting down");
    tokio::time::timeout(servers::SHUTDOWN_GRACE, running.stop())
        .await
        .ok();
    Ok(())
}
