//! `cargo xtask bench apply` and `bench apply-scale`: the apply engine against
//! `kubectl apply --server-side` on a real control plane, same run, same objects; and the
//! release apply-controller's peak RSS with many Apply objects.
//!
//! Request counts come from the apiserver's own `apiserver_request_total` counter (summed over
//! every label set), read before and after each step. The control plane runs etcd and
//! kube-apiserver only (no controller-manager, whose Deployment and ReplicaSet work would mix
//! into the counts); the apiserver's own background requests are subtracted as a rate measured
//! over an idle interval, and so is the `/metrics` read itself.

use crate::pipeline::{peak_rss_kb, wait_until};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};

/// `apiserver_request_total` summed over all label sets.
async fn requests_total(client: &Client) -> Result<f64> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client
        .request_text(request)
        .await
        .context("reading the apiserver's /metrics")?;
    Ok(text
        .lines()
        .filter(|l| {
            l.starts_with("apiserver_request_total{") || l.starts_with("apiserver_request_total ")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// One measured step: wall time and the API requests it made.
#[derive(Clone, Copy, Debug)]
struct Step {
    time: Duration,
    requests: f64,
}

/// Counts the requests of `work`: the counter difference, less the `/metrics` read that
/// started the interval and the idle background rate over the step's duration.
async fn measured<T>(
    client: &Client,
    background_per_sec: f64,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<(T, Step)> {
    let before = requests_total(client).await?;
    let started = Instant::now();
    let out = work.await?;
    let time = started.elapsed();
    let after = requests_total(client).await?;
    let requests = (after - before - 1.0 - background_per_sec * time.as_secs_f64()).max(0.0);
    Ok((out, Step { time, requests }))
}

/// `objects` objects, a third each ConfigMaps, Services (headless: the test control plane's
/// service range is a /24) and Deployments with 0 replicas, alternating between `namespaces`.
fn manifests(objects: usize, namespaces: [&str; 2]) -> String {
    let mut out = String::new();
    for i in 0..objects {
        let ns = namespaces[i % 2];
        let doc = match i % 3 {
            0 => format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: {ns}\n  labels:\n    app: app-{i}\ndata:\n  INDEX: \"{i}\"\n  LOG_LEVEL: info\n"
            ),
            1 => format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: {ns}\n  labels:\n    app: app-{i}\nspec:\n  clusterIP: None\n  selector:\n    app: app-{i}\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n"
            ),
            _ => format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: deploy-{i}\n  namespace: {ns}\n  labels:\n    app: app-{i}\nspec:\n  replicas: 0\n  selector:\n    matchLabels:\n      app: app-{i}\n  template:\n    metadata:\n      labels:\n        app: app-{i}\n    spec:\n      containers:\n      - name: main\n        image: registry.example/app:1.0\n        ports:\n        - containerPort: 8080\n        env:\n        - name: INDEX\n          value: \"{i}\"\n"
            ),
        };
        out.push_str("---\n");
        out.push_str(&doc);
    }
    out
}

async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    Ok(())
}

