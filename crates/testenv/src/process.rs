//! weir's controllers as real processes, for end-to-end tests, the demo and benchmarks.
//!
//! [`ControllerProcess::start`] finds the built binary ([`binary`]), picks free loopback ports
//! for every listener, gives artifact producers a storage directory, sends stdout and stderr to
//! a log file, and waits until `/readyz` answers. The handle then [kills](ControllerProcess::kill)
//! (SIGKILL), [terminates](ControllerProcess::terminate) (SIGTERM) and
//! [restarts](ControllerProcess::restart) the process with the same flags, ports and storage, so
//! artifact URLs published before a restart stay valid. Dropping the handle kills the process;
//! a process also dies with the thread that started it (`setpriv --pdeathsig KILL`, as the
//! control plane's components), so a crashed test leaves nothing behind.
//!
//! [`Pipeline`] starts all three controllers against one cluster.
//!
//! ```no_run
//! # async fn demo() -> Result<(), weir_testenv::Error> {
//! use weir_testenv::process::{Pipeline, ProcessOptions};
//! let cluster = weir_testenv::TestCluster::shared().await?;
//! let options = ProcessOptions::new(cluster.kubeconfig_path())
//!     .watch_label_selector("weir.dev/test-shard=my-namespace");
//! let mut pipeline = Pipeline::start(&options).await?;
//! pipeline.apply.kill()?; // SIGKILL, as a node failure would
//! pipeline.apply.restart().await?;
//! # Ok(()) }
//! ```

use std::{
    fs::{self, OpenOptions},
    io::Write,
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result, io};

/// Environment variable naming a directory that holds prebuilt controller binaries; when set,
/// [`binary`] looks only there and never builds.
pub const BIN_DIR_ENV: &str = "WEIR_CONTROLLER_BIN_DIR";

/// How long a controller may take to answer `/readyz` after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long [`ControllerProcess::terminate`] waits for a graceful exit before it kills.
const TERMINATE_TIMEOUT: Duration = Duration::from_secs(40);

/// The largest `/readyz` answer read.
const MAX_PROBE_BYTES: u64 = 4096;

/// The source-controller's Receiver webhook listener flag (see [`ControllerProcess::listener`]).
pub const WEBHOOK_ADDR_FLAG: &str = "--webhook-addr";

/// How many times a process that found one of its ports taken is started again.
const PORT_RETRIES: u32 = 10;

/// One of weir's controller binaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Controller {
    /// `weir-source-controller` (GitRepository; serves artifacts).
    Source,
    /// `weir-render-controller` (Render; serves artifacts).
    Render,
    /// `weir-apply-controller` (Apply).
    Apply,
}

impl Controller {
    /// The three controllers, producers first.
    pub const ALL: [Controller; 3] = [Controller::Source, Controller::Render, Controller::Apply];

    /// The binary's (and its Cargo package's) name.
    pub fn binary_name(self) -> &'static str {
        match self {
            Controller::Source => "weir-source-controller",
            Controller::Render => "weir-render-controller",
            Controller::Apply => "weir-apply-controller",
        }
    }

    /// Whether the controller stores and serves artifacts (`--storage-path`, `--storage-addr`).
    pub fn serves_artifacts(self) -> bool {
        matches!(self, Controller::Source | Controller::Render)
    }

    /// Listener flags besides health, metrics and storage that the harness gives a free
    /// loopback port whenever the binary knows the flag, so parallel processes never fight over
    /// a default port: the source-controller's Receiver webhook server (`--webhook-addr`).
    pub fn listener_flags(self) -> &'static [&'static str] {
        match self {
            Controller::Source => &[WEBHOOK_ADDR_FLAG],
            Controller::Render | Controller::Apply => &[],
        }
    }
}

/// The cargo target profile directory of the running executable (`target/<profile>`): tests run
/// from `target/<profile>/deps`, tools such as xtask from `target/<profile>`.
fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(io("locating", "the current executable"))?;
    let mut dir = exe
        .parent()
        .map(Path::to_owned)
        .ok_or_else(|| Error::Command {
            command: "locating controller binaries".into(),
            detail: format!("{} has no parent directory", exe.display()),
        })?;
    if dir.file_name().is_some_and(|n| n == "deps")
        && let Some(parent) = dir.parent()
    {
        dir = parent.to_owned();
    }
    Ok(dir)
}

