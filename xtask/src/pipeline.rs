//! What `cargo xtask demo` and `cargo xtask bench mttp` share: building and running the three
//! controller binaries as processes against a control plane, installing the committed CRDs, Git
//! commands that fail with a readable error, and the Ready state of weir objects.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};
use weir_api::conditions::{self, Condition, types};
use weir_testenv::git::HttpServer;
use weir_testenv::process::{Controller, ControllerProcess, ProcessOptions, WEBHOOK_ADDR_FLAG};

/// Builds the three controller binaries with cargo (`release` or the dev profile) and returns
/// the directory holding them.
pub fn build_controllers(root: &Path, release: bool) -> Result<PathBuf> {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.current_dir(root).args(["build", "-q"]);
    if release {
        cargo.arg("--release");
    }
    for controller in Controller::ALL {
        cargo.args(["-p", controller.binary_name()]);
    }
    let status = cargo.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of the controllers failed (see the compiler output above)");
    }
    Ok(root
        .join("target")
        .join(if release { "release" } else { "debug" }))
}

/// The three controllers as child processes (`weir_testenv::process`), logging text to
/// `<dir>/logs/<name>.log`, storing artifacts under `<dir>/storage/`. Dropping the set kills
/// whatever still runs; [`Controllers::terminate`] stops them gracefully.
pub struct Controllers {
    running: Vec<ControllerProcess>,
}

impl Controllers {
    /// Starts the source-, render- and apply-controller from `bin_dir` against `kubeconfig`, with
    /// logs at `log_level` and `extra` flags for each, without waiting for them to be ready.
    pub async fn start(
        bin_dir: &Path,
        kubeconfig: &Path,
        dir: &Path,
        log_level: &str,
        extra: &[&str],
    ) -> Result<Self> {
        let mut running = Vec::new();
        for controller in Controller::ALL {
            let name = controller.binary_name();
            let options = ProcessOptions::new(kubeconfig)
                .binary(bin_dir.join(name))
                .log_dir(dir.join("logs"))
                .storage_dir(dir.join("storage").join(name))
                .log_level(log_level)
                .args(["--log-format", "text"])
                .args(extra.iter().copied());
            let process = ControllerProcess::spawn(controller, &options)
                .await
                .with_context(|| format!("starting {name}"))?;
            running.push(process);
        }
        Ok(Controllers { running })
    }

    /// Waits until every controller answers `/readyz`, failing with the log's tail when one
    /// exits or does not get ready in time.
    pub async fn wait_ready(&mut self) -> Result<()> {
        for c in &mut self.running {
            c.wait_ready().await?;
        }
        Ok(())
    }

    /// Fails with the controller's name and log when one has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        for c in &mut self.running {
            if !c.is_running() {
                bail!(
                    "{} exited; log {}:\n{}",
                    c.controller().binary_name(),
                    c.log_path().display(),
                    c.log_tail(10)
                );
            }
        }
        Ok(())
    }

    /// Where the source-controller serves Receiver webhooks, when its binary has the listener.
    pub fn webhook_addr(&self) -> Option<std::net::SocketAddr> {
        self.running
            .iter()
            .find(|c| c.controller() == Controller::Source)?
            .listener(WEBHOOK_ADDR_FLAG)
    }

    /// Peak resident set size (VmHWM, kB) of each controller, by name.
    pub fn peak_rss_kb(&self) -> Vec<(&'static str, u64)> {
        self.running
            .iter()
            .map(|c| {
                let kb = c.pid().and_then(|pid| peak_rss_kb(pid).ok()).unwrap_or(0);
                (c.controller().binary_name(), kb)
            })
            .collect()
    }

    /// SIGTERM to each controller, consumers first, each given time to exit before SIGKILL.
    /// Returns the names of those that did not stop cleanly.
    pub async fn terminate(&mut self) -> Vec<&'static str> {
        let mut unclean = Vec::new();
        for c in self.running.iter_mut().rev() {
            if c.is_running() && c.terminate().await.is_err() {
                unclean.push(c.controller().binary_name());
            }
        }
        self.running.clear();
        unclean
    }
}

