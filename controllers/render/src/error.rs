//! Errors of the render-controller.

use std::time::Duration;

/// Errors that abort a reconcile (API failures). A bad object or a bad source never ends up
/// here: it becomes a [`Failure`] written into the Render's conditions.
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

/// When a failed render is worth trying again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Waiting for something upstream (the source has no artifact yet): not a failure. The
    /// source watch triggers the retry; a short requeue backs it up.
    Waiting,
    /// A passing fault (network, API, a missing ConfigMap that may appear): retry soon.
    Soon,
    /// The same inputs will fail the same way (a broken kustomization in the source): retry at
    /// the interval, or at once when the source publishes a new artifact.
    Interval,
    /// Only a spec change helps (Stalled).
    Stalled,
}

/// Why a reconcile could not produce an artifact: a condition reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The condition and event reason (a stable category).
    pub reason: &'static str,
    /// What happened, for people (one line).
    pub message: String,
    /// When to try again.
    pub retry: Retry,
}

impl Failure {
    fn new(reason: &'static str, message: impl Into<String>, retry: Retry) -> Self {
        let message: String = message.into();
        // Conditions and events show one line; engine errors may span several.
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        Failure {
            reason,
            message,
            retry,
        }
    }

    /// Waiting for upstream, not failed.
    pub fn waiting(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(reason, message, Retry::Waiting)
    }

    /// A failure that may go away on retry.
    pub fn transient(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(reason, message, Retry::Soon)
    }

    /// A failure that needs new input (a new source artifact, or the interval to pass).
    pub fn persistent(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(reason, message, Retry::Interval)
    }

    /// A failure only a spec change fixes.
    pub fn stalled(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(reason, message, Retry::Stalled)
    }

    /// Whether only a spec change helps.
    pub fn is_stalled(&self) -> bool {
        self.retry == Retry::Stalled
    }

    /// The requeue delay for this failure, before jitter.
    pub fn requeue_after(&self, interval: Duration) -> Duration {
        match self.retry {
            Retry::Waiting => WAITING_RETRY.min(interval),
            Retry::Soon => TRANSIENT_RETRY.min(interval),
            Retry::Interval | Retry::Stalled => interval,
        }
    }
}

impl From<weir_runtime::sources::ReferenceError> for Failure {
    /// A reference that cannot be followed only changes with the spec (or the flags): Stalled.
    fn from(e: weir_runtime::sources::ReferenceError) -> Self {
        Failure::stalled(e.reason(), e.to_string())
    }
}

impl From<weir_runtime::sources::ReadError> for Failure {
    /// An API error reading the source is retried soon; a malformed `status.artifact` waits for
    /// the producer to publish a good one.
    fn from(e: weir_runtime::sources::ReadError) -> Self {
        if e.is_transient() {
            Failure::transient(e.reason(), e.to_string())
        } else {
            Failure::persistent(e.reason(), e.to_string())
        }
    }
}

/// Backup requeue while waiting for a source (its watch normally triggers first).
const WAITING_RETRY: Duration = Duration::from_secs(15);
/// Retry delay after a passing fault.
const TRANSIENT_RETRY: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_become_one_line_and_retries_follow_the_kind() {
        let f = Failure::persistent("BuildFailed", "a\n  b\tc ");
        assert_eq!(f.message, "a b c");
        let hour = Duration::from_secs(3600);
        assert_eq!(f.requeue_after(hour), hour);
        assert_eq!(
            Failure::waiting("SourceNotReady", "x").requeue_after(hour),
            WAITING_RETRY
        );
        assert_eq!(
            Failure::transient("ArtifactFetchFailed", "x").requeue_after(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        assert!(Failure::stalled("InvalidSpec", "x").is_stalled());
    }
}
