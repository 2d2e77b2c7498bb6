//! Patches: strategic merge (with the merge keys and strategies of the Kubernetes OpenAPI
//! document) and JSON 6902 (being written).

use crate::error::{Error, Result};
use crate::resid::Gvk;
use crate::yaml::Value;

/// What a strategic merge patch did to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The target was updated in place.
    Kept,
    /// The patch said `$patch: delete` for the whole object: drop it.
    Deleted,
}

/// Merge keys and strategies, from the committed OpenAPI table plus any custom schema a
/// kustomization supplies (`openapi:`).
#[derive(Debug, Clone, Default)]
pub struct Schema {}

impl Schema {
    /// The builtin Kubernetes schema.
    pub fn builtin() -> Schema {
        Schema {}
    }
}

/// Applies a strategic merge patch to `target` (an object of kind `gvk`).
pub fn strategic_merge(
    target: &mut Value,
    patch: &Value,
    gvk: &Gvk,
    schema: &Schema,
) -> Result<MergeOutcome> {
    let _ = (target, patch, gvk, schema);
    Err(Error::Unsupported("strategic merge patch".into()))
}

/// Applies JSON 6902 operations (already decoded: a sequence of `{op, path, value, from}`).
pub fn json6902(target: &mut Value, ops: &Value) -> Result<()> {
    let _ = (target, ops);
    Err(Error::Unsupported("JSON 6902 patch".into()))
}
