//! Transformers: everything that changes objects after they are loaded or generated.

pub mod builtins;
pub mod config;
pub mod crds;
pub mod fieldspec;
pub mod hash;
pub mod nameref;
pub mod origin;
pub mod patches;
pub mod plugins;
pub mod refvar;
pub mod replacement;
pub mod selector;
pub mod sort;

pub use config::TransformerConfig;
