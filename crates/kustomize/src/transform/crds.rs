//! `crds:`: field specs declared in OpenAPI definitions of custom types (kustomize's
//! `x-kubernetes-object-ref-*`, `x-kubernetes-annotation`, `x-kubernetes-label-selector`,
//! `x-kubernetes-identity` extensions).

use super::config::{NameBackRef, TransformerConfig, merge_fs};
use crate::error::{Error, Result};
use crate::kustomization::FieldSpec;
use crate::loader::Loader;
use crate::yaml::{Value, parse_one};

/// Reads an OpenAPI definitions file (JSON or YAML: type name → `{Schema: …}`) and returns the
/// field specs it declares.
pub fn config_from_crd_file(loader: &Loader, path: &str) -> Result<TransformerConfig> {
    let text = loader.read_string(path)?;
    let doc = parse_one(&text).map_err(|source| Error::Yaml {
        file: path.to_string(),
        source,
    })?;
    let Some(defs) = doc.as_map() else {
        return Err(Error::Invalid {
            what: "CRD definitions".into(),
            file: path.into(),
            message: "unable to parse open API definition: expected a mapping of type names".into(),
        });
    };
    let mut tc = TransformerConfig::default();
    for (name, api) in defs {
        let props = properties(api);
        let Some(props) = props else { continue };
        if !(props.contains_key("kind")
            && props.contains_key("apiVersion")
            && props.contains_key("metadata"))
        {
            continue;
        }
        let kind = name.rsplit('.').next().unwrap_or(name).to_string();
        load(&mut tc, &kind, doc.as_map(), name, &mut Vec::new(), 0);
    }
    Ok(tc)
}

fn properties(api: &Value) -> Option<&crate::yaml::Map> {
    api.get_path(&["Schema", "properties"])
        .and_then(Value::as_map)
}

fn fs(kind: &str, path: &[String]) -> FieldSpec {
    FieldSpec {
        kind: kind.to_string(),
        path: path.join("/"),
        ..FieldSpec::default()
    }
}

fn load(
    tc: &mut TransformerConfig,
    kind: &str,
    defs: Option<&crate::yaml::Map>,
    type_name: &str,
    path: &mut Vec<String>,
    depth: usize,
) {
    if depth > 32 {
        return;
    }
    let Some(api) = defs.and_then(|d| d.get(type_name)) else {
        return;
    };
    let Some(props) = properties(api) else { return };
    for (prop, property) in props {
        path.push(prop.clone());
        if property.get("x-kubernetes-annotation").is_some() {
            merge_fs(&mut tc.common_annotations, &[fs(kind, path)]);
        }
        if property.get("x-kubernetes-label-selector").is_some() {
            merge_fs(&mut tc.common_labels, &[fs(kind, path)]);
        }
        if property.get("x-kubernetes-identity").is_some() {
            merge_fs(&mut tc.name_prefix, &[fs(kind, path)]);
        }
        if let (Some(version), Some(ref_kind)) = (
            property.str_at(&["x-kubernetes-object-ref-api-version"]),
            property.str_at(&["x-kubernetes-object-ref-kind"]),
        ) {
            let key = property
                .str_at(&["x-kubernetes-object-ref-name-key"])
                .unwrap_or("name");
            let mut p = path.clone();
            p.push(key.to_string());
            tc.merge(&TransformerConfig {
                name_reference: vec![NameBackRef {
                    group: String::new(),
                    version: version.to_string(),
                    kind: ref_kind.to_string(),
                    field_specs: vec![fs(kind, &p)],
                }],
                ..TransformerConfig::default()
            });
        }
        if let Some(reference) = property.str_at(&["$ref"]) {
            load(tc, kind, defs, reference, path, depth + 1);
        }
        path.pop();
    }
}
