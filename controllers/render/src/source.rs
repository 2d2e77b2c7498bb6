//! Finding a Render's source and reading its artifact, for any kind.
//!
//! The source is read as a dynamic object: whatever its kind, the render-controller only needs
//! `status.artifact` (GUIDE §4). A new producer kind plugs in without a change here; the table
//! below only supplies the `apiVersion` of weir's own kinds when a reference leaves it out.

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

/// Resolves `reference`, made by the Render `render_name` in `render_namespace`, to the
/// source object it names.
///
/// Refuses, as Stalled failures: a reference to another namespace when `allow_cross_namespace`
/// is false (`AccessDenied`, as Flux), an unknown kind without `apiVersion`, a malformed
/// `apiVersion`, and a Render that names itself.
pub fn resolve(
    render_namespace: &str,
    render_name: &str,
    reference: &SourceReference,
    allow_cross_namespace: bool,
) -> Result<SourceKey, Failure> {
    let namespace = reference
        .namespace
        .clone()
        .unwrap_or_else(|| render_namespace.to_owned());
    if namespace != render_namespace && !allow_cross_namespace {
        return Err(Failure::stalled(
            reasons::ACCESS_DENIED,
            format!(
                "cross-namespace references are not allowed (--no-cross-namespace-refs): {} '{namespace}/{}'",
                reference.kind, reference.name
            ),
        ));
    }
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
    let gvk = GroupVersionKind::gvk(group, version, &reference.kind);
    if gvk.group == weir_api::render::GROUP
        && gvk.kind == "Render"
        && namespace == render_namespace
        && reference.name == render_name
    {
        return Err(Failure::stalled(
            reasons::INVALID_SPEC,
            "a Render cannot use itself as its source",
        ));
    }
    Ok(SourceKey {
        gvk,
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
        let key = resolve("ns", "r", &reference(None, "GitRepository", None), true).unwrap();
        assert_eq!(
            key.gvk,
            GroupVersionKind::gvk("source.weir.dev", "v1alpha1", "GitRepository")
        );
        assert_eq!((key.namespace.as_str(), key.name.as_str()), ("ns", "app"));
        let other = resolve(
            "ns",
            "r",
            &reference(Some("example.com/v1"), "Bucket", Some("other")),
            true,
        )
        .unwrap();
        assert_eq!(
            other.gvk,
            GroupVersionKind::gvk("example.com", "v1", "Bucket")
        );
        assert_eq!(other.namespace, "other");
        let core = resolve("ns", "r", &reference(Some("v1"), "ConfigMap", None), true).unwrap();
        assert_eq!(core.gvk, GroupVersionKind::gvk("", "v1", "ConfigMap"));

        let unknown = resolve("ns", "r", &reference(None, "Bucket", None), true).unwrap_err();
        assert_eq!(unknown.reason, reasons::INVALID_SPEC);
        assert!(unknown.is_stalled());
        for bad in ["a/b/c", "/v1", "example.com/"] {
            let e = resolve("ns", "r", &reference(Some(bad), "X", None), true).unwrap_err();
            assert_eq!(e.reason, reasons::INVALID_SPEC, "{bad}");
        }
    }

    #[test]
    fn cross_namespace_refs_follow_the_flag() {
        let r = reference(None, "GitRepository", Some("elsewhere"));
        assert!(resolve("ns", "r", &r, true).is_ok());
        let denied = resolve("ns", "r", &r, false).unwrap_err();
        assert_eq!(denied.reason, reasons::ACCESS_DENIED);
        assert!(denied.is_stalled());
        // The same namespace spelled out is not a cross-namespace reference.
        assert!(
            resolve(
                "ns",
                "r",
                &reference(None, "GitRepository", Some("ns")),
                false
            )
            .is_ok()
        );
    }

    #[test]
    fn a_render_cannot_render_itself() {
        let mut r = reference(None, "Render", None);
        r.name = "me".into();
        assert_eq!(
            resolve("ns", "me", &r, true).unwrap_err().reason,
            reasons::INVALID_SPEC
        );
        assert!(resolve("ns", "other", &r, true).is_ok());
    }
}
