//! A simulated node, so Pods get scheduled and become Running and Ready without a kubelet.
//!
//! [`ensure`] builds [kwok](https://kwok.sigs.k8s.io) [`KWOK_VERSION`] from the Go module proxy
//! into `$WEIR_CACHE_DIR/kwok-<version>/bin` (once per machine, with a lock and a stamp, like the
//! control-plane [`binaries`]). [`Kwok::start`] creates one fake [`NODE_NAME`]
//! (annotation [`NODE_ANNOTATION`]`: fake`, label `type: kwok`, no taints) and runs kwok under
//! `setpriv --pdeathsig KILL` with its default node and pod stages: the node turns Ready and keeps
//! its lease, Pods bound to it turn Running and Ready, deleted Pods go away.
//!
//! Tests use [`shared`]: one kwok per test process, started on a thread that lives as long as
//! the process. Several processes against one control plane (`cargo xtask test`) are harmless:
//! they share the node, and kwok's node lease lets only one of them manage it at a time (another
//! takes over when the holder exits and the lease expires).
//!
//! ```no_run
//! # async fn demo() -> Result<(), weir_testenv::Error> {
//! let cluster = weir_testenv::TestCluster::shared().await?;
//! weir_testenv::kwok::shared(&cluster).await?; // Pods now run on the fake node
//! # Ok(()) }
//! ```

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::{Node, NodeSpec, NodeStatus},
    apimachinery::pkg::api::resource::Quantity,
};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use tokio::sync::OnceCell;

use crate::{
    TestCluster, binaries,
    control_plane::client_from_kubeconfig,
    error::{Error, Result, io},
};

/// The kwok release that is built (the newest v0.7.x the Go module proxy serves).
pub const KWOK_VERSION: &str = "v0.7.0";

/// Name of the fake node.
pub const NODE_NAME: &str = "weir-kwok";

/// The annotation (value `fake`) that marks the nodes kwok manages.
pub const NODE_ANNOTATION: &str = "kwok.x-k8s.io/node";

/// Bump when the build recipe changes, so a cached binary is rebuilt.
const RECIPE: &str = "weir-kwok-recipe-1";

/// How long kwok's node lease lasts: short, so another process takes the node over quickly.
const LEASE_SECONDS: u32 = 10;

/// How long the fake node may take to become Ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

const SETPRIV: &str = "/usr/bin/setpriv";

/// Where the kwok binary is (or will be).
pub fn bin_path() -> PathBuf {
    build_dir().join("bin").join("kwok")
}

fn build_dir() -> PathBuf {
    binaries::cache_root().join(format!("kwok-{KWOK_VERSION}"))
}

fn stamp() -> String {
    format!("{RECIPE} kwok={KWOK_VERSION}\n")
}

fn is_complete(bin: &Path) -> bool {
    fs::read_to_string(bin.join(".stamp")).is_ok_and(|s| s == stamp()) && bin.join("kwok").is_file()
}

/// Makes sure the kwok binary exists, building it with `go install` if needed (a minute or two on
/// a cold machine; a file lock serialises concurrent callers). Returns its path.
pub fn ensure() -> Result<PathBuf> {
    let dir = build_dir();
    let bin = dir.join("bin");
    if is_complete(&bin) {
        return Ok(bin.join("kwok"));
    }
    fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let lock_path = dir.join(".lock");
    let lock = fs::File::create(&lock_path).map_err(io("creating", &lock_path))?;
    lock.lock().map_err(io("locking", &lock_path))?;
    // Another process may have finished the build while we waited for the lock.
    if is_complete(&bin) {
        return Ok(bin.join("kwok"));
    }
    tracing::info!(version = KWOK_VERSION, dir = %dir.display(), "building kwok from Go modules");
    let staging = dir.join("bin.partial");
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(io("creating", &staging))?;
    let line = format!("go install sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}");
    let out = Command::new("go")
        .current_dir(&dir)
        .env("GOBIN", &staging)
        .env("CGO_ENABLED", "0")
        .env("GOWORK", "off")
        .args(["install", "-trimpath", "-ldflags", "-s -w"])
        .arg(format!("sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}"))
        .output()
        .map_err(|e| Error::Command {
            command: line.clone(),
            detail: format!("could not start: {e} (is Go installed?)"),
        })?;
    if !out.status.success() {
        return Err(Error::Command {
            command: line,
            detail: format!("{}:\n{}", out.status, tail(&out.stderr, 30)),
        });
    }
    let stamp_path = staging.join(".stamp");
    fs::write(&stamp_path, stamp()).map_err(io("writing", &stamp_path))?;
    let _ = fs::remove_dir_all(&bin);
    fs::rename(&staging, &bin).map_err(io("renaming into", &bin))?;
    Ok(bin.join("kwok"))
}

