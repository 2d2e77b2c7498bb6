//! weir's development tasks. Run `cargo xtask help`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Instant,
};

use anyhow::{Context, Result, bail};

mod bench;
mod bench_apply;
mod bench_mttp;
mod bench_render;
mod bench_webhook;
mod conformance;
mod demo;
mod openapi;
mod pipeline;
use weir_testenv::{ControlPlane, ControlPlaneOptions, KUBECONFIG_ENV, binaries};

const HELP: &str = "\
cargo xtask <command>

  crds [--check]           write config/crd/*.yaml from the weir-api types (--check: fail if stale)
  conformance <corpus-dir> [--case NAME] [-v] [--min-pass-rate PCT]
                           run the kustomize conformance corpus through weir's engine; prints
                           `N passed, M failed` and the failing cases
  k8s                      build (once) the control-plane binaries from Go modules; print their dir
  cluster up [--dir D] [--minimal]
                           run a local control plane until Ctrl-C; prints the kubeconfig path
                           (--minimal: etcd + kube-apiserver only)
  cluster down [--dir D]   stop a control plane started with `cluster up` in D
  bench source             source-controller figures vs git clone + tar, same run (build with --release for real numbers:
                           cargo run --release -p xtask -- bench source)
  bench source-scale [--objects N]
                           peak RSS of the release controller with N GitRepository objects (default 500)
  bench render [--apps N] [--corpus DIR]
                           weir build vs kubectl kustomize per corpus case (median ratio) and on a
                           large generated overlay (release build recommended)
  bench render-scale [--objects N]
                           peak RSS of the release render-controller with N Renders (default 500)
  bench apply [--objects N]
                           weir's apply engine vs kubectl apply --server-side of N objects: first
                           apply and no-op re-apply time and API requests (default 1000)
  bench apply-scale [--objects N] [--per-repo K]
                           peak RSS of the release apply-controller with N Applies (default 1000)
  demo [--keep] [--dir D] [--release]
                           the whole pipeline on this machine: control plane, Git server holding
                           examples/podinfo, the three controllers, GitRepository → Render → Apply
                           until Ready, then a pushed commit and its push → applied latency
                           (--keep: stay up until Ctrl-C and print the KUBECONFIG to use)
  bench mttp [--apps N] [--concurrent C] [--ignore-others]
                           N apps (GitRepository + Render + Apply each, one monorepo over smart
                           HTTP), release controllers: time until all Applies are Ready and each
                           controller's peak RSS (default 100 apps, --concurrent 4;
                           --ignore-others: each artifact holds only its app, via spec.ignore)
  bench webhook [--commits N] [--poll INTERVAL]
                           push → applied latency of the example app over N commits (default 20),
                           each announced by a signed generic-hmac Receiver call (GitRepository
                           interval 1h); p50/p99. --poll: no webhook, the GitRepository polls
  test [ARGS…]             ensure the binaries, start one control plane for the whole run and run
                           every test (`cargo test --workspace ARGS…`) against it
";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = || args.iter().skip(1).map(String::as_str).collect::<Vec<_>>();
    match args.first().map(String::as_str) {
        Some("crds") => crds(rest().contains(&"--check")),
        Some("conformance") => conformance::conformance(&rest()),
        Some("openapi") => openapi::openapi(rest().contains(&"--check")),
        Some("k8s") => {
            let started = Instant::now();
            let dir = binaries::ensure()?;
            println!("{} (ready in {:.1?})", dir.display(), started.elapsed());
            Ok(ExitCode::SUCCESS)
        }
        Some("cluster") => match rest().split_first() {
            Some((&"up", flags)) => {
                cluster_up(flag_value(flags, "--dir"), flags.contains(&"--minimal"))
            }
            Some((&"down", flags)) => cluster_down(flag_value(flags, "--dir")),
            _ => bail!("usage: cargo xtask cluster up|down [--dir D]"),
        },
        Some("test") => test(&rest()),
        Some("demo") => demo::demo(&workspace_root(), &rest()),
        Some("bench") => match rest().first() {
            Some(&"source") => bench::source().map(|()| ExitCode::SUCCESS),
            Some(&"source-scale") => {
                let objects = flag_value(&rest(), "--objects")
                    .unwrap_or("500")
                    .parse()
                    .context("--objects takes a number")?;
                bench::source_scale(objects).map(|()| ExitCode::SUCCESS)
            }
            Some(&"render") => {
                let apps = flag_value(&rest(), "--apps")
                    .unwrap_or("500")
                    .parse()
                    .context("--apps takes a number")?;
                let corpus = flag_value(&rest(), "--corpus").map(PathBuf::from);
                bench_render::render(&workspace_root(), corpus.as_deref(), apps)
                    .map(|()| ExitCode::SUCCESS)
            }
            Some(&"render-scale") => {
                let objects = flag_value(&rest(), "--objects")
                    .unwrap_or("500")
                    .parse()
                    .context("--objects takes a number")?;
                bench_render::render_scale(&workspace_root(), objects).map(|()| ExitCode::SUCCESS)
            }
            Some(&"apply") => {
                let objects = flag_value(&rest(), "--objects")
                    .unwrap_or("1000")
                    .parse()
                    .context("--objects takes a number")?;
                bench_apply::apply(objects).map(|()| ExitCode::SUCCESS)
            }
            Some(&"apply-scale") => {
                let objects = flag_value(&rest(), "--objects")
                    .unwrap_or("1000")
                    .parse()
                    .context("--objects takes a number")?;
                let per_repo = flag_value(&rest(), "--per-repo")
                    .map(|v| v.parse().context("--per-repo takes a number"))
                    .transpose()?;
                bench_apply::apply_scale(&workspace_root(), objects, per_repo)
                    .map(|()| ExitCode::SUCCESS)
            }
            Some(&"mttp") => {
                let apps = flag_value(&rest(), "--apps")
                    .unwrap_or("100")
                    .parse()
                    .context("--apps takes a number")?;
                let concurrent = flag_value(&rest(), "--concurrent")
                    .unwrap_or("4")
                    .parse()
                    .context("--concurrent takes a number")?;
                let ignore_others = rest().contains(&"--ignore-others");
                bench_mttp::mttp(&workspace_root(), apps, concurrent, ignore_others)
                    .map(|()| ExitCode::SUCCESS)
            }
            Some(&"webhook") => {
                let commits = flag_value(&rest(), "--commits")
                    .unwrap_or("20")
                    .parse()
                    .context("--commits takes a number")?;
                let poll = flag_value(&rest(), "--poll");
                bench_webhook::webhook(&workspace_root(), commits, poll).map(|()| ExitCode::SUCCESS)
            }
            _ => bail!(
                "usage: cargo xtask bench source | source-scale [--objects N] | render [--apps N] [--corpus DIR] | render-scale [--objects N] | apply [--objects N] | apply-scale [--objects N] [--per-repo K] | mttp [--apps N] [--concurrent C] [--ignore-others] | webhook [--commits N] [--poll INTERVAL]"
            ),
        },
        Some("help" | "--help" | "-h") | None => {
            print!("{HELP}");
            Ok(ExitCode::SUCCESS)
        }
        Some(other) => bail!("unknown command {other:?}\n\n{HELP}"),
    }
}

fn flag_value<'a>(flags: &[&'a str], name: &str) -> Option<&'a str> {
    flags
        .iter()
        .position(|f| *f == name)
        .and_then(|i| flags.get(i + 1).copied())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default()
}

/// Writes (or checks) the generated CRDs and their kustomization.
fn crds(check: bool) -> Result<ExitCode> {
    let dir = workspace_root().join("config/crd");
    let mut expected = weir_api::crds::rendered()?;
    let resources: String = expected
        .iter()
        .map(|(name, _)| format!("  - {name}\n"))
        .collect();
    expected.push((
        "kustomization.yaml".into(),
        format!(
            "# Generated by `cargo xtask crds`. Do not edit.\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{resources}"
        ),
    ));
    let mut stale = Vec::new();
    for (name, text) in &expected {
        let path = dir.join(name);
        if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name.clone());
            if !check {
                fs::create_dir_all(&dir)?;
                fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && !expected.iter().any(|(n, _)| *n == name) {
            stale.push(name);
            if !check {
                fs::remove_file(entry.path())?;
            }
        }
    }
    match (check, stale.is_empty()) {
        (_, true) => println!("config/crd is up to date"),
        (true, false) => bail!(
            "config/crd is stale ({}): run `cargo xtask crds`",
            stale.join(", ")
        ),
        (false, false) => println!("updated config/crd: {}", stale.join(", ")),
    }
    Ok(ExitCode::SUCCESS)
}

fn default_cluster_dir() -> PathBuf {
    binaries::cache_root().join("cluster")
}

fn cluster_up(dir: Option<&str>, minimal: bool) -> Result<ExitCode> {
    let dir = dir.map(PathBuf::from).unwrap_or_else(default_cluster_dir);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let started = Instant::now();
        let options = ControlPlaneOptions {
            dir: Some(dir.clone()),
            ..if minimal {
                ControlPlaneOptions::default()
            } else {
                ControlPlaneOptions::full()
            }
        };
        let mut plane = ControlPlane::start(options).await?;
        let pids: String = plane
            .pids()
            .iter()
            .map(|(_, pid)| format!("{pid}\n"))
            .collect();
        fs::write(dir.join("pids"), pids)?;
        fs::write(dir.join("xtask.pid"), format!("{}\n", std::process::id()))?;
        println!(
            "control plane ready in {:.1?} at {}",
            started.elapsed(),
            plane.server()
        );
        println!("export KUBECONFIG={}", plane.kubeconfig_path().display());
        println!(
            "logs: {}/*.log — Ctrl-C (or `cargo xtask cluster down`) stops it",
            dir.display()
        );
        wait_for_shutdown().await?;
        plane.stop();
        let _ = fs::remove_file(dir.join("xtask.pid"));
        println!("control plane stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

async fn wait_for_shutdown() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

fn cluster_down(dir: Option<&str>) -> Result<ExitCode> {
    let dir = dir.map(PathBuf::from).unwrap_or_else(default_cluster_dir);
    let pid_file = dir.join("xtask.pid");
    let pid = fs::read_to_string(&pid_file)
        .with_context(|| format!("no running cluster recorded in {}", pid_file.display()))?;
    let status = Command::new("kill").arg("-TERM").arg(pid.trim()).status()?;
    if !status.success() {
        // The xtask is gone; make sure no component it started survives.
        let pids = fs::read_to_string(dir.join("pids")).unwrap_or_default();
        for pid in pids.lines() {
            let _ = Command::new("kill").arg("-KILL").arg(pid).status();
        }
        let _ = fs::remove_file(&pid_file);
    }
    println!("stopped the control plane in {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

fn test(args: &[&str]) -> Result<ExitCode> {
    let started = Instant::now();
    let bin = binaries::ensure()?;
    println!(
        "xtask: control-plane binaries in {} ({:.1?})",
        bin.display(),
        started.elapsed()
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let plane = runtime.block_on(async {
        let t = Instant::now();
        let plane = ControlPlane::start(ControlPlaneOptions::full()).await?;
        println!(
            "xtask: control plane ready in {:.1?} at {}",
            t.elapsed(),
            plane.server()
        );
        anyhow::Ok(plane)
    })?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let t = Instant::now();
    let mut child = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["test", "--workspace"])
        .args(args)
        .env(KUBECONFIG_ENV, plane.kubeconfig_path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running cargo test")?;
    // Pass the output through, adding up the per-binary summaries into one closing line.
    let mut totals = Totals::default();
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let line = line?;
            println!("{line}");
            totals.add(&line);
        }
    }
    let status = child.wait()?;
    drop(plane);
    println!("xtask: tests took {:.1?}", t.elapsed());
    // The shared kustomize conformance corpus sits beside the repository (../shared) in CI.
    let corpus = workspace_root().join("../shared/conformance/kustomize");
    if corpus.join("cases").is_dir() {
        println!("xtask: kustomize conformance corpus {}", corpus.display());
        let corpus = corpus.display().to_string();
        conformance::conformance(&[corpus.as_str()])?;
    } else {
        println!("xtask: no conformance corpus at ../shared/conformance/kustomize; skipped");
    }
    println!(
        "weir: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    );
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Sums of libtest's `test result:` lines.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Totals {
    fn add(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else {
            return;
        };
        let count = |word: &str| {
            rest.split(';')
                .find_map(|part| {
                    part.trim()
                        .strip_suffix(word)
                        .and_then(|n| n.trim().rsplit(' ').next()?.parse::<u64>().ok())
                })
                .unwrap_or(0)
        };
        self.passed += count("passed");
        self.failed += count("failed");
        self.ignored += count("ignored");
    }
}

#[cfg(test)]
mod tests {
    use super::Totals;

    #[test]
    fn totals_add_up_libtest_summaries() {
        let mut t = Totals::default();
        t.add("test result: ok. 16 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s");
        t.add("test result: FAILED. 4 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; finished in 12.72s");
        t.add("running 3 tests");
        assert_eq!(
            t,
            Totals {
                passed: 20,
                failed: 1,
                ignored: 2
            }
        );
    }
}
