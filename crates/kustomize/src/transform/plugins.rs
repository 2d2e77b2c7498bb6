//! Builtin plugins configured as objects in a kustomization's `generators:` / `transformers:`
//! lists (kustomize's `api/internal/builtins`, loaded as `kusttarget.go`'s external generators
//! and transformers with plugins restricted to builtins, which is what `kustomize build` and
//! `kubectl kustomize` do without `--enable-alpha-plugins`).
//!
//! A configuration object is a builtin plugin when its group is empty and its version is
//! `builtin` (`apiVersion: builtin`); anything else is an exec, Go or KRM-function plugin, which
//! this engine never runs (kustomize: "external plugins disabled"). A builtin kind kustomize does
//! not register (`SortOrderTransformer` among them) is refused with kustomize's "unable to load
//! builtin" message, a generator listed under `transformers:` (or the reverse) with its "not a
//! transformer" message.
//!
//! Each configuration is decoded the way its kustomize plugin decodes it:
//!
//! - the field specs given in the configuration are the only ones used — kustomize's defaults
//!   (the transformer configuration behind `namespace:`, `commonLabels:` …) never apply to a
//!   plugin. Without `fieldSpecs` the annotations, label, image-tag and replica-count
//!   transformers touch no field (the image transformer still rewrites `containers` and
//!   `initContainers` images, and the replica transformer then fails because no object
//!   matches), the namespace transformer only sets `metadata.namespace` (and default
//!   role-binding subjects), and the prefix/suffix transformers refuse the configuration
//!   ("fieldSpecs is not expected to be nil");
//! - field names match case-insensitively except for `PrefixTransformer`, `SuffixTransformer`
//!   and `PrefixSuffixTransformer`, which kustomize decodes with yaml.v3 (exact names); unknown
//!   fields are ignored; scalar values of any type are read as strings where a string is
//!   expected;
//! - `ConfigMapGenerator`/`SecretGenerator` take `name`/`namespace` from `metadata` when the
//!   top-level fields are empty, and the kustomization's `generatorOptions` do not apply;
//! - file paths in a configuration (patches, env files, replacement files, value-add target
//!   files) are read relative to the kustomization that lists the configuration, not the
//!   configuration's file.
//!
//! What a plugin generates gets the plugin's origin ([`origin::plugin_origin`]); every plugin
//! transformer is recorded in the transformations of the objects it ran over.

use serde::de::DeserializeOwned;

use super::config::TransformerConfig;
use super::{builtins, origin, patches, replacement, selector};
use crate::error::{Error, Result};
use crate::kustomization::{
    FieldSpec, GeneratorArgs, Image, Patch, ReplacementField, Replica, Selector, StringMap,
};
use crate::loader::Loader;
use crate::patch::Schema;
use crate::resmap::ResMap;
use crate::resource::Resource;
use crate::yaml::{Map, Value, parse_one};

/// The builtin plugins kustomize v5.5 registers (its `GeneratorFactories` and
/// `TransformerFactories`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    AnnotationsTransformer,
    ConfigMapGenerator,
    IAMPolicyGenerator,
    HashTransformer,
    ImageTagTransformer,
    LabelTransformer,
    NamespaceTransformer,
    PatchJson6902Transformer,
    PatchStrategicMergeTransformer,
    PatchTransformer,
    PrefixSuffixTransformer,
    PrefixTransformer,
    SuffixTransformer,
    ReplicaCountTransformer,
    SecretGenerator,
    ValueAddTransformer,
    HelmChartInflationGenerator,
    ReplacementTransformer,
}

impl Builtin {
    fn from_kind(kind: &str) -> Option<Builtin> {
        Some(match kind {
            "AnnotationsTransformer" => Builtin::AnnotationsTransformer,
            "ConfigMapGenerator" => Builtin::ConfigMapGenerator,
            "IAMPolicyGenerator" => Builtin::IAMPolicyGenerator,
            "HashTransformer" => Builtin::HashTransformer,
            "ImageTagTransformer" => Builtin::ImageTagTransformer,
            "LabelTransformer" => Builtin::LabelTransformer,
            "NamespaceTransformer" => Builtin::NamespaceTransformer,
            "PatchJson6902Transformer" => Builtin::PatchJson6902Transformer,
            "PatchStrategicMergeTransformer" => Builtin::PatchStrategicMergeTransformer,
            "PatchTransformer" => Builtin::PatchTransformer,
            "PrefixSuffixTransformer" => Builtin::PrefixSuffixTransformer,
            "PrefixTransformer" => Builtin::PrefixTransformer,
            "SuffixTransformer" => Builtin::SuffixTransformer,
            "ReplicaCountTransformer" => Builtin::ReplicaCountTransformer,
            "SecretGenerator" => Builtin::SecretGenerator,
            "ValueAddTransformer" => Builtin::ValueAddTransformer,
            "HelmChartInflationGenerator" => Builtin::HelmChartInflationGenerator,
            "ReplacementTransformer" => Builtin::ReplacementTransformer,
            _ => return None,
        })
    }

    fn is_generator(self) -> bool {
        matches!(
            self,
            Builtin::ConfigMapGenerator
                | Builtin::SecretGenerator
                | Builtin::IAMPolicyGenerator
                | Builtin::HelmChartInflationGenerator
        )
    }

    /// Whether kustomize decodes the configuration with yaml.v3 (exact field names) rather
    /// than through JSON (case-insensitive field names).
    fn exact_field_names(self) -> bool {
        matches!(
            self,
            Builtin::PrefixTransformer
                | Builtin::SuffixTransformer
                | Builtin::PrefixSuffixTransformer
        )
    }
}

