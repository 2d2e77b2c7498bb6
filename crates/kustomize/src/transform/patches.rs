//! The patch transformers: `patches`, `patchesStrategicMerge`, `patchesJson6902` — finding
//! targets and keeping ids right around the merge engine in [`crate::patch`].

use super::selector;
use crate::error::{Error, Result};
use crate::kustomization::Patch;
use crate::loader::Loader;
use crate::patch::{self, MergeOutcome, Schema};
use crate::resid::ResId;
use crate::resmap::ResMap;
use crate::resource::Resource;
use crate::yaml::{Value, parse_one};

/// A strategic merge patch with the options it was given.
struct SmPatch {
    res: Resource,
    allow_name_change: bool,
    allow_kind_change: bool,
}

fn patch_id(p: &Resource) -> ResId {
    p.cur_id()
}

/// Applies one strategic merge patch to the resource at `index`; drops it when the patch
/// deletes it.
fn apply_sm(m: &mut ResMap, index: usize, p: &SmPatch, schema: &Schema) -> Result<()> {
    let r = &mut m.resources_mut()[index];
    let (name, ns, kind) = (
        r.name().to_string(),
        r.namespace().to_string(),
        r.kind().to_string(),
    );
    if p.allow_name_change || p.allow_kind_change {
        r.store_previous_id();
    }
    let mut patch_obj = p.res.obj.clone();
    if let Some(map) = patch_obj.as_map_mut() {
        map.insert(
            "apiVersion".into(),
            Value::String(r.api_version().to_string()),
        );
    }
    let gvk = r.gvk();
    let outcome = patch::strategic_merge(&mut r.obj, &patch_obj, &gvk, schema)
        .map_err(|e| e.context(format!("applying patch to {}", r.cur_id())))?;
    if outcome == MergeOutcome::Deleted || r.obj.as_map().is_none_or(|m| m.is_empty()) {
        m.remove(index);
        return Ok(());
    }
    if !p.allow_kind_change
        && let Some(map) = r.obj.as_map_mut()
    {
        map.insert("kind".into(), Value::String(kind));
    }
    if !p.allow_name_change {
        r.set_name(&name);
    }
    if ns.is_empty() {
        if let Some(meta) = r.metadata_mut() {
            meta.shift_remove("namespace");
        }
    } else {
        r.set_namespace(&ns);
    }
    Ok(())
}

fn load_patch_text(loader: &Loader, p: &Patch) -> Result<(String, String)> {
    let patch = p.patch.as_deref().map(str::trim).unwrap_or("");
    let path = p.path.as_deref().unwrap_or("");
    match (patch.is_empty(), path.is_empty()) {
        (true, true) => Err(Error::msg("must specify one of patch and path")),
        (false, false) => Err(Error::msg("patch and path can't be set at the same time")),
        (false, true) => Ok((patch.to_string(), format!("[patch: {patch:?}]"))),
        (true, false) => {
            let text = loader.read_string(path).map_err(|e| {
                e.context(format!("failed to get the patch file from path({path})"))
            })?;
            Ok((text, format!("[path: {path:?}]")))
        }
    }
}

/// Decodes JSON 6902 operations from YAML or JSON text.
fn json_ops(text: &str) -> Option<Value> {
    let v = parse_one(text).ok()?;
    let ops = v.as_seq()?;
    if ops.iter().all(|op| op.get("op").is_some()) {
        Some(v)
    } else {
        None
    }
}

/// A `patches:` entry (or the PatchTransformer plugin).
pub fn patch(loader: &Loader, m: &mut ResMap, p: &Patch, schema: &Schema) -> Result<()> {
    let (text, source) = load_patch_text(loader, p)?;
    let opts = p.options.clone().unwrap_or_default();
    if let Some(ops) = json_ops(&text) {
        let Some(target) = &p.target else {
            return Err(Error::msg(format!(
                "must specify a target for JSON patch {source}"
            )));
        };
        let selected = selector::select(m, target)?;
        for i in selected {
            apply_json(&mut m.resources_mut()[i], &ops)?;
        }
        return Ok(());
    }
    let patches = crate::build::resources_from_text(&text, &source)
        .map_err(|e| e.context(format!("unable to parse SM or JSON patch from {source}")))?;
    let patches: Vec<SmPatch> = patches
        .into_iter()
        .map(|res| SmPatch {
            res,
            allow_name_change: opts.allow_name_change,
            allow_kind_change: opts.allow_kind_change,
        })
        .collect();
    if let Some(target) = &p.target {
        if patches.len() > 1 {
            return Err(Error::msg(format!(
                "Multiple Strategic-Merge Patches in one `patches` entry is not allowed to set `patches.target` field: {source}"
            )));
        }
        let Some(sm) = patches.first() else {
            return Ok(());
        };
        let selected: Vec<ResId> = selector::select(m, target)?
            .into_iter()
            .map(|i| m.resources()[i].cur_id())
            .collect();
        for id in selected {
            if let Some(i) = m.find_by_current_id(&id).first().copied() {
                apply_sm(m, i, sm, schema)?;
            }
        }
        return Ok(());
    }
    for sm in &patches {
        let id = patch_id(&sm.res);
        let i = unique_by_any_id(m, &id).map_err(|e| {
            e.context(format!(
                "no resource matches strategic merge patch \"{id}\""
            ))
        })?;
        apply_sm(m, i, sm, schema)?;
    }
    Ok(())
}

fn unique_by_any_id(m: &ResMap, id: &ResId) -> Result<usize> {
    let found = m.find_by_any_id(id);
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(Error::msg(format!(
            "no matches for Id {id}; failed to find unique target for patch {id}"
        ))),
        _ => Err(Error::msg(format!(
            "multiple matches for Id {id}; failed to find unique target for patch {id}"
        ))),
    }
}

/// `patchesStrategicMerge:` entries (files or inline patches).
pub fn strategic_merge_list(
    loader: &Loader,
    m: &mut ResMap,
    entries: &[String],
    schema: &Schema,
) -> Result<()> {
    let mut patches = Vec::new();
    for entry in entries {
        let looks_inline = entry.contains('\n') || entry.trim_start().starts_with('{');
        let text = if looks_inline {
            entry.clone()
        } else {
            loader.read_string(entry)?
        };
        for res in crate::build::resources_from_text(&text, entry)? {
            patches.push(SmPatch {
                res,
                allow_name_change: false,
                allow_kind_change: false,
            });
        }
    }
    for sm in &patches {
        let id = patch_id(&sm.res);
        let i = unique_by_any_id(m, &id)?;
        apply_sm(m, i, sm, schema)?;
    }
    Ok(())
}

fn apply_json(r: &mut Resource, ops: &Value) -> Result<()> {
    r.store_previous_id();
    let id = r.cur_id();
    patch::json6902(&mut r.obj, ops).map_err(|e| e.context(format!("applying JSON patch to {id}")))
}

/// A `patchesJson6902:` entry.
pub fn json6902_entry(loader: &Loader, m: &mut ResMap, p: &Patch) -> Result<()> {
    let Some(target) = &p.target else {
        return Err(Error::msg("patchesJson6902 entry needs a target"));
    };
    let (text, source) = load_patch_text(loader, p)?;
    let ops = parse_one(&text).map_err(|source_err| Error::Yaml {
        file: source.clone(),
        source: source_err,
    })?;
    if ops.as_seq().is_none() {
        return Err(Error::msg(format!(
            "JSON patch {source} must be a list of operations"
        )));
    }
    let selected = selector::select(m, target)?;
    for i in selected {
        apply_json(&mut m.resources_mut()[i], &ops)?;
    }
    Ok(())
}