/// Whether this process already ran `cargo build` for the controllers (serialises builds, so
/// concurrent tests build once).
static BUILT: Mutex<bool> = Mutex::new(false);

/// The path of `controller`'s binary.
///
/// - With [`BIN_DIR_ENV`] set: that directory's binary, never built.
/// - Else beside the running executable's profile directory (`target/<profile>/`, wherever
///   `CARGO_TARGET_DIR` put it). When a binary there is missing or older than a source file it
///   may be built from (`Cargo.toml`, `Cargo.lock`, and `Cargo.toml` and `src/` of `api/`,
///   `controllers/*` and `crates/*`), runs `cargo build --bins` for the three controllers
///   (`--release` for a release profile) into that target directory, once per process. So
///   `cargo test -p weir-e2e` after a change to a controller tests the change, and a run whose
///   binaries are fresh (`cargo test --workspace` builds them first) builds nothing.
pub fn binary(controller: Controller) -> Result<PathBuf> {
    let name = controller.binary_name();
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        let path = PathBuf::from(dir).join(name);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::Command {
                command: format!("locating {name}"),
                detail: format!("{} does not exist ({BIN_DIR_ENV} is set)", path.display()),
            })
        };
    }
    let profile = profile_dir()?;
    let path = profile.join(name);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !*built && needs_build(&path) {
        build(&profile)?;
        *built = true;
    }
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Command {
            command: format!("cargo build -p {name}"),
            detail: format!("succeeded but {} does not exist", path.display()),
        })
    }
}

/// Whether `binary` is missing or older than a workspace source file it may be built from.
fn needs_build(binary: &Path) -> bool {
    let Ok(built) = fs::metadata(binary).and_then(|m| m.modified()) else {
        return true;
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut sources = vec![workspace.join("Cargo.toml"), workspace.join("Cargo.lock")];
    let mut crates = vec![workspace.join("api")];
    for group in ["controllers", "crates"] {
        if let Ok(entries) = fs::read_dir(workspace.join(group)) {
            crates.extend(entries.flatten().map(|e| e.path()));
        }
    }
    for dir in crates {
        sources.push(dir.join("Cargo.toml"));
        sources.push(dir.join("src"));
    }
    sources.iter().any(|source| newer_than(source, built, 0))
}

/// Whether `path` (a file, or any file below a directory, at most 8 levels deep) was modified
/// after `time`.
fn newer_than(path: &Path, time: std::time::SystemTime, depth: u32) -> bool {
    let Ok(meta) = fs::metadata(path) else {
        return false;
    };
    if meta.is_dir() {
        depth < 8
            && fs::read_dir(path).is_ok_and(|entries| {
                entries
                    .flatten()
                    .any(|e| newer_than(&e.path(), time, depth + 1))
            })
    } else {
        meta.modified().is_ok_and(|m| m > time)
    }
}

/// Runs `cargo build` for the three controllers into the target directory that holds
/// `profile`.
fn build(profile: &Path) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&workspace)
        .args(["build", "--quiet", "--bins"]);
    for controller in Controller::ALL {
        cmd.args(["-p", controller.binary_name()]);
    }
    if let Some(target) = profile.parent() {
        cmd.arg("--target-dir").arg(target);
    }
    if profile.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let command = "cargo build --bins -p weir-source-controller -p weir-render-controller -p weir-apply-controller".to_owned();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command {
            command: command.clone(),
            detail: format!("could not start: {e}"),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            command,
            detail: format!(
                "{}: {}",
                out.status,
                tail(&String::from_utf8_lossy(&out.stderr), 30)
            ),
        })
    }
}

/// Which (binary, flag) pairs were already checked by [`accepts_flag`].
static FLAGS: Mutex<Vec<(PathBuf, String, bool)>> = Mutex::new(Vec::new());

/// Whether `program --help` mentions `flag` (remembered per process), so a default listener
/// flag is only passed to binaries that know it.
fn accepts_flag(program: &Path, flag: &str) -> bool {
    let mut known = FLAGS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, _, accepted)) = known.iter().find(|(p, f, _)| p == program && f == flag) {
        return *accepted;
    }
    let accepted = Command::new(program)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout).contains(flag)
                || String::from_utf8_lossy(&out.stderr).contains(flag)
        });
    known.push((program.to_owned(), flag.to_owned(), accepted));
    accepted
}

