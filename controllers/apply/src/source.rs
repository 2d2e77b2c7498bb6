//! Finding an Apply's source and reading its artifact, for any kind.
//!
//! The source is read as a dynamic object: whatever its kind, the apply-controller only needs
//! `status.artifact` (GUIDE §4). A Render, a GitRepository of plain YAML, or a producer kind weir
//! does not know all work; the table below only supplies the `apiVersion` of weir's own kinds when
//! a reference leaves it out.

use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind},
};
use weir_api::{Artifact, SourceReference, conditions::reasons};

use crate::error::Failure;

pub use weir_runtime::sources::{SourceKey, artifact_version, object_artifact_version};

/// The `apiVersion` assumed for a `sourceRef` that names only a kind.
const DEFAULT_API_VERSIONS: &[(&str, &str)] = &[
    ("GitRepository", "source.weir.dev/v1alpha1"),
    ("Render", "render.weir.dev/v1alpha1"),
];

/// The namespace a reference made from `own_namespace` points into, refused (Stalled,
/// `AccessDenied` as in Flux) when it is another namespace and cross-namespace references are
/// not allowed.
pub fn referenced_namespace(
    own_namespace: &str,
    referenced: Option<&str>,
    what: &str,
    allow_cross_namespace: bool,
) -> Result<String, Failure> {
    let namespace = referenced.unwrap_or(own_namespace).to_owned();
    if namespace != own_namespace && !allow_cross_namespace {
        return Err(Failure::stalled(
            reasons::ACCESS_DENIED,
            format!(
                "cross-namespace references are not allowed (--no-cross-namespace-refs): {what} in namespace '{namespace}'"
            ),
        ));
    }
    Ok(namespace)
}

/// Resolves `reference`, made by an Apply in `namespace`, to the source object it names.
///
/// Refuses, as Stalled failures: a reference to another namespace when `allow_cross_namespace`
/// is false, an unknown kind without `apiVersion`, and a malformed `apiVersion`.
pub fn resolve(
    namespace: &str,
    reference: &SourceReference,
    allow_cross_namespace: bool,
) -> Result<SourceKey, Failure> {
    let namespace = referenced_namespace(
        namespace,
        reference.namespace.as_deref(),
        &format!("sourceRef {} '{}'", reference.kind, reference.name),
        allow_cross_namespace,
    )?;
    let api_version = match &reference.api_version {
        Some(v) => v.as_str(),
        None => DEFAULT_API_VERSIONS
            .iter()
            .find(|(kind, _)| *kind == reference.kind)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                Failure::stalled(
                    reasons::INVALID_SPEC,
                    format!(
                        "sourceRef.apiVersion is required for kind '{}'",
                        reference.kind
                    ),
                )
            })?,
    };
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    if version.is_empty()
        || version.contains('/')
        || (group.is_empty() && api_version.contains('/'))
    {
        return Err(Failure::stalled(
            reasons::INVALID_SPEC,
            format!("sourceRef.apiVersion '{api_version}' is not <group>/<version> or <version>"),
        ));
    }
    Ok(SourceKey {
        gvk: GroupVersionKind::gvk(group, version, &reference.kind),
        namespace,
        name: reference.name.clone(),
    })
}

/// What the source holds now.
pub enum SourceState {
    /// The object does not exist.
    Missing,
    /// It exists without an artifact.
    NoArtifact,
    /// Its artifact.
    Ready(Artifact),
}

/// Reads the source object and its `status.artifact`.
pub async fn read(
    client: &Client,
    resource: &ApiResource,
    key: &SourceKey,
) -> Result<SourceState, Failure> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &key.namespace, resource);
    let obj = api.get_opt(&key.name).await.map_err(|e| {
        Failure::transient(reasons::SOURCE_NOT_READY, format!("reading {key}: {e}"))
    })?;
    let Some(obj) = obj else {
        return Ok(SourceState::Missing);
    };
    let Some(raw) = obj.data.get("status").and_then(|s| s.get("artifact")) else {
        return Ok(SourceState::NoArtifact);
    };
    if raw.is_null() {
        return Ok(SourceState::NoArtifact);
    }
    serde_json::from_value::<Artifact>(raw.clone())
        .map(SourceState::Ready)
        .map_err(|e| {
            Failure::persistent(
                reasons::ARTIFACT_FETCH_FAILED,
                format!("{key} has a malformed status.artifact: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(api_version: Option<&str>, kind: &str, ns: Option<&str>) -> SourceReference {
        SourceReference {
            api_version: api_version.map(Into::into),
            kind: kind.into(),
            name: "app".into(),
            namespace: ns.map(Into::into),
        }
    }

    #[test]
    fn defaults_the_api_version_of_weir_kinds_only() {
        let key = resolve("ns", &reference(None, "Render", None), true).unwrap();
        assert_eq!(
            key.gvk,
            GroupVersionKind::gvk("render.weir.dev", "v1alpha1", "Render")
        );
        assert_eq!((key.namespace.as_str(), key.name.as_str()), ("ns", "app"));
        let other = resolve(
            "ns",
            &reference(Some("example.com/v1"), "Bucket", Some("other")),
            true,
        )
        .unwrap();
        assert_eq!(
            other.gvk,
            GroupVersionKind::gvk("example.com", "v1", "Bucket")
        );
        assert_eq!(other.namespace, "other");
        let unknown = resolve("ns", &reference(None, "Bucket", None), true).unwrap_err();
        assert_eq!(unknown.reason, reasons::INVALID_SPEC);
        assert!(unknown.is_stalled());
        for bad in ["a/b/c", "/v1", "example.com/"] {
            let e = resolve("ns", &reference(Some(bad), "X", None), true).unwrap_err();
            assert_eq!(e.reason, reasons::INVALID_SPEC, "{bad}");
        }
    }

    #[test]
    fn cross_namespace_refs_follow_the_flag() {
        let r = reference(None, "Render", Some("elsewhere"));
        assert!(resolve("ns", &r, true).is_ok());
        let denied = resolve("ns", &r, false).unwrap_err();
        assert_eq!(denied.reason, reasons::ACCESS_DENIED);
        assert!(denied.is_stalled());
        assert!(resolve("ns", &reference(None, "Render", Some("ns")), false).is_ok());
    }
}
