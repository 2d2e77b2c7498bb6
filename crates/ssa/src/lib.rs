//! weir's apply engine: the part of an Apply controller that talks to the cluster about the
//! objects it manages, usable by any operator that applies manifests.
//!
//! - [`parse_manifests`] reads multi-document YAML into [`DynamicObject`](kube::api::DynamicObject)s.
//! - [`Engine::apply`] validates the whole set with a server-side dry-run before any write,
//!   applies it in stages ([`order`]: CRDs, Namespaces and cluster RBAC first, awaited; then the
//!   rest in a fixed kind order) with field manager [`FIELD_MANAGER`] and the owner labels of
//!   [`Owner`], writes only objects whose dry-run differs from the live object ([`drift`]), and
//!   reports a [`ChangeSet`] and the new inventory. A failure after writing began is
//!   [`Error::Partial`], which still reports what was written and the inventory reached.
//! - [`Engine::prune`] deletes what left the set — only objects that still carry the owner
//!   labels and are not annotated `apply.weir.dev/prune: disabled`.
//! - [`Engine::check_health`] reads each object once and assesses it with the kstatus rules of
//!   [`health`]; the caller requeues instead of waiting.
//!
//! Per-object annotations: `apply.weir.dev/ssa: IfNotPresent | Ignore | Merge`,
//! `apply.weir.dev/prune: disabled`, `apply.weir.dev/reconcile: disabled` (see [`ApplyPolicy`]).
//!
//! Field ownership: the set wins over edits made with `Update` operations (`kubectl edit`,
//! `kubectl patch`, client-side apply, scripts) — that is drift, and it is corrected. A field held
//! by another *server-side apply* manager is a deliberate claim: the apply fails with
//! [`Error::Conflict`] unless [`ApplyOptions::force`] is set. `ssa: Merge` objects never force.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> weir_ssa::Result<()> {
//! use weir_ssa::{ApplyOptions, Engine, Owner};
//! let engine = Engine::new(client, Owner::new("apps", "podinfo"));
//! let objects = weir_ssa::parse_manifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: apps}\n")?;
//! let outcome = engine.apply(objects, &ApplyOptions::default()).await?;
//! assert_eq!(outcome.inventory.entries[0].id, "apps_a__ConfigMap");
//! # Ok(()) }
//! ```

mod changeset;
pub mod drift;
mod engine;
mod error;
pub mod health;
mod kinds;
mod manifest;
pub mod order;

pub use changeset::{Action, ChangeSet, ChangeSetEntry};
pub use engine::{ApplyOptions, ApplyOutcome, Engine, FIELD_MANAGER};
pub use error::{Error, Result};
pub use health::{HealthStatus, HealthVerdict};
pub use kinds::{Kinds, ResolvedKind};
pub use manifest::{
    ApplyPolicy, DISABLED, OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, ObjectRef, Owner,
    PRUNE_ANNOTATION, RECONCILE_ANNOTATION, SSA_ANNOTATION, parse_manifests, prune_disabled,
    split_api_version,
};
