//! Building the control-plane binaries from the Go module proxy, once per machine.
//!
//! A generated wrapper module requires `k8s.io/kubernetes` at [`KUBERNETES_VERSION`] and replaces
//! every staging module (`k8s.io/<m> v0.0.0` in that version's go.mod) with its published
//! `v0.<minor>.<patch>`; etcd comes from `go.etcd.io/etcd/server/v3/etcdmain`, the version the
//! Kubernetes module graph already selects. The result is cached in
//! `$WEIR_CACHE_DIR/k8s-<version>/bin` (default `~/.cache/weir`); `WEIR_K8S_BIN_DIR` points at
//! prebuilt binaries instead. Go's own module and build caches are left where Go keeps them, so a
//! rebuild on the same machine is incremental.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use crate::error::{Error, Result, io};

/// The Kubernetes release the control plane runs.
pub const KUBERNETES_VERSION: &str = "v1.35.8";

/// The etcd server module version (the one Kubernetes [`KUBERNETES_VERSION`] itself requires).
pub const ETCD_VERSION: &str = "v3.6.5";

/// The binaries a control plane needs, by file name.
pub const BINARIES: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// Bump when the build recipe changes, so cached binaries are rebuilt.
const RECIPE: &str = "weir-k8s-recipe-1";

/// The root of weir's cache: `$WEIR_CACHE_DIR`, else `$XDG_CACHE_HOME/weir`, else `~/.cache/weir`.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("WEIR_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("weir");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("weir")
}

/// Where the binaries are (or will be): `$WEIR_K8S_BIN_DIR` or the cache.
pub fn bin_dir() -> PathBuf {
    match std::env::var_os("WEIR_K8S_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => build_dir().join("bin"),
    }
}

fn build_dir() -> PathBuf {
    cache_root().join(format!("k8s-{KUBERNETES_VERSION}"))
}

fn stamp() -> String {
    format!("{RECIPE} kubernetes={KUBERNETES_VERSION} etcd={ETCD_VERSION}\n")
}

fn is_complete(bin: &Path) -> bool {
    let stamped = std::env::var_os("WEIR_K8S_BIN_DIR").is_some()
        || fs::read_to_string(bin.join(".stamp")).is_ok_and(|s| s == stamp());
    stamped && BINARIES.iter().all(|b| bin.join(b).is_file())
}

/// Makes sure the binaries exist, building them if needed (minutes on a cold machine; a file lock
/// serialises concurrent callers). Returns the directory that holds them.
pub fn ensure() -> Result<PathBuf> {
    let bin = bin_dir();
    if is_complete(&bin) {
        return Ok(bin);
    }
    if std::env::var_os("WEIR_K8S_BIN_DIR").is_some() {
        return Err(Error::Command {
            command: "WEIR_K8S_BIN_DIR".into(),
            detail: format!("{} lacks one of {BINARIES:?}", bin.display()),
        });
    }
    let dir = build_dir();
    fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let lock_path = dir.join(".lock");
    let lock = fs::File::create(&lock_path).map_err(io("creating", &lock_path))?;
    lock.lock().map_err(io("locking", &lock_path))?;
    // Another process may have finished the build while we waited for the lock.
    if is_complete(&bin) {
        return Ok(bin);
    }
    build(&dir, &bin)?;
    Ok(bin)
}

fn build(dir: &Path, bin: &Path) -> Result<()> {
    let src = dir.join("src");
    fs::create_dir_all(src.join("cmd/etcd")).map_err(io("creating", &src))?;
    tracing::info!(version = KUBERNETES_VERSION, dir = %dir.display(), "building control-plane binaries from Go modules");

    let k8s_go_mod = download_go_mod(dir)?;
    let go_mod = wrapper_go_mod(&k8s_go_mod)?;
    write(&src.join("go.mod"), &go_mod)?;
    write(&src.join("cmd/etcd/main.go"), ETCD_MAIN)?;
    write(&src.join("tools.go"), TOOLS_GO)?;
    run(Command::new("go").args(["mod", "tidy"]).current_dir(&src))?;

    let (major, minor) = major_minor(KUBERNETES_VERSION);
    let pkg = "k8s.io/component-base/version";
    let ldflags = format!(
        "-s -w -X {pkg}.gitVersion={KUBERNETES_VERSION} -X {pkg}.gitMajor={major} -X {pkg}.gitMinor={minor} \
         -X {pkg}.gitTreeState=clean -X {pkg}.buildDate=1970-01-01T00:00:00Z"
    );
    let staging = dir.join("bin.partial");
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(io("creating", &staging))?;
    run(Command::new("go")
        .current_dir(&src)
        .env("CGO_ENABLED", "0")
        .arg("build")
        .arg("-trimpath")
        .arg("-o")
        .arg(&staging)
        .arg("-ldflags")
        .arg(&ldflags)
        .args([
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "k8s.io/kubernetes/cmd/kube-scheduler",
            "./cmd/etcd",
        ]))?;
    write(&staging.join(".stamp"), &stamp())?;
    let _ = fs::remove_dir_all(bin);
    fs::rename(&staging, bin).map_err(io("renaming into", bin))?;
    Ok(())
}

