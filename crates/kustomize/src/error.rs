//! The engine's error type. Every error names the file or object it is about.

use crate::yaml::YamlError;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file is not valid YAML (or has a duplicate key).
    #[error("malformed YAML in {file}: {source}")]
    Yaml {
        /// The file, relative to the build root.
        file: String,
        /// The parser's complaint with its line.
        #[source]
        source: YamlError,
    },
    /// A file or directory could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The path as written in the kustomization.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A path leaves the directory it is confined to.
    #[error(
        "security; file '{path}' is not in or below '{root}' (use --load-restrictor LoadRestrictionsNone to allow it)"
    )]
    Restricted {
        /// The offending path.
        path: String,
        /// The root it must stay under.
        root: String,
    },
    /// A path leaves the sandbox (the artifact or repository root); never allowed.
    #[error("path '{path}' escapes the build sandbox '{root}'")]
    Escape {
        /// The offending path.
        path: String,
        /// The sandbox root.
        root: String,
    },
    /// A remote base (URL or git reference).
    #[error("remote bases are not supported: '{0}' (vendor it into the repository instead)")]
    Remote(String),
    /// A kustomization refers back to itself through its bases.
    #[error("cycle detected: '{0}' is already being built (its bases include itself)")]
    Cycle(String),
    /// A limit (file size, total size, object count) was exceeded.
    #[error("{0}")]
    Limit(String),
    /// A kustomization, generator or transformer configuration is invalid.
    #[error("invalid {what} in {file}: {message}")]
    Invalid {
        /// What was being read (`Kustomization`, `Component`, `patch`, …).
        what: String,
        /// The file.
        file: String,
        /// The problem.
        message: String,
    },
    /// Two objects with the same id.
    #[error("may not add resource with an already registered id: {0}")]
    Conflict(String),
    /// A feature that needs something outside this engine (helm, exec plugins).
    #[error("{0} is not supported by weir's render engine")]
    Unsupported(String),
    /// Any other failure during a transformation, with what was being done.
    #[error("{0}")]
    Other(String),
    /// An error with the step that produced it.
    #[error("{context}: {source}")]
    Context {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// Wraps the error with what was being done.
    pub fn context(self, context: impl Into<String>) -> Error {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// A free-form error.
    pub fn msg(message: impl Into<String>) -> Error {
        Error::Other(message.into())
    }

    /// The innermost error (without the context chain).
    pub fn root_cause(&self) -> &Error {
        match self {
            Error::Context { source, .. } => source.root_cause(),
            other => other,
        }
    }
}

/// Adds context to results.
pub trait ResultExt<T> {
    /// Wraps an error with what was being done.
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| e.context(context()))
    }
}
