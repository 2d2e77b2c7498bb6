//! One control plane per test run, handed to every test.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
};
use tokio::sync::OnceCell;

use crate::{
    ControlPlane, ControlPlaneOptions,
    control_plane::client_from_kubeconfig,
    error::{Error, Result},
};

/// Environment variable naming the kubeconfig of a control plane that `cargo xtask test`
/// started for the whole run. Without it, the first test of each process starts one.
pub const KUBECONFIG_ENV: &str = "WEIR_TEST_KUBECONFIG";

/// The kubeconfig of this process's shared control plane (an error is remembered, so a broken
/// environment fails every test quickly with the same message).
static SHARED: OnceCell<std::result::Result<PathBuf, String>> = OnceCell::const_new();

/// Label put on every namespace a test creates, for inspection and clean-up.
pub const TEST_NAMESPACE_LABEL: &str = "weir.dev/test";

/// A handle on the shared control plane for one test: a fresh client (bound to the test's own
/// runtime) and helpers.
#[derive(Clone)]
pub struct TestCluster {
    kubeconfig: PathBuf,
    client: Client,
}

impl TestCluster {
    /// The run's control plane: the one in [`KUBECONFIG_ENV`] if set, else one started for this
    /// process (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) and kept until
    /// the process exits.
    pub async fn shared() -> Result<Self> {
        let kubeconfig = SHARED
            .get_or_init(|| async {
                match std::env::var_os(KUBECONFIG_ENV) {
                    Some(path) => Ok(PathBuf::from(path)),
                    None => start_process_plane().await.map_err(|e| e.to_string()),
                }
            })
            .await
            .clone()
            .map_err(Error::Shared)?;
        let client = client_from_kubeconfig(&kubeconfig).await?;
        Ok(TestCluster { kubeconfig, client })
    }

    /// A client authenticated as the cluster admin.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Path of the admin kubeconfig (for `kubectl` or a controller process under test).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Server-side applies `crds` (idempotent, safe from concurrent tests) and waits until each
    /// is Established.
    pub async fn install_crds(&self, crds: &[CustomResourceDefinition]) -> Result<()> {
        install_crds(&self.client, crds, "weir-testenv").await
    }

    /// Creates a namespace unique to this call, named `<prefix>-<unique suffix>` (the prefix is
    /// cut to keep the name valid), waits until its `default` ServiceAccount exists, and returns
    /// its name.
    pub async fn namespace(&self, prefix: &str) -> Result<String> {
        let name = unique_name(prefix);
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(TEST_NAMESPACE_LABEL.to_owned(), "true".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        api.create(&PostParams::default(), &ns).await?;
        // Pods cannot be created until the controller-manager has made the namespace's
        // `default` ServiceAccount; wait for it so tests never race it.
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &name);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while accounts.get_opt("default").await?.is_none() {
            if std::time::Instant::now() > deadline {
                return Err(Error::NotReady {
                    component: "kube-controller-manager",
                    detail: format!("namespace {name} has no default ServiceAccount after 60s"),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Ok(name)
    }
}

/// `<prefix>-<pid><counter><time>` in DNS-1123 label form, at most 63 characters.
fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let suffix = format!("{:x}{n:x}{:x}", std::process::id(), nanos & 0xffff);
    let mut clean: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    clean.truncate(62 - suffix.len());
    let clean = clean.trim_matches('-');
    if clean.is_empty() {
        format!("t-{suffix}")
    } else {
        format!("{clean}-{suffix}")
    }
}

/// Starts a control plane on a thread that lives as long as the process. The components carry
/// a parent-death signal tied to that thread, so they die with the test process.
async fn start_process_plane() -> Result<PathBuf> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("weir-testenv".into())
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
            match runtime.block_on(ControlPlane::start(ControlPlaneOptions::full())) {
                Ok(plane) => {
                    let _ = tx.send(Ok(plane.kubeconfig_path().to_owned()));
                    // Keep the plane (and this thread) alive until the process exits.
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })
        .map_err(|e| Error::Shared(format!("spawning the control-plane thread: {e}")))?;
    rx.await
        .map_err(|_| Error::Shared("control-plane thread ended before reporting".into()))?
}

/// Server-side applies `crds` as `field_manager` (forcing, so it is idempotent and safe from
/// concurrent callers) and waits up to 60 s until each is Established.
pub async fn install_crds(
    client: &Client,
    crds: &[CustomResourceDefinition],
    field_manager: &str,
) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(field_manager).force();
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(crd)).await?;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for crd in crds {
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
            if std::time::Instant::now() > deadline {
                return Err(Error::NotReady {
                    component: "kube-apiserver",
                    detail: format!("CRD {name} not Established after 60s"),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_valid_dns_labels_and_distinct() {
        let long = "A_Very/Long Test Name ".repeat(10);
        let names: Vec<String> = ["crd round trip", "", "---", long.as_str()]
            .iter()
            .map(|p| unique_name(p))
            .collect();
        for n in &names {
            assert!(n.len() <= 63, "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{n}"
            );
            assert!(!n.starts_with('-') && !n.ends_with('-'), "{n}");
        }
        assert!(names[0].starts_with("crd-round-trip-"));
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
    }
}
