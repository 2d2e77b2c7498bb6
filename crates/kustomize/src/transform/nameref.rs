//! Fixing references to renamed objects (kustomize's nameReference transformer).
//!
//! For every kind that others refer to by name (the `nameReference` configuration), every
//! referring field is checked: when an object of that kind had the referred name earlier in the
//! build (prefix, suffix, hash, namespace changes, patches), the field gets its current name —
//! and, for `{name, namespace}` mappings, its namespace. Ambiguity is resolved as kustomize does:
//! same namespace, then same prefixes/suffixes, else an error naming the candidates.

use super::config::TransformerConfig;
use super::fieldspec;
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

/// What the sieve needs to know about a possible referral (names never change during this
/// transformer, so this is computed once per build).
struct Cand {
    cur: ResId,
    org: ResId,
    prev: Vec<ResId>,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
    name: String,
    namespace: String,
    kind: String,
}

impl Cand {
    fn of(r: &Resource) -> Cand {
        Cand {
            cur: r.cur_id(),
            org: r.org_id(),
            prev: r.prev_ids(),
            prefixes: r.prefixes.clone(),
            suffixes: r.suffixes.clone(),
            name: r.name().to_string(),
            namespace: r.namespace().to_string(),
            kind: r.kind().to_string(),
        }
    }
}

fn affixes_equal(r: &Cand, o: &Cand, allow_empty: bool) -> bool {
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

/// Indices of resources the referrer at `index` could refer to.
fn could_be_referenced(cands: &[Cand], referrer: &Resource, index: usize) -> Result<Vec<usize>> {
    let rid = &cands[index].cur;
    if rid.gvk.is_cluster_scoped() {
        return Ok((0..cands.len()).collect());
    }
    let rb = role_binding_namespaces(referrer)?;
    Ok(cands
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            t.cur.gvk.is_cluster_scoped()
                || t.cur.effective_namespace() == rid.effective_namespace()
                || rb.contains(&t.namespace)
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
    cands: &'a [Cand],
    referrer: &'a Cand,
    role_ref: Option<Gvk>,
    target: Gvk,
}

fn role_ref_gvk(path: &str, referrer: &Resource) -> Option<Gvk> {
    if !path.ends_with("roleRef/name") {
        return None;
    }
    let role_ref = referrer.obj.get("roleRef")?;
    let group = role_ref.str_at(&["apiGroup"])?;
    let kind = role_ref.str_at(&["kind"])?;
    Some(Gvk {
        group: group.to_string(),
        version: String::new(),
        kind: kind.to_string(),
    })
}

impl Ctx<'_> {
    fn select(
        &self,
        old_name: &str,
        candidates: Vec<usize>,
        with_namespace: bool,
    ) -> Result<Option<Referral>> {
        let res = self.cands;
        let referrer_id = &self.referrer.cur;
        let mut c: Vec<usize> = candidates
            .into_iter()
            .filter(|&i| res[i].prev.iter().any(|id| id.name == old_name))
            .filter(|&i| {
                res[i]
                    .prev
                    .iter()
                    .any(|id| gvk_selected(&id.gvk, &self.target))
            })
            .filter(|&i| {
                self.role_ref
                    .as_ref()
                    .is_none_or(|g| res[i].prev.iter().any(|id| gvk_selected(&id.gvk, g)))
            })
            .filter(|&i| {
                if referrer_id.gvk.is_cluster_scoped() {
                    return true;
                }
                let id = &res[i].cur;
                id.gvk.is_cluster_scoped()
                    || res[i].kind == "ServiceAccount"
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
                    res[i].name == first.name
                        && (!with_namespace || res[i].namespace == first.namespace)
                });
                if identical {
                    return Ok(Some(self.referral(c[0])));
                }
                let ids: Vec<String> = c.iter().map(|&i| res[i].cur.to_string()).collect();
                Err(Error::msg(format!(
                    "found multiple possible referrals: {}",
                    ids.join(", ")
                )))
            }
        }
    }

    fn referral(&self, index: usize) -> Referral {
        let r = &self.cands[index];
        Referral {
            name: r.name.clone(),
            namespace: r.namespace.clone(),
            index,
        }
    }
}

/// Updates every field that refers to an object by name after prefixes, suffixes, hashes and
/// namespaces changed names.
pub fn fix_back_references(m: &mut ResMap, config: &TransformerConfig) -> Result<()> {
    let cands: Vec<Cand> = m.resources().iter().map(Cand::of).collect();
    // (referrer index, field spec, referred kind)
    let mut work: Vec<(usize, &FieldSpec, Gvk)> = Vec::new();
    for backref in &config.name_reference {
        let target = backref.gvk();
        for spec in &backref.field_specs {
            let sel = Gvk {
                group: spec.group.clone(),
                version: spec.version.clone(),
                kind: spec.kind.clone(),
            };
            for (i, c) in cands.iter().enumerate() {
                if gvk_selected(&c.org.gvk, &sel) {
                    work.push((i, spec, target.clone()));
                }
            }
        }
    }
    // Per referrer in resource order, keeping the configuration order per referrer.
    work.sort_by_key(|(i, _, _)| *i);
    let mut ref_by: Vec<(usize, ResId)> = Vec::new();
    let mut candidates: Option<(usize, Vec<usize>)> = None;
    for (i, spec, target) in work {
        if candidates.as_ref().is_none_or(|(at, _)| *at != i) {
            candidates = Some((i, could_be_referenced(&cands, &m.resources()[i], i)?));
        }
        let pool = candidates
            .as_ref()
            .map(|(_, c)| c.as_slice())
            .unwrap_or(&[]);
        let referrer = &cands[i];
        let ctx = Ctx {
            cands: &cands,
            referrer,
            role_ref: role_ref_gvk(&spec.path, &m.resources()[i]),
            target,
        };
        let spec_for_referrer = FieldSpec {
            group: String::new(),
            version: String::new(),
            kind: String::new(),
            ..spec.clone()
        };
        let gvk = referrer.cur.gvk.clone();
        let mut found: Vec<usize> = Vec::new();
        let obj = &mut m.resources_mut()[i].obj;
        fieldspec::apply(obj, &gvk, &spec_for_referrer, None, &mut |node| {
            set_node(node, &ctx, pool, &mut found)
        })
        .map_err(|e| {
            e.context(format!(
                "updating name reference in '{}' field of '{}'",
                spec.path, referrer.cur
            ))
        })?;
        for idx in found {
            ref_by.push((idx, referrer.cur.clone()));
        }
    }
    for (idx, id) in ref_by {
        if let Some(r) = m.resources_mut().get_mut(idx)
            && !r.ref_by.contains(&id)
        {
            r.ref_by.push(id);
        }
    }
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
                    let id = &ctx.cands[i].org;
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
                        let id = &ctx.cands[i].cur;
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
