//! The `Kustomization` / `Component` file and the builtin plugin configurations it turns into.

use indexmap::IndexMap;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::yaml::Value;

/// File names a kustomization directory may use, in kustomize's order of preference.
pub const KUSTOMIZATION_FILE_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// `apiVersion` of Kustomization files.
pub const KUSTOMIZATION_API_VERSION: &str = "kustomize.config.k8s.io/v1beta1";
/// `apiVersion` of Component files.
pub const COMPONENT_API_VERSION: &str = "kustomize.config.k8s.io/v1alpha1";

/// Every top-level field name of a kustomization file.
const FIELDS: [&str; 36] = [
    "apiVersion",
    "kind",
    "metadata",
    "openapi",
    "namePrefix",
    "nameSuffix",
    "namespace",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "patchesStrategicMerge",
    "patchesJson6902",
    "patches",
    "images",
    "imageTags",
    "replacements",
    "replicas",
    "vars",
    "sortOptions",
    "resources",
    "crds",
    "components",
    "bases",
    "configMapGenerator",
    "secretGenerator",
    "helmCharts",
    "helmGlobals",
    "helmChartInflationGenerator",
    "generatorOptions",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "buildMetadata",
    "openapi",
    "namespace",
];

/// A string-to-string map that keeps file order and accepts scalar values of any type.
pub type StringMap = IndexMap<String, String>;

/// A kustomization file (Kustomization or Component).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Kustomization {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub metadata: Option<serde_json::Value>,
    #[serde(rename = "openapi")]
    pub open_api: Option<IndexMap<String, String>>,
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    pub namespace: Option<String>,
    #[serde(default, deserialize_with = "string_map")]
    pub common_labels: StringMap,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default, deserialize_with = "string_map")]
    pub common_annotations: StringMap,
    #[serde(default)]
    pub patches_strategic_merge: Vec<String>,
    #[serde(default, rename = "patchesJson6902")]
    pub patches_json6902: Vec<Patch>,
    #[serde(default)]
    pub patches: Vec<Patch>,
    #[serde(default)]
    pub images: Vec<Image>,
    #[serde(default)]
    pub image_tags: Vec<Image>,
    #[serde(default)]
    pub replacements: Vec<ReplacementField>,
    #[serde(default)]
    pub replicas: Vec<Replica>,
    #[serde(default)]
    pub vars: Vec<Var>,
    pub sort_options: Option<SortOptions>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub crds: Vec<String>,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub bases: Vec<String>,
    #[serde(default)]
    pub config_map_generator: Vec<GeneratorArgs>,
    #[serde(default)]
    pub secret_generator: Vec<GeneratorArgs>,
    #[serde(default)]
    pub helm_charts: Vec<serde_json::Value>,
    pub helm_globals: Option<serde_json::Value>,
    #[serde(default)]
    pub helm_chart_inflation_generator: Vec<serde_json::Value>,
    pub generator_options: Option<GeneratorOptions>,
    #[serde(default)]
    pub configurations: Vec<String>,
    #[serde(default)]
    pub generators: Vec<String>,
    #[serde(default)]
    pub transformers: Vec<String>,
    #[serde(default)]
    pub validators: Vec<String>,
    #[serde(default)]
    pub build_metadata: Vec<String>,
}

/// A `labels` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Label {
    #[serde(default, deserialize_with = "string_map")]
    pub pairs: StringMap,
    #[serde(default)]
    pub include_selectors: bool,
    #[serde(default)]
    pub include_templates: bool,
    #[serde(default)]
    pub fields: Vec<FieldSpec>,
}

/// Where a transformer writes: a path in objects of some kinds.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct FieldSpec {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub create: bool,
}

/// A patch (`patches` or `patchesJson6902` entry).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Patch {
    pub path: Option<String>,
    pub patch: Option<String>,
    pub target: Option<Selector>,
    pub options: Option<PatchOptions>,
}

/// Options of a patch.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct PatchOptions {
    #[serde(default)]
    pub allow_name_change: bool,
    #[serde(default)]
    pub allow_kind_change: bool,
}

/// Selects objects (patch targets, replacement sources and targets).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Selector {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub label_selector: String,
    #[serde(default)]
    pub annotation_selector: String,
}

/// An `images` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Image {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub new_name: String,
    #[serde(default)]
    pub new_tag: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub tag_suffix: String,
}

/// A `replicas` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Replica {
    pub name: String,
    #[serde(default)]
    pub count: i64,
}

/// A `replacements` entry: a file path or an inline replacement.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
#[allow(missing_docs)]
pub enum ReplacementField {
    Path { path: String },
    Inline(serde_json::Value),
}

/// A `vars` entry.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Var {
    pub name: String,
    #[serde(default)]
    pub objref: ObjRef,
    #[serde(default)]
    pub fieldref: FieldRef,
}

/// The object a var reads.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct ObjRef {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub api_version: String,
}

/// The field a var reads.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct FieldRef {
    #[serde(default, alias = "fieldpath")]
    pub field_path: String,
}

/// `sortOptions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct SortOptions {
    #[serde(default)]
    pub order: String,
    pub legacy_sort_options: Option<LegacySortOptions>,
}

/// `sortOptions.legacySortOptions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct LegacySortOptions {
    #[serde(default)]
    pub order_first: Vec<String>,
    #[serde(default)]
    pub order_last: Vec<String>,
}

/// A `configMapGenerator` / `secretGenerator` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct GeneratorArgs {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub behavior: String,
    #[serde(default)]
    pub literals: Vec<String>,
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub envs: Vec<String>,
    #[serde(default)]
    pub env: String,
    /// Secret type (`Opaque` by default).
    #[serde(default, rename = "type")]
    pub type_: String,
    pub options: Option<GeneratorOptions>,
}

/// `generatorOptions` (global) or a generator's `options`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct GeneratorOptions {
    #[serde(default, deserialize_with = "string_map")]
    pub labels: StringMap,
    #[serde(default, deserialize_with = "string_map")]
    pub annotations: StringMap,
    pub disable_name_suffix_hash: Option<bool>,
    #[serde(default)]
    pub immutable: bool,
}

/// Accepts a map whose values are any scalars (kustomize reads labels like `version: 1`).
fn string_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<StringMap, D::Error> {
    let raw: Option<IndexMap<String, serde_json::Value>> = Option::deserialize(d)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let s = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            (k, s)
        })
        .collect())
}

impl Kustomization {
    /// Decodes a kustomization from its YAML value; `file` is used in errors.
    pub fn from_value(v: &Value, file: &str) -> Result<Kustomization> {
        if v.is_null() {
            return Ok(Kustomization::default());
        }
        let mut json = v.to_json();
        if let serde_json::Value::Object(map) = &mut json {
            // Go's JSON decoding matches field names case-insensitively; so does kustomize.
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if let Some(canonical) = FIELDS.iter().find(|f| f.eq_ignore_ascii_case(&key))
                    && *canonical != key
                    && let Some(v) = map.remove(&key)
                {
                    map.insert((*canonical).to_string(), v);
                }
            }
        }
        serde_json::from_value(json).map_err(|e| Error::Invalid {
            what: "Kustomization".into(),
            file: file.into(),
            message: e.to_string(),
        })
    }

    /// Whether this is a Component.
    pub fn is_component(&self) -> bool {
        self.kind.as_deref() == Some("Component")
    }
}
