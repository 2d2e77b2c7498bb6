use std::path::PathBuf;

/// Errors of packing, storing and extracting artifacts.
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
    /// A path inside an archive is not a plain relative path (absolute, `..`, empty, NUL).
    #[error("unsafe path in archive: {path:?}: {reason}")]
    UnsafePath {
        /// The offending path as found.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An archive entry is a link, device or other non-regular file.
    #[error("archive entry {path:?} is a {kind}; only regular files and directories are allowed")]
    ForbiddenEntry {
        /// The entry's path.
        path: String,
        /// Its type.
        kind: String,
    },
    /// An archive exceeds a limit.
    #[error("archive exceeds the {what} limit of {limit}")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// Its value.
        limit: u64,
    },
    /// The same path appears twice in an archive.
    #[error("duplicate entry {0:?} in archive")]
    DuplicateEntry(String),
    /// The archive is not a valid tar.gz.
    #[error("corrupt archive: {0}")]
    Corrupt(String),
    /// A storage key component is not a safe name.
    #[error("invalid artifact key component {0:?}: must be a lowercase DNS-1123 name")]
    InvalidKey(String),
    /// The HTTP server failed.
    #[error("artifact server: {0}")]
    Server(String),
}

/// Why an artifact download failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The producer has no such artifact (yet): retry later, this is not a failure.
    #[error("artifact not found at {url} (producer not ready yet)")]
    NotFound {
        /// The requested URL.
        url: String,
    },
    /// The URL is not an `http://` URL with a host.
    #[error("invalid artifact URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The server answered with an unexpected status.
    #[error("GET {url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The artifact is larger than allowed.
    #[error("artifact at {url} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The downloaded bytes do not hash to the published digest.
    #[error("artifact at {url} has digest {actual}, expected {expected}")]
    DigestMismatch {
        /// The URL.
        url: String,
        /// The published digest.
        expected: String,
        /// The digest of what was downloaded.
        actual: String,
    },
    /// The published digest is not `sha256:<64 hex>`.
    #[error("published digest {0:?} is not sha256:<64 lowercase hex>")]
    InvalidDigest(String),
    /// The download did not finish within the timeout.
    #[error("GET {url}: timed out after {seconds}s")]
    Timeout {
        /// The URL.
        url: String,
        /// The timeout.
        seconds: u64,
    },
    /// Connecting or reading failed.
    #[error("GET {url}: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
}

impl FetchError {
    /// A stable category name, for condition reasons, event reasons and metric labels.
    pub fn category(&self) -> &'static str {
        match self {
            FetchError::NotFound { .. } => "NotFound",
            FetchError::InvalidUrl { .. } => "InvalidUrl",
            FetchError::Status { .. } => "HttpStatus",
            FetchError::TooLarge { .. } => "TooLarge",
            FetchError::DigestMismatch { .. } => "DigestMismatch",
            FetchError::InvalidDigest(_) => "InvalidDigest",
            FetchError::Timeout { .. } => "Timeout",
            FetchError::Transport { .. } => "Transport",
        }
    }

    /// Whether trying again later may succeed (a producer not ready or a passing fault), as
    /// opposed to bad data that will stay bad.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            FetchError::NotFound { .. }
                | FetchError::Timeout { .. }
                | FetchError::Transport { .. }
                | FetchError::Status { .. }
        )
    }
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
