//! The weir kinds the CLI knows, and the names people type for them.
//!
//! Every command works on [`DynamicObject`]s through this table, so a new kind is one more
//! entry, not a new branch in every command.

use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject},
};
use serde_json::Value;

use crate::error::{Error, Result};

/// One weir kind.
#[derive(Debug, PartialEq, Eq)]
pub struct WeirKind {
    /// The kind, e.g. `GitRepository`.
    pub kind: &'static str,
    /// The API group.
    pub group: &'static str,
    /// The API version (without the group).
    pub version: &'static str,
    /// The plural resource name.
    pub plural: &'static str,
    /// Every name accepted on the command line (lowercase): singular, plural, short names.
    pub names: &'static [&'static str],
    /// The JSON path segments of the revision this kind reports.
    pub revision_path: &'static [&'static str],
    /// Whether it reads `spec.sourceRef` (a consumer in the pipeline).
    pub has_source: bool,
    /// Whether it is a step of the source → render → apply pipeline (`weir get all` chains).
    pub in_pipeline: bool,
}

/// GitRepository.
pub const GIT_REPOSITORY: WeirKind = WeirKind {
    kind: "GitRepository",
    group: weir_api::source::GROUP,
    version: "v1alpha1",
    plural: "gitrepositories",
    names: &[
        "gitrepository",
        "gitrepositories",
        "gitrepo",
        "gitrepos",
        "source",
        "sources",
    ],
    revision_path: &["status", "artifact", "revision"],
    has_source: false,
    in_pipeline: true,
};

/// Receiver: a webhook that requests reconciles; it has no revision and no place in a chain.
pub const RECEIVER: WeirKind = WeirKind {
    kind: "Receiver",
    group: weir_api::source::GROUP,
    version: "v1alpha1",
    plural: "receivers",
    names: &["receiver", "receivers", "rcv"],
    revision_path: &[],
    has_source: false,
    in_pipeline: false,
};

/// Render.
pub const RENDER: WeirKind = WeirKind {
    kind: "Render",
    group: weir_api::render::GROUP,
    version: "v1alpha1",
    plural: "renders",
    names: &["render", "renders", "rnd"],
    revision_path: &["status", "artifact", "revision"],
    has_source: true,
    in_pipeline: true,
};

/// Apply.
pub const APPLY: WeirKind = WeirKind {
    kind: "Apply",
    group: weir_api::apply::GROUP,
    version: "v1alpha1",
    plural: "applies",
    names: &["apply", "applies", "apl"],
    revision_path: &["status", "lastAppliedRevision"],
    has_source: true,
    in_pipeline: true,
};

/// Every kind, sources first, in pipeline order.
pub const ALL: [&WeirKind; 4] = [&GIT_REPOSITORY, &RECEIVER, &RENDER, &APPLY];

