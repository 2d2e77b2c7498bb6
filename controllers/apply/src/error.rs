//! Errors of the apply-controller.

use std::time::Duration;

use weir_api::conditions::reasons;

/// Errors that abort a reconcile (API failures, startup). A bad Apply, source or manifest never
/// ends up here: it becomes a [`Failure`] written into the Apply's conditions.
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
    /// Deleting the applied objects of a deleted Apply failed; the finalizer stays and the
    /// deletion is retried.
    #[error("deleting applied objects: {0}")]
    Cleanup(#[source] weir_ssa::Error),
    /// Building an impersonating client failed.
    #[error("impersonation: {0}")]
    Impersonation(String),
    /// The object has no namespace or name.
    #[error("object without namespace or name")]
    Unnamed,
    /// Starting the controller failed (binding a listener, loading the client configuration).
    #[error("startup: {0}")]
    Startup(String),
}

impl Error {
    /// A stable category for Events and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesAPIError",
            Error::Status(_) => "StatusUpdateFailed",
            Error::Finalizer(_) => "FinalizerFailed",
            Error::Cleanup(e) => e.category(),
            Error::Impersonation(_) => "ImpersonationFailed",
            Error::Unnamed => "InvalidObject",
            Error::Startup(_) => "StartupFailed",
        }
    }
}

/// When a failed reconcile is worth trying again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Waiting for something upstream (source without artifact, dependency not Ready): not a
    /// failure. A watch or the dependency's own reconcile triggers the retry; a requeue backs it
    /// up.
    Waiting,
    /// A passing fault (network, API): retry soon.
    Soon,
    /// The same inputs will fail the same way: retry at `retryInterval`, or at once when the
    /// source publishes a new artifact.
    Interval,
    /// Only a spec change helps (Stalled).
    Stalled,
}

/// Why a reconcile did not reach Ready: a condition reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The condition and Event reason (a stable category).
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

    /// A failure that needs new input (a new artifact, or the retry interval to pass).
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

    /// Whether this is waiting rather than failing (a Normal event, not a Warning).
    pub fn is_waiting(&self) -> bool {
        self.retry == Retry::Waiting
    }

    /// The requeue delay for this failure, before jitter.
    pub fn requeue_after(&self, retry_interval: Duration) -> Duration {
        match self.retry {
            Retry::Waiting => WAITING_RETRY.min(retry_interval),
            Retry::Soon => TRANSIENT_RETRY.min(retry_interval),
            Retry::Interval | Retry::Stalled => retry_interval,
        }
    }

    /// The condition for a failed apply or prune of the engine.
    ///
    /// Bad manifests (unknown kind, schema violation, missing namespace, duplicates, unparsable
    /// YAML) are `ValidationFailed`; RBAC refusals (`Forbidden`), ownership conflicts
    /// (`Conflict`) and immutable-field changes (`ImmutableField`) keep the engine's category so
    /// the reason says what to fix; anything else is `ApplyFailed` (or `PruneFailed`). The message
    /// lists every offending object.
    pub fn from_engine(error: &weir_ssa::Error, pruning: bool) -> Self {
        let reason = match error.category() {
            "InvalidManifest" | "UnknownKind" | "NamespaceMissing" | "ValidationFailed" => {
                reasons::VALIDATION_FAILED
            }
            "Forbidden" => "Forbidden",
            "Conflict" => "Conflict",
            "ImmutableField" => "ImmutableField",
            _ if pruning => reasons::PRUNE_FAILED,
            _ => reasons::APPLY_FAILED,
        };
        let transient = matches!(
            error.category(),
            "ApiError" | "DiscoveryFailed" | "NotReady"
        );
        if transient {
            Self::transient(reason, error.to_string())
        } else {
            Self::persistent(reason, error.to_string())
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

/// Backup requeue while waiting for a source or dependency (watches normally trigger first).
const WAITING_RETRY: Duration = Duration::from_secs(15);
/// Retry delay after a passing fault.
const TRANSIENT_RETRY: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_ssa::ObjectRef;

    fn object() -> Box<ObjectRef> {
        Box::new(ObjectRef {
            group: "example.com".into(),
            version: "v1".into(),
            kind: "Widget".into(),
            namespace: "ns".into(),
            name: "w".into(),
        })
    }

    #[test]
    fn engine_errors_map_to_reasons_naming_the_object() {
        let unknown = weir_ssa::Error::Rejected {
            errors: vec![weir_ssa::Error::UnknownKind { object: object() }],
        };
        let f = Failure::from_engine(&unknown, false);
        assert_eq!(f.reason, reasons::VALIDATION_FAILED);
        assert!(
            f.message.contains("Widget.example.com ns/w"),
            "{}",
            f.message
        );
        assert_eq!(f.retry, Retry::Interval);

        let forbidden = weir_ssa::Error::Forbidden {
            object: object(),
            message: "no".into(),
        };
        assert_eq!(Failure::from_engine(&forbidden, false).reason, "Forbidden");
        let api = weir_ssa::Error::Discovery(kube::Error::LinesCodecMaxLineLengthExceeded);
        assert_eq!(
            Failure::from_engine(&api, true).reason,
            reasons::PRUNE_FAILED
        );
        assert_eq!(Failure::from_engine(&api, false).retry, Retry::Soon);
    }

    #[test]
    fn messages_become_one_line_and_retries_follow_the_kind() {
        let f = Failure::persistent("ApplyFailed", "a\n  b\tc ");
        assert_eq!(f.message, "a b c");
        let hour = Duration::from_secs(3600);
        assert_eq!(f.requeue_after(hour), hour);
        assert_eq!(
            Failure::waiting(reasons::SOURCE_NOT_READY, "x").requeue_after(hour),
            WAITING_RETRY
        );
        assert_eq!(
            Failure::waiting(reasons::DEPENDENCY_NOT_READY, "x")
                .requeue_after(Duration::from_secs(2)),
            Duration::from_secs(2)
        );
        assert!(Failure::stalled(reasons::INVALID_SPEC, "x").is_stalled());
    }
}
