//! Transformer configuration: which fields each builtin transformer touches in which kinds
//! (kustomize's `TransformerConfig`), from the builtin defaults plus `configurations:` files and
//! `crds:`.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::kustomization::FieldSpec;
use crate::resid::Gvk;
use crate::yaml::parse_one;

/// A kind whose name other objects refer to, and where they do.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NameBackRef {
    /// Group of the referred kind.
    #[serde(default)]
    pub group: String,
    /// Version of the referred kind.
    #[serde(default)]
    pub version: String,
    /// The referred kind.
    #[serde(default)]
    pub kind: String,
    /// Fields (in other kinds) that hold its name.
    #[serde(default)]
    pub field_specs: Vec<FieldSpec>,
}

impl NameBackRef {
    /// The referred kind as a selector.
    pub fn gvk(&self) -> Gvk {
        Gvk {
            group: self.group.clone(),
            version: self.version.clone(),
            kind: self.kind.clone(),
        }
    }
}

/// Field specs per transformer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct TransformerConfig {
    #[serde(default)]
    pub name_prefix: Vec<FieldSpec>,
    #[serde(default)]
    pub name_suffix: Vec<FieldSpec>,
    #[serde(default)]
    pub name_space: Vec<FieldSpec>,
    #[serde(default)]
    pub namespace: Vec<FieldSpec>,
    #[serde(default)]
    pub common_labels: Vec<FieldSpec>,
    #[serde(default)]
    pub template_labels: Vec<FieldSpec>,
    #[serde(default)]
    pub labels: Vec<FieldSpec>,
    #[serde(default)]
    pub common_annotations: Vec<FieldSpec>,
    #[serde(default)]
    pub name_reference: Vec<NameBackRef>,
    #[serde(default)]
    pub var_reference: Vec<FieldSpec>,
    #[serde(default)]
    pub images: Vec<FieldSpec>,
    #[serde(default)]
    pub replicas: Vec<FieldSpec>,
}

static DEFAULT: OnceLock<std::result::Result<TransformerConfig, String>> = OnceLock::new();

impl TransformerConfig {
    /// kustomize's builtin defaults.
    pub fn builtin() -> Result<TransformerConfig> {
        DEFAULT
            .get_or_init(|| {
                TransformerConfig::parse(include_str!("default_config.yaml"), "builtin")
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(Error::msg)
    }

    /// Parses a `configurations:` file.
    pub fn parse(text: &str, file: &str) -> Result<TransformerConfig> {
        let value = parse_one(text).map_err(|source| Error::Yaml {
            file: file.into(),
            source,
        })?;
        if value.is_null() {
            return Ok(TransformerConfig::default());
        }
        let mut tc: TransformerConfig =
            serde_json::from_value(value.to_json()).map_err(|e| Error::Invalid {
                what: "transformer configuration".into(),
                file: file.into(),
                message: e.to_string(),
            })?;
        let ns = std::mem::take(&mut tc.name_space);
        tc.namespace.extend(ns);
        for list in [
            &mut tc.name_prefix,
            &mut tc.name_suffix,
            &mut tc.namespace,
            &mut tc.common_labels,
            &mut tc.template_labels,
            &mut tc.labels,
            &mut tc.common_annotations,
            &mut tc.var_reference,
            &mut tc.images,
            &mut tc.replicas,
        ] {
            sort_fs(list);
        }
        for b in &mut tc.name_reference {
            sort_fs(&mut b.field_specs);
        }
        tc.name_reference
            .sort_by(|a, b| gvk_cmp(&a.gvk(), &b.gvk()));
        Ok(tc)
    }

    /// Adds everything in `other` that is not already here.
    pub fn merge(&mut self, other: &TransformerConfig) {
        merge_fs(&mut self.name_prefix, &other.name_prefix);
        merge_fs(&mut self.name_suffix, &other.name_suffix);
        merge_fs(&mut self.namespace, &other.namespace);
        merge_fs(&mut self.namespace, &other.name_space);
        merge_fs(&mut self.common_labels, &other.common_labels);
        merge_fs(&mut self.template_labels, &other.template_labels);
        merge_fs(&mut self.labels, &other.labels);
        merge_fs(&mut self.common_annotations, &other.common_annotations);
        merge_fs(&mut self.var_reference, &other.var_reference);
        merge_fs(&mut self.images, &other.images);
        merge_fs(&mut self.replicas, &other.replicas);
        for backref in &other.name_reference {
            match self
                .name_reference
                .iter_mut()
                .find(|b| b.gvk() == backref.gvk())
            {
                Some(existing) => merge_fs(&mut existing.field_specs, &backref.field_specs),
                None => self.name_reference.push(backref.clone()),
            }
        }
        self.name_reference
            .sort_by(|a, b| gvk_cmp(&a.gvk(), &b.gvk()));
    }
}

/// Appends field specs not already present, with kustomize's notion of "present": an existing
/// spec with the same path that the new spec's group/version/kind would select (so a kind-specific
/// spec merged first hides a later generic one), then sorts as kustomize does.
pub fn merge_fs(into: &mut Vec<FieldSpec>, from: &[FieldSpec]) {
    for fs in from {
        let present = into.iter().any(|x| {
            x.path == fs.path
                && (fs.group.is_empty() || fs.group == x.group)
                && (fs.version.is_empty() || fs.version == x.version)
                && (fs.kind.is_empty() || fs.kind == x.kind)
        });
        if !present {
            into.push(fs.clone());
        }
    }
    sort_fs(into);
}

fn fs_gvk(fs: &FieldSpec) -> Gvk {
    Gvk {
        group: fs.group.clone(),
        version: fs.version.clone(),
        kind: fs.kind.clone(),
    }
}

/// Sorts field specs by kind order (kustomize's `Gvk.IsLessThan`); stable.
pub fn sort_fs(list: &mut [FieldSpec]) {
    list.sort_by(|a, b| gvk_cmp(&fs_gvk(a), &fs_gvk(b)));
}

/// kustomize's `Gvk.IsLessThan` as an ordering.
pub fn gvk_cmp(a: &Gvk, b: &Gvk) -> std::cmp::Ordering {
    let (ra, rb) = (
        super::sort::kind_rank(&a.kind),
        super::sort::kind_rank(&b.kind),
    );
    if ra != rb {
        return ra.cmp(&rb);
    }
    stable(a).cmp(&stable(b))
}

fn stable(g: &Gvk) -> String {
    let or = |s: &str, d: &str| {
        if s.is_empty() {
            d.to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "{}_{}_{}",
        or(&g.group, "~G"),
        or(&g.version, "~V"),
        or(&g.kind, "~K")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_defaults_load() {
        let tc = TransformerConfig::builtin().unwrap();
        assert!(tc.name_prefix.iter().any(|f| f.path == "metadata/name"));
        assert!(tc.name_reference.iter().any(|b| b.kind == "ConfigMap"));
        assert!(tc.common_labels.iter().any(|f| f.kind == "Service"));
        assert!(!tc.namespace.is_empty());
    }
}