/// Runs `kubectl apply --server-side` of `file`; returns how many objects it reported.
async fn kubectl_apply(kubeconfig: &Path, cache: &Path, file: &Path) -> Result<usize> {
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(["apply", "--server-side", "--field-manager=bench", "-f"])
        .arg(file)
        .output()
        .await
        .context("running kubectl")?;
    if !out.status.success() {
        bail!(
            "kubectl apply --server-side failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.ends_with("serverside-applied"))
        .count())
}

fn line(what: &str, weir: Step, kubectl: Step) {
    println!(
        "bench apply: {what}: weir {:.2} s / {:.0} requests, kubectl {:.2} s / {:.0} requests ({:.1}x faster, {:.2}x requests)",
        weir.time.as_secs_f64(),
        weir.requests,
        kubectl.time.as_secs_f64(),
        kubectl.requests,
        kubectl.time.as_secs_f64() / weir.time.as_secs_f64().max(1e-9),
        weir.requests / kubectl.requests.max(1.0),
    );
}

/// `cargo xtask bench apply --objects N`.
pub fn apply(objects: usize) -> Result<()> {
    use weir_ssa::{ApplyOptions, Engine, Owner, parse_manifests};
    use weir_testenv::{ControlPlane, ControlPlaneOptions};

    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let plane = ControlPlane::start(ControlPlaneOptions::default()).await?;
        let client = plane.client().await?;
        for ns in ["bench-weir-a", "bench-weir-b", "bench-kubectl-a", "bench-kubectl-b"] {
            create_namespace(&client, ns).await?;
        }
        // Let the apiserver settle after start-up, then measure its idle request rate.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let idle = Duration::from_secs(10);
        let before = requests_total(&client).await?;
        tokio::time::sleep(idle).await;
        let after = requests_total(&client).await?;
        let background = ((after - before - 1.0) / idle.as_secs_f64()).max(0.0);
        println!(
            "bench apply: {objects} objects (ConfigMaps, headless Services, Deployments with 0 replicas) in two namespaces; control plane etcd + kube-apiserver only; background {background:.2} requests/s subtracted"
        );

        // weir: the engine in-process, one engine (one discovery cache) for both applies.
        let weir_yaml = manifests(objects, ["bench-weir-a", "bench-weir-b"]);
        let engine = Engine::new(client.clone(), Owner::new("bench", "weir"));
        let options = ApplyOptions::default();
        let apply_once = || async {
            let set = parse_manifests(&weir_yaml)?;
            anyhow::Ok(engine.apply(set, &options).await?)
        };
        let (first, weir_first) = measured(&client, background, apply_once()).await?;
        let (again, weir_noop) = measured(&client, background, apply_once()).await?;
        println!(
            "bench apply: weir first apply: {}; re-apply: {}",
            first.change_set.summary(),
            again.change_set.summary()
        );
        if again.change_set.has_writes() {
            bail!("the weir re-apply wrote objects: {}", again.change_set.summary());
        }

        // kubectl: a fresh discovery cache, warm for the re-apply.
        let file = dir.path().join("kubectl.yaml");
        std::fs::write(&file, manifests(objects, ["bench-kubectl-a", "bench-kubectl-b"]))?;
        let cache = dir.path().join("kube-cache");
        let kubeconfig = plane.kubeconfig_path();
        let (k1, kubectl_first) =
            measured(&client, background, kubectl_apply(kubeconfig, &cache, &file)).await?;
        let (k2, kubectl_noop) =
            measured(&client, background, kubectl_apply(kubeconfig, &cache, &file)).await?;
        println!("bench apply: kubectl reported {k1} objects applied, then {k2}");
        if k1 != objects || k2 != objects {
            bail!("kubectl applied {k1} and {k2} objects, expected {objects}");
        }

        line("first apply", weir_first, kubectl_first);
        line("no-op re-apply", weir_noop, kubectl_noop);
        anyhow::Ok(())
    })
}

