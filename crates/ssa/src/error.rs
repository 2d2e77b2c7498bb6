//! The engine's one error type.

use std::fmt;

use crate::{engine::ApplyOutcome, manifest::ObjectRef};

/// A [`Result`](std::result::Result) whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the engine can fail with. Every variant that concerns one object names it, and
/// [`Error::category`] gives a stable name for Event reasons, condition reasons and metric labels.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A YAML document of the manifest set could not be read as a Kubernetes object.
    #[error("manifest document {document}: {message}")]
    InvalidManifest {
        /// 1-based index of the document in the set.
        document: usize,
        /// What is wrong with it.
        message: String,
    },

    /// The same object appears twice in the set.
    #[error("{object}: appears more than once in the manifest set")]
    Duplicate {
        /// The repeated object.
        object: Box<ObjectRef>,
    },

    /// The apiserver serves no such group/version/kind and no CRD of the set defines it.
    #[error("{object}: unknown kind: the apiserver serves no {api_version} {kind}", api_version = object.api_version(), kind = object.kind)]
    UnknownKind {
        /// The object of the unknown kind.
        object: Box<ObjectRef>,
    },

    /// A namespaced object has no namespace (and no default was given), or its namespace exists
    /// neither in the cluster nor in the set.
    #[error("{object}: {message}")]
    NamespaceMissing {
        /// The object.
        object: Box<ObjectRef>,
        /// Which namespace is missing.
        message: String,
    },

    /// The apiserver rejected the object (schema, validation, admission), in the dry-run or the
    /// apply.
    #[error("{object}: invalid: {message}")]
    ValidationFailed {
        /// The object.
        object: Box<ObjectRef>,
        /// The apiserver's message.
        message: String,
    },

    /// The change touches an immutable field; apply with `force` to recreate the object.
    #[error("{object}: immutable field changed (apply with force to recreate): {message}")]
    ImmutableField {
        /// The object.
        object: Box<ObjectRef>,
        /// The apiserver's message.
        message: String,
    },

    /// Another field manager that uses server-side apply owns fields this set sets.
    #[error(
        "{object}: field ownership conflict with {managers:?} (apply with force to take ownership): {message}"
    )]
    Conflict {
        /// The object.
        object: Box<ObjectRef>,
        /// The conflicting managers, as the apiserver names them.
        managers: Vec<String>,
        /// The apiserver's message.
        message: String,
    },

    /// The credentials in use may not do this.
    #[error("{object}: forbidden: {message}")]
    Forbidden {
        /// The object.
        object: Box<ObjectRef>,
        /// The apiserver's message.
        message: String,
    },

    /// A definition (CRD, Namespace) or a recreated object did not reach the expected state in
    /// time.
    #[error("{object}: {message}")]
    NotReady {
        /// The object.
        object: Box<ObjectRef>,
        /// What was awaited.
        message: String,
    },

    /// Any other failed request about an object.
    #[error("{object}: {operation}: {source}")]
    Api {
        /// The object.
        object: Box<ObjectRef>,
        /// What the engine was doing (`get`, `dry-run`, `apply`, `delete`).
        operation: &'static str,
        /// The client's error.
        #[source]
        source: kube::Error,
    },

    /// Discovery of the apiserver's kinds failed.
    #[error("discovery failed: {0}")]
    Discovery(#[source] kube::Error),

    /// The set was rejected before any write (or, for objects that depend on definitions of the
    /// same set, before any write after the definitions stage — then inside an
    /// [`Error::Partial`]): one error per offending object.
    #[error("{} object(s) rejected: {}", errors.len(), JoinErrors(errors))]
    Rejected {
        /// The per-object errors, in apply order.
        errors: Vec<Error>,
    },

    /// An apply failed after it had begun writing: `error` is what went wrong, `outcome` what
    /// the apply reached before — the change set of the objects it handled and the inventory of
    /// those objects plus the one whose write failed. Displays as `error`, and
    /// [`Error::category`], [`Error::object_errors`] and [`Error::object`] answer for `error`.
    /// The caller adds `outcome.inventory` to the inventory it keeps (never replacing it, never
    /// pruning against it), so written objects do not escape a later prune.
    #[error("{error}")]
    Partial {
        /// What the apply reached before it failed.
        outcome: Box<ApplyOutcome>,
        /// The underlying error (never itself `Partial`).
        error: Box<Error>,
    },
}