/// Polls until `objects` items satisfy `done`, failing after ten minutes.
pub async fn wait_until<K>(
    api: &Api<K>,
    objects: usize,
    what: &str,
    done: impl Fn(&K) -> bool,
) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let started = Instant::now();
    loop {
        let list = api.list(&kube::api::ListParams::default()).await?;
        let count = list.items.iter().filter(|o| done(o)).count();
        if count >= objects {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("only {count} of {objects} {what} after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
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
    weir_testenv::install_crds(client, &crds, "weir-xtask").await?;
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

/// Namespace of the example's weir objects and of the application (`examples/weir`).
pub const NAMESPACE: &str = "weir-demo";
/// Name of the example's GitRepository, Render and Apply.
pub const NAME: &str = "podinfo";
/// Repository name of the examples on the local Git server.
pub const EXAMPLES_REPO: &str = "weir-examples.git";

/// The example file a new commit changes, relative to the repository root.
pub const MESSAGE_FILE: &str = "examples/podinfo/overlays/demo/message.yaml";

/// The demo overlay's ConfigMap patch with `message`.
pub fn message_yaml(message: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: podinfo\ndata:\n  PODINFO_UI_MESSAGE: \"{message}\"\n"
    )
}

/// A working repository whose `origin` is a bare repository served over smart HTTP.
pub struct ServedRepo {
    /// The working repository.
    pub work: PathBuf,
    /// The served repository's URL.
    pub url: String,
    /// The commit pushed first.
    pub head: String,
    _server: HttpServer,
}

impl ServedRepo {
    /// Copies `examples/podinfo` into a new repository at the same path (`<dir>/checkout`),
    /// pushes it to `<dir>/git/weir-examples.git` and serves that.
    pub fn examples(root: &Path, dir: &Path) -> Result<Self> {
        let work = dir.join("checkout");
        let source = root.join("examples/podinfo");
        copy_dir(&source, &work.join("examples/podinfo"))
            .with_context(|| format!("copying {}", source.display()))?;
        git(&work, &["init", "-q", "-b", "main"])?;
        git(&work, &["add", "-A"])?;
        git(&work, &["commit", "-q", "-m", "examples/podinfo"])?;
        let served = dir.join("git");
        fs::create_dir_all(&served)?;
        let bare = served.join(EXAMPLES_REPO);
        git(
            dir,
            &[
                "clone",
                "-q",
                "--bare",
                &work.display().to_string(),
                &bare.display().to_string(),
            ],
        )?;
        git(
            &work,
            &["remote", "add", "origin", &bare.display().to_string()],
        )?;
        let head = git(&work, &["rev-parse", "HEAD"])?;
        let server = HttpServer::start(&served, &[]);
        let url = server.url(EXAMPLES_REPO);
        Ok(ServedRepo {
            work,
            url,
            head,
            _server: server,
        })
    }

    /// Writes `text` to `path` (relative to the repository) and commits it; returns the commit.
    pub fn commit(&self, path: &str, text: &str, message: &str) -> Result<String> {
        fs::write(self.work.join(path), text)?;
        git(&self.work, &["commit", "-q", "-am", message])?;
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// Pushes `main` to the served repository.
    pub fn push(&self) -> Result<()> {
        git(&self.work, &["push", "-q", "origin", "main"]).map(drop)
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Creates the namespace and the weir objects of `examples/weir`, pointing the GitRepository at
/// `url` (and, when given, fetching every `interval`).
pub async fn create_example_objects(
    client: &Client,
    root: &Path,
    url: &str,
    interval: Option<&str>,
) -> Result<()> {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::PostParams;
    use weir_api::{Apply, GitRepository, Render};
    let read = |name: &str| {
        let path = root.join("examples/weir").join(name);
        fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    };
    let pp = PostParams::default();
    let ns: Namespace = serde_yaml::from_str(&read("namespace.yaml")?)?;
    Api::<Namespace>::all(client.clone())
        .create(&pp, &ns)
        .await?;
    let mut repo: GitRepository = serde_yaml::from_str(&read("gitrepository.yaml")?)
        .context("examples/weir/gitrepository.yaml")?;
    repo.spec.url = url.to_owned();
    if let Some(interval) = interval {
        repo.spec.interval = serde_json::from_value(serde_json::json!(interval))
            .with_context(|| format!("interval {interval:?}"))?;
    }
    Api::<GitRepository>::namespaced(client.clone(), NAMESPACE)
        .create(&pp, &repo)
        .await
        .context("creating the GitRepository")?;
    let render: Render =
        serde_yaml::from_str(&read("render.yaml")?).context("examples/weir/render.yaml")?;
    Api::<Render>::namespaced(client.clone(), NAMESPACE)
        .create(&pp, &render)
        .await
        .context("creating the Render")?;
    let apply: Apply =
        serde_yaml::from_str(&read("apply.yaml")?).context("examples/weir/apply.yaml")?;
    Api::<Apply>::namespaced(client.clone(), NAMESPACE)
        .create(&pp, &apply)
        .await
        .context("creating the Apply")?;
    Ok(())
}

/// The example Receiver's shared secret (local only: no secrecy needed).
const TOKEN: &str = "weir-example-token";

/// Creates the Receiver of `examples/weir/receiver.yaml` (generic-hmac, for the example's
/// GitRepository) and its token Secret; returns its `status.webhookPath` once it is Ready.
pub async fn create_receiver(client: &Client, root: &Path) -> Result<String> {
    use k8s_openapi::{ByteString, api::core::v1::Secret};
    use kube::api::{ObjectMeta, PostParams};
    use weir_api::Receiver;
    let path = root.join("examples/weir/receiver.yaml");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let receiver: Receiver =
        serde_yaml::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(receiver.spec.secret_ref.name.clone()),
            ..ObjectMeta::default()
        },
        data: Some(
            [(
                weir_api::receiver::TOKEN_KEY.to_owned(),
                ByteString(TOKEN.into()),
            )]
            .into(),
        ),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &secret)
        .await?;
    let api = Api::<Receiver>::namespaced(client.clone(), NAMESPACE);
    api.create(&PostParams::default(), &receiver).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = api.get(NAME).await?.status.unwrap_or_default();
        if let Some(path) = status.webhook_path
            && weir_api::conditions::is_true(&status.conditions, weir_api::conditions::types::READY)
        {
            return Ok(path);
        }
        if Instant::now() > deadline {
            bail!("Receiver {NAMESPACE}/{NAME} not Ready after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// POSTs a push event signed with `X-Signature: sha256=<HMAC of the body>`; fails unless the
/// answer is 200.
pub async fn call_webhook(addr: std::net::SocketAddr, path: &str, commit: &str) -> Result<()> {
    use hmac::{Hmac, Mac};
    use sha2::Sha256;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = format!(r#"{{"ref":"refs/heads/main","after":"{commit}"}}"#);
    let mut mac = Hmac::<Sha256>::new_from_slice(TOKEN.as_bytes())?;
    mac.update(body.as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-Signature: sha256={signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to the webhook at {addr}"))?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    (&mut stream).take(4096).read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        bail!(
            "the webhook answered {status:?}: {}",
            answer.rsplit("\r\n\r\n").next().unwrap_or_default()
        );
    }
    Ok(())
}
