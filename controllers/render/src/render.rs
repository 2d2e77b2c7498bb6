//! The render itself, without Kubernetes: source artifact bytes in, manifests artifact out.
//!
//! 1. Extract the (already digest-verified) tar.gz into a fresh directory with weir-artifact's
//!    `untar`, which refuses links, `..`, absolute paths and oversize content.
//! 2. Build `spec.path` inside it with weir-kustomize, the extracted root as the sandbox nothing
//!    may escape, Flux's load restrictions (`LoadRestrictionsNone` inside the sandbox), Flux's
//!    plain directories (no kustomization file: every YAML file below it), and the Render's
//!    overlay on top.
//! 3. Substitute variables (when there are any).
//! 4. Pack the printed YAML as [`MANIFESTS_FILE`] in a reproducible tar.gz: the same objects
//!    give the same digest, so a commit that does not change the output changes nothing
//!    downstream.

use std::{
    collections::BTreeMap,
    path::{Component, Path, PathBuf},
};

use weir_api::conditions::reasons;
use weir_artifact::{ArchiveBuilder, PackedArtifact, UntarLimits, untar};
use weir_kustomize::{BuildOptions, LoadRestrictor, kustomization::Kustomization, substitute};

use crate::error::Failure;

/// The one file of a Render artifact: every rendered object, as `kustomize build` prints them.
pub const MANIFESTS_FILE: &str = "manifests.yaml";

/// What to render.
#[derive(Clone, Debug, Default)]
pub struct RenderInputs {
    /// `spec.path`, relative to the artifact root (`None`: the root).
    pub path: Option<String>,
    /// The overlay from the spec.
    pub overlay: Option<Kustomization>,
    /// Substitution variables, when substitution is on.
    pub vars: Option<BTreeMap<String, String>>,
    /// Bounds on what the source artifact may unpack to.
    pub untar_limits: UntarLimits,
}

/// A rendered artifact.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The packed tar.gz holding [`MANIFESTS_FILE`].
    pub packed: PackedArtifact,
    /// Number of objects rendered.
    pub objects: usize,
}