/// Which builtin a configuration object asks for, refusing external plugins and unknown
/// builtins as kustomize does.
fn resolve(config: &Resource) -> Result<Builtin> {
    let gvk = config.gvk();
    if !(gvk.group.is_empty() && gvk.version == "builtin") {
        return Err(Error::Unsupported(format!(
            "the external plugin '{}' (apiVersion {}; external plugins are disabled: only \
             builtin plugins, apiVersion: builtin, run — never exec, Go or KRM-function plugins)",
            config.kind(),
            config.api_version()
        )));
    }
    Builtin::from_kind(&gvk.kind).ok_or_else(|| Error::msg(format!("unable to load builtin {gvk}")))
}

/// Runs a generator configuration (an entry of `generators:`); `loader` is the loader of the
/// kustomization listing it. The objects made carry the configuration's origin when it has one.
pub fn generate(loader: &Loader, config: &Resource) -> Result<Vec<Resource>> {
    let builtin = resolve(config).map_err(|e| e.context("loading generator plugins"))?;
    if !builtin.is_generator() {
        return Err(
            Error::msg(format!("plugin {} not a generator", config.org_id()))
                .context("loading generator plugins: failed to load generator"),
        );
    }
    let cfg = Cfg::new(config, builtin);
    let mut out = match builtin {
        Builtin::ConfigMapGenerator => {
            let args = cfg.generator_args(false)?;
            let mut r = crate::generators::make_config_map(loader, &args, None)?;
            r.origin = None;
            vec![r]
        }
        Builtin::SecretGenerator => {
            let args = cfg.generator_args(true)?;
            let mut r = crate::generators::make_secret(loader, &args, None)?;
            r.origin = None;
            vec![r]
        }
        Builtin::IAMPolicyGenerator => vec![iam_policy(&cfg)?],
        Builtin::HelmChartInflationGenerator => {
            return Err(Error::Unsupported(format!(
                "the HelmChartInflationGenerator plugin ({}; render the chart into the repository \
                 instead)",
                config.org_id()
            )));
        }
        _ => Vec::new(),
    };
    origin::set_missing_origin(&mut out, origin::plugin_origin(config).as_ref());
    Ok(out)
}

/// Runs a transformer configuration (an entry of `transformers:`) over `m`; `loader` is the
/// loader of the kustomization listing it.
///
/// `tc` is not consulted: a plugin configuration's field specs are the only ones it uses
/// (kustomize applies its defaults only to the kustomization's own fields). Patches use the
/// builtin merge schema; [`transform_with_schema`] takes the kustomization's.
pub fn transform(
    loader: &Loader,
    m: &mut ResMap,
    config: &Resource,
    tc: &TransformerConfig,
) -> Result<()> {
    let _ = tc;
    transform_with_schema(loader, m, config, &Schema::builtin())
}

/// [`transform`] with the merge schema for strategic merge patches (the kustomization's
/// `openapi:` schema when it has one).
pub fn transform_with_schema(
    loader: &Loader,
    m: &mut ResMap,
    config: &Resource,
    schema: &Schema,
) -> Result<()> {
    let builtin = resolve(config)?;
    if builtin.is_generator() {
        return Err(Error::msg(format!(
            "plugin {} not a transformer",
            config.org_id()
        )));
    }
    let cfg = Cfg::new(config, builtin);
    run_transformer(loader, m, &cfg, builtin, schema)?;
    if let Some(o) = origin::plugin_origin(config) {
        origin::record_transformation(m, &o);
    }
    // kustomize drops objects a transformer emptied (`ResMap.DropEmpties`).
    m.retain(|r| r.obj.as_map().is_none_or(|map| !map.is_empty()));
    Ok(())
}

fn run_transformer(
    loader: &Loader,
    m: &mut ResMap,
    cfg: &Cfg<'_>,
    builtin: Builtin,
    schema: &Schema,
) -> Result<()> {
    match builtin {
        Builtin::AnnotationsTransformer => {
            let annotations = cfg.string_map("annotations")?;
            let specs = cfg.field_specs()?.unwrap_or_default();
            builtins::annotations(m, &annotations, &specs)
        }
        Builtin::LabelTransformer => {
            let labels = cfg.string_map("labels")?;
            let specs = cfg.field_specs()?.unwrap_or_default();
            builtins::labels(m, &labels, &specs)
        }
        Builtin::NamespaceTransformer => namespace(m, cfg),
        Builtin::PrefixSuffixTransformer => {
            let specs = cfg.required_field_specs()?;
            let prefix = cfg.string("prefix")?;
            let suffix = cfg.string("suffix")?;
            builtins::prefix(m, &prefix, &specs)?;
            builtins::suffix(m, &suffix, &specs)
        }
        Builtin::PrefixTransformer => {
            let prefix = cfg.string("prefix")?;
            let specs = cfg.required_field_specs()?;
            builtins::prefix(m, &prefix, &specs)
        }
        Builtin::SuffixTransformer => {
            let suffix = cfg.string("suffix")?;
            let specs = cfg.required_field_specs()?;
            builtins::suffix(m, &suffix, &specs)
        }
        Builtin::ImageTagTransformer => {
            let image: Image = cfg.typed_object(
                "imageTag",
                &["name", "newName", "newTag", "digest", "tagSuffix"],
            )?;
            let specs = cfg.field_specs()?.unwrap_or_default();
            builtins::images(m, &image, &specs)
        }
        Builtin::ReplicaCountTransformer => replica_count(m, cfg),
        Builtin::PatchTransformer => {
            let p = cfg.patch()?;
            patches::patch(loader, m, &p, schema)
        }
        Builtin::PatchStrategicMergeTransformer => strategic_merge(loader, m, cfg, schema),
        Builtin::PatchJson6902Transformer => json6902(loader, m, cfg),
        Builtin::ReplacementTransformer => {
            let fields = cfg.replacements()?;
            if fields.is_empty() {
                return Ok(());
            }
            replacement::apply_fields(loader, m, &fields)
        }
        Builtin::ValueAddTransformer => value_add(loader, m, cfg),
        Builtin::HashTransformer => hash(m),
        Builtin::ConfigMapGenerator
        | Builtin::SecretGenerator
        | Builtin::IAMPolicyGenerator
        | Builtin::HelmChartInflationGenerator => Ok(()),
    }
}

