//! What `cargo xtask demo` and `cargo xtask bench mttp` share: building and running the three
//! controller binaries as processes against a control plane, installing the committed CRDs, Git
//! commands that fail with a readable error, and the Ready state of weir objects.

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use weir_api::conditions::{self, Condition, types};

/// The controller binaries, in pipeline order.
pub const CONTROLLERS: [&str; 3] = [
    "weir-source-controller",
    "weir-render-controller",
    "weir-apply-controller",
];

/// Builds the three controller binaries with cargo (`release` or the dev profile) and returns
/// the directory holding them.
pub fn build_controllers(root: &Path, release: bool) -> Result<PathBuf> {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.current_dir(root).args(["build", "-q"]);
    if release {
        cargo.arg("--release");
    }
    for name in CONTROLLERS {
        cargo.args(["-p", name]);
    }
    let status = cargo.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of the controllers failed (see the compiler output above)");
    }
    Ok(root
        .join("target")
        .join(if release { "release" } else { "debug" }))
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .context("finding a free loopback port")?
        .local_addr()?
        .port())
}

/// One running controller process.
struct Controller {
    name: &'static str,
    child: Child,
    log: PathBuf,
    health_port: u16,
}

/// The three controllers as child processes, logging to `<dir>/logs/<name>.log`. Dropping the set
/// kills whatever still runs; [`Controllers::terminate`] stops them gracefully.
pub struct Controllers {
    running: Vec<Controller>,
    logs: PathBuf,
}

