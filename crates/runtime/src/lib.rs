//! Plumbing every weir controller shares, so each controller crate holds only its own logic.
//!
//! - [`metrics`]: the GUIDE §7 metric families, with bounded label sets.
//! - [`probes`]: `/metrics`, `/healthz` and `/readyz` over HTTP.
//! - [`leader`]: leader election on a Lease, so one replica reconciles and the others stand by.
//! - [`logging`]: `tracing` set up as text or JSON.
//! - [`status`]: server-side-apply status patches, skipped when nothing but timestamps changed.
//! - [`requeue`]: intervals with jitter, so objects created together do not reconcile in lockstep.

pub mod events;
pub mod flags;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod probes;
pub mod requeue;
pub mod servers;
pub mod sources;
pub mod status;
pub mod trigger;

/// Errors of the runtime helpers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Serialising a status failed.
    #[error("serialising status: {0}")]
    Serialize(#[from] serde_json::Error),
    /// Binding or serving an HTTP endpoint failed.
    #[error("{what} on {addr}: {source}")]
    Serve {
        /// Which endpoint.
        what: &'static str,
        /// The address.
        addr: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The log configuration is invalid.
    #[error("logging: {0}")]
    Logging(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
