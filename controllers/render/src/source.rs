//! Finding a Render's source and reading its artifact, for any kind: the shared logic of
//! [`weir_runtime::sources`] (a new producer kind plugs in without a change here), with its
//! errors turned into this controller's [`Failure`]s, plus the one rule of a Render's own: it
//! cannot render itself.

use kube::{Client, api::ApiResource};
use weir_api::{SourceReference, conditions::reasons};
use weir_runtime::sources;

use crate::error::Failure;

pub use weir_runtime::sources::{
    SourceKey, SourceState, artifact_version, object_artifact_version,
};

/// Resolves `reference`, made by the Render `render_name` in `render_namespace`, to the
/// source object it names.
///
/// Refuses, as Stalled failures: a reference to another namespace when `allow_cross_namespace`
/// is false (`AccessDenied`, as Flux), an unknown kind without `apiVersion`, a malformed
/// `apiVersion`, and a Render that names itself (`InvalidSpec`).
pub fn resolve(
    render_namespace: &str,
    render_name: &str,
    reference: &SourceReference,
    allow_cross_namespace: bool,
) -> Result<SourceKey, Failure> {
    let key = sources::resolve(render_namespace, reference, allow_cross_namespace)?;
    if key.gvk.group == weir_api::render::GROUP
        && key.gvk.kind == "Render"
        && key.namespace == render_namespace
        && key.name == render_name
    {
        return Err(Failure::stalled(
            reasons::INVALID_SPEC,
            "a Render cannot use itself as its source",
        ));
    }
    Ok(key)
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
        let unknown = resolve("ns", "r", &reference(None, "Bucket", None), true).unwrap_err();
        assert_eq!(unknown.reason, reasons::INVALID_SPEC);
        assert!(unknown.is_stalled());
        let r = reference(None, "GitRepository", Some("elsewhere"));
        let denied = resolve("ns", "r", &r, false).unwrap_err();
        assert_eq!(denied.reason, reasons::ACCESS_DENIED);
        assert!(denied.is_stalled());
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
        // The same name in another namespace is another object.
        r.namespace = Some("elsewhere".into());
        assert!(resolve("ns", "me", &r, true).is_ok());
    }
}