impl Controllers {
    /// Starts the source-, render- and apply-controller from `bin_dir` against `kubeconfig`, with
    /// artifact storage under `dir`, text logs at `log_level`, and `extra` flags for each.
    pub fn start(
        bin_dir: &Path,
        kubeconfig: &Path,
        dir: &Path,
        log_level: &str,
        extra: &[&str],
    ) -> Result<Self> {
        let logs = dir.join("logs");
        fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let mut set = Controllers {
            running: Vec::new(),
            logs,
        };
        for name in CONTROLLERS {
            let binary = bin_dir.join(name);
            if !binary.is_file() {
                bail!("controller binary {} is missing", binary.display());
            }
            let health_port = free_port()?;
            let log = set.logs.join(format!("{name}.log"));
            let out =
                fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
            let err = out.try_clone()?;
            // Under `setpriv --pdeathsig KILL` (as the control plane is) a controller never
            // outlives xtask, even when xtask itself is killed.
            let mut command = if setpriv_available() {
                let mut c = Command::new("setpriv");
                c.args(["--pdeathsig", "KILL", "--"]).arg(&binary);
                c
            } else {
                Command::new(&binary)
            };
            command
                .env("KUBECONFIG", kubeconfig)
                .arg("--health-addr")
                .arg(format!("127.0.0.1:{health_port}"))
                .args(["--metrics-addr", "127.0.0.1:0"])
                .args(["--log-format", "text", "--log-level", log_level])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err);
            if name != "weir-apply-controller" {
                let storage = dir.join("storage").join(name);
                command
                    .args(["--storage-addr", "127.0.0.1:0", "--storage-path"])
                    .arg(storage);
            }
            let child = command
                .spawn()
                .with_context(|| format!("starting {}", binary.display()))?;
            set.running.push(Controller {
                name,
                child,
                log,
                health_port,
            });
        }
        Ok(set)
    }

    /// Waits until every controller answers `/readyz` with 200, failing when one exits or
    /// `timeout` passes.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        for i in 0..self.running.len() {
            loop {
                self.check_alive()?;
                let c = &self.running[i];
                if readyz(c.health_port).await {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "{} not ready after {timeout:?} (log: {})",
                        c.name,
                        c.log.display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Fails with the controller's name, exit status and log when one has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        for c in &mut self.running {
            if let Some(status) = c.child.try_wait()? {
                bail!("{} exited ({status}); log: {}", c.name, c.log.display());
            }
        }
        Ok(())
    }

    /// Peak resident set size (VmHWM, kB) of each controller, by name.
    pub fn peak_rss_kb(&self) -> Vec<(&'static str, u64)> {
        self.running
            .iter()
            .map(|c| (c.name, peak_rss_kb(c.child.id()).unwrap_or(0)))
            .collect()
    }

    /// SIGTERM to each controller, then up to ten seconds for them to exit before SIGKILL.
    /// Returns the names of those that had to be killed.
    pub async fn terminate(&mut self) -> Vec<&'static str> {
        for c in &self.running {
            let _ = Command::new("kill")
                .args(["-TERM", &c.child.id().to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut killed = Vec::new();
        for c in &mut self.running {
            loop {
                match c.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = c.child.kill();
                        let _ = c.child.wait();
                        killed.push(c.name);
                        break;
                    }
                    Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
        self.running.clear();
        killed
    }
}

impl Drop for Controllers {
    fn drop(&mut self) {
        for c in &mut self.running {
            let _ = c.child.kill();
            let _ = c.child.wait();
        }
    }
}

fn setpriv_available() -> bool {
    Command::new("setpriv")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `GET /readyz` on a loopback port answers 200.
async fn readyz(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        std::io::Result::Ok(head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .is_ok_and(|r| r.unwrap_or(false))
}

/// Peak resident set size (VmHWM) of a process, in kB.
pub fn peak_rss_kb(pid: u32) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmHWM in /proc status")
}

/// Server-side applies the CRDs committed under `config/crd/` and waits until each is
/// Established. Returns how many were installed.
pub async fn install_crds(client: &Client, root: &Path) -> Result<usize> {
    let dir = root.join("config/crd");
    let mut crds = Vec::new();
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && p.file_name().is_some_and(|n| n != "kustomization.yaml")
        })
        .collect();
    files.sort();
    for file in files {
        let text =
            fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let crd: CustomResourceDefinition = serde_yaml::from_str(&text)
            .with_context(|| format!("{} is not a CustomResourceDefinition", file.display()))?;
        crds.push(crd);
    }
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("weir-xtask").force();
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(crd))
            .await
            .with_context(|| format!("installing CRD {name}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        loop {
            let stored = api.get(&name).await?;
            let established = stored.status.and_then(|s| s.conditions).is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                break;
            }
            if Instant::now() > deadline {
                bail!("CRD {name} not Established after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(crds.len())
}

/// Runs git in `dir` with a fixed identity and no user or system configuration; returns stdout,
/// or an error with git's own message.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "weir")
        .env("GIT_AUTHOR_EMAIL", "weir@example.invalid")
        .env("GIT_COMMITTER_NAME", "weir")
        .env("GIT_COMMITTER_EMAIL", "weir@example.invalid")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .context("running git (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Fails with one readable line when a program the command needs is not installed.
pub fn require_programs(programs: &[&str]) -> Result<()> {
    for program in programs {
        let found = Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            bail!("`{program}` is required but was not found on PATH");
        }
    }
    Ok(())
}

/// The Ready condition's status and reason (`Unknown`, `""` when absent).
pub fn ready(conditions: &[Condition]) -> (String, String, String) {
    match conditions::get(conditions, types::READY) {
        Some(c) => (c.status.clone(), c.reason.clone(), c.message.clone()),
        None => ("Unknown".into(), String::new(), String::new()),
    }
}

/// Watches `api` until `count` objects satisfy `done` (each object counted by name, from its
/// latest state); fails after `timeout` with how many got there. `progress` is called with the
/// count whenever it changes.
pub async fn wait_all<K>(
    api: Api<K>,
    count: usize,
    timeout: Duration,
    done: impl Fn(&K) -> bool,
    mut progress: impl FnMut(usize),
) -> Result<()>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let mut finished = std::collections::HashSet::new();
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    let deadline = tokio::time::Instant::now() + timeout;
    while finished.len() < count {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(o)) => {
                    let name = o.meta().name.clone().unwrap_or_default();
                    let before = finished.len();
                    if done(&o) {
                        finished.insert(name);
                    } else {
                        finished.remove(&name);
                    }
                    if finished.len() != before {
                        progress(finished.len());
                    }
                }
                // Watch errors are retried with backoff.
                Some(Err(_)) => {}
                None => bail!("the watch ended"),
            },
            () = tokio::time::sleep_until(deadline) => {
                bail!("only {} of {count} done after {timeout:?}", finished.len());
            }
        }
    }
    Ok(())
}
