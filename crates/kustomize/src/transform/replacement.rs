//! `replacements`: copy a field of one object into fields of others.

use crate::error::{Error, Result};
use crate::kustomization::ReplacementField;
use crate::loader::Loader;
use crate::resmap::ResMap;

/// Applies a kustomization's `replacements` entries (inline or from files).
pub fn apply_fields(loader: &Loader, m: &mut ResMap, fields: &[ReplacementField]) -> Result<()> {
    let _ = (loader, m, fields);
    Err(Error::Unsupported("replacements".into()))
}