/// `spec.path` as a relative path inside the artifact: `./` and empty components dropped; an
/// absolute path or `..` is refused (the CRD's validation does the same; this guards old objects
/// and other clients).
pub fn relative_path(path: Option<&str>) -> Result<PathBuf, Failure> {
    let mut out = PathBuf::new();
    for component in Path::new(path.unwrap_or("")).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(Failure::stalled(
                    reasons::INVALID_SPEC,
                    format!(
                        "spec.path '{}' must be relative and must not contain '..'",
                        path.unwrap_or_default()
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// Renders the tar.gz `archive` (its digest already verified) as `inputs` say.
pub fn render(archive: &[u8], inputs: &RenderInputs) -> Result<Rendered, Failure> {
    let relative = relative_path(inputs.path.as_deref())?;
    let scratch = tempfile::tempdir().map_err(|e| {
        Failure::transient(
            reasons::STORAGE_OPERATION_FAILED,
            format!("creating a scratch directory: {e}"),
        )
    })?;
    // The sandbox is compared with resolved paths, so give the engine the resolved root.
    let root = scratch.path().canonicalize().map_err(|e| {
        Failure::transient(
            reasons::STORAGE_OPERATION_FAILED,
            format!("resolving the scratch directory: {e}"),
        )
    })?;
    untar(archive, &root, &inputs.untar_limits).map_err(|e| {
        Failure::persistent(
            reasons::ARTIFACT_FETCH_FAILED,
            format!("unpacking the source artifact: {e}"),
        )
    })?;
    let dir = root.join(&relative);
    if !dir.is_dir() {
        return Err(Failure::persistent(
            reasons::BUILD_FAILED,
            format!(
                "path '{}' is not a directory in the source artifact",
                relative.display()
            ),
        ));
    }
    let options = BuildOptions {
        load_restrictor: LoadRestrictor::None,
        sandbox: Some(root.clone()),
        plain_directories: true,
        ..BuildOptions::default()
    };
    let mut resmap = weir_kustomize::build(&dir, &options, inputs.overlay.as_ref())
        .map_err(|e| Failure::persistent(reasons::BUILD_FAILED, e.to_string()))?;
    if let Some(vars) = &inputs.vars {
        substitute::substitute_resources(&mut resmap, vars)
            .map_err(|e| Failure::persistent(reasons::SUBSTITUTION_FAILED, e.to_string()))?;
    }
    let objects = resmap.len();
    let yaml = weir_kustomize::build::to_yaml(&resmap);
    let mut archive = ArchiveBuilder::new();
    let packed = archive
        .add_file(MANIFESTS_FILE, yaml.into_bytes(), false)
        .and_then(|()| archive.finish())
        .map_err(|e| {
            Failure::transient(
                reasons::STORAGE_OPERATION_FAILED,
                format!("packing the manifests: {e}"),
            )
        })?;
    Ok(Rendered { packed, objects })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_artifact() {
        assert_eq!(relative_path(None).unwrap(), PathBuf::new());
        assert_eq!(
            relative_path(Some("./deploy//prod/")).unwrap(),
            PathBuf::from("deploy/prod")
        );
        for bad in ["/etc", "../x", "a/../../b"] {
            let e = relative_path(Some(bad)).unwrap_err();
            assert_eq!(e.reason, reasons::INVALID_SPEC, "{bad}");
            assert!(e.is_stalled());
        }
    }

    fn archive(files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = ArchiveBuilder::new();
        for (path, content) in files {
            b.add_file(path, content.as_bytes().to_vec(), false)
                .unwrap();
        }
        b.finish().unwrap().bytes
    }

    #[test]
    fn a_missing_path_and_a_corrupt_archive_are_failures_not_panics() {
        let a = archive(&[(
            "deploy/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
        )]);
        let e = render(
            &a,
            &RenderInputs {
                path: Some("nope".into()),
                ..RenderInputs::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.reason, reasons::BUILD_FAILED);
        assert!(e.message.contains("'nope'"), "{}", e.message);

        let e = render(b"not a tar.gz", &RenderInputs::default()).unwrap_err();
        assert_eq!(e.reason, reasons::ARTIFACT_FETCH_FAILED);
    }

    const WEB: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: ${REPLICAS:=1}\n";
    const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n";

    fn manifests(rendered: &Rendered) -> String {
        let dir = tempfile::tempdir().unwrap();
        untar(&rendered.packed.bytes, dir.path(), &UntarLimits::default()).unwrap();
        std::fs::read_to_string(dir.path().join(MANIFESTS_FILE)).unwrap()
    }

    #[test]
    fn same_objects_give_the_same_digest_whatever_the_source_looks_like() {
        let inputs = RenderInputs {
            path: Some("deploy".into()),
            ..RenderInputs::default()
        };
        let one = render(
            &archive(&[
                ("deploy/a.yaml", WEB),
                ("deploy/b.yaml", CM),
                ("README.md", "x"),
            ]),
            &inputs,
        )
        .unwrap();
        assert_eq!(one.objects, 2);
        // Other file names, another layout, other unrelated files: the same objects.
        let two = render(
            &archive(&[
                ("deploy/all.yaml", &format!("{WEB}---\n{CM}")),
                ("docs.md", "y"),
            ]),
            &inputs,
        )
        .unwrap();
        assert_eq!(one.packed.digest, two.packed.digest, "{}", manifests(&two));
        assert_eq!(one.packed.files, 1);
    }

    #[test]
    fn substitution_runs_only_with_variables_and_is_strict() {
        let a = archive(&[
            ("web.yaml", WEB),
            (
                "cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  x: ${UNSET}\n",
            ),
        ]);
        // No variables: no substitution, `${…}` stays as written.
        let plain = render(&a, &RenderInputs::default()).unwrap();
        assert!(manifests(&plain).contains("${UNSET}"));
        let vars = |pairs: &[(&str, &str)]| RenderInputs {
            vars: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..RenderInputs::default()
        };
        let e = render(&a, &vars(&[("REPLICAS", "2")])).unwrap_err();
        assert_eq!(e.reason, reasons::SUBSTITUTION_FAILED);
        assert!(e.message.contains("UNSET"), "{}", e.message);
        let ok = render(&a, &vars(&[("REPLICAS", "2"), ("UNSET", "now set")])).unwrap();
        let text = manifests(&ok);
        assert!(
            text.contains("replicas: 2\n") && text.contains("x: now set"),
            "{text}"
        );
    }
}
