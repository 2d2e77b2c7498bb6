//! `cargo xtask bench source`: the source-controller's figures against the reference tools, in
//! the same run on the same data.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use weir_git::{Credentials, GitRemote, PackLimits, pack_commit, refs};

/// Files, directories and bytes per file of the generated "medium" repository.
const FILES: usize = 4000;
const DIRS: usize = 80;
const FILE_BYTES: usize = 3000;

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.invalid")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.invalid")
        .status()?;
    if !status.success() {
        bail!("git {args:?} failed");
    }
    Ok(())
}

/// A repository of `FILES` text files (~12 MB) with three commits of history.
fn medium_repo(root: &Path) -> Result<String> {
    let work = root.join("work");
    std::fs::create_dir_all(&work)?;
    git(&work, &["init", "-q", "-b", "main"])?;
    for round in 0..3 {
        for i in 0..FILES {
            let dir = work.join(format!("apps/app{:03}", i % DIRS));
            std::fs::create_dir_all(&dir)?;
            let line = format!("# round {round} file {i}\nkey{i}: value-{round}-{i}\n");
            let body: String = line.repeat(FILE_BYTES / line.len() + 1);
            std::fs::write(
                dir.join(format!("manifest{i:05}.yaml")),
                &body[..FILE_BYTES],
            )?;
        }
        git(&work, &["add", "-A"])?;
        git(&work, &["commit", "-q", "-m", &format!("round {round}")])?;
    }
    let bare = root.join("repo.git");
    git(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap_or_default(),
            bare.to_str().unwrap_or_default(),
        ],
    )?;
    Ok(format!("file://{}", bare.display()))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn timed(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<Duration> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed());
    }
    Ok(median(samples))
}

/// Runs the benchmark and prints its figures.
pub fn source() -> Result<()> {
    let dir = tempfile::tempdir()?;
    println!(
        "bench source: generating a repository of {FILES} files in {DIRS} directories, 3 commits…"
    );
    let url = medium_repo(dir.path())?;
    let creds = Credentials::default();
    let timeout = Duration::from_secs(300);
    let runs = 5;

    let noop = timed(20, || {
        let remote = GitRemote::new(&url, &creds, timeout)?;
        refs::select(None, &remote.advertisement()?)?;
        Ok(())
    })?;

    let mut digest = String::new();
    let weir = timed(runs, || {
        let remote = GitRemote::new(&url, &creds, timeout)?;
        let selection = refs::select(None, &remote.advertisement()?)?;
        let commit = remote.fetch_commit(&selection)?;
        let (packed, _) = pack_commit(&remote.repository(), commit, None, &PackLimits::default())?;
        digest = packed.digest;
        Ok(())
    })?;

    let mut n = 0;
    let reference = timed(runs, || {
        n += 1;
        let checkout = dir.path().join(format!("clone{n}"));
        git(
            dir.path(),
            &[
                "clone",
                "-q",
                "--depth",
                "1",
                "--branch",
                "main",
                &url,
                checkout.to_str().unwrap_or_default(),
            ],
        )?;
        let tarball = dir.path().join(format!("clone{n}.tar.gz"));
        let status = Command::new("tar")
            .arg("czf")
            .arg(&tarball)
            .arg("--exclude=.git")
            .arg("-C")
            .arg(&checkout)
            .arg(".")
            .status()
            .context("running tar")?;
        if !status.success() {
            bail!("tar failed");
        }
        Ok(())
    })?;

    println!(
        "bench source: no-op check (ref advertisement + selection, file://), median of 20: {:.1} ms",
        noop.as_secs_f64() * 1e3
    );
    println!(
        "bench source: weir shallow fetch + reproducible pack, median of {runs}: {:.0} ms (artifact {digest})",
        weir.as_secs_f64() * 1e3
    );
    println!(
        "bench source: git clone --depth 1 + tar czf, median of {runs}: {:.0} ms",
        reference.as_secs_f64() * 1e3
    );
    println!(
        "bench source: ratio reference/weir = {:.2}x ({})",
        reference.as_secs_f64() / weir.as_secs_f64(),
        if weir < reference {
            "weir is faster"
        } else {
            "weir is slower"
        }
    );
    Ok(())
}

