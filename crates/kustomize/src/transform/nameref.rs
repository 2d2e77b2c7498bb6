//! Fixing references to renamed objects (kustomize's nameReference transformer).
//!
//! For every kind that others refer to by name (the `nameReference` configuration), every
//! referring field is checked: when an object of that kind had the referred name earlier in the
//! build (prefix, suffix, hash, namespace changes, patches), the field gets its current name —
//! and, for `{name, namespace}` mappings, its namespace. Ambiguity is resolved as kustomize does:
//! same namespace, then same prefixes/suffixes, else an error naming the candidates.

use super::config::TransformerConfig;
use super::fieldspec::{self, split_path};
use crate::error::{Error, Result};
use crate::kustomization::FieldSpec;
use crate::resid::{Gvk, ResId};
use crate::resmap::ResMap;
use crate::resource::Resource;
use crate::yaml::Value;

fn gvk_selected(id_gvk: &Gvk, selector: &Gvk) -> bool {
    (selector.group.is_empty() || selector.group == id_gvk.group)
        && (selector.version.is_empty() || selector.version == id_gvk.version)
        && (selector.kind.is_empty() || selector.kind == id_gvk.kind)
}

fn same_ending(a: &[String], b: &[String]) -> bool {
    let (short, long) = if a.len() > b.len() { (b, a) } else { (a, b) };
    let diff = long.len() - short.len();
    if short.is_empty() {
        return diff == 0;
    }
    (0..short.len()).all(|i| long[i + diff] == short[i])
}

fn affixes_equal(r: &Resource, o: &Resource, allow_empty: bool) -> bool {
    if allow_empty {
        let either_prefix_empty = r.prefixes.is_empty() || o.prefixes.is_empty();
        let either_suffix_empty = r.suffixes.is_empty() || o.suffixes.is_empty();
        (either_prefix_empty || same_ending(&r.prefixes, &o.prefixes))
            && (either_suffix_empty || same_ending(&r.suffixes, &o.suffixes))
    } else {
        same_ending(&r.prefixes, &o.prefixes) && same_ending(&r.suffixes, &o.suffixes)
    }
}

/// Namespaces of ServiceAccount subjects of a RoleBinding.
fn role_binding_namespaces(r: &Resource) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if r.kind() != "RoleBinding" {
        return Ok(out);
    }
    let Some(subjects) = r.obj.get("subjects").and_then(Value::as_seq) else {
        return Ok(out);
    };
    for s in subjects {
        let Some(ns) = s.get("namespace") else {
            continue;
        };
        if s.get("kind").is_some() && s.str_at(&["kind"]) == Some("ServiceAccount") {
            match ns.as_str() {
                Some(n) => out.push(n.to_string()),
                None => {
                    return Err(Error::msg(format!(
                        "Invalid Input: namespace is blank for resource \"{}\"",
                        r.cur_id()
                    )));
                }
            }
        }
    }
    Ok(out)
}

/// Indices of resources `referrer` could refer to.
fn could_be_referenced(m: &ResMap, referrer: &Resource) -> Result<Vec<usize>> {
    let rid = referrer.cur_id();
    if rid.gvk.is_cluster_scoped() {
        return Ok((0..m.len()).collect());
    }
    let rb = role_binding_namespaces(referrer)?;
    Ok(m.resources()
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            let id = t.cur_id();
            id.gvk.is_cluster_scoped()
                || id.effective_namespace() == rid.effective_namespace()
                || rb.iter().any(|n| n == t.namespace())
        })
        .map(|(i, _)| i)
        .collect())
}

struct Referral {
    name: String,
    namespace: String,
    index: usize,
}

struct Ctx<'a> {
    resources: &'a [Resource],
    referrer: &'a Resource,
    target: Gvk,
    path: String,
}

impl Ctx<'_> {
    fn role_ref_gvk(&self) -> Option<Gvk> {
        if !self.path.ends_with("roleRef/name") {
            return None;
        }
        let role_ref = self.referrer.obj.get("roleRef")?;
        let group = role_ref.str_at(&["apiGroup"])?;
        let kind = role_ref.str_at(&["kind"])?;
        Some(Gvk {
            group: group.to_string(),
            version: String::new(),
            kind: kind.to_string(),
        })
    }

    fn select(
        &self,
        old_name: &str,
        candidates: Vec<usize>,
        with_namespace: bool,
    ) -> Result<Option<Referral>> {
        let res = self.resources;
        let role_ref = self.role_ref_gvk();
        let referrer_id = self.referrer.cur_id();
        let mut c: Vec<usize> = candidates
            .into_iter()
            .filter(|&i| res[i].prev_ids().iter().any(|id| id.name == old_name))
            .filter(|&i| {
                res[i]
                    .prev_ids()
                    .iter()
                    .any(|id| gvk_selected(&id.gvk, &self.target))
            })
            .filter(|&i| {
                role_ref
                    .as_ref()
                    .is_none_or(|g| res[i].prev_ids().iter().any(|id| gvk_selected(&id.gvk, g)))
            })
            .filter(|&i| {
                if referrer_id.gvk.is_cluster_scoped() {
                    return true;
                }
                let id = res[i].cur_id();
                id.gvk.is_cluster_scoped()
                    || res[i].kind() == "ServiceAccount"
                    || id.effective_namespace() == referrer_id.effective_namespace()
            })
            .collect();
        if c.len() == 1 {
            return Ok(Some(self.referral(c[0])));
        }
        c.retain(|&i| affixes_equal(&res[i], self.referrer, true));
        if c.len() > 1 {
            c.retain(|&i| affixes_equal(&res[i], self.referrer, false));
        }
        match c.len() {
            0 => Ok(None),
            1 => Ok(Some(self.referral(c[0]))),
            _ => {
                let first = &res[c[0]];
                let identical = c.iter().all(|&i| {
                    res[i].name() == first.name()
                        && (!with_namespace || res[i].namespace() == first.namespace())
                });
                if identical {
                    return Ok(Some(self.referral(c[0])));
                }
                let ids: Vec<String> = c.iter().map(|&i| res[i].cur_id().to_string()).collect();
                Err(Error::msg(format!(
                    "found multiple possible referrals: {}",
                    ids.join(", ")
                )))
            }
        }
    }

    fn referral(&self, index: usize) -> Referral {
        let r = &self.resources[index];
        Referral {
            name: r.name().to_string(),
            namespace: r.namespace().to_string(),
            index,
        }
    }
}

