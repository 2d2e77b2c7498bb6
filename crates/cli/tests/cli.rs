//! The `weir` binary as a user runs it: exit codes, stdout, and one-line errors on stderr.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{path::Path, process::Output};

fn weir(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that stderr is exactly one line starting with `error: ` and containing `wanted`.
fn assert_one_error_line(out: &Output, wanted: &str) {
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "stderr: {err:?}");
    assert!(err.starts_with("error: "), "stderr: {err:?}");
    assert!(err.contains(wanted), "stderr {err:?} lacks {wanted:?}");
    assert!(
        out.stdout.is_empty(),
        "stdout: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

#[test]
fn builds_a_plain_directory_of_yaml() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "b.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  k: v\n",
            ),
            (
                "a.yaml",
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  ports:\n  - port: 80\n",
            ),
        ],
    );
    let out = weir(&["build", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("kind: ConfigMap"), "{text}");
    assert!(
        text.contains("name: a") && text.contains("name: b"),
        "{text}"
    );
    assert!(text.contains("\n---\n"), "{text}");
}

#[test]
fn builds_a_kustomization_with_prefix_and_namespace() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "kustomization.yaml",
                "resources:\n- cm.yaml\nnamePrefix: dev-\nnamespace: team\n",
            ),
            (
                "cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
            ),
        ],
    );
    let out = weir(&[
        "build",
        dir.path().to_str().unwrap(),
        "--load-restrictor",
        "LoadRestrictionsNone",
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dev-app\n  namespace: team\n"
    );
}

#[test]
fn a_missing_directory_exits_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let out = weir(&["build", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_one_error_line(&out, "no such directory");
}

#[test]
fn malformed_yaml_exits_1_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[(
            "broken.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed\n",
        )],
    );
    let out = weir(&["build", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_one_error_line(&out, "broken.yaml");
}

#[test]
fn bad_usage_exits_2() {
    for args in [
        &[][..],
        &["frobnicate"][..],
        &["build", ".", "--load-restrictor", "sometimes"][..],
        &["build", ".", "--unknown"][..],
    ] {
        let out = weir(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_one_error_line(&out, "see weir --help");
    }
}

#[test]
fn help_and_version_go_to_stdout() {
    let out = weir(&["--help"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("weir build <dir>")
    );
    let out = weir(&["--version"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("weir 0.")
    );
}