impl WeirKind {
    /// The kind a command-line name means (case-insensitive; also `Kind` and `kind.group`).
    pub fn parse(name: &str) -> Result<&'static WeirKind> {
        let lower = name.to_ascii_lowercase();
        let bare = lower.split('.').next().unwrap_or_default();
        ALL.into_iter()
            .find(|k| {
                k.names.contains(&lower.as_str())
                    || (k.names.contains(&bare) && lower == format!("{bare}.{}", k.group))
            })
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown kind '{name}': expected gitrepository (gitrepo, source), receiver (rcv), render (rnd) or apply (apl)"
                ))
            })
    }

    /// The kind of a `spec.sourceRef` (`kind` and optional `apiVersion`), if weir knows it.
    pub fn of_reference(kind: &str, api_version: Option<&str>) -> Option<&'static WeirKind> {
        ALL.into_iter().find(|k| {
            k.kind == kind && api_version.is_none_or(|v| v.split('/').next() == Some(k.group))
        })
    }

    /// The API resource for dynamic access.
    pub fn resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.into(),
            version: self.version.into(),
            api_version: format!("{}/{}", self.group, self.version),
            kind: self.kind.into(),
            plural: self.plural.into(),
        }
    }

    /// `kind/name`, lowercase kind, as in `kubectl` messages.
    pub fn display(&self, name: &str) -> String {
        format!("{}/{name}", self.kind.to_ascii_lowercase())
    }

    /// An API in `namespace`, or across all namespaces.
    pub fn api(&self, client: &Client, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.resource()),
            None => Api::all_with(client.clone(), &self.resource()),
        }
    }

    /// The revision the object reports, if any.
    pub fn revision(&self, obj: &DynamicObject) -> Option<String> {
        if self.revision_path.is_empty() {
            return None;
        }
        let mut v = &obj.data;
        for segment in self.revision_path {
            v = v.get(segment)?;
        }
        v.as_str().map(str::to_owned)
    }

    /// Fetches `name`, turning a 404 into a clear not-found error.
    pub async fn get(&self, client: &Client, namespace: &str, name: &str) -> Result<DynamicObject> {
        self.api(client, Some(namespace))
            .get(name)
            .await
            .map_err(|e| self.not_found(e, namespace, name))
    }

    /// Classifies an error of a request for `name`.
    pub fn not_found(&self, e: kube::Error, namespace: &str, name: &str) -> Error {
        match &e {
            // A missing object names itself in the details; a missing kind names nothing.
            kube::Error::Api(s)
                if s.code == 404 && s.details.as_ref().is_none_or(|d| d.name.is_empty()) =>
            {
                self.kind_missing()
            }
            _ => Error::kube(
                e,
                &format!("{} in namespace {namespace}", self.display(name)),
            ),
        }
    }

    /// The error for a kind whose CRD is not installed.
    pub fn kind_missing(&self) -> Error {
        Error::NotFound(format!(
            "the cluster has no {} kind ({}): the weir CRDs are not installed (run weir install)",
            self.kind, self.plural,
        ))
    }
}

/// A condition of an object's `status.conditions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConditionView {
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// The reason.
    pub reason: String,
    /// The message.
    pub message: String,
}

/// The condition `type_` of `obj`, if present.
pub fn condition(obj: &DynamicObject, type_: &str) -> Option<ConditionView> {
    let list = obj.data.get("status")?.get("conditions")?.as_array()?;
    let c = list
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?;
    let field = |k: &str| {
        c.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Some(ConditionView {
        status: field("status"),
        reason: field("reason"),
        message: field("message"),
    })
}

/// `spec.suspend`.
pub fn suspended(obj: &DynamicObject) -> bool {
    obj.data
        .pointer("/spec/suspend")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// A `spec.sourceRef`: kind, name, namespace (defaulted to the object's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// The kind.
    pub kind: String,
    /// `apiVersion`, if given.
    pub api_version: Option<String>,
    /// The name.
    pub name: String,
    /// The namespace (the consumer's when not given).
    pub namespace: String,
}

/// The `spec.sourceRef` of `obj`.
pub fn source_ref(obj: &DynamicObject) -> Option<SourceRef> {
    let r = obj.data.pointer("/spec/sourceRef")?;
    let s = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_owned);
    Some(SourceRef {
        kind: s("kind")?,
        api_version: s("apiVersion"),
        name: s("name")?,
        namespace: s("namespace")
            .or_else(|| obj.metadata.namespace.clone())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_names_and_short_names() {
        for (name, kind) in [
            ("gitrepo", "GitRepository"),
            ("GitRepository", "GitRepository"),
            ("gitrepositories.source.weir.dev", "GitRepository"),
            ("sources", "GitRepository"),
            ("rnd", "Render"),
            ("renders", "Render"),
            ("apl", "Apply"),
            ("Applies", "Apply"),
            ("rcv", "Receiver"),
            ("receivers.source.weir.dev", "Receiver"),
        ] {
            assert_eq!(WeirKind::parse(name).unwrap().kind, kind, "{name}");
        }
        for bad in ["deployment", "gitrepo.apps", ""] {
            let e = WeirKind::parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::USAGE);
            assert!(e.one_line().contains("unknown kind"), "{}", e.one_line());
        }
    }

    #[test]
    fn references_resolve_by_kind_and_group() {
        assert_eq!(WeirKind::of_reference("Render", None), Some(&RENDER));
        assert_eq!(
            WeirKind::of_reference("GitRepository", Some("source.weir.dev/v1alpha1")),
            Some(&GIT_REPOSITORY)
        );
        assert_eq!(
            WeirKind::of_reference("GitRepository", Some("source.toolkit.fluxcd.io/v1")),
            None
        );
        assert_eq!(WeirKind::of_reference("Bucket", None), None);
    }
}
