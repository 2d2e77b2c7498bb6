//! weir's Kubernetes API.
//!
//! The three custom resources of the pipeline and the types their controllers share:
//!
//! | group | kind | module |
//! |---|---|---|
//! | `source.weir.dev/v1alpha1` | [`GitRepository`] | [`source`] |
//! | `source.weir.dev/v1alpha1` | [`Receiver`] (webhook) | [`receiver`] |
//! | `render.weir.dev/v1alpha1` | [`Render`] | [`render`] |
//! | `apply.weir.dev/v1alpha1` | [`Apply`] | [`apply`] |
//!
//! Controllers never link each other's crates; this crate is the only code they share. A
//! consumer reads its producer's [`Artifact`] through a [`SourceReference`] and a dynamic object,
//! so a new producer kind plugs in without changing consumers.
//!
//! The CRD manifests in `config/crd/` are generated from these types by `cargo xtask crds`
//! (see [`crds`]).

pub mod apply;
pub mod artifact;
pub mod conditions;
pub mod crds;
pub mod duration;
pub mod inventory;
pub mod receiver;
pub mod reconcile;
pub mod reference;
pub mod render;
mod schema;
pub mod source;

pub use apply::{Apply, ApplySpec, ApplyStatus};
pub use artifact::Artifact;
pub use conditions::{Condition, ConditionStatus};
pub use duration::GoDuration;
pub use inventory::{InventoryEntry, ResourceInventory};
pub use receiver::{Receiver, ReceiverSpec, ReceiverStatus};
pub use reference::SourceReference;
pub use render::{Render, RenderSpec, RenderStatus};
pub use source::{GitRepository, GitRepositorySpec, GitRepositoryStatus};
