//! The life cycle every weir controller shares: the servers a replica runs whether or not it
//! leads (probes and metrics, an artifact server, a webhook server), the stop signals, and the
//! wait for SIGTERM.
//!
//! A controller's `start` binds its servers through [`Servers`] (so a taken port fails at
//! startup with its address), spawns its reconcile loop, and keeps both; its `stop` ends the
//! reconcile loop first (in-flight reconciles finish, the Lease is released) and the servers
//! last, so artifacts stay downloadable until the very end.

use std::{future::Future, net::SocketAddr, path::PathBuf, time::Duration};

use tokio::{sync::watch, task::JoinHandle};

use crate::{
    Error, Result,
    metrics::Metrics,
    probes::{self, Readiness},
};

/// Completes once `true` is sent on the channel (or its sender is gone). Spelled out (not
/// `async fn`) to state the `Send + Sync` bounds that kube's `Controller::graceful_shutdown_on`
/// requires.
#[allow(clippy::manual_async_fn)]
pub fn stopped(mut rx: watch::Receiver<bool>) -> impl Future<Output = ()> + Send + Sync + 'static {
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// The servers of one replica, stopped together.
pub struct Servers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Default for Servers {
    fn default() -> Self {
        Servers {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }
}

impl Servers {
    /// No servers yet.
    pub fn new() -> Servers {
        Servers::default()
    }

    /// A signal that turns true when the servers are told to stop.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Runs `task` until the servers stop (it should watch [`Servers::stopping`]).
    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.push(tokio::spawn(task));
    }

    /// Binds `/metrics` on `metrics_addr` and `/healthz` + `/readyz` on `health_addr` (both
    /// may be the same endpoint set) and serves them; returns the bound addresses.
    pub async fn probes(
        &mut self,
        metrics_addr: &str,
        health_addr: &str,
        metrics: &Metrics,
        ready: &Readiness,
    ) -> Result<(SocketAddr, SocketAddr)> {
        let mut bound = Vec::with_capacity(2);
        for (addr, what) in [(metrics_addr, "metrics"), (health_addr, "health probes")] {
            let listener = probes::bind(addr, what).await?;
            bound.push(local_addr(&listener, what, addr)?);
            let shutdown = stopped(self.stopping());
            self.spawn(probes::serve(
                listener,
                metrics.clone(),
                ready.clone(),
                shutdown,
            ));
        }
        Ok((bound[0], bound[1]))
    }

    /// Binds the artifact server on `addr` and serves the files under `root`; returns the bound
    /// address and the base URL consumers download from: `advertised` (`host[:port]` or a full
    /// URL) when given, else the bound address.
    pub async fn artifacts(
        &mut self,
        addr: &str,
        advertised: Option<&str>,
        root: PathBuf,
    ) -> Result<(SocketAddr, String)> {
        let listener = probes::bind(addr, "artifact server").await?;
        let bound = local_addr(&listener, "artifact server", addr)?;
        let advertised = advertised.map_or_else(|| bound.to_string(), str::to_owned);
        let base_url = if advertised.contains("://") {
            advertised
        } else {
            format!("http://{advertised}")
        };
        let shutdown = stopped(self.stopping());
        self.spawn(async move {
            if let Err(e) = weir_artifact::server::serve(listener, root, shutdown).await {
                tracing::error!(error = %e, "artifact server failed");
            }
        });
        Ok((bound, base_url))
    }

    /// Stops every server and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

fn local_addr(
    listener: &tokio::net::TcpListener,
    what: &'static str,
    addr: &str,
) -> Result<SocketAddr> {
    listener.local_addr().map_err(|source| Error::Serve {
        what,
        addr: addr.to_owned(),
        source,
    })
}

/// A running reconcile loop: told to end, it finishes in-flight reconciles (and releases the
/// Lease when leading) before [`Reconciler::stop`] returns.
pub struct Reconciler {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Reconciler {
    /// Spawns `run`, handing it the signal that turns true when it should end.
    pub fn spawn<F, Fut>(run: F) -> Reconciler
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, rx) = watch::channel(false);
        Reconciler {
            task: tokio::spawn(run(rx)),
            stop,
        }
    }

    /// Ends the loop and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Waits for SIGTERM or Ctrl-C.
pub async fn terminated() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = term.recv() => Ok(()),
    }
}

/// How long a controller waits for its reconcile loop and servers after SIGTERM before it exits
/// anyway (Kubernetes' default grace period is 30 s).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    /// An artifact file name is a 64-hex digest.
    const HEX: &str = "abababababababababababababababababababababababababababababababab";

    #[tokio::test]
    async fn servers_serve_until_stopped_and_advertise_their_url() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("k/ns/n")).unwrap();
        std::fs::write(dir.path().join(format!("k/ns/n/{HEX}.tar.gz")), b"bytes").unwrap();
        let mut servers = Servers::new();
        let ready = Readiness::default();
        ready.set(true);
        let (metrics, health) = servers
            .probes("127.0.0.1:0", "127.0.0.1:0", &Metrics::new(), &ready)
            .await
            .unwrap();
        let (bound, url) = servers
            .artifacts("127.0.0.1:0", None, dir.path().to_owned())
            .await
            .unwrap();
        assert_eq!(url, format!("http://{bound}"));
        assert!(get(health, "/readyz").await.starts_with("HTTP/1.1 200"));
        assert!(get(metrics, "/metrics").await.starts_with("HTTP/1.1 200"));
        let artifact = get(bound, &format!("/k/ns/n/{HEX}.tar.gz")).await;
        assert!(artifact.starts_with("HTTP/1.1 200") && artifact.ends_with("bytes"));
        servers.stop().await;
        assert!(tokio::net::TcpStream::connect(bound).await.is_err());

        let mut other = Servers::new();
        let (_, url) = other
            .artifacts(
                "127.0.0.1:0",
                Some("svc.ns.svc.cluster.local."),
                dir.path().to_owned(),
            )
            .await
            .unwrap();
        assert_eq!(url, "http://svc.ns.svc.cluster.local.");
        let (_, url) = other
            .artifacts(
                "127.0.0.1:0",
                Some("https://cdn.example"),
                dir.path().to_owned(),
            )
            .await
            .unwrap();
        assert_eq!(url, "https://cdn.example");
        other.stop().await;
    }

    #[tokio::test]
    async fn a_taken_port_is_an_error_naming_it() {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let mut servers = Servers::new();
        let e = servers
            .artifacts(&addr, None, PathBuf::from("/nonexistent"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains(&addr), "{e}");
    }

    #[tokio::test]
    async fn a_reconciler_ends_when_told() {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let reconciler = Reconciler::spawn(|over| async move {
            stopped(over).await;
            let _ = done_tx.send(());
        });
        reconciler.stop().await;
        done_rx.await.unwrap();
    }
}
