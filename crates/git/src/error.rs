use std::time::Duration;

/// Errors of fetching and packing a Git source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The remote refused the credentials, or required some and none were given.
    #[error("authentication failed: {0}")]
    AuthenticationFailed(String),
    /// The requested branch, tag, ref or commit does not exist.
    #[error("not found: {0}")]
    RefNotFound(String),
    /// The spec cannot be acted on (bad semver range, unsupported URL, unusable credentials).
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// The operation took longer than the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The SSH host key did not match known_hosts.
    #[error("host key verification failed: {0}")]
    HostKeyMismatch(String),
    /// Any other Git or transport failure (unreachable host, protocol error, corrupt pack).
    #[error("git operation failed: {0}")]
    Git(String),
    /// The checked-out tree exceeds a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// Packing the tree failed.
    #[error("packing the tree: {0}")]
    Archive(#[from] weir_artifact::Error),
}

impl Error {
    /// A stable category: used as condition reason, event reason and metric label.
    pub fn category(&self) -> &'static str {
        match self {
            Error::AuthenticationFailed(_) => "AuthenticationFailed",
            Error::RefNotFound(_) => "RefNotFound",
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::Timeout(_) => "Timeout",
            Error::HostKeyMismatch(_) => "HostKeyVerificationFailed",
            Error::Git(_) => "GitOperationFailed",
            Error::TooLarge(_) => "SizeLimitExceeded",
            Error::Archive(_) => "ArchiveFailed",
        }
    }

    /// Whether only a spec (or Secret) change can fix it: the object is Stalled, and retrying at
    /// the normal interval is enough.
    pub fn is_stalling(&self) -> bool {
        matches!(self, Error::InvalidSpec(_))
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