/// A configuration object being decoded.
struct Cfg<'a> {
    obj: &'a Value,
    id: String,
    exact: bool,
}

impl<'a> Cfg<'a> {
    fn new(config: &'a Resource, builtin: Builtin) -> Cfg<'a> {
        Cfg {
            obj: &config.obj,
            id: config.org_id().to_string(),
            exact: builtin.exact_field_names(),
        }
    }

    /// kustomize's "plugin … fails configuration" error.
    fn invalid(&self, message: impl std::fmt::Display) -> Error {
        Error::msg(format!("plugin {} fails configuration: {message}", self.id))
    }

    /// A top-level field: by exact name, or (JSON-decoded plugins) the last field whose name
    /// matches case-insensitively, as Go's `encoding/json` assigns them.
    fn get(&self, name: &str) -> Option<&'a Value> {
        get_field(self.obj, name, self.exact)
    }

    fn string(&self, name: &str) -> Result<String> {
        match self.get(name) {
            None => Ok(String::new()),
            Some(v) => scalar_string(v).ok_or_else(|| {
                self.invalid(format!(
                    "field '{name}' must be a string, found a {}",
                    v.type_name()
                ))
            }),
        }
    }

    fn bool(&self, name: &str) -> Result<bool> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.invalid(format!(
                "field '{name}' must be a boolean, found a {}",
                v.type_name()
            ))),
        }
    }

    fn string_map(&self, name: &str) -> Result<StringMap> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(StringMap::new()),
            Some(Value::Map(map)) => map
                .iter()
                .map(|(k, v)| {
                    scalar_string(v).map(|s| (k.clone(), s)).ok_or_else(|| {
                        self.invalid(format!(
                            "field '{name}.{k}' must be a string, found a {}",
                            v.type_name()
                        ))
                    })
                })
                .collect(),
            Some(v) => Err(self.invalid(format!(
                "field '{name}' must be a mapping, found a {}",
                v.type_name()
            ))),
        }
    }

    fn string_list(&self, name: &str) -> Result<Vec<String>> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Seq(items)) => items
                .iter()
                .map(|v| {
                    scalar_string(v).ok_or_else(|| {
                        self.invalid(format!(
                            "entries of '{name}' must be strings, found a {}",
                            v.type_name()
                        ))
                    })
                })
                .collect(),
            Some(v) => Err(self.invalid(format!(
                "field '{name}' must be a list, found a {}",
                v.type_name()
            ))),
        }
    }

    /// Decodes a field with serde (`None` when absent or null).
    fn typed<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.to_json())
                .map(Some)
                .map_err(|e| self.invalid(format!("field '{name}': {e}"))),
        }
    }

    /// Decodes a mapping field with serde, keeping only `keys` (matched like top-level
    /// fields), so that unknown fields are ignored as kustomize ignores them.
    fn typed_object<T: DeserializeOwned>(&self, name: &str, keys: &[&str]) -> Result<T> {
        let picked = match self.get(name) {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(v @ Value::Map(_)) => pick(v, keys, self.exact, true),
            Some(v) => {
                return Err(self.invalid(format!(
                    "field '{name}' must be a mapping, found a {}",
                    v.type_name()
                )));
            }
        };
        serde_json::from_value(serde_json::Value::Object(picked))
            .map_err(|e| self.invalid(format!("field '{name}': {e}")))
    }

    /// `fieldSpecs`; `None` when absent or null (Go's nil slice).
    fn field_specs(&self) -> Result<Option<Vec<FieldSpec>>> {
        self.typed("fieldSpecs")
    }

    /// `fieldSpecs` of the prefix and suffix transformers, which refuse a nil list.
    fn required_field_specs(&self) -> Result<Vec<FieldSpec>> {
        self.field_specs()?
            .ok_or_else(|| self.invalid("fieldSpecs is not expected to be nil"))
    }

    /// `ConfigMapGenerator` / `SecretGenerator` arguments: kustomize's `ConfigMapArgs` /
    /// `SecretArgs` beside an `ObjectMeta` whose name and namespace fill empty ones.
    fn generator_args(&self, secret: bool) -> Result<GeneratorArgs> {
        let mut json = serde_json::Map::new();
        let mut put = |key: &str, value: serde_json::Value| {
            json.insert(key.to_string(), value);
        };
        let mut name = self.string("name")?;
        if name.is_empty() {
            name = self.obj.str_at(&["metadata", "name"]).unwrap_or("").into();
        }
        let mut namespace = self.string("namespace")?;
        if namespace.is_empty() {
            namespace = self
                .obj
                .str_at(&["metadata", "namespace"])
                .unwrap_or("")
                .into();
        }
        put("name", name.into());
        put("namespace", namespace.into());
        put("behavior", self.string("behavior")?.into());
        for list in ["literals", "files", "envs"] {
            put(list, self.string_list(list)?.into());
        }
        put("env", self.string("env")?.into());
        if secret {
            put("type", self.string("type")?.into());
        }
        match self.get("options") {
            None | Some(Value::Null) => {}
            Some(v @ Value::Map(_)) => {
                let options = pick(
                    v,
                    &[
                        "labels",
                        "annotations",
                        "disableNameSuffixHash",
                        "immutable",
                    ],
                    self.exact,
                    false,
                );
                put("options", serde_json::Value::Object(options));
            }
            Some(v) => {
                return Err(self.invalid(format!(
                    "field 'options' must be a mapping, found a {}",
                    v.type_name()
                )));
            }
        }
        serde_json::from_value(serde_json::Value::Object(json)).map_err(|e| self.invalid(e))
    }

    /// `PatchTransformer`'s `path`, `patch`, `target` and `options`.
    fn patch(&self) -> Result<Patch> {
        let mut json = serde_json::Map::new();
        for key in ["path", "patch"] {
            let s = self.string(key)?;
            if !s.is_empty() {
                json.insert(key.into(), s.into());
            }
        }
        if let Some(target) = self.target()? {
            json.insert("target".into(), target);
        }
        if let Some(v) = self.get("options").filter(|o| !o.is_null()) {
            json.insert(
                "options".into(),
                serde_json::Value::Object(pick(
                    v,
                    &["allowNameChange", "allowKindChange"],
                    true,
                    false,
                )),
            );
        }
        serde_json::from_value(serde_json::Value::Object(json)).map_err(|e| self.invalid(e))
    }

    /// `target`: a selector as JSON, its values read as strings (`None` when absent or null).
    fn target(&self) -> Result<Option<serde_json::Value>> {
        match self.get("target") {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Map(_)) => Ok(Some(serde_json::Value::Object(pick(
                v,
                &[
                    "group",
                    "version",
                    "kind",
                    "name",
                    "namespace",
                    "labelSelector",
                    "annotationSelector",
                ],
                self.exact,
                true,
            )))),
            Some(v) => Err(self.invalid(format!(
                "field 'target' must be a mapping, found a {}",
                v.type_name()
            ))),
        }
    }

    /// `ReplacementTransformer`'s `replacements` (files or inline replacements).
    fn replacements(&self) -> Result<Vec<ReplacementField>> {
        let entries = match self.get("replacements") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Seq(items)) => items,
            Some(v) => {
                return Err(self.invalid(format!(
                    "field 'replacements' must be a list, found a {}",
                    v.type_name()
                )));
            }
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry
                .get("path")
                .and_then(scalar_string)
                .unwrap_or_default();
            let inline = entry.get("source").is_some_and(|s| !s.is_null())
                || entry
                    .get("targets")
                    .and_then(Value::as_seq)
                    .is_some_and(|t| !t.is_empty());
            if !path.is_empty() && inline {
                return Err(self.invalid("cannot specify both path and inline replacement"));
            }
            if path.is_empty() {
                out.push(ReplacementField::Inline(entry.to_json()));
            } else {
                out.push(ReplacementField::Path { path });
            }
        }
        Ok(out)
    }
}

