//! The field-spec driven builtin transformers: namespace, name prefix/suffix, labels,
//! annotations, images, replicas.

use regex::Regex;

use super::fieldspec::{self, CreateKind};
use crate::error::{Error, Result};
use crate::kustomization::{FieldSpec, Image, Replica, StringMap};
use crate::resid::Gvk;
use crate::resmap::ResMap;
use crate::resource::Resource;
use crate::yaml::{Map, Value};

fn apply_specs(
    r: &mut Resource,
    specs: &[FieldSpec],
    create: Option<CreateKind>,
    set: &mut dyn FnMut(&mut Value) -> Result<()>,
) -> Result<()> {
    let gvk = r.gvk();
    for fs in specs {
        fieldspec::apply(&mut r.obj, &gvk, fs, create, set)
            .map_err(|e| e.context(format!("transforming {}", r.cur_id())))?;
    }
    Ok(())
}

fn set_scalar(node: &mut Value, s: &str) {
    *node = Value::String(s.to_string());
}

/// `namespace:` — sets metadata.namespace on namespaced objects and the configured fields.
pub fn namespace(
    m: &mut ResMap,
    ns: &str,
    specs: &[FieldSpec],
    unset_only: bool,
    role_binding_subjects: &str,
) -> Result<()> {
    if ns.is_empty() {
        return Ok(());
    }
    let count = m.len();
    for i in 0..count {
        let r = &mut m.resources_mut()[i];
        if r.obj.as_map().is_none_or(|m| m.is_empty()) {
            continue;
        }
        r.store_previous_id();
        let gvk = r.gvk();
        let api_version = r.api_version().to_string();
        let setter = |node: &mut Value| -> Result<()> {
            if unset_only && node.as_str().is_some_and(|s| !s.is_empty()) {
                return Ok(());
            }
            if let Value::Seq(_) | Value::Map(_) = node {
                return Err(Error::msg("namespace field specs must target scalar nodes"));
            }
            set_scalar(node, ns);
            Ok(())
        };
        if !gvk.is_cluster_scoped() {
            let meta_fs = FieldSpec {
                path: "metadata/namespace".into(),
                create: true,
                ..FieldSpec::default()
            };
            fieldspec::apply(
                &mut r.obj,
                &gvk,
                &meta_fs,
                Some(CreateKind::Scalar),
                &mut setter.clone(),
            )?;
        }
        let is_binding = gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding";
        let filtered: Vec<FieldSpec> = specs
            .iter()
            .filter(|fs| fs.path != "metadata/namespace")
            .filter(|fs| api_version == "v1" || fs.path != "metadata/name")
            .filter(|fs| {
                !(is_binding
                    && (fs.kind == "RoleBinding" || fs.kind == "ClusterRoleBinding")
                    && fs.path == "subjects/namespace")
            })
            .cloned()
            .collect();
        if is_binding {
            let mode = role_binding_subjects;
            if !matches!(mode, "" | "defaultOnly" | "none" | "allServiceAccounts") {
                return Err(Error::msg(format!(
                    "invalid value \"{mode}\" for setRoleBindingSubjects: must be one of \"defaultOnly\", \"none\" or \"allServiceAccounts\""
                )));
            }
            if mode != "none"
                && let Some(subjects) = r.obj.get_mut("subjects").and_then(Value::as_seq_mut)
            {
                for s in subjects.iter_mut() {
                    let hit = if mode == "allServiceAccounts" {
                        s.str_at(&["kind"]) == Some("ServiceAccount")
                    } else {
                        s.str_at(&["name"]) == Some("default")
                    };
                    if hit && let Some(map) = s.as_map_mut() {
                        let keep = unset_only
                            && map
                                .get("namespace")
                                .and_then(Value::scalar_string)
                                .is_some_and(|v| !v.is_empty());
                        if !keep {
                            map.insert("namespace".into(), Value::String(ns.to_string()));
                        }
                    }
                }
            }
        }
        for fs in &filtered {
            fieldspec::apply(
                &mut r.obj,
                &gvk,
                fs,
                Some(CreateKind::Scalar),
                &mut setter.clone(),
            )
            .map_err(|e| e.context("namespace transformation failed"))?;
        }
        let id = m.resources()[i].cur_id();
        if m.find_by_current_id(&id).len() != 1 {
            return Err(Error::msg(format!(
                "namespace transformation produces ID conflict: {id}"
            )));
        }
    }
    Ok(())
}