/// How to run a controller. Every listener binds `127.0.0.1` on a port chosen at start and kept
/// across restarts.
#[derive(Clone, Debug)]
pub struct ProcessOptions {
    kubeconfig: PathBuf,
    watch_label_selector: Option<String>,
    log_level: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    listeners: Vec<String>,
    storage_dir: Option<PathBuf>,
    log_dir: Option<PathBuf>,
    binary: Option<PathBuf>,
}

impl ProcessOptions {
    /// Options for a controller that talks to the cluster in `kubeconfig` (passed as
    /// `KUBECONFIG`), logs JSON at level `info`, and keeps logs and storage in a temporary
    /// directory.
    pub fn new(kubeconfig: impl Into<PathBuf>) -> Self {
        ProcessOptions {
            kubeconfig: kubeconfig.into(),
            watch_label_selector: None,
            log_level: "info".into(),
            args: Vec::new(),
            env: Vec::new(),
            listeners: Vec::new(),
            storage_dir: None,
            log_dir: None,
            binary: None,
        }
    }

    /// `--watch-label-selector`: the controller reconciles only objects with these labels
    /// (how tests sharing one cluster keep their controllers apart).
    pub fn watch_label_selector(mut self, selector: impl Into<String>) -> Self {
        self.watch_label_selector = Some(selector.into());
        self
    }

    /// `--log-level` (default `info`).
    pub fn log_level(mut self, level: impl Into<String>) -> Self {
        self.log_level = level.into();
        self
    }

    /// Extra command-line arguments, appended after the harness's own.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An extra environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// An extra listener flag (e.g. `--webhook-addr`): the harness passes it
    /// `127.0.0.1:<free port>` and [`ControllerProcess::listener`] tells the address.
    pub fn listener(mut self, flag: impl Into<String>) -> Self {
        self.listeners.push(flag.into());
        self
    }

    /// The artifact storage directory (default: a fresh temporary one). Ignored for the
    /// apply-controller.
    pub fn storage_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.storage_dir = Some(dir.into());
        self
    }

    /// Where the log file `<binary>.log` is written (default: a temporary directory, removed
    /// with the handle unless a test is panicking).
    pub fn log_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.log_dir = Some(dir.into());
        self
    }

    /// The binary to run instead of [`binary`]'s choice.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }
}

/// A running (or stopped) controller process. Dropping it kills the process; when the dropping
/// thread is panicking (a failed test), the log's path and tail are printed and the temporary
/// log directory is kept.
pub struct ControllerProcess {
    controller: Controller,
    program: PathBuf,
    log_level: String,
    watch_label_selector: Option<String>,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
    kubeconfig: PathBuf,
    health: SocketAddr,
    metrics: SocketAddr,
    storage_addr: Option<SocketAddr>,
    listeners: Vec<(String, SocketAddr)>,
    storage_dir: Option<PathBuf>,
    log_path: PathBuf,
    temp: Option<tempfile::TempDir>,
    child: Option<Child>,
    starts: u32,
    /// Length of the log when the current process was started.
    launched_at: u64,
    /// Whether the process was ready once (its ports are then kept for good).
    was_ready: bool,
}

impl std::fmt::Debug for ControllerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerProcess")
            .field("controller", &self.controller)
            .field("pid", &self.pid())
            .field("log", &self.log_path)
            .finish_non_exhaustive()
    }
}

impl ControllerProcess {
    /// Starts `controller` with `options` and waits until its `/readyz` answers `ok`.
    pub async fn start(controller: Controller, options: &ProcessOptions) -> Result<Self> {
        let mut process = Self::spawn(controller, options).await?;
        process.wait_ready().await?;
        Ok(process)
    }

