//! `cargo xtask bench render`: the render engine against `kubectl kustomize` (kustomize v5.5.0),
//! same run, same inputs.
//!
//! 1. Per corpus case: the `weir build` binary vs `kubectl kustomize` as processes (what a user
//!    runs), median of 3 runs each; prints the median of the per-case ratios.
//! 2. A large generated overlay (base of N apps, overlay with namespace, prefix, labels, images,
//!    patches and a generator): in-process `weir_kustomize::build` vs `kubectl kustomize`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn time_cmd(cmd: &mut Command) -> Result<(Duration, bool)> {
    let t = Instant::now();
    let out = cmd.output().context("running a benchmark command")?;
    Ok((t.elapsed(), out.status.success()))
}

fn weir_binary(root: &Path) -> Result<PathBuf> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["build", "--release", "-q", "-p", "weir-cli"])
        .status()
        .context("building the weir CLI")?;
    if !status.success() {
        bail!("cargo build --release -p weir-cli failed");
    }
    Ok(root.join("target/release/weir"))
}

/// Writes a base with `apps` apps (Deployment, Service, ConfigMap each) and an overlay.
fn large_overlay(dir: &Path, apps: usize) -> Result<PathBuf> {
    let base = dir.join("base");
    std::fs::create_dir_all(&base)?;
    let mut resources = String::from("resources:\n");
    for i in 0..apps {
        let file = format!("app{i:04}.yaml");
        resources.push_str(&format!("- {file}\n"));
        std::fs::write(
            base.join(&file),
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app{i}\n  labels:\n    app: app{i}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: app{i}\n  template:\n    metadata:\n      labels:\n        app: app{i}\n    spec:\n      containers:\n      - name: main\n        image: registry.example/app:1.0\n        envFrom:\n        - configMapRef:\n            name: app{i}-config\n        ports:\n        - containerPort: 8080\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: app{i}\nspec:\n  selector:\n    app: app{i}\n  ports:\n  - port: 80\n    targetPort: 8080\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app{i}-config\ndata:\n  LOG_LEVEL: info\n  INDEX: \"{i}\"\n"
            ),
        )?;
    }
    std::fs::write(base.join("kustomization.yaml"), resources)?;
    let overlay = dir.join("overlay");
    std::fs::create_dir_all(&overlay)?;
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources:\n- ../base\nnamespace: prod\nnamePrefix: prod-\ncommonLabels:\n  env: prod\ncommonAnnotations:\n  team: platform\nimages:\n- name: registry.example/app\n  newTag: \"2.0\"\nconfigMapGenerator:\n- name: shared\n  literals:\n  - REGION=eu\npatches:\n- target:\n    kind: Deployment\n  patch: |-\n    - op: replace\n      path: /spec/replicas\n      value: 3\n",
    )?;
    Ok(overlay)
}

/// The command.
pub fn render(root: &Path, corpus: Option<&Path>, apps: usize) -> Result<()> {
    let weir = weir_binary(root)?;
    let corpus = corpus
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.join("../shared/conformance/kustomize"));
    if corpus.join("cases").is_dir() {
        let cases = crate::conformance::load_cases(&corpus)?;
        let mut ratios = Vec::new();
        let (mut weir_total, mut kubectl_total) = (Duration::ZERO, Duration::ZERO);
        for case in &cases {
            let mut w = Vec::new();
            let mut k = Vec::new();
            for _ in 0..3 {
                let mut cmd = Command::new(&weir);
                cmd.arg("build").arg(&case.build_dir);
                let mut kc = Command::new("kubectl");
                kc.arg("kustomize").arg(&case.build_dir);
                if case.restrictions_none {
                    cmd.args(["--load-restrictor", "LoadRestrictionsNone"]);
                    kc.args(["--load-restrictor", "LoadRestrictionsNone"]);
                }
                w.push(time_cmd(&mut cmd)?.0);
                k.push(time_cmd(&mut kc)?.0);
            }
            let (wm, km) = (median(w), median(k));
            weir_total += wm;
            kubectl_total += km;
            ratios.push(km.as_secs_f64() / wm.as_secs_f64().max(1e-9));
        }
        ratios.sort_by(f64::total_cmp);
        let med = ratios.get(ratios.len() / 2).copied().unwrap_or(0.0);
        println!(
            "corpus: {} cases; weir build total {:.2?}, kubectl kustomize total {:.2?}; median per-case speed-up {med:.1}x (kubectl time / weir time)",
            cases.len(),
            weir_total,
            kubectl_total
        );
    } else {
        println!("corpus: not found at {}; skipped", corpus.display());
    }
    let dir = tempfile::tempdir()?;
    let overlay = large_overlay(dir.path(), apps)?;
    let opts = weir_kustomize::BuildOptions::default();
    let mut inproc = Vec::new();
    let mut objects = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let m = weir_kustomize::build(&overlay, &opts, None)
            .map_err(|e| anyhow::anyhow!("weir build of the large overlay: {e}"))?;
        objects = m.len();
        let _ = weir_kustomize::build::to_yaml(&m);
        inproc.push(t.elapsed());
    }
    let mut cli = Vec::new();
    let mut kubectl = Vec::new();
    for _ in 0..3 {
        cli.push(time_cmd(Command::new(&weir).arg("build").arg(&overlay))?.0);
        let (d, ok) = time_cmd(Command::new("kubectl").arg("kustomize").arg(&overlay))?;
        if !ok {
            bail!("kubectl kustomize failed on the large overlay");
        }
        kubectl.push(d);
    }
    let (i, c, k) = (median(inproc), median(cli), median(kubectl));
    println!(
        "large overlay: {apps} apps, {objects} objects; weir in-process {i:.2?}, weir build (process) {c:.2?}, kubectl kustomize {k:.2?}; speed-up {:.1}x (process vs process)",
        k.as_secs_f64() / c.as_secs_f64().max(1e-9)
    );
    Ok(())
}