/// `cargo xtask bench apply-scale --objects N [--per-repo K]`: the release source- and
/// apply-controllers against a real control plane; N/K GitRepositories (file:// repositories with
/// one directory per Apply, each holding one ConfigMap; K = N by default: every Apply reads its own
/// directory of one shared repository) and N Applies, each applying its directory; prints the time
/// until all Applies are Ready and the apply-controller's peak RSS.
pub fn apply_scale(root: &Path, objects: usize, per_repo_flag: Option<usize>) -> Result<()> {
    let per_repo = per_repo_flag.unwrap_or(objects).max(1);
    use weir_api::{
        Apply, GitRepository,
        conditions::{self, types},
    };
    use weir_testenv::{ControlPlane, ControlPlaneOptions};

    println!("bench apply-scale: building the release controllers…");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "weir-source-controller",
            "-p",
            "weir-apply-controller",
        ])
        .status()?;
    if !status.success() {
        bail!("building the controllers failed");
    }
    let dir = tempfile::tempdir()?;
    let repos = objects.div_ceil(per_repo);
    let repo_dir = |r: usize| dir.path().join(format!("repo{r}"));
    for n in 0..objects {
        let app = repo_dir(n / per_repo).join(format!("apps/a{n:04}"));
        std::fs::create_dir_all(&app)?;
        std::fs::write(
            app.join("configmap.yaml"),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: scale-{n}\ndata:\n  INDEX: \"{n}\"\n"
            ),
        )?;
    }
    let git = |work: &Path, args: &[&str]| -> Result<()> {
        let ok = Command::new("git")
            .current_dir(work)
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
    for r in 0..repos {
        let work = repo_dir(r);
        git(&work, &["init", "-q", "-b", "main"])?;
        git(&work, &["add", "-A"])?;
        git(&work, &["commit", "-q", "-m", "init"])?;
    }
    let ns = "bench-apply";

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let plane = ControlPlane::start(ControlPlaneOptions::default()).await?;
        let client = plane.client().await?;
        weir_testenv::install_crds(&client, &weir_api::crds::all(), "weir-xtask").await?;
        create_namespace(&client, ns).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let common = |name: &str| {
            let mut c = Command::new(root.join("target/release").join(name));
            c.env("KUBECONFIG", plane.kubeconfig_path())
                .args(["--metrics-addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0"])
                .args(["--log-level", "warn", "--log-format", "text", "--concurrent", "4"]);
            c
        };
        let mut source = common("weir-source-controller")
            .args(["--storage-addr", "127.0.0.1:0", "--storage-path"])
            .arg(dir.path().join("source-storage"))
            .spawn()?;
        let mut apply = common("weir-apply-controller").spawn()?;
        let outcome = async {
            let git_repos: Api<GitRepository> = Api::namespaced(client.clone(), ns);
            for r in 0..repos {
                let url = format!("file://{}", repo_dir(r).display());
                let spec = serde_json::from_value(serde_json::json!({ "url": url, "interval": "10m" }))?;
                git_repos.create(&PostParams::default(), &GitRepository::new(&format!("repo{r}"), spec)).await?;
            }
            wait_until(&git_repos, repos, "GitRepositories Ready", |o: &GitRepository| {
                o.status.as_ref().is_some_and(|s| conditions::is_true(&s.conditions, types::READY))
            })
            .await?;
            let applies: Api<Apply> = Api::namespaced(client.clone(), ns);
            let started = Instant::now();
            for n in 0..objects {
                let spec = serde_json::from_value(serde_json::json!({
                    "sourceRef": { "kind": "GitRepository", "name": format!("repo{}", n / per_repo) },
                    "path": format!("apps/a{n:04}"),
                    "interval": "10m",
                    "prune": true,
                    "targetNamespace": ns,
                }))?;
                applies.create(&PostParams::default(), &Apply::new(&format!("apply{n:04}"), spec)).await?;
            }
            wait_until(&applies, objects, "Applies Ready", |o: &Apply| {
                o.status.as_ref().is_some_and(|s| conditions::is_true(&s.conditions, types::READY))
            })
            .await?;
            let all_ready = started.elapsed();
            tokio::time::sleep(Duration::from_secs(5)).await;
            anyhow::Ok(all_ready)
        }
        .await;
        let hwm = peak_rss_kb(apply.id());
        let source_hwm = peak_rss_kb(source.id());
        let _ = apply.kill();
        let _ = source.kill();
        let _ = apply.wait();
        let _ = source.wait();
        let all_ready = outcome?;
        println!("bench apply-scale: {objects} Applies (one ConfigMap each) over {repos} GitRepositories ({per_repo} Applies each, one directory per Apply), --concurrent 4, control plane etcd + kube-apiserver");
        println!("bench apply-scale: all Ready after {:.1} s ({:.1} ms per Apply)", all_ready.as_secs_f64(), all_ready.as_secs_f64() * 1e3 / objects.max(1) as f64);
        println!("bench apply-scale: apply-controller peak RSS {} kB (source-controller {} kB)", hwm?, source_hwm?);
        anyhow::Ok(())
    })
}