    /// Starts the process without waiting for readiness (see [`ControllerProcess::wait_ready`]).
    pub async fn spawn(controller: Controller, options: &ProcessOptions) -> Result<Self> {
        let program = match &options.binary {
            Some(path) => path.clone(),
            None => tokio::task::spawn_blocking(move || binary(controller))
                .await
                .map_err(|e| Error::Command {
                    command: format!("locating {}", controller.binary_name()),
                    detail: format!("task failed: {e}"),
                })??,
        };
        let temp = tempfile::Builder::new()
            .prefix(&format!("{}-", controller.binary_name()))
            .tempdir()
            .map_err(io("creating temp dir in", std::env::temp_dir()))?;
        let log_dir = options
            .log_dir
            .clone()
            .unwrap_or_else(|| temp.path().to_owned());
        fs::create_dir_all(&log_dir).map_err(io("creating", &log_dir))?;
        let log_path = log_dir.join(format!("{}.log", controller.binary_name()));
        let storage_dir = controller.serves_artifacts().then(|| {
            options
                .storage_dir
                .clone()
                .unwrap_or_else(|| temp.path().join("storage"))
        });
        if let Some(dir) = &storage_dir {
            fs::create_dir_all(dir).map_err(io("creating", dir))?;
        }
        let mut flags = options.listeners.clone();
        for flag in controller.listener_flags() {
            if !flags.iter().any(|f| f == flag) && accepts_flag(&program, flag) {
                flags.push((*flag).to_owned());
            }
        }
        let unbound: SocketAddr = ([127, 0, 0, 1], 0).into();
        let mut process = ControllerProcess {
            controller,
            program,
            log_level: options.log_level.clone(),
            watch_label_selector: options.watch_label_selector.clone(),
            extra_args: options.args.clone(),
            env: options.env.clone(),
            kubeconfig: options.kubeconfig.clone(),
            health: unbound,
            metrics: unbound,
            storage_addr: None,
            listeners: flags.into_iter().map(|f| (f, unbound)).collect(),
            storage_dir,
            log_path,
            temp: Some(temp),
            child: None,
            starts: 0,
            launched_at: 0,
            was_ready: false,
        };
        process.pick_ports()?;
        process.launch()?;
        Ok(process)
    }

    /// Which controller this is.
    pub fn controller(&self) -> Controller {
        self.controller
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How many times the process was started (1 after [`ControllerProcess::start`]).
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// The full command line's arguments (without the program).
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--log-format".to_owned(),
            "json".to_owned(),
            "--log-level".to_owned(),
            self.log_level.clone(),
            "--health-addr".to_owned(),
            self.health.to_string(),
            "--metrics-addr".to_owned(),
            self.metrics.to_string(),
        ];
        if let (Some(dir), Some(addr)) = (&self.storage_dir, self.storage_addr) {
            args.extend([
                "--storage-path".to_owned(),
                dir.display().to_string(),
                "--storage-addr".to_owned(),
                addr.to_string(),
                "--storage-adv-addr".to_owned(),
                addr.to_string(),
            ]);
        }
        if let Some(selector) = &self.watch_label_selector {
            args.extend(["--watch-label-selector".to_owned(), selector.clone()]);
        }
        for (flag, addr) in &self.listeners {
            args.extend([flag.clone(), addr.to_string()]);
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// Chooses free loopback ports for every listener.
    fn pick_ports(&mut self) -> Result<()> {
        self.health = free_addr()?;
        self.metrics = free_addr()?;
        self.storage_addr = if self.controller.serves_artifacts() {
            Some(free_addr()?)
        } else {
            None
        };
        for (_, addr) in &mut self.listeners {
            *addr = free_addr()?;
        }
        Ok(())
    }

    /// Where `/healthz` and `/readyz` are served.
    pub fn health_addr(&self) -> SocketAddr {
        self.health
    }

    /// Where `/metrics` is served.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics
    }

    /// Where the artifact server listens (source- and render-controller).
    pub fn storage_addr(&self) -> Option<SocketAddr> {
        self.storage_addr
    }

    /// `http://<storage addr>`, the base of the artifact URLs this controller publishes.
    pub fn artifact_base_url(&self) -> Option<String> {
        self.storage_addr.map(|a| format!("http://{a}"))
    }

    /// The artifact storage directory (source- and render-controller).
    pub fn storage_dir(&self) -> Option<&Path> {
        self.storage_dir.as_deref()
    }

