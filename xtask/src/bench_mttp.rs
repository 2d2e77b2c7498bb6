//! `cargo xtask bench mttp --apps N [--concurrent C]`: mean time to production for N small
//! applications at once.
//!
//! One monorepository on one smart-HTTP Git server holds `apps/app-NNNN/` for each application
//! (a ServiceAccount, a headless Service, an Ingress and a Deployment with 0 replicas, listed by a
//! kustomization). Each application gets its own GitRepository (the same URL), a Render of its
//! path and an Apply of that Render, all created at once in one namespace; the figure is the time
//! from the first create until every Apply is Ready with the commit applied, plus each release
//! controller's peak RSS.
//!
//! With `--ignore-others` each GitRepository's `spec.ignore` leaves every other application out
//! of its artifact (Flux's advice for monorepos): without it each of the N artifacts holds all N
//! applications, and every Render unpacks them all (a base may live anywhere in the repository).
//!
//! One namespace for every weir object and workload: the controllers' watches are cluster-wide,
//! so spreading objects over namespaces changes nothing they do, while creating N namespaces
//! would add apiserver work that is not weir's. Services are headless because the local control
//! plane's service range is a /24.

use std::{
    fs,
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api,
    api::{ObjectMeta, PostParams},
};
use weir_api::{
    Apply, GitRepository, Render,
    conditions::{self, types},
};
use weir_testenv::{ControlPlane, ControlPlaneOptions, git::HttpServer};

use crate::pipeline::{self, Controllers, git};

const NAMESPACE: &str = "bench-mttp";
const REPO: &str = "monorepo.git";
/// Objects created in parallel.
const CREATE_PARALLELISM: usize = 16;

/// The files of application `n` under `apps/app-NNNN/`.
fn app_files(n: usize) -> Vec<(String, String)> {
    let app = format!("app-{n:04}");
    vec![
        (
            "kustomization.yaml".into(),
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - serviceaccount.yaml\n  - service.yaml\n  - ingress.yaml\n  - deployment.yaml\n".into(),
        ),
        (
            "serviceaccount.yaml".into(),
            format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {app}\n"),
        ),
        (
            "service.yaml".into(),
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {app}\nspec:\n  clusterIP: None\n  selector:\n    app: {app}\n  ports:\n    - name: http\n      port: 80\n      targetPort: 8080\n"
            ),
        ),
        (
            "ingress.yaml".into(),
            format!(
                "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {app}\nspec:\n  rules:\n    - host: {app}.example.test\n      http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend:\n              service:\n                name: {app}\n                port:\n                  name: http\n"
            ),
        ),
        (
            "deployment.yaml".into(),
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\nspec:\n  replicas: 0\n  selector:\n    matchLabels:\n      app: {app}\n  template:\n    metadata:\n      labels:\n        app: {app}\n    spec:\n      serviceAccountName: {app}\n      containers:\n        - name: main\n          image: registry.example.test/{app}:1.0.0\n          ports:\n            - containerPort: 8080\n"
            ),
        ),
    ]
}

/// Runs one measurement and prints its summary line.
pub fn mttp(root: &Path, apps: usize, concurrent: usize, ignore_others: bool) -> Result<()> {
    if apps == 0 || apps > 9999 {
        bail!("--apps takes a number from 1 to 9999");
    }
    pipeline::require_programs(&["git", "python3"])?;
    println!("bench mttp: building the release controllers…");
    let bin_dir = pipeline::build_controllers(root, true)?;
    let dir = tempfile::Builder::new().prefix("weir-mttp-").tempdir()?;
    let work = dir.path().join("work");
    for n in 0..apps {
        let app_dir = work.join(format!("apps/app-{n:04}"));
        fs::create_dir_all(&app_dir)?;
        for (name, text) in app_files(n) {
            fs::write(app_dir.join(name), text)?;
        }
    }
    git(&work, &["init", "-q", "-b", "main"])?;
    git(&work, &["add", "-A"])?;
    git(&work, &["commit", "-q", "-m", "apps"])?;
    let commit = git(&work, &["rev-parse", "HEAD"])?;
    let served = dir.path().join("git");
    fs::create_dir_all(&served)?;
    git(
        dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            &work.display().to_string(),
            &served.join(REPO).display().to_string(),
        ],
    )?;
    let server = HttpServer::start(&served, &[]);
    let url = server.url(REPO);

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let plane = ControlPlane::start(ControlPlaneOptions::default()).await?;
        let client = plane.client().await?;
        pipeline::install_crds(&client, root).await?;
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(NAMESPACE.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        let concurrent_flag = concurrent.to_string();
        let mut controllers = Controllers::start(
            &bin_dir,
            plane.kubeconfig_path(),
            dir.path(),
            "warn",
            &["--concurrent", &concurrent_flag],
        )
        .await?;
        controllers.wait_ready().await?;

        let outcome = measure(&client, apps, &url, &commit, ignore_others, &mut controllers).await;
        // Steady state: let requeues and watch bookmarks pass, then read the high-water marks.
        if outcome.is_ok() {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        let rss = controllers.peak_rss_kb();
        controllers.terminate().await;
        let (created, all_ready) = outcome.with_context(|| {
            format!("controller logs in {}", dir.path().join("logs").display())
        })?;
        let rss: Vec<String> = rss
            .iter()
            .map(|(name, kb)| {
                let short = name.trim_start_matches("weir-").trim_end_matches("-controller");
                format!("{short} {:.0} MB", *kb as f64 / 1024.0)
            })
            .collect();
        let packed = if ignore_others { " (each GitRepository packs only its app)" } else { "" };
        println!(
            "bench mttp: {apps} apps{packed}, --concurrent {concurrent}: created in {:.1} s, all Applies Ready after {:.1} s ({:.1} ms per app); peak RSS {}",
            created.as_secs_f64(),
            all_ready.as_secs_f64(),
            all_ready.as_secs_f64() * 1e3 / apps as f64,
            rss.join(", ")
        );
        drop(server);
        anyhow::Ok(())
    })
}