/// Finds a field by exact name, or by the last case-insensitive match.
fn get_field<'v>(obj: &'v Value, name: &str, exact: bool) -> Option<&'v Value> {
    let map = obj.as_map()?;
    if exact {
        return map.get(name);
    }
    map.iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .next_back()
}

/// The fields `keys` of a mapping, under their canonical names; with `stringify`, scalar values
/// become strings (kustomize decodes into string fields that way).
fn pick(
    v: &Value,
    keys: &[&str],
    exact: bool,
    stringify: bool,
) -> serde_json::Map<String, serde_json::Value> {
    keys.iter()
        .filter_map(|k| {
            get_field(v, k, exact).map(|x| {
                let json = match scalar_string(x) {
                    Some(s) if stringify && !x.is_null() => serde_json::Value::String(s),
                    _ => x.to_json(),
                };
                ((*k).to_string(), json)
            })
        })
        .collect()
}

/// A JSON scalar (not null) as a string.
fn json_scalar_string(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A scalar as a string (numbers and booleans as written); `None` for mappings and lists.
fn scalar_string(v: &Value) -> Option<String> {
    v.scalar_string()
}

/// `NamespaceTransformer`: `metadata.namespace`, `fieldSpecs`, `unsetOnly`,
/// `setRoleBindingSubjects`.
fn namespace(m: &mut ResMap, cfg: &Cfg<'_>) -> Result<()> {
    let metadata = cfg.get("metadata").cloned().unwrap_or(Value::Null);
    let ns = get_field(&metadata, "namespace", false)
        .and_then(scalar_string)
        .unwrap_or_default();
    let specs = cfg.field_specs()?.unwrap_or_default();
    let unset_only = cfg.bool("unsetOnly")?;
    let mut mode = cfg.string("setRoleBindingSubjects")?;
    match mode.as_str() {
        "defaultOnly" | "none" | "allServiceAccounts" => {}
        "" => mode = "defaultOnly".into(),
        other => {
            return Err(cfg.invalid(format!(
                "invalid value \"{other}\" for setRoleBindingSubjects: must be one of \
                 \"defaultOnly\", \"none\" or \"allServiceAccounts\""
            )));
        }
    }
    if ns.is_empty() {
        return Ok(());
    }
    builtins::namespace(m, &ns, &specs, unset_only, &mode)
}

/// `ReplicaCountTransformer`: `replica` (`name`, `count`) and `fieldSpecs`; fails when no
/// object of a configured kind has that name (current or earlier).
fn replica_count(m: &mut ResMap, cfg: &Cfg<'_>) -> Result<()> {
    let mut picked = match cfg.get("replica") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(v @ Value::Map(_)) => pick(v, &["name", "count"], false, false),
        Some(v) => {
            return Err(cfg.invalid(format!(
                "field 'replica' must be a mapping, found a {}",
                v.type_name()
            )));
        }
    };
    if let Some(name) = picked.get_mut("name")
        && let Some(s) = json_scalar_string(name)
    {
        *name = s.into();
    }
    picked.entry("name").or_insert_with(|| "".into());
    let replica: Replica = serde_json::from_value(serde_json::Value::Object(picked))
        .map_err(|e| cfg.invalid(format!("field 'replica': {e}")))?;
    let specs = cfg.field_specs()?.unwrap_or_default();
    let found = specs.iter().any(|fs| {
        m.resources().iter().any(|r| {
            r.all_ids()
                .iter()
                .any(|id| id.name == replica.name && super::fieldspec::matches_gvk(fs, &id.gvk))
        })
    });
    if !found {
        let gvks: Vec<String> = specs
            .iter()
            .map(|fs| {
                crate::resid::Gvk {
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
    builtins::replicas(m, &replica, &specs)
}

/// `PatchStrategicMergeTransformer`: `paths` (files, or inline patches) and `patches` (inline).
fn strategic_merge(loader: &Loader, m: &mut ResMap, cfg: &Cfg<'_>, schema: &Schema) -> Result<()> {
    let mut entries = cfg.string_list("paths")?;
    let inline = cfg.string("patches")?;
    if entries.is_empty() && inline.is_empty() {
        return Err(cfg.invalid("empty file path and empty patch content"));
    }
    if !inline.is_empty() {
        let loaded =
            crate::build::resources_from_text(&inline, "patches").map_err(|e| cfg.invalid(e))?;
        if loaded.is_empty() && entries.is_empty() {
            return Err(cfg.invalid(format!(
                "patch appears to be empty; files=[], Patch={inline}"
            )));
        }
        // An entry with a line break is read as inline content, never as a file name.
        let mut text = inline;
        if !text.contains('\n') {
            text.push('\n');
        }
        entries.push(text);
    }
    patches::strategic_merge_list(loader, m, &entries, schema)
}

/// `PatchJson6902Transformer`: `target` (with a name), and `path` or `jsonOp`.
fn json6902(loader: &Loader, m: &mut ResMap, cfg: &Cfg<'_>) -> Result<()> {
    let Some(target_json) = cfg.target()? else {
        return Err(cfg.invalid("must specify a target"));
    };
    let target: Selector =
        serde_json::from_value(target_json.clone()).map_err(|e| cfg.invalid(e))?;
    if target.name.is_empty() {
        return Err(cfg.invalid("must specify the target name"));
    }
    let path = cfg.string("path")?;
    let op = cfg.string("jsonOp")?;
    match (path.is_empty(), op.is_empty()) {
        (true, true) => return Err(cfg.invalid("empty file path and empty jsonOp")),
        (false, false) => return Err(cfg.invalid("must specify a file path or jsonOp, not both")),
        _ => {}
    }
    let text = if path.is_empty() {
        op.clone()
    } else {
        loader.read_string(&path).map_err(|e| cfg.invalid(e))?
    };
    if text.is_empty() {
        return Err(cfg.invalid(format!("patch file '{path}' empty seems to be empty")));
    }
    let ops = parse_one(&text).map_err(|e| cfg.invalid(format!("decoding {text}: {e}")))?;
    match &ops {
        Value::Seq(items) if items.is_empty() => {
            return Err(cfg.invalid(format!(
                "patch appears to be empty; file={path}, JsonOp={text}"
            )));
        }
        Value::Seq(_) => {}
        other => {
            return Err(cfg.invalid(format!(
                "decoding {text}: expected a list of JSON patch operations, found a {}",
                other.type_name()
            )));
        }
    }
    let p: Patch = serde_json::from_value(serde_json::json!({
        "patch": text,
        "target": target_json,
    }))
    .map_err(|e| cfg.invalid(e))?;
    patches::json6902_entry(loader, m, &p)
}

/// `IAMPolicyGenerator`: a GKE workload-identity ServiceAccount. Like kustomize, the object is
/// made by filling the values into YAML text and parsing it.
fn iam_policy(cfg: &Cfg<'_>) -> Result<Resource> {
    let cloud = cfg.string("cloud")?;
    let k8s = cfg.get("kubernetesService").cloned().unwrap_or(Value::Null);
    let sa = cfg.get("serviceAccount").cloned().unwrap_or(Value::Null);
    let field = |v: &Value, name: &str| -> Result<String> {
        match get_field(v, name, false) {
            None => Ok(String::new()),
            Some(x) => scalar_string(x).ok_or_else(|| {
                cfg.invalid(format!(
                    "field '{name}' must be a string, found a {}",
                    x.type_name()
                ))
            }),
        }
    };
    if cloud != "gke" {
        return Err(Error::msg(format!(
            "cloud provider {cloud} not supported yet"
        )));
    }
    let mut text = format!(
        "\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  annotations:\n    \
         iam.gke.io/gcp-service-account: {}@{}.iam.gserviceaccount.com\n  name: {}\n",
        field(&sa, "name")?,
        field(&sa, "projectId")?,
        field(&k8s, "name")?,
    );
    let namespace = field(&k8s, "namespace")?;
    if !namespace.is_empty() {
        text.push_str(&format!("\n  namespace: {namespace}"));
    }
    let obj = parse_one(&text).map_err(|e| Error::msg(format!("IAMPolicyGenerator: {e}")))?;
    Ok(Resource::new(obj))
}

/// `HashTransformer`: appends the content hash to the names of generated objects now. As in
/// kustomize, the objects still ask for a hash, so the end of the build appends another.
fn hash(m: &mut ResMap) -> Result<()> {
    for r in m.resources_mut() {
        if !r.needs_hash {
            continue;
        }
        let h = crate::generators::content_hash(&r.obj)?;
        r.store_previous_id();
        let name = format!("{}-{h}", r.name());
        r.set_name(&name);
    }
    Ok(())
}

/// One `ValueAddTransformer` target.
struct ValueTarget {
    selector: Option<Selector>,
    field_path: String,
    file_path_position: i64,
}

/// `ValueAddTransformer`: writes `value` (default: the kustomization directory's name) into
/// `fieldPath` of the selected objects, creating the field; with `filePathPosition` the value is
/// inserted as a path segment into the field's current value.
fn value_add(loader: &Loader, m: &mut ResMap, cfg: &Cfg<'_>) -> Result<()> {
    let mut value = cfg.string("value")?.trim().to_string();
    if value.is_empty() {
        value = loader
            .root()
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
    }
    let mut targets = Vec::new();
    if let Some(list) = cfg.get("targets") {
        value_targets(cfg, list, &mut targets)?;
    }
    let file = cfg.string("targetFilePath")?;
    if !file.is_empty() {
        let text = loader.read_string(&file)?;
        let doc = parse_one(&text).map_err(|source| Error::Yaml {
            file: file.clone(),
            source,
        })?;
        if let Some(list) = get_field(&doc, "targets", false) {
            value_targets(cfg, list, &mut targets)?;
        }
    }
    if targets.is_empty() {
        return Err(cfg.invalid("must specify at least one target"));
    }
    for t in &targets {
        if t.field_path.is_empty() {
            return Err(cfg.invalid("fieldPath cannot be empty"));
        }
        if t.file_path_position < 0 {
            return Err(cfg.invalid(format!(
                "value of FilePathPosition ({}) cannot be negative",
                t.file_path_position
            )));
        }
    }
    for t in &targets {
        let selected: Vec<usize> = match &t.selector {
            None => (0..m.len()).collect(),
            Some(s) => selector::select(m, s)?,
        };
        for i in selected {
            if t.field_path == "metadata/namespace" {
                let r = &mut m.resources_mut()[i];
                let mut single = ResMap::new();
                single.push_unchecked(r.clone());
                builtins::namespace(&mut single, &value, &[], false, "defaultOnly")?;
                if let Some(done) = single.into_resources().into_iter().next() {
                    r.obj = done.obj;
                }
                continue;
            }
            let r = &mut m.resources_mut()[i];
            add_value(&mut r.obj, &t.field_path, &value, t.file_path_position)
                .map_err(|e| e.context(format!("ValueAddTransformer on {}", r.cur_id())))?;
        }
    }
    Ok(())
}

fn value_targets(cfg: &Cfg<'_>, list: &Value, out: &mut Vec<ValueTarget>) -> Result<()> {
    let Some(items) = list.as_seq() else {
        if list.is_null() {
            return Ok(());
        }
        return Err(cfg.invalid("targets must be a list"));
    };
    for item in items {
        let selector = match get_field(item, "selector", false) {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                serde_json::from_value::<Selector>(v.to_json())
                    .map_err(|e| cfg.invalid(format!("target selector: {e}")))?,
            ),
        };
        let field_path = get_field(item, "fieldPath", false)
            .and_then(scalar_string)
            .unwrap_or_default();
        let file_path_position = match get_field(item, "filePathPosition", false) {
            None | Some(Value::Null) => 0,
            Some(Value::Int(i)) => *i,
            Some(v) => {
                return Err(cfg.invalid(format!(
                    "filePathPosition must be an integer, found a {}",
                    v.type_name()
                )));
            }
        };
        out.push(ValueTarget {
            selector,
            field_path,
            file_path_position,
        });
    }
    Ok(())
}

/// Splits a value-add field path on `/`, a `\/` keeping a slash inside a field name.
fn split_value_path(path: &str) -> Vec<String> {
    let mut fields: Vec<String> = Vec::new();
    for part in path.split('/') {
        match fields.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push('/');
                last.push_str(part);
            }
            _ => fields.push(part.to_string()),
        }
    }
    fields
}

fn is_index(part: &str) -> bool {
    part.starts_with('[') && part.ends_with(']') && part.contains('=')
}

fn is_number(part: &str) -> bool {
    part.parse::<i64>().is_ok()
}

/// kyaml's `LookupCreate(ScalarNode, path...)` followed by setting the scalar.
fn add_value(obj: &mut Value, field_path: &str, value: &str, position: i64) -> Result<()> {
    let parts: Vec<String> = split_value_path(field_path)
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    let mut node = obj;
    for (i, part) in parts.iter().enumerate() {
        let next = parts.get(i + 1).map(String::as_str);
        node = match step(node, part, next)? {
            Some(n) => n,
            None => return Ok(()),
        };
    }
    if matches!(node, Value::Map(_) | Value::Seq(_)) {
        return Err(Error::msg(format!(
            "wrong node kind: expected ScalarNode but got {}",
            node.type_name()
        )));
    }
    let current = scalar_string(node).unwrap_or_default();
    let new = if position > 0 {
        insert_path_part(&current, (position - 1) as usize, value)
    } else {
        value.to_string()
    };
    *node = Value::String(new);
    Ok(())
}

/// One step of a `LookupCreate` walk; `None` when the path ends (an index past the end).
fn step<'v>(node: &'v mut Value, part: &str, next: Option<&str>) -> Result<Option<&'v mut Value>> {
    if is_number(part) || part == "-" {
        let Value::Seq(items) = node else {
            return Err(Error::msg(format!(
                "wrong node kind: expected SequenceNode but got {}",
                node.type_name()
            )));
        };
        if part == "-" {
            return Ok(items.last_mut());
        }
        let idx: i64 = part.parse().unwrap_or(0);
        if idx < 0 {
            return Err(Error::msg(format!("array index {idx} cannot be negative")));
        }
        return Ok(items.get_mut(idx as usize));
    }
    if is_index(part) {
        let inner = &part[1..part.len() - 1];
        let (key, val) = inner.split_once('=').unwrap_or((inner, ""));
        if node.is_null() {
            *node = Value::Seq(Vec::new());
        }
        let Value::Seq(items) = node else {
            return Err(Error::msg(format!(
                "wrong node kind: expected SequenceNode but got {}",
                node.type_name()
            )));
        };
        let pos = items.iter().position(|item| {
            if key.is_empty() {
                scalar_string(item).as_deref() == Some(val)
            } else {
                item.get(key).and_then(scalar_string).as_deref() == Some(val)
            }
        });
        let pos = match pos {
            Some(p) => p,
            None => {
                let created = if key.is_empty() {
                    Value::String(val.to_string())
                } else {
                    let mut m = Map::new();
                    m.insert(key.to_string(), Value::String(val.to_string()));
                    Value::Map(m)
                };
                items.push(created);
                items.len() - 1
            }
        };
        return Ok(items.get_mut(pos));
    }
    if node.is_null() {
        *node = Value::Map(Map::new());
    }
    let Value::Map(map) = node else {
        return Err(Error::msg(format!(
            "wrong node kind: expected MappingNode but got {}",
            node.type_name()
        )));
    };
    let fresh = match next {
        Some(n) if is_index(n) || is_number(n) => Value::Seq(Vec::new()),
        Some(_) => Value::Map(Map::new()),
        None => Value::Null,
    };
    let slot = map.entry(part.to_string()).or_insert(fresh);
    Ok(Some(slot))
}

