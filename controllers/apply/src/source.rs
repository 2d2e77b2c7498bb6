//! Finding an Apply's source and reading its artifact, for any kind: the shared logic of
//! [`weir_runtime::sources`] (a Render, a GitRepository of plain YAML, or a producer kind weir
//! does not know all work), with its errors turned into this controller's [`Failure`]s.

use kube::{Client, api::ApiResource};
use weir_api::SourceReference;
use weir_runtime::sources;

use crate::error::Failure;

pub use weir_runtime::sources::{
    SourceKey, SourceState, artifact_version, object_artifact_version,
};

/// The namespace a reference made from `own_namespace` points into, refused (Stalled,
/// `AccessDenied` as in Flux) when it is another namespace and cross-namespace references are
/// not allowed.
pub fn referenced_namespace(
    own_namespace: &str,
    referenced: Option<&str>,
    what: &str,
    allow_cross_namespace: bool,
) -> Result<String, Failure> {
    Ok(sources::referenced_namespace(
        own_namespace,
        referenced,
        what,
        allow_cross_namespace,
    )?)
}

/// Resolves `reference`, made by an Apply in `namespace`, to the source object it names.
///
/// Refuses, as Stalled failures: a reference to another namespace when `allow_cross_namespace`
/// is false (`AccessDenied`), an unknown kind without `apiVersion`, and a malformed
/// `apiVersion` (`InvalidSpec`).
pub fn resolve(
    namespace: &str,
    reference: &SourceReference,
    allow_cross_namespace: bool,
) -> Result<SourceKey, Failure> {
    Ok(sources::resolve(
        namespace,
        reference,
        allow_cross_namespace,
    )?)
}

/// Reads the source object and its `status.artifact`: an API error is transient
/// (`SourceNotReady`), a malformed artifact waits for the producer (`ArtifactFetchFailed`).
pub async fn read(
    client: &Client,
    resource: &ApiResource,
    key: &SourceKey,
) -> Result<SourceState, Failure> {
    Ok(sources::read(client, resource, key).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_api::conditions::reasons;

    fn reference(api_version: Option<&str>, kind: &str, ns: Option<&str>) -> SourceReference {
        SourceReference {
            api_version: api_version.map(Into::into),
            kind: kind.into(),
            name: "app".into(),
            namespace: ns.map(Into::into),
        }
    }

    #[test]
    fn refusals_are_stalled_with_their_reason() {
        let unknown = resolve("ns", &reference(None, "Bucket", None), true).unwrap_err();
        assert_eq!(unknown.reason, reasons::INVALID_SPEC);
        assert!(unknown.is_stalled());
        let bad = resolve("ns", &reference(Some("a/b/c"), "X", None), true).unwrap_err();
        assert_eq!(bad.reason, reasons::INVALID_SPEC);
        let r = reference(None, "Render", Some("elsewhere"));
        assert!(resolve("ns", &r, true).is_ok());
        let denied = resolve("ns", &r, false).unwrap_err();
        assert_eq!(denied.reason, reasons::ACCESS_DENIED);
        assert!(denied.is_stalled());
        let dep = referenced_namespace("ns", Some("other"), "dependsOn 'x'", false).unwrap_err();
        assert_eq!(dep.reason, reasons::ACCESS_DENIED);
        assert!(dep.message.contains("dependsOn 'x'"), "{}", dep.message);
    }
}