/// Creates every app's three objects and waits for all Applies; returns the creation time and
/// the time until all were Ready, both from the first create.
async fn measure(
    client: &kube::Client,
    apps: usize,
    url: &str,
    commit: &str,
    ignore_others: bool,
    controllers: &mut Controllers,
) -> Result<(Duration, Duration)> {
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), NAMESPACE);
    let renders: Api<Render> = Api::namespaced(client.clone(), NAMESPACE);
    let applies: Api<Apply> = Api::namespaced(client.clone(), NAMESPACE);
    // The watches start before the first create, so no transition is missed. Each stage's
    // count feeds the progress lines and its completion time the summary.
    let counts: [Arc<AtomicUsize>; 3] = Default::default();
    let finished: [Arc<Mutex<Option<Instant>>>; 3] = Default::default();
    let ready_at = |i: usize| {
        let (count, finished) = (counts[i].clone(), finished[i].clone());
        move |n: usize| {
            count.store(n, Ordering::Relaxed);
            if n == apps
                && let Ok(mut f) = finished.lock()
            {
                *f = Some(Instant::now());
            }
        }
    };
    let timeout = Duration::from_secs(3600);
    let with_commit =
        |commit: &str, revision: Option<&str>| revision.is_some_and(|r| r.ends_with(commit));
    let c = commit.to_owned();
    let sources = tokio::spawn(pipeline::wait_all(
        repos.clone(),
        apps,
        timeout,
        move |o: &GitRepository| {
            o.status.as_ref().is_some_and(|s| {
                conditions::is_true(&s.conditions, types::READY)
                    && with_commit(&c, s.artifact.as_ref().map(|a| a.revision.as_str()))
            })
        },
        ready_at(0),
    ));
    let c = commit.to_owned();
    let rendered = tokio::spawn(pipeline::wait_all(
        renders.clone(),
        apps,
        timeout,
        move |o: &Render| {
            o.status.as_ref().is_some_and(|s| {
                conditions::is_true(&s.conditions, types::READY)
                    && with_commit(&c, s.artifact.as_ref().map(|a| a.revision.as_str()))
            })
        },
        ready_at(1),
    ));
    let c = commit.to_owned();
    let waiter = tokio::spawn(pipeline::wait_all(
        applies.clone(),
        apps,
        timeout,
        move |o: &Apply| {
            o.status.as_ref().is_some_and(|s| {
                conditions::is_true(&s.conditions, types::READY)
                    && with_commit(&c, s.last_applied_revision.as_deref())
            })
        },
        ready_at(2),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    futures::stream::iter(0..apps)
        .map(|n| {
            let (repos, renders, applies) = (repos.clone(), renders.clone(), applies.clone());
            async move {
                let name = format!("app-{n:04}");
                let pp = PostParams::default();
                let mut spec = serde_json::json!({
                    "url": url, "interval": "1h", "ref": { "branch": "main" }
                });
                if ignore_others {
                    // gitignore: everything but this app's directory.
                    spec["ignore"] = format!("/*\n!/apps/\n/apps/*\n!/apps/{name}/\n").into();
                }
                let spec = serde_json::from_value(spec)?;
                repos.create(&pp, &GitRepository::new(&name, spec)).await?;
                let spec = serde_json::from_value(serde_json::json!({
                    "sourceRef": { "kind": "GitRepository", "name": name },
                    "path": format!("apps/{name}"),
                    "targetNamespace": NAMESPACE,
                    "interval": "1h",
                }))?;
                renders.create(&pp, &Render::new(&name, spec)).await?;
                let spec = serde_json::from_value(serde_json::json!({
                    "sourceRef": { "kind": "Render", "name": name },
                    "interval": "1h",
                    "prune": true,
                }))?;
                applies.create(&pp, &Apply::new(&name, spec)).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CREATE_PARALLELISM)
        .try_collect::<Vec<()>>()
        .await
        .context("creating the objects")?;
    let created = started.elapsed();
    let mut waiter = waiter;
    let mut alive = tokio::time::interval(Duration::from_secs(1));
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            done = &mut waiter => {
                done.context("the Apply watch task failed")??;
                break;
            }
            _ = alive.tick() => {
                controllers.check_alive()?;
                ticks += 1;
                if ticks.is_multiple_of(10) {
                    let [s, r, a] = counts.each_ref().map(|c| c.load(Ordering::Relaxed));
                    println!(
                        "bench mttp: {:>4.0} s  Ready: {s} GitRepositories, {r} Renders, {a} Applies",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }
    let all_ready = started.elapsed();
    sources.abort();
    rendered.abort();
    let stage = |i: usize| {
        finished[i]
            .lock()
            .ok()
            .and_then(|f| *f)
            .map(|t| format!("{:.1} s", (t - started).as_secs_f64()))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "bench mttp: all GitRepositories Ready after {}, all Renders after {}, all Applies after {:.1} s",
        stage(0),
        stage(1),
        all_ready.as_secs_f64()
    );
    Ok((created, all_ready))
}
