//! weir's apply-controller: server-side applies rendered manifests, keeps an inventory, prunes
//! and waits for health, reporting in `Apply.status`.
//!
//! Not implemented yet: this crate reserves the workspace slot; the controller arrives with its
//! own issue. It re-exports the kind it reconciles so embedders can already depend on the name.

pub use weir_api::Apply;
