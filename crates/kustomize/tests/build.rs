//! The engine against kustomize itself on weir's own fixtures (`tests/fixtures`).
//!
//! Each fixture's expected output was recorded with `kubectl kustomize` (kustomize v5.5.0) into
//! `<fixture>.expected.yaml`; when `kubectl` is on the PATH the test also runs it live on the same
//! input, so a stale recording cannot hide a difference.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use weir_kustomize::{BuildOptions, Error, LoadRestrictor, build_yaml};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn check(build_dir: &str) {
    let dir = fixtures().join(build_dir);
    let ours = build_yaml(&dir, &BuildOptions::default(), None)
        .unwrap_or_else(|e| panic!("{build_dir}: {e}"));
    let recorded = std::fs::read_to_string(
        fixtures().join(format!("{}.expected.yaml", build_dir.replace('/', "-"))),
    )
    .unwrap();
    assert_eq!(
        ours, recorded,
        "{build_dir}: differs from the recorded kustomize output"
    );
    if let Ok(out) = Command::new("kubectl").arg("kustomize").arg(&dir).output()
        && out.status.success()
    {
        assert_eq!(
            ours,
            String::from_utf8_lossy(&out.stdout),
            "{build_dir}: differs from live kubectl kustomize"
        );
    }
}

#[test]
fn overlay_with_generators_name_references_and_builtin_transformers() {
    check("app-overlay/overlay");
}

#[test]
fn strategic_merge_and_json_patches() {
    check("patches");
}

#[test]
fn components_labels_and_yaml_quoting() {
    check("components/top");
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

fn build_err(dir: &Path) -> Error {
    build_yaml(dir, &BuildOptions::default(), None).expect_err("the build must fail")
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";

#[test]
fn missing_resource_names_the_file() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        &[("kustomization.yaml", "resources:\n- nope.yaml\n")],
    );
    let e = build_err(t.path()).to_string();
    assert!(e.contains("nope.yaml") && e.contains("no such file"), "{e}");
}

#[test]
fn malformed_yaml_names_file_and_line() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        &[
            ("kustomization.yaml", "resources:\n- bad.yaml\n"),
            (
                "bad.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n",
            ),
        ],
    );
    let e = build_err(t.path()).to_string();
    assert!(e.contains("bad.yaml") && e.contains("line"), "{e}");
}

#[test]
fn duplicate_ids_are_refused() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        &[
            ("kustomization.yaml", "resources:\n- a.yaml\n- b.yaml\n"),
            ("a.yaml", CM),
            ("b.yaml", CM),
        ],
    );
    let e = build_err(t.path()).to_string();
    assert!(
        e.contains("already registered id") && e.contains("ConfigMap"),
        "{e}"
    );
}

#[test]
fn cycles_are_detected() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        &[
            ("a/kustomization.yaml", "resources:\n- ../b\n"),
            ("b/kustomization.yaml", "resources:\n- ../a\n"),
        ],
    );
    let e = build_err(&t.path().join("a")).to_string();
    assert!(e.contains("cycle"), "{e}");
}

#[test]
fn remote_bases_are_refused_clearly() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        &[(
            "kustomization.yaml",
            "resources:\n- https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v3.3.1\n",
        )],
    );
    let e = build_err(t.path()).to_string();
    assert!(e.contains("remote bases are not supported"), "{e}");
}

#[test]
fn files_above_the_kustomization_need_load_restrictions_none() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        &[
            ("app/kustomization.yaml", "resources:\n- ../shared.yaml\n"),
            ("shared.yaml", CM),
        ],
    );
    let e = build_err(&t.path().join("app")).to_string();
    assert!(e.contains("LoadRestrictionsNone"), "{e}");
    let opts = BuildOptions {
        load_restrictor: LoadRestrictor::None,
        ..BuildOptions::default()
    };
    let out = build_yaml(&t.path().join("app"), &opts, None).unwrap();
    assert!(out.contains("name: a"), "{out}");
    // The sandbox can never be left, whatever the restrictor.
    let sandboxed = BuildOptions {
        load_restrictor: LoadRestrictor::None,
        sandbox: Some(t.path().join("app")),
        ..BuildOptions::default()
    };
    let e = build_yaml(&t.path().join("app"), &sandboxed, None).unwrap_err();
    assert!(e.to_string().contains("sandbox"), "{e}");
}

#[test]
fn unknown_patch_target_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        &[
            (
                "kustomization.yaml",
                "resources:\n- cm.yaml\npatchesStrategicMerge:\n- p.yaml\n",
            ),
            ("cm.yaml", CM),
            (
                "p.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  x: y\n",
            ),
        ],
    );
    let e = build_err(t.path()).to_string();
    assert!(
        e.contains("no matches for Id ConfigMap.v1.[noGrp]/other"),
        "{e}"
    );
}

#[test]
fn plain_directories_build_when_allowed() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        &[
            ("z.yaml", CM),
            (
                "sub/b.yml",
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n\n",
            ),
            ("notes.txt", "not yaml"),
        ],
    );
    assert!(build_yaml(t.path(), &BuildOptions::default(), None).is_err());
    let opts = BuildOptions {
        plain_directories: true,
        ..BuildOptions::default()
    };
    let plain = build_yaml(t.path(), &opts, None).unwrap();
    // The same as a kustomization listing the YAML files in path order (kustomize semantics,
    // checked against kubectl by the fixture tests).
    write(
        t.path(),
        &[("kustomization.yaml", "resources:\n- sub/b.yml\n- z.yaml\n")],
    );
    let listed = build_yaml(t.path(), &BuildOptions::default(), None).unwrap();
    assert_eq!(plain, listed);
    assert!(plain.contains("kind: Namespace") && plain.contains("kind: ConfigMap"));
    assert!(!plain.contains("not yaml"));
}