fn skip_for_prefix(r: &Resource) -> bool {
    let id = r.org_id();
    id.gvk.kind == "CustomResourceDefinition"
        || id.gvk.kind == "Namespace"
        || (id.gvk.group == "apiregistration.k8s.io" && id.gvk.kind == "APIService")
}

fn spec_selects(fs: &FieldSpec, gvk: &Gvk) -> bool {
    fieldspec::matches_gvk(fs, gvk)
}

/// `namePrefix:` (and the PrefixTransformer plugin).
pub fn prefix(m: &mut ResMap, prefix: &str, specs: &[FieldSpec]) -> Result<()> {
    affix(m, prefix, specs, true)
}

/// `nameSuffix:` (and the SuffixTransformer plugin).
pub fn suffix(m: &mut ResMap, suffix: &str, specs: &[FieldSpec]) -> Result<()> {
    affix(m, suffix, specs, false)
}

fn affix(m: &mut ResMap, affix: &str, specs: &[FieldSpec], is_prefix: bool) -> Result<()> {
    for r in m.resources_mut() {
        if skip_for_prefix(r) {
            continue;
        }
        let org = r.org_id();
        for fs in specs {
            if !spec_selects(fs, &org.gvk) {
                continue;
            }
            if fs.path == "metadata/name" && !affix.is_empty() {
                if is_prefix {
                    r.prefixes.push(affix.to_string());
                } else {
                    r.suffixes.push(affix.to_string());
                }
                r.store_previous_id();
            }
            let mut set = |node: &mut Value| -> Result<()> {
                let cur = node.scalar_string().unwrap_or_default();
                let new = if is_prefix {
                    format!("{affix}{cur}")
                } else {
                    format!("{cur}{affix}")
                };
                set_scalar(node, &new);
                Ok(())
            };
            apply_specs(
                r,
                std::slice::from_ref(fs),
                Some(CreateKind::Scalar),
                &mut set,
            )?;
        }
    }
    Ok(())
}

fn set_string_entries(node: &mut Value, entries: &StringMap, what: &str) -> Result<()> {
    if node.is_null() {
        *node = Value::Map(Map::new());
    }
    let Some(map) = node.as_map_mut() else {
        return Err(Error::msg(format!(
            "{what} must be a mapping, found a {}",
            node.type_name()
        )));
    };
    for (k, v) in entries {
        map.insert(k.clone(), Value::String(v.clone()));
    }
    Ok(())
}

/// `labels:` / `commonLabels:` (and the LabelTransformer plugin).
pub fn labels(m: &mut ResMap, labels: &StringMap, specs: &[FieldSpec]) -> Result<()> {
    if labels.is_empty() {
        return Ok(());
    }
    for r in m.resources_mut() {
        apply_specs(r, specs, Some(CreateKind::Map), &mut |node| {
            set_string_entries(node, labels, "labels")
        })?;
    }
    Ok(())
}

/// `commonAnnotations:` (and the AnnotationsTransformer plugin).
pub fn annotations(m: &mut ResMap, annotations: &StringMap, specs: &[FieldSpec]) -> Result<()> {
    if annotations.is_empty() {
        return Ok(());
    }
    for r in m.resources_mut() {
        apply_specs(r, specs, Some(CreateKind::Map), &mut |node| {
            set_string_entries(node, annotations, "annotations")
        })?;
    }
    Ok(())
}

/// Splits an image reference into name, tag and digest as kustomize does.
pub fn split_image(image: &str) -> (String, String, String) {
    let (search, offset) = match image.find('/') {
        Some(i) if i > 0 => (&image[i..], i),
        _ => (image, 0),
    };
    let id = search.find('@');
    let ic = search.find(':');
    match (ic, id) {
        (None, None) => (image.to_string(), String::new(), String::new()),
        (ic, Some(id)) if ic.is_none_or(|c| id < c) => {
            let id = id + offset;
            (
                image[..id].to_string(),
                String::new(),
                image[id + 1..].to_string(),
            )
        }
        (Some(ic), Some(id)) => {
            let (ic, id) = (ic + offset, id + offset);
            (
                image[..ic].to_string(),
                image[ic + 1..id].to_string(),
                image[id + 1..].to_string(),
            )
        }
        (Some(ic), None) => {
            let ic = ic + offset;
            (
                image[..ic].to_string(),
                image[ic + 1..].to_string(),
                String::new(),
            )
        }
        (None, Some(_)) => (image.to_string(), String::new(), String::new()),
    }
}