/// `cargo xtask bench source-scale --objects N`: the release controller binary against a real
/// control plane, N GitRepository objects over five repositories; prints the time until all are
/// Ready and the controller's peak RSS.
pub fn source_scale(objects: usize) -> Result<()> {
    use kube::{Api, api::PostParams};
    use weir_api::{
        GitRepository,
        conditions::{self, types},
    };
    use weir_testenv::{ControlPlane, ControlPlaneOptions};

    let root = super::workspace_root();
    println!("bench source-scale: building the release controller…");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args(["build", "--release", "-q", "-p", "weir-source-controller"])
        .status()?;
    if !status.success() {
        bail!("building weir-source-controller failed");
    }
    let binary = root.join("target/release/weir-source-controller");
    let dir = tempfile::tempdir()?;
    let mut urls = Vec::new();
    for i in 0..5 {
        let work = dir.path().join(format!("repo{i}"));
        std::fs::create_dir_all(work.join("deploy"))?;
        git(&work, &["init", "-q", "-b", "main"])?;
        for f in 0..20 {
            std::fs::write(
                work.join(format!("deploy/m{f}.yaml")),
                format!("kind: ConfigMap\nmetadata:\n  name: r{i}-m{f}\n"),
            )?;
        }
        git(&work, &["add", "-A"])?;
        git(&work, &["commit", "-q", "-m", "init"])?;
        urls.push(format!("file://{}", work.display()));
    }

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let plane = ControlPlane::start(ControlPlaneOptions::default()).await?;
        let client = plane.client().await?;
        let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
            Api::all(client.clone());
        for crd in weir_api::crds::all() {
            crds.create(&PostParams::default(), &crd).await?;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut controller = Command::new(&binary)
            .env("KUBECONFIG", plane.kubeconfig_path())
            .args(["--storage-path"])
            .arg(dir.path().join("storage"))
            .args(["--storage-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0"])
            .args(["--log-level", "warn", "--concurrent", "4"])
            .spawn()?;
        let api: Api<GitRepository> = Api::namespaced(client.clone(), "default");
        let started = Instant::now();
        for n in 0..objects {
            let spec = serde_json::from_value(serde_json::json!({ "url": urls[n % urls.len()], "interval": "10m" }))?;
            api.create(&PostParams::default(), &GitRepository::new(&format!("app{n:04}"), spec)).await?;
        }
        let created = started.elapsed();
        wait_for_all(&api, objects, "Ready", |o| {
            o.status.as_ref().is_some_and(|s| conditions::is_true(&s.conditions, types::READY))
        })
        .await?;
        let all_ready = started.elapsed();
        // No-op reconciles: every ref is unchanged, so each reconcile is one ref advertisement
        // and no status write beyond lastHandledReconcileAt.
        let noop_started = Instant::now();
        for n in 0..objects {
            api.patch(
                &format!("app{n:04}"),
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(weir_api::reconcile::request_patch("bench-noop")),
            )
            .await?;
        }
        wait_for_all(&api, objects, "no-op reconcile handled", |o| {
            o.status.as_ref().and_then(|s| s.last_handled_reconcile_at.as_deref()) == Some("bench-noop")
        })
        .await?;
        let noop = noop_started.elapsed();
        // Steady state: let a few requeues and watch bookmarks pass, then read the high-water mark.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let proc_status = std::fs::read_to_string(format!("/proc/{}/status", controller.id()))?;
        let field = |name: &str| {
            proc_status.lines().find(|l| l.starts_with(name)).map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned()).unwrap_or_default()
        };
        let (hwm, rss) = (field("VmHWM:"), field("VmRSS:"));
        let _ = controller.kill();
        let _ = controller.wait();
        println!("bench source-scale: {objects} GitRepository objects over 5 file:// repositories, --concurrent 4");
        println!("bench source-scale: created in {:.1} s, all Ready after {:.1} s", created.as_secs_f64(), all_ready.as_secs_f64());
        println!(
            "bench source-scale: {objects} requested no-op reconciles handled in {:.1} s ({:.1} ms per object at --concurrent 4)",
            noop.as_secs_f64(),
            noop.as_secs_f64() * 1e3 / objects as f64
        );
        println!("bench source-scale: controller peak RSS {hwm} kB (current {rss} kB)");
        anyhow::Ok(())
    })
}

/// Polls until `objects` GitRepositories satisfy `done`, failing after ten minutes.
async fn wait_for_all(
    api: &kube::Api<weir_api::GitRepository>,
    objects: usize,
    what: &str,
    done: impl Fn(&weir_api::GitRepository) -> bool,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let list = api.list(&kube::api::ListParams::default()).await?;
        let count = list.items.iter().filter(|o| done(o)).count();
        if count == objects {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("only {count} of {objects} {what} after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