impl Error {
    /// A stable, short, CamelCase name for this kind of error, for Event and condition reasons
    /// and metric labels. [`Error::Rejected`] reports the category of its first error.
    pub fn category(&self) -> &'static str {
        match self {
            Error::InvalidManifest { .. } => "InvalidManifest",
            Error::Duplicate { .. } => "InvalidManifest",
            Error::UnknownKind { .. } => "UnknownKind",
            Error::NamespaceMissing { .. } => "NamespaceMissing",
            Error::ValidationFailed { .. } => "ValidationFailed",
            Error::ImmutableField { .. } => "ImmutableField",
            Error::Conflict { .. } => "Conflict",
            Error::Forbidden { .. } => "Forbidden",
            Error::NotReady { .. } => "NotReady",
            Error::Api { .. } => "ApiError",
            Error::Discovery(_) => "DiscoveryFailed",
            Error::Rejected { errors } => errors.first().map_or("ApiError", Error::category),
            Error::Partial { error, .. } => error.category(),
        }
    }

    /// The errors this error stands for: the per-object errors of a [`Error::Rejected`], else
    /// itself.
    pub fn object_errors(&self) -> Vec<&Error> {
        match self {
            Error::Rejected { errors } => errors.iter().collect(),
            Error::Partial { error, .. } => error.object_errors(),
            other => vec![other],
        }
    }

    /// The object this error is about, if it is about one.
    pub fn object(&self) -> Option<&ObjectRef> {
        match self {
            Error::Duplicate { object }
            | Error::UnknownKind { object }
            | Error::NamespaceMissing { object, .. }
            | Error::ValidationFailed { object, .. }
            | Error::ImmutableField { object, .. }
            | Error::Conflict { object, .. }
            | Error::Forbidden { object, .. }
            | Error::NotReady { object, .. }
            | Error::Api { object, .. } => Some(object.as_ref()),
            Error::Partial { error, .. } => error.object(),
            Error::InvalidManifest { .. } | Error::Discovery(_) | Error::Rejected { .. } => None,
        }
    }

    /// What a failed apply reached before it failed ([`Error::Partial`]); `None` for errors
    /// raised before any write.
    pub fn partial_outcome(&self) -> Option<&ApplyOutcome> {
        match self {
            Error::Partial { outcome, .. } => Some(outcome),
            _ => None,
        }
    }

    /// The error itself, or for [`Error::Partial`] the underlying one.
    pub fn underlying(&self) -> &Error {
        match self {
            Error::Partial { error, .. } => error.underlying(),
            other => other,
        }
    }
}

struct JoinErrors<'a>(&'a [Error]);

impl fmt::Display for JoinErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Maps a failed request about `object` to the matching variant.
pub(crate) fn classify(object: &ObjectRef, operation: &'static str, error: kube::Error) -> Error {
    let kube::Error::Api(status) = &error else {
        return Error::Api {
            object: Box::new(object.clone()),
            operation,
            source: error,
        };
    };
    let message = status.message.clone();
    if status.is_forbidden() {
        return Error::Forbidden {
            object: Box::new(object.clone()),
            message,
        };
    }
    if status.is_conflict() && status.reason == "Conflict" && operation != "delete" {
        let managers = conflict_managers(status);
        return Error::Conflict {
            object: Box::new(object.clone()),
            managers,
            message,
        };
    }
    if status.is_invalid() || status.code == 400 {
        if is_immutable_message(&message) {
            return Error::ImmutableField {
                object: Box::new(object.clone()),
                message,
            };
        }
        return Error::ValidationFailed {
            object: Box::new(object.clone()),
            message,
        };
    }
    // The apiserver answers 500 when an apply body does not fit the schema (the typed patch
    // cannot be built, e.g. a string where an integer belongs): that is the object's fault.
    if message.contains("failed to create typed patch object") {
        return Error::ValidationFailed {
            object: Box::new(object.clone()),
            message,
        };
    }
    if status.is_not_found() && message.contains("namespaces") {
        return Error::NamespaceMissing {
            object: Box::new(object.clone()),
            message,
        };
    }
    Error::Api {
        object: Box::new(object.clone()),
        operation,
        source: error,
    }
}

