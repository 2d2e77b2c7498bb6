//! weir's source-controller: fetches Git refs into reproducible, content-addressed tar.gz
//! artifacts and publishes them in `GitRepository.status.artifact`.
//!
//! Not implemented yet: this crate reserves the workspace slot; the controller arrives with its
//! own issue. It re-exports the kind it reconciles so embedders can already depend on the name.

pub use weir_api::GitRepository;
