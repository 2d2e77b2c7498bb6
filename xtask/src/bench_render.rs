//! `cargo xtask bench render`: the render engine against `kubectl kustomize` (kustomize v5.5.0),
//! same run, same inputs.
//!
//! 1. Per corpus case: the `weir build` binary vs `kubectl kustomize` as processes (what a user
//!    runs), median of 3 runs each; prints the median of the per-case ratios.
//! 2. A large generated overlay (base of N apps, overlay with namespace, prefix, labels, images,
//!    patches and a generator): in-process `weir_kustomize::build` vs `kubectl kustomize`.

use crate::pipeline::{peak_rss_kb, wait_until};
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

/// `cargo xtask bench render-scale --objects N`: the release source- and render-controllers
/// against a real control plane; N Renders over five GitRepositories (each a small kustomize
/// overlay); prints the time until all Renders are Ready and the render-controller's peak RSS.
pub fn render_scale(root: &Path, objects: usize) -> Result<()> {
    use kube::{Api, api::PostParams};
    use weir_api::{
        GitRepository, Render,
        conditions::{self, types},
    };
    use weir_testenv::{ControlPlane, ControlPlaneOptions};

    println!("bench render-scale: building the release controllers…");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "weir-source-controller",
            "-p",
            "weir-render-controller",
        ])
        .status()?;
    if !status.success() {
        bail!("building the controllers failed");
    }
    let dir = tempfile::tempdir()?;
    let mut urls = Vec::new();
    for i in 0..5 {
        let work = dir.path().join(format!("repo{i}"));
        let base = work.join("deploy/base");
        std::fs::create_dir_all(&base)?;
        let _ = large_overlay(&work.join("deploy"), 10)?;
        let git = |args: &[&str]| -> Result<()> {
            let ok = Command::new("git")
                .current_dir(&work)
                .args(args)
                .env("GIT_AUTHOR_NAME", "bench")
                .env("GIT_AUTHOR_EMAIL", "bench@example.invalid")
                .env("GIT_COMMITTER_NAME", "bench")
                .env("GIT_COMMITTER_EMAIL", "bench@example.invalid")
                .status()?
                .success();
            if !ok {
                bail!("git {args:?} failed");
            }
            Ok(())
        };
        git(&["init", "-q", "-b", "main"])?;
        git(&["add", "-A"])?;
        git(&["commit", "-q", "-m", "init"])?;
        urls.push(format!("file://{}", work.display()));
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let plane = ControlPlane::start(ControlPlaneOptions::default()).await?;
        let client = plane.client().await?;
        weir_testenv::install_crds(&client, &weir_api::crds::all(), "weir-xtask").await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let common = |name: &str| {
            let mut c = Command::new(root.join("target/release").join(name));
            c.env("KUBECONFIG", plane.kubeconfig_path())
                .args(["--storage-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0"])
                .args(["--log-level", "warn", "--concurrent", "4"]);
            c
        };
        let mut source = common("weir-source-controller")
            .arg("--storage-path")
            .arg(dir.path().join("source-storage"))
            .spawn()?;
        let mut render = common("weir-render-controller")
            .arg("--storage-path")
            .arg(dir.path().join("render-storage"))
            .spawn()?;
        let repos: Api<GitRepository> = Api::namespaced(client.clone(), "default");
        for (i, url) in urls.iter().enumerate() {
            let spec = serde_json::from_value(serde_json::json!({ "url": url, "interval": "10m" }))?;
            repos.create(&PostParams::default(), &GitRepository::new(&format!("repo{i}"), spec)).await?;
        }
        wait_until(&repos, urls.len(), "GitRepositories Ready", |o: &GitRepository| {
            o.status.as_ref().is_some_and(|s| conditions::is_true(&s.conditions, types::READY))
        })
        .await?;
        let renders: Api<Render> = Api::namespaced(client.clone(), "default");
        let started = Instant::now();
        for n in 0..objects {
            let spec = serde_json::from_value(serde_json::json!({
                "sourceRef": { "kind": "GitRepository", "name": format!("repo{}", n % urls.len()) },
                "path": "deploy/overlay",
                "interval": "10m",
                "namePrefix": format!("r{n}-"),
            }))?;
            renders.create(&PostParams::default(), &Render::new(&format!("render{n:04}"), spec)).await?;
        }
        wait_until(&renders, objects, "Renders Ready", |o: &Render| {
            o.status.as_ref().is_some_and(|s| conditions::is_true(&s.conditions, types::READY))
        })
        .await?;
        let all_ready = started.elapsed();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let hwm = peak_rss_kb(render.id())?;
        let source_hwm = peak_rss_kb(source.id())?;
        let _ = render.kill();
        let _ = source.kill();
        let _ = render.wait();
        let _ = source.wait();
        println!("bench render-scale: {objects} Renders over 5 GitRepositories (30 objects each after kustomize), --concurrent 4");
        println!("bench render-scale: all Ready after {:.1} s ({:.1} ms per Render)", all_ready.as_secs_f64(), all_ready.as_secs_f64() * 1e3 / objects as f64);
        println!("bench render-scale: render-controller peak RSS {hwm} kB (source-controller {source_hwm} kB)");
        anyhow::Ok(())
    })
}
