//! Starting and stopping etcd, kube-apiserver and, on request, kube-controller-manager and
//! kube-scheduler as child processes.

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};

use crate::{
    binaries,
    certs::{self, ADMIN_CERT, ADMIN_KEY, CA_CERT, SA_KEY, SA_PUB, SERVING_CERT, SERVING_KEY},
    error::{Error, Result, io},
};

/// How long a component may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// What to start.
#[derive(Clone, Debug, Default)]
pub struct ControlPlaneOptions {
    /// Directory for data, certificates, logs and the kubeconfig. Default: a temporary directory
    /// removed when the control plane is dropped. A given directory is kept.
    pub dir: Option<PathBuf>,
    /// Also run kube-controller-manager (Deployment status, garbage collection, namespace
    /// deletion, service-account tokens).
    pub controller_manager: bool,
    /// Also run kube-scheduler.
    pub scheduler: bool,
}

impl ControlPlaneOptions {
    /// etcd, kube-apiserver, kube-controller-manager and kube-scheduler.
    pub fn full() -> Self {
        ControlPlaneOptions {
            dir: None,
            controller_manager: true,
            scheduler: true,
        }
    }
}

/// A running control plane. Dropping it stops every process (SIGKILL) and removes a temporary
/// directory. Processes are also started with a parent-death signal, so they never outlive the
/// thread that started them.
pub struct ControlPlane {
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    kubeconfig: PathBuf,
    server: String,
    processes: Vec<(&'static str, Child)>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("server", &self.server)
            .field("kubeconfig", &self.kubeconfig)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Ensures the binaries (building them if needed), then starts the components and waits until
    /// the apiserver's `/readyz` answers `ok` and the `default` namespace exists.
    pub async fn start(options: ControlPlaneOptions) -> Result<Self> {
        let bin = tokio::task::spawn_blocking(binaries::ensure)
            .await
            .map_err(|e| Error::Shared(format!("binary build task failed: {e}")))??;
        let (temp, dir) = match &options.dir {
            Some(dir) => {
                fs::create_dir_all(dir).map_err(io("creating", dir))?;
                (None, dir.clone())
            }
            None => {
                remove_stale_temp_dirs();
                let temp = tempfile::Builder::new()
                    .prefix(TEMP_PREFIX)
                    .tempdir()
                    .map_err(io("creating temp dir in", std::env::temp_dir()))?;
                let dir = temp.path().to_owned();
                let owner = dir.join(OWNER_FILE);
                fs::write(&owner, std::process::id().to_string()).map_err(io("writing", &owner))?;
                (Some(temp), dir)
            }
        };
        certs::generate(&dir)?;
        let apiserver_port = free_port()?;
        let server = format!("https://127.0.0.1:{apiserver_port}");
        let kubeconfig = dir.join("kubeconfig");
        write_kubeconfig(&kubeconfig, &server, &dir)?;

        let mut plane = ControlPlane {
            dir: dir.clone(),
            _temp: temp,
            kubeconfig,
            server,
            processes: Vec::new(),
        };

        let etcd_data = dir.join("etcd");
        let _ = fs::remove_dir_all(&etcd_data);
        let (client_port, peer_port) = (free_port()?, free_port()?);
        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        plane.spawn(
            "etcd",
            &bin,
            &[
                "--name=default".into(),
                format!("--data-dir={}", etcd_data.display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=default={peer_url}"),
                // Test data is disposable: skip fsync, which dominates etcd latency.
                "--unsafe-no-fsync=true".into(),
                "--log-level=warn".into(),
            ],
        )?;

        let p = |name: &str| dir.join(name).display().to_string();
        plane.spawn(
            "kube-apiserver",
            &bin,
            &[
                format!("--etcd-servers={etcd_url}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--secure-port={apiserver_port}"),
                format!("--cert-dir={}", p("apiserver-certs")),
                format!("--tls-cert-file={}", p(SERVING_CERT)),
                format!("--tls-private-key-file={}", p(SERVING_KEY)),
                format!("--client-ca-file={}", p(CA_CERT)),
                "--authorization-mode=RBAC".into(),
                format!("--service-account-key-file={}", p(SA_PUB)),
                format!("--service-account-signing-key-file={}", p(SA_KEY)),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                "--service-cluster-ip-range=10.0.0.0/24".into(),
                "--allow-privileged=true".into(),
                "--v=0".into(),
            ],
        )?;
        plane.wait_ready().await?;

        if options.controller_manager {
            plane.spawn(
                "kube-controller-manager",
                &bin,
                &[
                    format!("--kubeconfig={}", plane.kubeconfig.display()),
                    format!("--authentication-kubeconfig={}", plane.kubeconfig.display()),
                    format!("--authorization-kubeconfig={}", plane.kubeconfig.display()),
                    format!("--service-account-private-key-file={}", p(SA_KEY)),
                    format!("--root-ca-file={}", p(CA_CERT)),
                    "--leader-elect=false".into(),
                    "--bind-address=127.0.0.1".into(),
                    format!("--secure-port={}", free_port()?),
                    format!("--cert-dir={}", p("kcm-certs")),
                    "--controllers=*".into(),
                    "--use-service-account-credentials=false".into(),
                    "--v=0".into(),
                ],
            )?;
        }
        if options.scheduler {
            plane.spawn(
                "kube-scheduler",
                &bin,
                &[
                    format!("--kubeconfig={}", plane.kubeconfig.display()),
                    format!("--authentication-kubeconfig={}", plane.kubeconfig.display()),
                    format!("--authorization-kubeconfig={}", plane.kubeconfig.display()),
                    "--leader-elect=false".into(),
                    "--bind-address=127.0.0.1".into(),
                    format!("--secure-port={}", free_port()?),
                    format!("--cert-dir={}", p("scheduler-certs")),
                    "--v=0".into(),
                ],
            )?;
        }
        Ok(plane)
    }

    /// Path of an admin kubeconfig (client certificate in `system:masters`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The apiserver URL, `https://127.0.0.1:<port>`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The directory holding data, certificates and logs (`<component>.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Process ids of the running components, by name.
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        self.processes.iter().map(|(n, c)| (*n, c.id())).collect()
    }

    /// A new client authenticated as the admin.
    pub async fn client(&self) -> Result<Client> {
        client_from_kubeconfig(&self.kubeconfig).await
    }

    /// Stops every component (SIGKILL; the data is disposable) and waits for them to exit.
    pub fn stop(&mut self) {
        for (_, child) in self.processes.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.processes.clear();
    }

    fn spawn(&mut self, name: &'static str, bin: &Path, args: &[String]) -> Result<()> {
        let log_path = self.dir.join(format!("{name}.log"));
        let log = fs::File::create(&log_path).map_err(io("creating", &log_path))?;
        let log_err = log.try_clone().map_err(io("opening", &log_path))?;
        let program = bin.join(name);
        // `setpriv --pdeathsig KILL` makes the kernel kill the component when the thread that
        // started it goes away, so a crashed or killed test run leaves nothing behind.
        let mut cmd = if Path::new(SETPRIV).is_file() {
            let mut c = Command::new(SETPRIV);
            c.args(["--pdeathsig", "KILL", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let child = cmd
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| Error::Command {
                command: program.display().to_string(),
                detail: format!("could not start: {e}"),
            })?;
        self.processes.push((name, child));
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let client = self.client().await?;
        let mut last = String::from("no answer yet");
        loop {
            for (name, child) in &mut self.processes {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(Error::NotReady {
                        component: name,
                        detail: format!(
                            "exited with {status}; log tail:\n{}",
                            log_tail(&self.dir, name)
                        ),
                    });
                }
            }
            let request = http::Request::get("/readyz").body(Vec::new());
            if let Ok(request) = request {
                match client.request_text(request).await {
                    Ok(body) if body.trim() == "ok" => {
                        if namespace_exists(&client, "default").await {
                            return Ok(());
                        }
                        last = "ready, waiting for the default namespace".into();
                    }
                    Ok(body) => last = body,
                    Err(e) => last = e.to_string(),
                }
            }
            if Instant::now() > deadline {
                return Err(Error::NotReady {
                    component: "kube-apiserver",
                    detail: format!(
                        "after {READY_TIMEOUT:?}: {last}; log tail:\n{}",
                        log_tail(&self.dir, "kube-apiserver")
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

const SETPRIV: &str = "/usr/bin/setpriv";

/// Prefix of temporary control-plane directories, and the file naming the process that owns one.
const TEMP_PREFIX: &str = "weir-testenv-";
const OWNER_FILE: &str = "owner.pid";

/// A test process's shared control plane lives until the process exits and is never dropped, so
/// its temporary directory stays behind. Each new control plane removes those whose owner died.
fn remove_stale_temp_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let Ok(pid) = fs::read_to_string(entry.path().join(OWNER_FILE)) else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.trim()).exists();
        if !alive && pid.trim().parse::<u32>().is_ok() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

async fn namespace_exists(client: &Client, name: &str) -> bool {
    let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
    matches!(api.get_opt(name).await, Ok(Some(_)))
}

/// A client for the kubeconfig at `path` (its current context).
pub(crate) async fn client_from_kubeconfig(path: &Path) -> Result<Client> {
    let kubeconfig = Kubeconfig::read_from(path)?;
    let mut config =
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    // Tests and the demo make bursts of requests; the defaults are fine, but a slow CI machine
    // needs more than a few seconds for the first CRD-heavy calls.
    config.read_timeout = Some(Duration::from_secs(120));
    Ok(Client::try_from(config)?)
}

fn write_kubeconfig(path: &Path, server: &str, dir: &Path) -> Result<()> {
    let file = |name: &str| dir.join(name).display().to_string();
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "weir-testenv", "cluster": {
            "server": server,
            "certificate-authority": file(CA_CERT),
        }}],
        "users": [{"name": "weir-admin", "user": {
            "client-certificate": file(ADMIN_CERT),
            "client-key": file(ADMIN_KEY),
        }}],
        "contexts": [{"name": "weir-testenv", "context": {"cluster": "weir-testenv", "user": "weir-admin"}}],
        "current-context": "weir-testenv",
    });
    let text = serde_yaml::to_string(&doc).map_err(|e| Error::Command {
        command: "writing kubeconfig".into(),
        detail: e.to_string(),
    })?;
    fs::write(path, text).map_err(io("writing", path))
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(io("binding a loopback port for", "127.0.0.1:0"))?;
    let port = listener
        .local_addr()
        .map_err(io("reading the address of", "127.0.0.1:0"))?
        .port();
    Ok(port)
}

fn log_tail(dir: &Path, name: &str) -> String {
    let text = fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}
