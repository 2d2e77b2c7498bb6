//! A real local Kubernetes control plane for tests and the demo.
//!
//! No mock stands in for Kubernetes: [`binaries::ensure`] builds `etcd`, `kube-apiserver`,
//! `kube-controller-manager` and `kube-scheduler` from the Go module proxy into a cache outside the
//! repository (once per machine), and [`ControlPlane::start`] runs them on loopback with random
//! ports, generated certificates, an admin credential in `system:masters`, RBAC authorization and
//! service-account signing keys.
//!
//! Tests use [`TestCluster::shared`]: one control plane per test run (started by `cargo xtask test`
//! and announced in [`KUBECONFIG_ENV`]), or one per test process when run without xtask.
//!
//! ```no_run
//! # async fn demo() -> Result<(), weir_testenv::Error> {
//! let cluster = weir_testenv::TestCluster::shared().await?;
//! let ns = cluster.namespace("my-test").await?; // a fresh namespace
//! let client = cluster.client();
//! # let _ = (ns, client); Ok(()) }
//! ```

pub mod binaries;
mod certs;
mod control_plane;
mod error;
pub mod git;
pub mod kwok;
pub mod process;
mod shared;

pub use control_plane::{ControlPlane, ControlPlaneOptions};
pub use error::{Error, Result};
pub use kwok::Kwok;
pub use shared::{KUBECONFIG_ENV, TestCluster, install_crds};
