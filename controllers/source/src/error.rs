//! Errors of the source-controller.

/// Errors that abort a reconcile (API failures). A bad object never ends up here: it becomes a
/// [`Failure`] written into the object's conditions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Writing the status failed.
    #[error("status update: {0}")]
    Status(#[from] weir_runtime::Error),
    /// Adding or removing the finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// The object has no namespace or name.
    #[error("object without namespace or name")]
    Unnamed,
    /// Starting the controller failed (binding a listener, opening storage).
    #[error("startup: {0}")]
    Startup(String),
}

impl Error {
    /// A stable category for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesAPIError",
            Error::Status(_) => "StatusUpdateFailed",
            Error::Finalizer(_) => "FinalizerFailed",
            Error::Unnamed => "InvalidObject",
            Error::Startup(_) => "StartupFailed",
        }
    }
}

/// Why a reconcile could not produce an artifact: a condition reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The condition and event reason (a stable category).
    pub reason: &'static str,
    /// What happened, for people.
    pub message: String,
    /// Only a spec change can fix it (Stalled).
    pub stalled: bool,
}

impl Failure {
    /// A failure that may go away on retry.
    pub fn transient(reason: &'static str, message: String) -> Self {
        Failure {
            reason,
            message,
            stalled: false,
        }
    }

    /// A failure only a spec change fixes.
    pub fn stalled(reason: &'static str, message: String) -> Self {
        Failure {
            reason,
            message,
            stalled: true,
        }
    }
}

impl From<weir_git::Error> for Failure {
    fn from(e: weir_git::Error) -> Self {
        Failure {
            reason: e.category(),
            message: e.to_string(),
            stalled: e.is_stalling(),
        }
    }
}
