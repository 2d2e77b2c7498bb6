//! `cargo xtask demo [--keep] [--dir D] [--release]`: the whole pipeline on this machine.
//!
//! Starts etcd + kube-apiserver, a smart-HTTP Git server holding `examples/podinfo`, installs the
//! CRDs from `config/crd`, runs the three controllers as processes, creates the GitRepository,
//! Render and Apply of `examples/weir` (only the URL changed to the local server), shows each
//! object's Ready condition as it changes, lists what was applied, then pushes a commit and
//! measures push → the Apply's `lastAppliedRevision` naming it. Everything stops at the end;
//! `--keep` leaves it running until Ctrl-C and prints how to use kubectl against it.
//!
//! The controllers are built with the dev profile by default: on a fresh machine a debug build of
//! the workspace takes a fraction of the release build's time (no cross-crate optimisation), and
//! `cargo test` has usually built it already; one application does not need release speed.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    pin::Pin,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
    runtime::{WatchStreamExt, watcher},
};
use weir_api::{Apply, GitRepository, Render, inventory::ObjectId, reconcile};
use weir_testenv::{ControlPlane, ControlPlaneOptions};

use crate::pipeline::{self, Controllers, NAME, NAMESPACE};

/// How long each phase may take before the demo gives up.
const PHASE_TIMEOUT: Duration = Duration::from_secs(180);

const USAGE: &str = "usage: cargo xtask demo [--keep] [--dir DIR] [--release]";

/// Parsed `demo` flags.
struct Flags {
    keep: bool,
    dir: Option<PathBuf>,
    release: bool,
}

fn parse_flags(flags: &[&str]) -> Result<Flags> {
    let mut parsed = Flags {
        keep: false,
        dir: None,
        release: false,
    };
    let mut it = flags.iter();
    while let Some(flag) = it.next() {
        match *flag {
            "--keep" => parsed.keep = true,
            "--release" => parsed.release = true,
            "--dir" => match it.next() {
                Some(d) => parsed.dir = Some(PathBuf::from(d)),
                None => bail!("--dir needs a directory\n{USAGE}"),
            },
            other => bail!("unknown flag {other:?}\n{USAGE}"),
        }
    }
    Ok(parsed)
}

/// What the demo started, stopped in reverse order by [`Running::stop`].
#[derive(Default)]
struct Running {
    plane: Option<ControlPlane>,
    git: Option<pipeline::ServedRepo>,
    controllers: Option<Controllers>,
}

impl Running {
    async fn stop(&mut self) -> Vec<&'static str> {
        let killed = match self.controllers.as_mut() {
            Some(c) => c.terminate().await,
            None => Vec::new(),
        };
        self.controllers = None;
        if let Some(plane) = self.plane.as_mut() {
            plane.stop();
        }
        self.plane = None;
        self.git = None;
        killed
    }
}

/// Runs the demo.
pub fn demo(root: &Path, flags: &[&str]) -> Result<ExitCode> {
    let flags = parse_flags(flags)?;
    pipeline::require_programs(&["git", "python3"])?;
    let dir = match &flags.dir {
        Some(d) => {
            if fs::read_dir(d).is_ok_and(|mut entries| entries.next().is_some()) {
                bail!(
                    "--dir {} is not empty; give a new or empty directory",
                    d.display()
                );
            }
            d.clone()
        }
        None => std::env::temp_dir().join(format!("weir-demo-{}", std::process::id())),
    };
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let started = Instant::now();
    println!("weir demo: GitRepository → Render → Apply on a local control plane");
    println!("  work dir {}", dir.display());

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let mut running = Running::default();
        let outcome = tokio::select! {
            r = pipeline_demo(root, &dir, &flags, &mut running) => r,
            r = tokio::signal::ctrl_c() => r.map_err(anyhow::Error::from).and_then(|()| bail!("interrupted")),
        };
        let outcome = match outcome {
            Ok(()) if flags.keep => keep_running(&dir, &running).await,
            other => other,
        };
        let killed = running.stop().await;
        if !killed.is_empty() {
            println!("  {} did not stop cleanly on SIGTERM", killed.join(", "));
        }
        match outcome {
            Ok(()) => {
                if flags.keep {
                    println!("stopped; kept {}", dir.display());
                } else {
                    let _ = fs::remove_dir_all(&dir);
                    println!(
                        "stopped controllers, control plane and git server; removed the work dir ({:.1} s in all)",
                        started.elapsed().as_secs_f64()
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!(
                    "weir demo failed: {e:#}\n  controller logs: {}/logs, control plane logs: {}/cluster",
                    dir.display(),
                    dir.display()
                );
                Ok(ExitCode::FAILURE)
            }
        }
    })
}

