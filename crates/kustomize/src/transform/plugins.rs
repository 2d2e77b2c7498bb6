//! Builtin plugins configured as objects in `generators:` / `transformers:`.

use super::config::TransformerConfig;
use crate::error::{Error, Result};
use crate::loader::Loader;
use crate::resmap::ResMap;
use crate::resource::Resource;

/// Runs a generator configuration.
pub fn generate(loader: &Loader, config: &Resource) -> Result<Vec<Resource>> {
    let _ = loader;
    Err(Error::Unsupported(format!("generator plugin {}", config.kind())))
}

/// Runs a transformer configuration.
pub fn transform(
    loader: &Loader,
    m: &mut ResMap,
    config: &Resource,
    tc: &TransformerConfig,
) -> Result<()> {
    let _ = (loader, m, tc);
    Err(Error::Unsupported(format!("transformer plugin {}", config.kind())))
}
