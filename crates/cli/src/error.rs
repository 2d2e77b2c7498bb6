//! Why a command failed, and the exit code a script sees.

/// Exit codes of `weir` (also listed in `weir --help`).
pub mod exit {
    /// The command did what was asked (for `diff`: no differences).
    pub const OK: u8 = 0;
    /// The thing asked for failed: a build error, a reconcile that ended `Ready=False`, or
    /// (`diff`) differences were found.
    pub const FAILED: u8 = 1;
    /// The command line is wrong (unknown command, flag or kind, bad value).
    pub const USAGE: u8 = 2;
    /// The named object, or its kind in the cluster (CRD not installed), does not exist.
    pub const NOT_FOUND: u8 = 3;
    /// The cluster could not be reached, or refused our credentials.
    pub const UNREACHABLE: u8 = 4;
    /// A `--timeout` ran out before the controller finished.
    pub const TIMEOUT: u8 = 5;
    /// `diff` could not compute the differences (render, download or dry-run failed).
    pub const DIFF_ERROR: u8 = 6;
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line is wrong.
    #[error("{0} (see weir --help)")]
    Usage(String),
    /// A local input (directory, file) is unusable.
    #[error("{path}: {reason}")]
    Input {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The render failed.
    #[error(transparent)]
    Build(#[from] weir_kustomize::Error),
    /// An object or kind does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The cluster could not be reached or refused the credentials.
    #[error("{0}")]
    Unreachable(String),
    /// The kubeconfig could not be read or used.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// The apiserver refused a request for another reason.
    #[error("{0}")]
    Api(String),
    /// What was asked failed (reconcile ended not ready, a controller is not running, …).
    #[error("{0}")]
    Failed(String),
    /// `diff` could not compute the differences.
    #[error("{0}")]
    DiffFailed(String),
    /// `diff` found differences; the diff itself is already printed.
    #[error("differences found")]
    Differences,
    /// A `--timeout` ran out.
    #[error("{0}")]
    Timeout(String),
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[source] std::io::Error),
}

impl Error {
    /// The process exit code (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::NotFound(_) => exit::NOT_FOUND,
            Error::Unreachable(_) | Error::Kubeconfig(_) => exit::UNREACHABLE,
            Error::Timeout(_) => exit::TIMEOUT,
            Error::DiffFailed(_) => exit::DIFF_ERROR,
            Error::Input { .. }
            | Error::Build(_)
            | Error::Api(_)
            | Error::Failed(_)
            | Error::Differences
            | Error::Output(_) => exit::FAILED,
        }
    }

    /// Whether `main` should print the error (a found diff is reported by the diff itself).
    pub fn is_silent(&self) -> bool {
        matches!(self, Error::Differences)
    }

    /// `error: <message>` on one line (inner line breaks become spaces).
    pub fn one_line(&self) -> String {
        let message = self.to_string();
        format!(
            "error: {}",
            message.split_whitespace().collect::<Vec<_>>().join(" ")
        )
    }

    /// Classifies a Kubernetes client error; `what` names the object or list asked for, used in
    /// the not-found message.
    pub fn kube(e: kube::Error, what: &str) -> Error {
        match e {
            kube::Error::Api(status) => match status.code {
                404 => Error::NotFound(format!("{what} not found")),
                401 => Error::Unreachable(format!(
                    "the cluster refused our credentials (401 Unauthorized): {}",
                    status.message
                )),
                403 => Error::Api(format!("forbidden: {}", status.message)),
                _ => Error::Api(format!("{what}: {}", status.message)),
            },
            kube::Error::HyperError(_)
            | kube::Error::Service(_)
            | kube::Error::HttpError(_)
            | kube::Error::TlsRequired
            | kube::Error::RustlsTls(_) => {
                Error::Unreachable(format!("cannot reach the cluster: {}", chain(&e)))
            }
            kube::Error::Auth(_) => {
                Error::Unreachable(format!("cannot authenticate to the cluster: {}", chain(&e)))
            }
            other => Error::Api(format!("{what}: {}", chain(&other))),
        }
    }
}

/// An error and its sources on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use kube::core::{Status, response::StatusDetails};

    use super::*;
    use crate::kinds::APPLY;

    fn api(code: u16, details: Option<StatusDetails>) -> kube::Error {
        let mut s = Status::failure("the message", "Reason").with_code(code);
        s.details = details;
        kube::Error::Api(s.boxed())
    }

    #[test]
    fn apiserver_answers_map_to_documented_exit_codes() {
        let named: StatusDetails =
            serde_json::from_value(serde_json::json!({ "name": "web", "kind": "applies" }))
                .unwrap();
        let e = APPLY.not_found(api(404, Some(named)), "ns", "web");
        assert_eq!(
            (e.exit_code(), e.to_string()),
            (
                exit::NOT_FOUND,
                "apply/web in namespace ns not found".into()
            )
        );
        // A 404 that names nothing: the kind itself is missing.
        let e = APPLY.not_found(api(404, None), "ns", "web");
        assert_eq!(e.exit_code(), exit::NOT_FOUND);
        assert!(e.to_string().contains("CRDs are not installed"), "{e}");
        assert_eq!(
            Error::kube(api(401, None), "x").exit_code(),
            exit::UNREACHABLE
        );
        assert_eq!(Error::kube(api(403, None), "x").exit_code(), exit::FAILED);
        assert_eq!(Error::kube(api(500, None), "x").exit_code(), exit::FAILED);
    }

    #[test]
    fn every_error_is_one_line() {
        let e = Error::Failed("first\nsecond\tthird".into());
        assert_eq!(e.one_line(), "error: first second third");
    }
}