fn update_image(node: &mut Value, img: &Image, pattern: &Regex) -> Result<()> {
    let Some(value) = node.as_str() else {
        if node.is_null() {
            return Ok(());
        }
        return Err(Error::msg(format!(
            "image field must be a string, found a {}",
            node.type_name()
        )));
    };
    if !pattern.is_match(value) {
        return Ok(());
    }
    let (mut name, mut tag, mut digest) = split_image(value);
    if !img.new_name.is_empty() {
        name = img.new_name.clone();
    }
    if !img.new_tag.is_empty() && !img.digest.is_empty() {
        tag = img.new_tag.clone();
        digest = img.digest.clone();
    } else if !img.new_tag.is_empty() {
        tag = img.new_tag.clone();
        digest.clear();
    } else if !img.digest.is_empty() {
        tag.clear();
        digest = img.digest.clone();
    } else if !img.tag_suffix.is_empty() {
        tag.push_str(&img.tag_suffix);
        digest.clear();
    }
    if !tag.is_empty() {
        name = format!("{name}:{tag}");
    }
    if !digest.is_empty() {
        name = format!("{name}@{digest}");
    }
    *node = Value::String(name);
    Ok(())
}

fn legacy_image_walk(node: &mut Value, img: &Image, pattern: &Regex) -> Result<()> {
    match node {
        Value::Map(map) => {
            for (key, value) in map.iter_mut() {
                legacy_image_walk(value, img, pattern)?;
                if (key == "containers" || key == "initContainers")
                    && let Value::Seq(items) = value
                {
                    for item in items.iter_mut() {
                        if let Some(image) = item.get_mut("image") {
                            update_image(image, img, pattern)?;
                        }
                    }
                }
            }
            Ok(())
        }
        Value::Seq(items) => {
            for item in items.iter_mut() {
                legacy_image_walk(item, img, pattern)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `images:` (and the ImageTagTransformer plugin).
pub fn images(m: &mut ResMap, img: &Image, specs: &[FieldSpec]) -> Result<()> {
    let pattern = Regex::new(&format!(
        "^{}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$",
        img.name
    ))
    .map_err(|e| Error::msg(format!("invalid image name '{}': {e}", img.name)))?;
    for r in m.resources_mut() {
        if r.kind() == "CustomResourceDefinition" {
            continue;
        }
        legacy_image_walk(&mut r.obj, img, &pattern)?;
        // kustomize's image filter never creates fields (no create kind).
        apply_specs(r, specs, None, &mut |node| {
            update_image(node, img, &pattern)
        })?;
    }
    Ok(())
}

/// `replicas:` (and the ReplicaCountTransformer plugin).
pub fn replicas(m: &mut ResMap, replica: &Replica, specs: &[FieldSpec]) -> Result<()> {
    let mut found = false;
    for fs in specs {
        for r in m.resources_mut() {
            let selected = r
                .all_ids()
                .iter()
                .any(|id| fieldspec::matches_gvk(fs, &id.gvk) && id.name == replica.name);
            if !selected {
                continue;
            }
            found = true;
            apply_specs(
                r,
                std::slice::from_ref(fs),
                Some(CreateKind::Scalar),
                &mut |node| {
                    *node = Value::Int(replica.count);
                    Ok(())
                },
            )?;
        }
    }
    if !found {
        let gvks: Vec<String> = specs
            .iter()
            .map(|fs| {
                Gvk {
                    group: fs.group.clone(),
                    version: fs.version.clone(),
                    kind: fs.kind.clone(),
                }
                .to_string()
            })
            .collect();
        return Err(Error::msg(format!(
            "resource with name {} does not match a config with the following GVK [{}]",
            replica.name,
            gvks.join(" ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_images_like_kustomize() {
        assert_eq!(
            split_image("nginx"),
            ("nginx".into(), String::new(), String::new())
        );
        assert_eq!(
            split_image("nginx:1.2"),
            ("nginx".into(), "1.2".into(), String::new())
        );
        assert_eq!(
            split_image("localhost:5000/a/b:v1@sha256:abc"),
            (
                "localhost:5000/a/b".into(),
                "v1".into(),
                "sha256:abc".into()
            )
        );
        assert_eq!(
            split_image("a@sha256:x"),
            ("a".into(), String::new(), "sha256:x".into())
        );
    }
}