/// `--keep`: prints how to reach the cluster and waits for Ctrl-C or SIGTERM.
async fn keep_running(dir: &Path, running: &Running) -> Result<()> {
    let kubeconfig = running
        .plane
        .as_ref()
        .map(|p| p.kubeconfig_path().display().to_string())
        .unwrap_or_default();
    println!("running until Ctrl-C. In another shell:");
    println!("  export KUBECONFIG={kubeconfig}");
    println!("  kubectl -n {NAMESPACE} get gitrepositories,renders,applies,receivers");
    println!("  kubectl -n {NAMESPACE} get all,configmaps,ingresses");
    println!(
        "  git clone {}  # commit, push, then:",
        dir.join("git").join(pipeline::EXAMPLES_REPO).display()
    );
    println!(
        "  kubectl -n {NAMESPACE} annotate --overwrite gitrepository/{NAME} {}=\"$(date +%s)\"",
        weir_api::reconcile::REQUESTED_AT_ANNOTATION
    );
    println!("  logs: {}/logs", dir.display());
    crate::wait_for_shutdown().await
}

/// One step's line: what happened and how long it took.
fn step(what: &str, took: Duration) {
    println!("  {what:<60} {:>5.1} s", took.as_secs_f64());
}

async fn pipeline_demo(
    root: &Path,
    dir: &Path,
    flags: &Flags,
    running: &mut Running,
) -> Result<()> {
    let t = Instant::now();
    let root_owned = root.to_owned();
    let release = flags.release;
    let profile = if release { "release" } else { "debug" };
    if !root
        .join("target")
        .join(profile)
        .join("weir-apply-controller")
        .is_file()
    {
        println!("  first run: compiling the controllers ({profile}), a few minutes…");
    }
    let bin_dir =
        tokio::task::spawn_blocking(move || pipeline::build_controllers(&root_owned, release))
            .await??;
    step(&format!("controllers built ({profile})"), t.elapsed());

    let t = Instant::now();
    if !weir_testenv::binaries::bin_dir()
        .join("kube-apiserver")
        .is_file()
    {
        pipeline::require_programs(&["go"])?;
        println!(
            "  first run: building etcd and kube-apiserver into {} (several minutes)…",
            weir_testenv::binaries::bin_dir().display()
        );
    }
    let plane = ControlPlane::start(ControlPlaneOptions {
        dir: Some(dir.join("cluster")),
        ..ControlPlaneOptions::default()
    })
    .await
    .context("starting etcd + kube-apiserver")?;
    let client = plane.client().await?;
    step("control plane up (etcd + kube-apiserver)", t.elapsed());
    running.plane = Some(plane);

    let t = Instant::now();
    let repo = pipeline::ServedRepo::examples(root, dir)?;
    let (initial, url) = (repo.head.clone(), repo.url.clone());
    running.git = Some(repo);
    let crds = pipeline::install_crds(&client, root).await?;
    step(
        &format!("git server up, {crds} CRDs installed and Established"),
        t.elapsed(),
    );
    println!("    {url} holds examples/podinfo at {}", short(&initial));

    let t = Instant::now();
    let kubeconfig = dir.join("cluster/kubeconfig");
    let mut controllers = Controllers::start(&bin_dir, &kubeconfig, dir, "info", &[]).await?;
    let ready = controllers.wait_ready().await;
    running.controllers = Some(controllers);
    ready?;
    step("controllers ready (source, render, apply)", t.elapsed());

    pipeline::create_example_objects(&client, root, &url, None).await?;
    // A Git host would call the Receiver's webhook on every push; the demo does the same.
    let hook = match running
        .controllers
        .as_ref()
        .and_then(Controllers::webhook_addr)
    {
        Some(addr) => Some((addr, pipeline::create_receiver(&client, root).await?)),
        None => None,
    };
    println!(
        "  created GitRepository, Render, Apply{} {NAMESPACE}/{NAME} (examples/weir):",
        if hook.is_some() {
            " and a Receiver"
        } else {
            ""
        }
    );
    let mut progress = Progress::new(&client);
    let t = Instant::now();
    progress
        .follow(running, |states| applied(states, &initial), PHASE_TIMEOUT)
        .await
        .with_context(|| format!("waiting for commit {} to be applied", short(&initial)))?;
    let apply = Api::<Apply>::namespaced(client.clone(), NAMESPACE)
        .get(NAME)
        .await?;
    let entries = apply
        .status
        .and_then(|s| s.inventory)
        .map(|i| i.entries)
        .unwrap_or_default();
    let objects: Vec<String> = entries
        .iter()
        .filter_map(|e| e.object())
        .map(|o: ObjectId| format!("{}/{}", o.kind, o.name))
        .collect();
    println!(
        "  applied {} objects in {:.1} s: {}",
        objects.len(),
        t.elapsed().as_secs_f64(),
        objects.join(" ")
    );

    let message = "hello from weir (second commit)";
    let repo = running.git.as_ref().context("the git server is gone")?;
    let commit = repo.commit(
        pipeline::MESSAGE_FILE,
        &pipeline::message_yaml(message),
        "podinfo: a new message",
    )?;
    let pushed = Instant::now();
    repo.push()?;
    let how = match &hook {
        Some((addr, path)) => {
            pipeline::call_webhook(*addr, path, &commit).await?;
            "called the Receiver's webhook (signed generic-hmac POST)"
        }
        None => {
            // Without a webhook listener the annotation asks the source-controller to fetch now
            // instead of at its next interval.
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            Api::<GitRepository>::namespaced(client.clone(), NAMESPACE)
                .patch(
                    NAME,
                    &PatchParams::default(),
                    &Patch::Merge(reconcile::request_patch(&format!("demo-{stamp}"))),
                )
                .await?;
            "requested a reconcile"
        }
    };
    println!(
        "  pushed commit {} \"podinfo: a new message\", {how}",
        short(&commit)
    );
    progress.restart_clock();
    progress
        .follow(running, |states| applied(states, &commit), PHASE_TIMEOUT)
        .await
        .with_context(|| format!("waiting for commit {} to be applied", short(&commit)))?;
    let latency = pushed.elapsed();
    let live = Api::<ConfigMap>::namespaced(client.clone(), NAMESPACE)
        .get(NAME)
        .await?
        .data
        .and_then(|d| d.get("PODINFO_UI_MESSAGE").cloned())
        .unwrap_or_default();
    if live != message {
        bail!(
            "the Apply reports commit {} but ConfigMap {NAME} says {live:?}",
            short(&commit)
        );
    }
    println!(
        "  commit {} applied in {:.2} s (push → Apply lastAppliedRevision); ConfigMap {NAME}: \"{live}\"",
        short(&commit),
        latency.as_secs_f64()
    );
    Ok(())
}