/// Whether an apiserver message reports a change to an immutable field. Built-in validation says
/// "field is immutable" or "may not change once set"; CEL rules and webhooks conventionally say
/// "is immutable" / "immutable field" (the variants kubectl and Flux recognise).
pub(crate) fn is_immutable_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("is immutable")
        || m.contains("immutable field")
        || m.contains("may not change once set")
}

/// The managers named in an apply conflict (`conflict with "name"` or `conflict with "name"
/// using v1` in each cause), without duplicates.
pub(crate) fn conflict_managers(status: &kube::core::Status) -> Vec<String> {
    let mut texts: Vec<&str> = status
        .details
        .iter()
        .flat_map(|d| d.causes.iter().map(|c| c.message.as_str()))
        .collect();
    if texts.is_empty() {
        texts.push(&status.message);
    }
    let mut managers = Vec::new();
    for text in texts {
        let mut rest = text;
        while let Some(at) = rest.find("conflict with \"") {
            rest = &rest[at + "conflict with \"".len()..];
            let Some(end) = rest.find('"') else { break };
            let name = rest[..end].to_owned();
            if !managers.contains(&name) {
                managers.push(name);
            }
            rest = &rest[end..];
        }
    }
    managers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immutable_messages_are_recognised() {
        for m in [
            "Job.batch \"x\" is invalid: spec.template: Invalid value: ...: field is immutable",
            "Service \"s\" is invalid: spec.clusterIPs[0]: Invalid value: []string{\"10.0.0.2\"}: may not change once set",
            "Value is immutable",
        ] {
            assert!(is_immutable_message(m), "{m}");
        }
        assert!(!is_immutable_message("spec.replicas: Invalid value: \"x\""));
    }

    #[test]
    fn conflict_managers_are_read_from_causes() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "code": 409, "reason": "Conflict", "message": "Apply failed with 3 conflicts",
            "details": {"causes": [
                {"reason": "FieldManagerConflict", "message": "conflict with \"other\": .data.a", "field": ".data.a"},
                {"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-edit\" using v1: .data.b", "field": ".data.b"},
                {"reason": "FieldManagerConflict", "message": "conflict with \"other\": .data.c", "field": ".data.c"},
            ]},
        }))
        .unwrap();
        assert_eq!(conflict_managers(&status), vec!["other", "kubectl-edit"]);
    }

    #[test]
    fn partial_answers_for_its_underlying_error() {
        let object = ObjectRef {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: "ns".into(),
            name: "b".into(),
        };
        let outcome = ApplyOutcome {
            inventory: weir_api::inventory::ResourceInventory {
                entries: vec![object.entry()],
            },
            ..ApplyOutcome::default()
        };
        let partial = Error::Partial {
            outcome: Box::new(outcome.clone()),
            error: Box::new(Error::Forbidden {
                object: Box::new(object.clone()),
                message: "no".into(),
            }),
        };
        assert_eq!(partial.category(), "Forbidden");
        assert_eq!(partial.to_string(), "ConfigMap ns/b: forbidden: no");
        assert_eq!(partial.object(), Some(&object));
        assert_eq!(partial.object_errors().len(), 1);
        assert_eq!(partial.underlying().category(), "Forbidden");
        assert!(matches!(partial.underlying(), Error::Forbidden { .. }));
        assert_eq!(partial.partial_outcome(), Some(&outcome));
        assert_eq!(partial.underlying().partial_outcome(), None);
    }
}