/// Downloads k8s.io/kubernetes's go.mod through the module proxy and returns its text.
fn download_go_mod(work: &Path) -> Result<String> {
    let out = run(Command::new("go")
        .current_dir(work)
        .args(["mod", "download", "-json"])
        .arg(format!("k8s.io/kubernetes@{KUBERNETES_VERSION}"))
        // `go mod download` outside a module needs no go.mod; make sure a stale one is not read.
        .env("GOFLAGS", "-mod=mod"))?;
    let info: serde_json::Value = serde_json::from_str(&out).map_err(|e| Error::Command {
        command: "go mod download -json".into(),
        detail: format!("unreadable output: {e}"),
    })?;
    let path = info["GoMod"].as_str().ok_or_else(|| Error::Command {
        command: "go mod download -json".into(),
        detail: format!(
            "no GoMod in output (is k8s.io/kubernetes@{KUBERNETES_VERSION} served?): {out}"
        ),
    })?;
    fs::read_to_string(path).map_err(io("reading", path))
}

/// The wrapper module's go.mod for a given k8s.io/kubernetes go.mod.
pub fn wrapper_go_mod(k8s_go_mod: &str) -> Result<String> {
    let staging = staging_modules(k8s_go_mod);
    if staging.is_empty() {
        return Err(Error::Command {
            command: "parse k8s.io/kubernetes go.mod".into(),
            detail: "no `k8s.io/<module> v0.0.0` requirements found".into(),
        });
    }
    let staging_version = KUBERNETES_VERSION.replacen("v1.", "v0.", 1);
    let mut text = format!(
        "// Generated by weir-testenv: builds the Kubernetes control plane from Go modules.\n\
         module weir.dev/k8s-testenv\n\ngo 1.25.0\n\nrequire (\n\
         \tk8s.io/kubernetes {KUBERNETES_VERSION}\n\tgo.etcd.io/etcd/server/v3 {ETCD_VERSION}\n)\n\nreplace (\n"
    );
    for module in staging {
        text.push_str(&format!("\t{module} => {module} {staging_version}\n"));
    }
    text.push_str(")\n");
    Ok(text)
}

/// Modules that k8s.io/kubernetes requires at `v0.0.0`: its staging repositories.
pub fn staging_modules(go_mod: &str) -> Vec<&str> {
    go_mod
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let first = words.next()?;
            // Both `require k8s.io/x v0.0.0` and a line inside a `require (` block.
            let (module, version) = if first == "require" {
                (words.next()?, words.next()?)
            } else {
                (first, words.next()?)
            };
            (module.starts_with("k8s.io/") && version == "v0.0.0").then_some(module)
        })
        .collect()
}

fn major_minor(version: &str) -> (&str, &str) {
    let mut parts = version.trim_start_matches('v').split('.');
    (parts.next().unwrap_or("1"), parts.next().unwrap_or("0"))
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).map_err(io("writing", path))
}

fn run(cmd: &mut Command) -> Result<String> {
    let line = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| Error::Command {
        command: line.clone(),
        detail: format!("could not start: {e} (is Go installed?)"),
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        return Err(Error::Command {
            command: line,
            detail: format!(
                "{}:\n{}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

const ETCD_MAIN: &str = r#"// Generated by weir-testenv.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
"#;

const TOOLS_GO: &str = r#"// Generated by weir-testenv: records the commands built from k8s.io/kubernetes.
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "module k8s.io/kubernetes\n\ngo 1.25.0\n\nrequire (\n\
        \tgithub.com/foo/bar v1.2.3\n\tk8s.io/api v0.0.0\n\tk8s.io/kube-openapi v0.0.0-20250910181357-589584f1c912\n\
        \tk8s.io/client-go v0.0.0 // indirect\n)\n\nrequire k8s.io/apiserver v0.0.0\n\n\
        replace k8s.io/api => ./staging/src/k8s.io/api\n";

    #[test]
    fn staging_modules_are_the_v0_0_0_requirements() {
        assert_eq!(
            staging_modules(SAMPLE),
            ["k8s.io/api", "k8s.io/client-go", "k8s.io/apiserver"]
        );
    }

    #[test]
    fn wrapper_replaces_each_staging_module_with_the_matching_release() {
        let m = wrapper_go_mod(SAMPLE).unwrap();
        assert!(m.contains(&format!("k8s.io/kubernetes {KUBERNETES_VERSION}")));
        let v0 = KUBERNETES_VERSION.replacen("v1.", "v0.", 1);
        for module in ["k8s.io/api", "k8s.io/client-go", "k8s.io/apiserver"] {
            assert!(
                m.contains(&format!("\t{module} => {module} {v0}\n")),
                "{module}: {m}"
            );
        }
        assert!(!m.contains("kube-openapi"));
    }

    #[test]
    fn wrapper_refuses_a_go_mod_without_staging_modules() {
        assert!(wrapper_go_mod("module x\n").is_err());
    }
}
