use std::path::PathBuf;

/// Errors of the test environment.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An external command (`go`, a control-plane binary) failed.
    #[error("{command} failed: {detail}")]
    Command {
        /// The command line, shortened.
        command: String,
        /// Exit status and the tail of its output.
        detail: String,
    },
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    Certificates(#[from] rcgen::Error),
    /// A component did not become ready in time or exited early.
    #[error("{component} did not become ready: {detail}")]
    NotReady {
        /// etcd, kube-apiserver, …
        component: &'static str,
        /// What was observed, with the tail of the component's log.
        detail: String,
    },
    /// Building or using a Kubernetes client failed.
    #[error("kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    /// The kubeconfig could not be read.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// A shared control plane could not be started earlier in this process.
    #[error("shared control plane unavailable: {0}")]
    Shared(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}
