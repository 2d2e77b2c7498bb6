//! `cargo xtask bench webhook [--commits N] [--poll INTERVAL]`: commit → applied latency.
//!
//! The example application (`examples/podinfo` served over smart HTTP, `examples/weir`'s
//! GitRepository, Render and Apply) with the release controllers. Each of N commits changes the
//! overlay's ConfigMap message and is pushed; then a `generic-hmac` Receiver for the
//! GitRepository is called with a signed POST, as a Git host would. The latency is from the
//! start of the push until a watch on the Apply sees `lastAppliedRevision` name the commit.
//! The GitRepository's interval is 1h, so only the webhook can explain a fast arrival.
//!
//! With `--poll INTERVAL` there is no Receiver: the GitRepository fetches every INTERVAL and the
//! same latency is measured for the polling path (each commit after a random pause within the
//! interval, so commits do not line up with the fetch cycle).

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, watcher},
};
use weir_api::Apply;
use weir_testenv::{ControlPlane, ControlPlaneOptions};

use crate::pipeline::{self, Controllers, NAME, NAMESPACE, ServedRepo};

/// How long one commit may take to arrive.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs the benchmark and prints the latencies.
pub fn webhook(root: &Path, commits: usize, poll: Option<&str>) -> Result<()> {
    if commits == 0 {
        bail!("--commits takes a number of at least 1");
    }
    pipeline::require_programs(&["git", "python3"])?;
    println!("bench webhook: building the release controllers…");
    let bin_dir = pipeline::build_controllers(root, true)?;
    let dir = tempfile::Builder::new().prefix("weir-webhook-").tempdir()?;
    let repo = ServedRepo::examples(root, dir.path())?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let plane = ControlPlane::start(ControlPlaneOptions::default()).await?;
        let client = plane.client().await?;
        pipeline::install_crds(&client, root).await?;
        let mut controllers =
            Controllers::start(&bin_dir, plane.kubeconfig_path(), dir.path(), "warn", &[])
                .await?;
        controllers.wait_ready().await?;
        let interval = poll.unwrap_or("1h");
        pipeline::create_example_objects(&client, root, &repo.url, Some(interval)).await?;
        let hook = match poll {
            Some(_) => None,
            None => {
                let addr = controllers
                    .webhook_addr()
                    .context("the source-controller has no --webhook-addr listener")?;
                let path = pipeline::create_receiver(&client, root).await?;
                Some((addr, path))
            }
        };
        let poll_interval = poll
            .map(|p| weir_api::duration::parse(p).with_context(|| format!("--poll {p:?}")))
            .transpose()?;
        let outcome = measure(
            &client,
            &repo,
            commits,
            hook.as_ref(),
            poll_interval,
            &mut controllers,
        )
        .await;
        controllers.terminate().await;
        let mut samples = outcome.with_context(|| {
            format!("controller logs in {}", dir.path().join("logs").display())
        })?;
        samples.sort();
        let pct = |p: f64| {
            let i = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i].as_secs_f64() * 1e3
        };
        let path = match poll {
            Some(i) => format!("polling every {i}, no webhook"),
            None => "generic-hmac Receiver webhook, GitRepository interval 1h".into(),
        };
        println!(
            "bench webhook: {commits} commits, {path}: push → applied p50 {:.0} ms, p99 {:.0} ms (min {:.0} ms, max {:.0} ms)",
            pct(0.50),
            pct(0.99),
            pct(0.0),
            pct(1.0)
        );
        anyhow::Ok(())
    })
}

/// Commits, pushes, calls the webhook (if any) and waits for the Apply, `commits` times; the
/// initial commit is awaited first and not counted.
async fn measure(
    client: &Client,
    repo: &ServedRepo,
    commits: usize,
    hook: Option<&(std::net::SocketAddr, String)>,
    poll: Option<Duration>,
    controllers: &mut Controllers,
) -> Result<Vec<Duration>> {
    let api = Api::<Apply>::namespaced(client.clone(), NAMESPACE);
    let config = watcher::Config::default().fields(&format!("metadata.name={NAME}"));
    let mut revisions = watcher(api, config)
        .default_backoff()
        .applied_objects()
        .filter_map(|o| async move { o.ok().and_then(|o: Apply| o.status?.last_applied_revision) })
        .boxed();
    let mut wait_for = async |commit: &str, controllers: &mut Controllers| -> Result<()> {
        let deadline = tokio::time::Instant::now() + COMMIT_TIMEOUT;
        let mut alive = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                r = revisions.next() => match r {
                    Some(r) if r.ends_with(commit) => return Ok(()),
                    Some(_) => {}
                    None => bail!("the Apply watch ended"),
                },
                _ = alive.tick() => controllers.check_alive()?,
                () = tokio::time::sleep_until(deadline) => {
                    bail!("commit {commit} not applied after {COMMIT_TIMEOUT:?}")
                }
            }
        }
    };
    wait_for(&repo.head, controllers).await?;
    let mut samples = Vec::with_capacity(commits);
    for i in 1..=commits {
        // Polling: commit at a random point of the fetch cycle, as real pushes do; right after
        // the previous arrival every commit would wait one whole interval.
        if let Some(interval) = poll {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default();
            tokio::time::sleep(interval.mul_f64(f64::from(nanos) / 1e9)).await;
        }
        let commit = repo.commit(
            pipeline::MESSAGE_FILE,
            &pipeline::message_yaml(&format!("commit {i}")),
            &format!("bench commit {i}"),
        )?;
        let started = Instant::now();
        repo.push()?;
        if let Some((addr, path)) = hook {
            pipeline::call_webhook(*addr, path, &commit).await?;
        }
        wait_for(&commit, controllers).await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}