/// kyaml's `filesys.InsertPathPart`: `part` inserted as segment `pos` of `path`.
fn insert_path_part(path: &str, pos: usize, part: &str) -> String {
    if part.is_empty() {
        return path.to_string();
    }
    let mut parts: Vec<String> = if path.is_empty() {
        Vec::new()
    } else if path == "/" {
        vec![String::new()]
    } else {
        let (abs, rest) = match path.strip_prefix('/') {
            Some(r) => (true, r),
            None => (false, path),
        };
        let mut v: Vec<String> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if abs {
            v.insert(0, String::new());
        }
        v
    };
    let mut pos = pos.min(parts.len());
    if parts.first().is_some_and(String::is_empty) && pos < parts.len() {
        pos += 1;
    }
    parts.insert(pos, part.to_string());
    if parts.first().is_some_and(String::is_empty) {
        format!("/{}", origin::join("", &parts[1..].join("/")))
    } else {
        origin::join("", &parts.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{resources_from_text, to_yaml};
    use crate::loader::{Limits, LoadRestrictor};

    fn loader(dir: &std::path::Path) -> Loader {
        Loader::new(dir, None, LoadRestrictor::RootOnly, Limits::default()).unwrap()
    }

    fn config(text: &str) -> Resource {
        let mut r = resources_from_text(text, "test").unwrap().remove(0);
        r.origin = Some(origin::file_origin("kustomization.yaml"));
        r
    }

    fn resmap(text: &str) -> ResMap {
        resources_from_text(text, "test")
            .unwrap()
            .into_iter()
            .collect()
    }

    const INPUT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: x
spec:
  replicas: 1
  template:
    spec:
      containers:
      - image: nginx:1
        name: a
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: rb
subjects:
- kind: ServiceAccount
  name: default
- kind: ServiceAccount
  name: other
";

    fn run(config_text: &str) -> Result<String> {
        let dir = tempfile::tempdir().unwrap();
        let mut m = resmap(INPUT);
        transform(
            &loader(dir.path()),
            &mut m,
            &config(config_text),
            &TransformerConfig::default(),
        )?;
        Ok(to_yaml(&m))
    }

    // Expected outputs below were recorded with `kubectl kustomize` (kustomize v5.5.0) on the
    // same input (before its legacy sort, which these tests do not run).

    #[test]
    fn prefix_without_field_specs_is_refused() {
        let err =
            run("apiVersion: builtin\nkind: PrefixTransformer\nmetadata:\n  name: x\nprefix: p-\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("fieldSpecs is not expected to be nil"),
            "{err}"
        );
    }

    #[test]
    fn prefix_field_names_are_case_sensitive_and_scalars_are_strings() {
        // `Prefix:` is ignored (yaml.v3 decoding); `prefix: 12` prefixes "12".
        let out = run("apiVersion: builtin\nkind: PrefixTransformer\nmetadata:\n  name: x\nPrefix: zz\nprefix: 12\nfieldSpecs:\n- path: metadata/name\n").unwrap();
        assert!(out.contains("name: 12x\n"), "{out}");
        assert!(out.contains("name: 12rb\n"), "{out}");
    }

    #[test]
    fn namespace_without_field_specs_sets_metadata_and_default_subjects() {
        let out = run("apiVersion: builtin\nkind: NamespaceTransformer\nmetadata:\n  name: x\n  namespace: ns1\n").unwrap();
        assert_eq!(
            out,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n  namespace: ns1\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n      - image: nginx:1\n        name: a\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: rb\n  namespace: ns1\nsubjects:\n- kind: ServiceAccount\n  name: default\n  namespace: ns1\n- kind: ServiceAccount\n  name: other\n"
        );
    }

    #[test]
    fn namespace_refuses_unknown_subject_mode() {
        let err = run("apiVersion: builtin\nkind: NamespaceTransformer\nmetadata:\n  name: x\n  namespace: ns1\nsetRoleBindingSubjects: some\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("invalid value \"some\" for setRoleBindingSubjects"),
            "{err}"
        );
    }

    #[test]
    fn image_tag_without_field_specs_still_rewrites_containers() {
        let out = run("apiVersion: builtin\nkind: ImageTagTransformer\nmetadata:\n  name: x\nimageTag:\n  name: nginx\n  newTag: \"2\"\n").unwrap();
        assert!(out.contains("- image: nginx:2\n"), "{out}");
    }

    #[test]
    fn replica_count_needs_a_matching_object() {
        let err = run("apiVersion: builtin\nkind: ReplicaCountTransformer\nmetadata:\n  name: x\nreplica:\n  name: x\n  count: 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("resource with name x does not match a config with the following GVK []"),
            "{err}"
        );
        let out = run("apiVersion: builtin\nkind: ReplicaCountTransformer\nmetadata:\n  name: x\nreplica:\n  name: x\n  count: 3\nfieldSpecs:\n- path: spec/replicas\n  kind: Deployment\n").unwrap();
        assert!(out.contains("replicas: 3\n"), "{out}");
    }

    #[test]
    fn labels_decode_case_insensitively_and_stringify() {
        let out = run("apiVersion: builtin\nkind: LabelTransformer\nmetadata:\n  name: x\nLabels:\n  a: true\nFieldSpecs:\n- path: metadata/labels\n  create: true\n").unwrap();
        assert!(out.contains("  labels:\n    a: \"true\"\n"), "{out}");
    }

    #[test]
    fn value_add_sets_fields_paths_and_namespaces() {
        let out = run("apiVersion: builtin\nkind: ValueAddTransformer\nmetadata:\n  name: h\nvalue: foo\ntargets:\n- fieldPath: metadata/annotations/a\\/b\n- selector:\n    kind: Deployment\n  fieldPath: spec/template/spec/containers/0/image\n  filePathPosition: 1\n- fieldPath: metadata/namespace\n").unwrap();
        assert_eq!(
            out,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  annotations:\n    a/b: foo\n  name: x\n  namespace: foo\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n      - image: foo/nginx:1\n        name: a\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  annotations:\n    a/b: foo\n  name: rb\n  namespace: foo\nsubjects:\n- kind: ServiceAccount\n  name: default\n  namespace: foo\n- kind: ServiceAccount\n  name: other\n"
        );
    }

    #[test]
    fn external_and_unknown_plugins_are_refused() {
        let err = run(
            "apiVersion: someteam.example.com/v1\nkind: StringPrefixer\nmetadata:\n  name: apple\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("external plugin 'StringPrefixer'"), "{err}");
        let err = run("apiVersion: builtin\nkind: SortOrderTransformer\nmetadata:\n  name: s\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "unable to load builtin SortOrderTransformer.builtin.[noGrp]"
        );
        let err = run("apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata:\n  name: s\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("plugin ConfigMapGenerator.builtin.[noGrp]/s.[noNs] not a transformer"),
            "{err}"
        );
    }

    #[test]
    fn transformations_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = resmap(INPUT);
        for r in m.resources_mut() {
            r.origin = Some(origin::file_origin("a.yaml"));
        }
        let c = config(
            "apiVersion: builtin\nkind: NamespaceTransformer\nmetadata:\n  name: n\n  namespace: test\n",
        );
        transform(
            &loader(dir.path()),
            &mut m,
            &c,
            &TransformerConfig::default(),
        )
        .unwrap();
        let t = &m.resources()[0].transformations;
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].path, "kustomization.yaml");
        assert_eq!(
            t[0].config_ref,
            Some(("builtin".into(), "NamespaceTransformer".into(), "n".into()))
        );
    }

    #[test]
    fn iam_policy_generator_makes_a_service_account() {
        // Recorded from `kubectl kustomize` (kustomize v5.5.0).
        let dir = tempfile::tempdir().unwrap();
        let c = config(
            "apiVersion: builtin\nkind: IAMPolicyGenerator\nmetadata:\n  name: g\ncloud: gke\nkubernetesService:\n  namespace: k8s-namespace\n  name: k8s-sa-name\nserviceAccount:\n  name: gsa-name\n  projectId: project-id\n",
        );
        let out: ResMap = generate(&loader(dir.path()), &c)
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(
            to_yaml(&out),
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  annotations:\n    iam.gke.io/gcp-service-account: gsa-name@project-id.iam.gserviceaccount.com\n  name: k8s-sa-name\n  namespace: k8s-namespace\n"
        );
        let o = out.resources()[0].origin.clone().unwrap();
        assert_eq!(o.path, "kustomization.yaml");
        let c = config(
            "apiVersion: builtin\nkind: IAMPolicyGenerator\nmetadata:\n  name: g\ncloud: aws\n",
        );
        let err = generate(&loader(dir.path()), &c).unwrap_err().to_string();
        assert!(
            err.contains("cloud provider aws not supported yet"),
            "{err}"
        );
    }

    #[test]
    fn config_map_generator_takes_its_name_from_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(
            "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata:\n  name: my-config\noptions:\n  disableNameSuffixHash: true\nliterals:\n- MY_ENV=foo\n",
        );
        let out = generate(&loader(dir.path()), &c).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name(), "my-config");
        assert!(!out[0].needs_hash);
        assert_eq!(
            out[0].origin.as_ref().and_then(|o| o.config_ref.clone()),
            Some((
                "builtin".into(),
                "ConfigMapGenerator".into(),
                "my-config".into()
            ))
        );
    }

    #[test]
    fn hash_transformer_hashes_now_and_again_at_the_end() {
        // kustomize v5.5.0 prints `cm-4h2mbtbbt6-ff5c62bg4g` for a ConfigMap `cm` (a=b)
        // hashed by a HashTransformer plugin, then given label `x: y` under `data`.
        let mut m =
            resmap("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: b\n");
        m.resources_mut()[0].needs_hash = true;
        hash(&mut m).unwrap();
        assert_eq!(m.resources()[0].name(), "cm-4h2mbtbbt6");
        assert!(m.resources()[0].needs_hash);
    }

    #[test]
    fn inserts_path_parts_like_kyaml() {
        assert_eq!(insert_path_part("", 0, "PEACH"), "PEACH");
        assert_eq!(insert_path_part("/", 0, "PEACH"), "/PEACH");
        assert_eq!(insert_path_part("pie", 0, "PEACH"), "PEACH/pie");
        assert_eq!(insert_path_part("/pie", 0, "PEACH"), "/PEACH/pie");
        assert_eq!(insert_path_part("raw", 1, "PEACH"), "raw/PEACH");
        assert_eq!(insert_path_part("/raw", 1, "PEACH"), "/raw/PEACH");
        assert_eq!(
            insert_path_part("a/nice/warm/pie", 3, "PEACH"),
            "a/nice/warm/PEACH/pie"
        );
        assert_eq!(
            insert_path_part("/a/nice/warm/pie", 3, "PEACH"),
            "/a/nice/warm/PEACH/pie"
        );
    }
}
