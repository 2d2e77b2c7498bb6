//! The Kubernetes client, from `--kubeconfig`, `--context`, `KUBECONFIG` or in-cluster config,
//! as kubectl finds it.

use std::{path::PathBuf, time::Duration};

use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};

use crate::error::{Error, Result, chain};

/// Where the cluster is and which namespace commands default to.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
    /// `-n/--namespace`.
    pub namespace: Option<String>,
}

/// A connected client and the namespace to use.
#[derive(Clone)]
pub struct Cluster {
    /// The client.
    pub client: Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
}

impl ClusterOptions {
    /// Builds the client (no request is made yet).
    pub async fn connect(&self) -> Result<Cluster> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        let mut config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .map_err(|e| Error::Kubeconfig(format!("{}: {}", path.display(), chain(&e))))?;
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| Error::Kubeconfig(chain(&e)))?
            }
            None if self.context.is_some() => Config::from_kubeconfig(&options)
                .await
                .map_err(|e| Error::Kubeconfig(chain(&e)))?,
            None => Config::infer().await.map_err(|e| {
                Error::Kubeconfig(format!(
                    "no cluster configured (set KUBECONFIG or pass --kubeconfig): {}",
                    chain(&e)
                ))
            })?,
        };
        // A cluster that does not answer should fail fast, not hang a script. (The read timeout
        // stays kube's default, longer than a watch's server-side timeout, for `get --watch`.)
        config.connect_timeout = Some(Duration::from_secs(10));
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| Error::kube(e, "client"))?;
        Ok(Cluster { client, namespace })
    }
}