/// A running kwok managing the fake node [`NODE_NAME`]. Dropping it stops kwok (SIGKILL); the
/// node stays, for another kwok to take over.
pub struct Kwok {
    child: Child,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for Kwok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kwok")
            .field("pid", &self.child.id())
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl Kwok {
    /// Builds kwok if needed, creates the fake node (an existing one is kept), starts kwok against
    /// `plane` and waits until the node is Ready.
    ///
    /// kwok gets a parent-death signal tied to the calling thread: start it from a thread that
    /// outlives its use (or use [`shared`]).
    pub async fn start(plane: &crate::ControlPlane) -> Result<Self> {
        Self::start_with_kubeconfig(plane.kubeconfig_path()).await
    }

    /// [`Kwok::start`] for the cluster of an admin kubeconfig.
    pub async fn start_with_kubeconfig(kubeconfig: &Path) -> Result<Self> {
        let program = tokio::task::spawn_blocking(ensure)
            .await
            .map_err(|e| Error::Shared(format!("kwok build task failed: {e}")))??;
        let client = client_from_kubeconfig(kubeconfig).await?;
        create_node(&client).await?;

        let dir = tempfile::Builder::new()
            .prefix("weir-kwok-")
            .tempdir()
            .map_err(io("creating temp dir in", std::env::temp_dir()))?;
        let log_path = dir.path().join("kwok.log");
        let log = fs::File::create(&log_path).map_err(io("creating", &log_path))?;
        let log_err = log.try_clone().map_err(io("opening", &log_path))?;
        // `setpriv --pdeathsig KILL`: the kernel kills kwok when the starting thread goes away.
        let mut cmd = if Path::new(SETPRIV).is_file() {
            let mut c = Command::new(SETPRIV);
            c.args(["--pdeathsig", "KILL", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let child = cmd
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg("--manage-all-nodes=false")
            .arg(format!(
                "--manage-nodes-with-annotation-selector={NODE_ANNOTATION}=fake"
            ))
            .arg(format!("--node-lease-duration-seconds={LEASE_SECONDS}"))
            // kwok also reads `~/.kwok/kwok.yaml`; a private HOME keeps a developer's stages out.
            .env("HOME", dir.path())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| Error::Command {
                command: program.display().to_string(),
                detail: format!("could not start: {e}"),
            })?;
        let mut kwok = Kwok { child, dir };
        kwok.wait_node_ready(&client).await?;
        Ok(kwok)
    }

    /// The directory holding kwok's log (`kwok.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops kwok (SIGKILL) and waits for it to exit.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn wait_node_ready(&mut self, client: &Client) -> Result<()> {
        let nodes: Api<Node> = Api::all(client.clone());
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.not_ready(format!("exited with {status}")));
            }
            let node = nodes.get_opt(NODE_NAME).await?;
            let ready = node
                .and_then(|n| n.status)
                .and_then(|s| s.conditions)
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.not_ready(format!(
                    "node {NODE_NAME} not Ready after {READY_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn not_ready(&self, what: String) -> Error {
        let text = fs::read_to_string(self.dir.path().join("kwok.log")).unwrap_or_default();
        Error::NotReady {
            component: "kwok",
            detail: format!("{what}; log tail:\n{}", tail(text.as_bytes(), 25)),
        }
    }
}

impl Drop for Kwok {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Creates the fake node unless it exists: 32 CPUs, 256Gi, 110 pods, no taints.
async fn create_node(client: &Client) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    if nodes.get_opt(NODE_NAME).await?.is_some() {
        return Ok(());
    }
    let labels = [
        ("type", "kwok"),
        ("kubernetes.io/hostname", NODE_NAME),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("kubernetes.io/role", "agent"),
        ("node-role.kubernetes.io/agent", ""),
    ];
    let resources: BTreeMap<String, Quantity> =
        [("cpu", "32"), ("memory", "256Gi"), ("pods", "110")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Quantity(v.to_owned())))
            .collect();
    let node = Node {
        metadata: ObjectMeta {
            name: Some(NODE_NAME.to_owned()),
            labels: Some(
                labels
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            ),
            annotations: Some(
                [
                    (NODE_ANNOTATION.to_owned(), "fake".to_owned()),
                    ("node.alpha.kubernetes.io/ttl".to_owned(), "0".to_owned()),
                ]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            capacity: Some(resources.clone()),
            allocatable: Some(resources),
            ..NodeStatus::default()
        }),
    };
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => Ok(()),
        // Another process created it first: the same node, nothing to do.
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether this process's kwok started (an error is remembered, so every test fails the same way).
static SHARED: OnceCell<std::result::Result<(), String>> = OnceCell::const_new();

/// Runs kwok for `cluster`, once per test process, until the process exits; returns when the
/// fake node [`NODE_NAME`] is Ready. Calling it again (or from another process against the same
/// control plane) is harmless.
pub async fn shared(cluster: &TestCluster) -> Result<()> {
    let kubeconfig = cluster.kubeconfig_path().to_owned();
    SHARED
        .get_or_init(|| async move {
            start_process_kwok(kubeconfig)
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .clone()
        .map_err(|detail| Error::NotReady {
            component: "kwok",
            detail,
        })
}

/// Starts kwok on a thread that lives as long as the process, so its parent-death signal fires
/// only when the process exits.
async fn start_process_kwok(kubeconfig: PathBuf) -> Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("weir-kwok".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(Error::Shared(format!("runtime: {e}"))));
                    return;
                }
            };
            match runtime.block_on(Kwok::start_with_kubeconfig(&kubeconfig)) {
                Ok(kwok) => {
                    let _ = tx.send(Ok(()));
                    // Keep kwok (and this thread) alive until the process exits.
                    let _kwok = kwok;
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })
        .map_err(|e| Error::Shared(format!("spawning the kwok thread: {e}")))?;
    rx.await
        .map_err(|_| Error::Shared("kwok thread ended before reporting".into()))?
}

fn tail(text: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
