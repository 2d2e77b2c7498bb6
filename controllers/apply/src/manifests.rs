//! Reading the manifests of a (digest-verified) artifact, without Kubernetes.
//!
//! 1. Extract the part of the tar.gz below `spec.path` into a fresh directory with weir-artifact's
//!    `untar_under`, which still checks every entry and refuses
//!    links, `..`, absolute paths and oversize content.
//! 2. Read every `*.yaml`, `*.yml` and `*.json` file below `spec.path` (recursively, in sorted
//!    path order, hidden files and directories skipped) with [`weir_ssa::parse_manifests`]. A
//!    Render artifact holds one `manifests.yaml`; a Git source of plain YAML holds many files.

use std::path::{Component, Path, PathBuf};

use kube::api::DynamicObject;
use weir_api::conditions::reasons;
use weir_artifact::{UntarLimits, untar_under};

use crate::error::Failure;

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

/// Extracts `archive` and reads the objects below `path`.
pub fn read(
    archive: &[u8],
    path: Option<&str>,
    limits: &UntarLimits,
) -> Result<Vec<DynamicObject>, Failure> {
    let relative = relative_path(path)?;
    let scratch = tempfile::tempdir().map_err(|e| {
        Failure::transient(
            reasons::ARTIFACT_FETCH_FAILED,
            format!("creating a scratch directory: {e}"),
        )
    })?;
    // Only `path` is unpacked: many Applies often share one large repository artifact.
    untar_under(archive, scratch.path(), limits, &relative).map_err(|e| {
        Failure::persistent(
            reasons::ARTIFACT_FETCH_FAILED,
            format!("unpacking the artifact: {e}"),
        )
    })?;
    let dir = scratch.path().join(&relative);
    if !dir.is_dir() {
        return Err(Failure::persistent(
            reasons::VALIDATION_FAILED,
            format!(
                "path '{}' is not a directory in the artifact",
                relative.display()
            ),
        ));
    }
    let mut files = Vec::new();
    collect(&dir, &mut files).map_err(|e| {
        Failure::transient(
            reasons::ARTIFACT_FETCH_FAILED,
            format!("reading the unpacked artifact: {e}"),
        )
    })?;
    files.sort();
    let mut objects = Vec::new();
    for file in files {
        let shown = file
            .strip_prefix(scratch.path())
            .unwrap_or(&file)
            .display()
            .to_string();
        let text = std::fs::read_to_string(&file).map_err(|e| {
            Failure::persistent(reasons::VALIDATION_FAILED, format!("{shown}: {e}"))
        })?;
        let parsed = weir_ssa::parse_manifests(&text).map_err(|e| {
            Failure::persistent(reasons::VALIDATION_FAILED, format!("{shown}: {e}"))
        })?;
        objects.extend(parsed);
    }
    Ok(objects)
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(&entry.path(), files)?;
        } else if kind.is_file()
            && [".yaml", ".yml", ".json"]
                .iter()
                .any(|ext| name.ends_with(ext))
        {
            files.push(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_artifact::ArchiveBuilder;

    fn archive(files: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = ArchiveBuilder::new();
        for (path, content) in files {
            builder
                .add_file(path, content.as_bytes().to_vec(), false)
                .unwrap();
        }
        builder.finish().unwrap().bytes
    }

    fn names(objects: &[DynamicObject]) -> Vec<String> {
        objects
            .iter()
            .map(|o| o.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ";

    #[test]
    fn reads_yaml_below_the_path_in_sorted_order() {
        let bytes = archive(&[
            ("deploy/b.yaml", &format!("{CM}b\n---\n{CM}c\n")),
            ("deploy/a/x.yml", &format!("{CM}a\n")),
            ("deploy/notes.txt", "not yaml"),
            ("deploy/.hidden/h.yaml", &format!("{CM}hidden\n")),
            ("other/o.yaml", &format!("{CM}o\n")),
        ]);
        let objects = read(&bytes, Some("./deploy"), &UntarLimits::default()).unwrap();
        assert_eq!(names(&objects), ["a", "b", "c"]);
        let all = read(&bytes, None, &UntarLimits::default()).unwrap();
        assert_eq!(names(&all), ["a", "b", "c", "o"]);
    }

    #[test]
    fn bad_input_is_a_failure_naming_the_file() {
        let bytes = archive(&[("m.yaml", "kind: ConfigMap\nmetadata: {name: a}\n")]);
        let e = read(&bytes, None, &UntarLimits::default()).unwrap_err();
        assert_eq!(e.reason, reasons::VALIDATION_FAILED);
        assert!(e.message.starts_with("m.yaml: "), "{}", e.message);
        let e = read(&bytes, Some("missing"), &UntarLimits::default()).unwrap_err();
        assert_eq!(e.reason, reasons::VALIDATION_FAILED);
        let e = read(&bytes, Some("../x"), &UntarLimits::default()).unwrap_err();
        assert!(e.is_stalled());
        let e = read(b"not a tarball", None, &UntarLimits::default()).unwrap_err();
        assert_eq!(e.reason, reasons::ARTIFACT_FETCH_FAILED);
    }
}
