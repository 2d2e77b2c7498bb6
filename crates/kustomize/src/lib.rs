//! A kustomize-compatible render engine in pure Rust.
//!
//! Reads a kustomization directory and produces the same objects, in the same order and with the
//! same YAML text as `kustomize build` (v5.5). It never talks to Kubernetes and never runs
//! external programs: remote bases, helm charts and exec plugins are refused with a clear error.

pub mod build;
pub mod error;
pub mod generators;
pub mod kustomization;
pub mod loader;
pub mod patch;
pub mod resid;
pub mod resmap;
pub mod resource;
pub mod substitute;
pub mod transform;
pub mod yaml;

pub use build::{BuildOptions, build, build_yaml};
pub use error::{Error, Result};
pub use loader::{Limits, LoadRestrictor, Loader};
pub use resid::{Gvk, ResId};
pub use resmap::ResMap;
pub use resource::Resource;
