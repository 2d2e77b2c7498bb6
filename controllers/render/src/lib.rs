//! weir's render-controller: renders source artifacts with kustomize semantics and publishes the
//! manifests in `Render.status.artifact`.
//!
//! Not implemented yet: this crate reserves the workspace slot; the controller arrives with its
//! own issue. It re-exports the kind it reconciles so embedders can already depend on the name.

pub use weir_api::Render;