/// The first seven characters of a commit id.
fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

/// What the progress view shows of one object.
#[derive(Clone, Debug, PartialEq)]
struct State {
    status: String,
    reason: String,
    message: String,
    /// The artifact's revision (GitRepository, Render) or `lastAppliedRevision` (Apply).
    revision: Option<String>,
}

type Key = (&'static str, String);
type StateStream = Pin<Box<dyn Stream<Item = (Key, State)> + Send>>;

/// A live view of the three kinds in the demo namespace: one line per Ready change.
struct Progress {
    events: futures::stream::SelectAll<StateStream>,
    states: BTreeMap<Key, State>,
    clock: Instant,
}

fn watch<K, F>(client: &Client, kind: &'static str, state: F) -> StateStream
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
    K::DynamicType: Default,
    F: Fn(&K) -> State + Send + 'static,
{
    let api: Api<K> = Api::namespaced(client.clone(), NAMESPACE);
    watcher(api, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        // Watch errors are retried with backoff; a phase that never completes times out.
        .filter_map(move |o| {
            let item = o
                .ok()
                .map(|o| ((kind, o.meta().name.clone().unwrap_or_default()), state(&o)));
            async move { item }
        })
        .boxed()
}

fn state_of(conditions: &[weir_api::conditions::Condition], revision: Option<String>) -> State {
    let (status, reason, message) = pipeline::ready(conditions);
    State {
        status,
        reason,
        message,
        revision,
    }
}

impl Progress {
    fn new(client: &Client) -> Self {
        let streams = vec![
            watch(client, "GitRepository", |o: &GitRepository| {
                let s = o.status.clone().unwrap_or_default();
                state_of(&s.conditions, s.artifact.map(|a| a.revision))
            }),
            watch(client, "Render", |o: &Render| {
                let s = o.status.clone().unwrap_or_default();
                state_of(&s.conditions, s.artifact.map(|a| a.revision))
            }),
            watch(client, "Apply", |o: &Apply| {
                let s = o.status.clone().unwrap_or_default();
                state_of(&s.conditions, s.last_applied_revision)
            }),
        ];
        Progress {
            events: futures::stream::select_all(streams),
            states: BTreeMap::new(),
            clock: Instant::now(),
        }
    }

    fn restart_clock(&mut self) {
        self.clock = Instant::now();
    }

    /// Prints changes until `done` holds, failing when a controller exits or `timeout` passes
    /// (naming the objects that are not Ready).
    async fn follow(
        &mut self,
        running: &mut Running,
        done: impl Fn(&BTreeMap<Key, State>) -> bool,
        timeout: Duration,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut liveness = tokio::time::interval(Duration::from_millis(500));
        while !done(&self.states) {
            tokio::select! {
                event = self.events.next() => {
                    let Some((key, state)) = event else { bail!("the watch ended") };
                    self.show(key, state);
                }
                _ = liveness.tick() => {
                    if let Some(c) = running.controllers.as_mut() {
                        c.check_alive()?;
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    let stuck: Vec<String> = self
                        .states
                        .iter()
                        .filter(|(_, s)| s.status != "True")
                        .map(|((kind, name), s)| format!("{kind}/{name} {} {}: {}", s.status, s.reason, s.message))
                        .collect();
                    bail!("timed out after {timeout:?}; not Ready: {}", if stuck.is_empty() { "none (revision not reached)".into() } else { stuck.join("; ") });
                }
            }
        }
        Ok(())
    }

    fn show(&mut self, key: Key, state: State) {
        let changed = self
            .states
            .get(&key)
            .is_none_or(|old| (&old.status, &old.reason) != (&state.status, &state.reason));
        // An object without conditions yet has nothing to show.
        if changed && !state.reason.is_empty() {
            let mut message = shorten_commits(&state.message.replace('\n', " "));
            if message.chars().count() > 64 {
                message = message.chars().take(63).collect::<String>() + "…";
            }
            println!(
                "  {:>5.1} s  {:<22} {:<7} {:<18} {message}",
                self.clock.elapsed().as_secs_f64(),
                format!("{}/{}", key.0, key.1),
                state.status,
                state.reason,
            );
        }
        if changed && state.reason.is_empty() {
            return;
        }
        self.states.insert(key, state);
    }
}

/// Cuts every `sha1:<40 hex digits>` in `text` to seven digits.
fn shorten_commits(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("sha1:") {
        let (head, tail) = rest.split_at(at + 5);
        out.push_str(head);
        let hex = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex == 40 {
            out.push_str(&tail[..7]);
            rest = &tail[40..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// The Apply is Ready with `commit` as its last applied revision.
fn applied(states: &BTreeMap<Key, State>, commit: &str) -> bool {
    states.get(&("Apply", NAME.to_owned())).is_some_and(|s| {
        s.status == "True" && s.revision.as_deref().is_some_and(|r| r.ends_with(commit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_reject_unknown_ones() {
        let f = parse_flags(&["--keep", "--dir", "/x", "--release"]).unwrap();
        assert!(f.keep && f.release);
        assert_eq!(f.dir.as_deref(), Some(Path::new("/x")));
        let e = parse_flags(&["--bogus"]).err().unwrap().to_string();
        assert!(e.contains("unknown flag \"--bogus\""), "{e}");
        let e = parse_flags(&["--dir"]).err().unwrap().to_string();
        assert!(e.contains("--dir needs a directory"), "{e}");
    }

    #[test]
    fn commits_are_shortened() {
        let long = "a".repeat(40);
        assert_eq!(
            shorten_commits(&format!("applied revision 'main@sha1:{long}' now")),
            "applied revision 'main@sha1:aaaaaaa' now"
        );
        assert_eq!(shorten_commits("sha1:abc and sha1:"), "sha1:abc and sha1:");
    }

    #[test]
    fn applied_needs_ready_and_the_commit() {
        let mut states = BTreeMap::new();
        let state = |status: &str, rev: &str| State {
            status: status.into(),
            reason: "r".into(),
            message: String::new(),
            revision: Some(rev.into()),
        };
        states.insert(("Apply", NAME.to_owned()), state("True", "main@sha1:abc"));
        assert!(applied(&states, "abc"));
        assert!(!applied(&states, "def"));
        states.insert(("Apply", NAME.to_owned()), state("False", "main@sha1:abc"));
        assert!(!applied(&states, "abc"));
    }
}