/// Updates every field that refers to an object by name after prefixes, suffixes, hashes and
/// namespaces changed names.
pub fn fix_back_references(m: &mut ResMap, config: &TransformerConfig) -> Result<()> {
    // (referrer index, field spec, referred kind)
    let mut work: Vec<(usize, FieldSpec, Gvk)> = Vec::new();
    let org_ids: Vec<ResId> = m.resources().iter().map(Resource::org_id).collect();
    for backref in &config.name_reference {
        let target = backref.gvk();
        for spec in &backref.field_specs {
            let sel = Gvk {
                group: spec.group.clone(),
                version: spec.version.clone(),
                kind: spec.kind.clone(),
            };
            for (i, id) in org_ids.iter().enumerate() {
                if gvk_selected(&id.gvk, &sel) {
                    work.push((i, spec.clone(), target.clone()));
                }
            }
        }
    }
    // Group per referrer in resource order, keeping the configuration order per referrer.
    work.sort_by_key(|(i, _, _)| *i);
    let mut ref_by: Vec<(usize, ResId)> = Vec::new();
    for (i, spec, target) in work {
        let candidates = could_be_referenced(m, &m.resources()[i])?;
        let snapshot: Vec<Resource> = m.resources().to_vec();
        let referrer = snapshot[i].clone();
        let ctx = Ctx {
            resources: &snapshot,
            referrer: &referrer,
            target,
            path: spec.path.clone(),
        };
        let referrer_id = referrer.cur_id();
        let gvk = referrer.gvk();
        let spec_for_referrer = FieldSpec {
            group: String::new(),
            version: String::new(),
            kind: String::new(),
            ..spec.clone()
        };
        let mut found: Vec<usize> = Vec::new();
        let obj = &mut m.resources_mut()[i].obj;
        let result = fieldspec::apply(obj, &gvk, &spec_for_referrer, None, &mut |node| {
            set_node(node, &ctx, &candidates, &mut found)
        });
        result.map_err(|e| {
            e.context(format!(
                "updating name reference in '{}' field of '{}'",
                spec.path, referrer_id
            ))
        })?;
        for idx in found {
            ref_by.push((idx, referrer_id.clone()));
        }
    }
    for (idx, id) in ref_by {
        if let Some(r) = m.resources_mut().get_mut(idx)
            && !r.ref_by.contains(&id)
        {
            r.ref_by.push(id);
        }
    }
    let _ = split_path;
    Ok(())
}

fn set_node(
    node: &mut Value,
    ctx: &Ctx<'_>,
    candidates: &[usize],
    found: &mut Vec<usize>,
) -> Result<()> {
    match node {
        Value::Null => Ok(()),
        Value::Map(_) => set_mapping(node, ctx, candidates, found),
        Value::Seq(items) => {
            for item in items.iter_mut() {
                match item {
                    Value::Map(_) => set_mapping(item, ctx, candidates, found)?,
                    Value::Null | Value::Seq(_) => {}
                    _ => set_scalar(item, ctx, candidates, found)?,
                }
            }
            Ok(())
        }
        _ => set_scalar(node, ctx, candidates, found),
    }
}

fn set_scalar(
    node: &mut Value,
    ctx: &Ctx<'_>,
    candidates: &[usize],
    found: &mut Vec<usize>,
) -> Result<()> {
    let Some(old) = node.scalar_string() else {
        return Ok(());
    };
    let Some(referral) = ctx.select(&old, candidates.to_vec(), false)? else {
        return Ok(());
    };
    found.push(referral.index);
    if referral.name != old {
        *node = Value::String(referral.name);
    }
    Ok(())
}

fn set_mapping(
    node: &mut Value,
    ctx: &Ctx<'_>,
    candidates: &[usize],
    found: &mut Vec<usize>,
) -> Result<()> {
    let Some(map) = node.as_map_mut() else {
        return Ok(());
    };
    let Some(old) = map.get("name").and_then(Value::scalar_string) else {
        return Err(Error::msg("path config error; no 'name' field in node"));
    };
    let pool: Vec<usize> = match map.get("namespace").and_then(Value::scalar_string) {
        None => candidates.to_vec(),
        Some(ns) => {
            let by_org: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&i| {
                    let id = ctx.resources[i].org_id();
                    !id.gvk.is_cluster_scoped() && id.effective_namespace() == ns
                })
                .collect();
            if !by_org.is_empty() {
                by_org
            } else {
                candidates
                    .iter()
                    .copied()
                    .filter(|&i| {
                        let id = ctx.resources[i].cur_id();
                        !id.gvk.is_cluster_scoped() && id.effective_namespace() == ns
                    })
                    .collect()
            }
        }
    };
    let Some(referral) = ctx.select(&old, pool, true)? else {
        return Ok(());
    };
    found.push(referral.index);
    if referral.name == old && referral.namespace.is_empty() {
        return Ok(());
    }
    map.insert("name".into(), Value::String(referral.name));
    if !referral.namespace.is_empty() {
        map.insert("namespace".into(), Value::String(referral.namespace));
    }
    Ok(())
}