    /// The address given to an extra listener flag (see [`ProcessOptions::listener`]).
    pub fn listener(&self, flag: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(f, _)| f == flag)
            .map(|(_, addr)| *addr)
    }

    /// The log file (stdout and stderr of every start, appended).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(
            &fs::read_to_string(&self.log_path).unwrap_or_default(),
            lines,
        )
    }

    /// Whether the process is running (started and not exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills the process with SIGKILL (no chance to clean up, as on a node failure or OOM) and
    /// reaps it. Does nothing when it is not running.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            // An already exited child makes `kill` fail; `wait` still reaps it.
            let _ = child.kill();
            child.wait().map_err(io("waiting for", &self.program))?;
            self.note("killed (SIGKILL)");
        }
        Ok(())
    }

    /// Sends SIGTERM and waits for the process to exit (it should shut down gracefully); after
    /// 40 s it is killed and an error returned. Returns the exit status.
    pub async fn terminate(&mut self) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return Err(Error::Command {
                command: format!("terminating {}", self.controller.binary_name()),
                detail: "the process is not running".into(),
            });
        };
        let pid = child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !sent.is_ok_and(|s| s.success()) {
            // It may have exited on its own; find out below.
            if let Ok(Some(status)) = child.try_wait() {
                return Ok(status);
            }
        }
        let deadline = Instant::now() + TERMINATE_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().map_err(io("waiting for", &self.program))? {
                self.note(&format!("terminated (SIGTERM): {status}"));
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.note("did not exit after SIGTERM; killed");
                return Err(Error::Command {
                    command: format!("terminating {}", self.controller.binary_name()),
                    detail: format!(
                        "still running {TERMINATE_TIMEOUT:?} after SIGTERM; log tail:\n{}",
                        self.log_tail(25)
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the process again, killing it first if it still runs, with the same flags, ports
    /// and storage directory, and waits until it is ready.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill()?;
        self.launch()?;
        self.wait_ready().await
    }

    /// Like [`ControllerProcess::restart`], but with the storage directory emptied first, as
    /// after a pod is rescheduled with an `emptyDir` volume.
    pub async fn restart_with_empty_storage(&mut self) -> Result<()> {
        self.kill()?;
        if let Some(dir) = &self.storage_dir {
            fs::remove_dir_all(dir).map_err(io("emptying", dir))?;
            fs::create_dir_all(dir).map_err(io("creating", dir))?;
        }
        self.launch()?;
        self.wait_ready().await
    }

    /// Waits until `/readyz` answers 200. A process that exits meanwhile because a port is
    /// still taken (a restart right after a kill) is started again; any other exit is an error
    /// carrying the log's tail.
    pub async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut retries = 0;
        loop {
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait().map_err(io("waiting for", &self.program))?,
                None => {
                    return Err(self.not_ready("the process is not running".into()));
                }
            };
            if let Some(status) = exited {
                self.child = None;
                if self.log_since_launch().contains("in use")
                    && retries < PORT_RETRIES
                    && Instant::now() < deadline
                {
                    retries += 1;
                    // Before the first readiness nothing depends on the ports yet: take new
                    // ones (a port picked as free may have been taken since). Afterwards keep
                    // them, so published artifact URLs stay valid, and wait for the port.
                    if self.was_ready {
                        self.note(&format!(
                            "exited with {status} (port in use); starting again on the same ports"
                        ));
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    } else {
                        self.note(&format!(
                            "exited with {status} (port in use); starting again on new ports"
                        ));
                        self.pick_ports()?;
                    }
                    self.launch()?;
                    continue;
                }
                return Err(self.not_ready(format!("exited with {status}")));
            }
            let last = match probe(self.health, "/readyz").await {
                Ok(200) => {
                    self.was_ready = true;
                    return Ok(());
                }
                Ok(code) => format!("/readyz answered {code}"),
                Err(e) => format!("/readyz: {e}"),
            };
            if Instant::now() > deadline {
                return Err(self.not_ready(format!("after {READY_TIMEOUT:?}: {last}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn not_ready(&self, what: String) -> Error {
        Error::NotReady {
            component: self.controller.binary_name(),
            detail: format!(
                "{what}; log {}:\n{}",
                self.log_path.display(),
                self.log_tail(25)
            ),
        }
    }

    /// Spawns the process with the stored command line, appending to the log.
    fn launch(&mut self) -> Result<()> {
        self.starts += 1;
        self.note(&format!(
            "start #{}: {} {}",
            self.starts,
            self.program.display(),
            self.args().join(" ")
        ));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(io("opening", &self.log_path))?;
        self.launched_at = log.metadata().map(|m| m.len()).unwrap_or(0);
        let log_err = log.try_clone().map_err(io("opening", &self.log_path))?;
        // `setpriv --pdeathsig KILL` makes the kernel kill the controller when the thread that
        // started it goes away, so a crashed test run leaves nothing behind.
        let mut cmd = if Path::new(SETPRIV).is_file() {
            let mut c = Command::new(SETPRIV);
            c.args(["--pdeathsig", "KILL", "--"]).arg(&self.program);
            c
        } else {
            Command::new(&self.program)
        };
        cmd.args(self.args())
            .env("KUBECONFIG", &self.kubeconfig)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        if let Some(temp) = &self.temp {
            cmd.current_dir(temp.path());
        }
        let child = cmd.spawn().map_err(|e| Error::Command {
            command: self.program.display().to_string(),
            detail: format!("could not start: {e}"),
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// What the current process wrote to the log so far (at most the last 64 KiB).
    fn log_since_launch(&self) -> String {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut file) = fs::File::open(&self.log_path) else {
            return String::new();
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let from = self.launched_at.max(len.saturating_sub(64 << 10));
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(from)).is_ok() {
            let _ = file.take(64 << 10).read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Appends a harness line to the log, so a reader sees kills and restarts in order.
    fn note(&self, what: &str) {
        if let Ok(mut file) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
        {
            let _ = writeln!(file, "--- weir-testenv: {what}");
        }
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        let _ = self.kill();
        if std::thread::panicking() {
            eprintln!(
                "{} log: {}\n{}",
                self.controller.binary_name(),
                self.log_path.display(),
                self.log_tail(20)
            );
            // Keep the log for the reader.
            if let Some(temp) = self.temp.take() {
                let _ = temp.keep();
            }
        }
    }
}

const SETPRIV: &str = "/usr/bin/setpriv";

/// The three controllers against one cluster: source, render and apply.
#[derive(Debug)]
pub struct Pipeline {
    /// The source-controller.
    pub source: ControllerProcess,
    /// The render-controller.
    pub render: ControllerProcess,
    /// The apply-controller.
    pub apply: ControllerProcess,
}

impl Pipeline {
    /// Starts the three controllers with the same `options` (each its own storage, ports and
    /// log) and waits until all are ready.
    pub async fn start(options: &ProcessOptions) -> Result<Pipeline> {
        Pipeline::start_with(|_| options.clone()).await
    }

    /// Starts the three controllers, each with the options `options` returns for it (e.g. an
    /// extra listener for the source-controller only), and waits until all are ready.
    pub async fn start_with(options: impl Fn(Controller) -> ProcessOptions) -> Result<Pipeline> {
        // Spawn all three before waiting, so their start-ups overlap.
        let mut source =
            ControllerProcess::spawn(Controller::Source, &options(Controller::Source)).await?;
        let mut render =
            ControllerProcess::spawn(Controller::Render, &options(Controller::Render)).await?;
        let mut apply =
            ControllerProcess::spawn(Controller::Apply, &options(Controller::Apply)).await?;
        source.wait_ready().await?;
        render.wait_ready().await?;
        apply.wait_ready().await?;
        Ok(Pipeline {
            source,
            render,
            apply,
        })
    }

    /// The process of `controller`.
    pub fn process(&mut self, controller: Controller) -> &mut ControllerProcess {
        match controller {
            Controller::Source => &mut self.source,
            Controller::Render => &mut self.render,
            Controller::Apply => &mut self.apply,
        }
    }

    /// The tails of all three logs, for a failure message.
    pub fn log_tails(&self, lines: usize) -> String {
        [&self.source, &self.render, &self.apply]
            .iter()
            .map(|p| {
                format!(
                    "--- {} ({}):\n{}",
                    p.controller.binary_name(),
                    p.log_path.display(),
                    p.log_tail(lines)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A loopback address with a port that was free a moment ago.
fn free_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(io("binding a loopback port for", "127.0.0.1:0"))?;
    listener
        .local_addr()
        .map_err(io("reading the address of", "127.0.0.1:0"))
}

/// GETs `path` from `addr` over plain HTTP/1.0 and returns the status code (bounded read,
/// 2 s timeout).
async fn probe(addr: SocketAddr, path: &str) -> std::result::Result<u16, String> {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        stream
            .take(MAX_PROBE_BYTES)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&answer);
        text.split_whitespace()
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| format!("not an HTTP answer: {:?}", tail(&text, 1)))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .map_err(|_| "no answer within 2s".to_owned())?
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 3), "");
    }

    #[test]
    fn binaries_are_looked_up_beside_the_profile_directory() {
        let dir = profile_dir().unwrap();
        // Unit tests run from target/<profile>/deps; the profile directory is its parent.
        assert_ne!(dir.file_name().unwrap(), "deps");
        assert!(dir.join("deps").is_dir(), "{}", dir.display());
    }

    #[test]
    fn newer_files_below_a_directory_are_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/nested")).unwrap();
        std::fs::write(dir.path().join("src/nested/lib.rs"), "// old").unwrap();
        let later = std::time::SystemTime::now() + Duration::from_secs(3600);
        let earlier = std::time::SystemTime::now() - Duration::from_secs(3600);
        assert!(!newer_than(dir.path(), later, 0));
        assert!(newer_than(dir.path(), earlier, 0));
        assert!(!newer_than(&dir.path().join("missing"), earlier, 0));
        // A binary that does not exist always needs a build.
        assert!(needs_build(&dir.path().join("no-such-binary")));
    }

    /// A stand-in controller: serves `/readyz` on `--health-addr` and exits with "Address
    /// already in use" while the file `busy` exists beside it.
    const FAKE: &str = r#"#!/usr/bin/env python3
import http.server, os, sys
args = sys.argv[1:]
host, port = args[args.index("--health-addr") + 1].rsplit(":", 1)
if os.path.exists(os.path.join(os.path.dirname(sys.argv[0]), "busy")):
    os.remove(os.path.join(os.path.dirname(sys.argv[0]), "busy"))
    print("health probes on", port, ": Address already in use (os error 98)", flush=True)
    sys.exit(1)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()
    def log_message(self, *a):
        pass
print("started", flush=True)
http.server.HTTPServer((host, int(port)), H).serve_forever()
"#;

    #[tokio::test]
    async fn fake_controller_lifecycle_and_port_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("fake-controller");
        std::fs::write(&program, FAKE).unwrap();
        let chmod = Command::new("chmod")
            .arg("+x")
            .arg(&program)
            .status()
            .unwrap();
        assert!(chmod.success());
        let options = ProcessOptions::new("/nonexistent/kubeconfig")
            .binary(&program)
            .listener("--extra-addr");
        // A port conflict before the first readiness: started again on new ports.
        std::fs::write(dir.path().join("busy"), "").unwrap();
        let mut p = ControllerProcess::start(Controller::Apply, &options)
            .await
            .unwrap();
        assert_eq!(p.starts(), 2, "{}", p.log_tail(10));
        assert!(p.log_tail(20).contains("starting again on new ports"));
        let health = p.health_addr();
        assert!(p.listener("--extra-addr").is_some());
        assert!(
            p.storage_dir().is_none(),
            "the apply-controller stores nothing"
        );

        // SIGKILL, then a restart with the same ports; a conflict now keeps them.
        p.kill().unwrap();
        assert!(!p.is_running());
        assert!(probe(health, "/readyz").await.is_err());
        std::fs::write(dir.path().join("busy"), "").unwrap();
        p.restart().await.unwrap();
        assert_eq!(p.health_addr(), health);
        assert_eq!(p.starts(), 4);
        assert!(p.log_tail(20).contains("starting again on the same ports"));
        assert_eq!(probe(health, "/readyz").await, Ok(200));

        // SIGTERM: python dies of the signal (no handler), which the status reports.
        let status = p.terminate().await.unwrap();
        assert!(!status.success());
        assert!(p.terminate().await.is_err(), "nothing left to terminate");
    }

    #[tokio::test]
    async fn a_controller_that_exits_is_reported_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("broken-controller");
        std::fs::write(
            &program,
            "#!/bin/sh\necho 'unknown flag --bogus (see --help)' >&2\nexit 2\n",
        )
        .unwrap();
        let chmod = Command::new("chmod")
            .arg("+x")
            .arg(&program)
            .status()
            .unwrap();
        assert!(chmod.success());
        let options = ProcessOptions::new("/nonexistent/kubeconfig").binary(&program);
        let e = ControllerProcess::start(Controller::Render, &options)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("weir-render-controller did not become ready"),
            "{e}"
        );
        assert!(e.contains("exited with exit status: 2"), "{e}");
        assert!(e.contains("unknown flag --bogus"), "{e}");
    }

    #[tokio::test]
    async fn probe_reads_the_status_code() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await.unwrap();
            stream
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
        });
        assert_eq!(probe(addr, "/readyz").await, Ok(503));
        server.await.unwrap();
        // Nothing listens any more.
        assert!(probe(addr, "/readyz").await.is_err());
    }
}
