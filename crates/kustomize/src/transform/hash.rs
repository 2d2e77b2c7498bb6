//! Appending content hashes to generated names (kustomize's HashTransformer).

use crate::error::Result;
use crate::resmap::ResMap;

/// Renames every object that asked for a hash to `name-<hash of its content>`.
pub fn add_hashes(m: &mut ResMap) -> Result<()> {
    for r in m.resources_mut() {
        if !r.needs_hash {
            continue;
        }
        let hash = crate::generators::content_hash(&r.obj)?;
        r.store_previous_id();
        let name = format!("{}-{hash}", r.name());
        r.set_name(&name);
        r.needs_hash = false;
    }
    Ok(())
}
