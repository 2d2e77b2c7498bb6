//! The build: load a kustomization tree, accumulate, transform, sort, print.
//!
//! The order of steps is kustomize's (`KustTarget.accumulateTarget`): resources (files and
//! nested kustomizations, each fully built first), transformer configurations, generators,
//! components (which act on everything accumulated so far), then this level's transformers in
//! kustomize's fixed builtin order, then vars. At the top level only: name hashes, name
//! references, var substitution, dropping local-config objects, and the sort.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::kustomization::{
    COMPONENT_API_VERSION, KUSTOMIZATION_API_VERSION, KUSTOMIZATION_FILE_NAMES, Kustomization,
};
use crate::loader::{Limits, LoadRestrictor, Loader};
use crate::resmap::ResMap;
use crate::resource::{Behavior, Resource};
use crate::transform::{self, TransformerConfig};
use crate::yaml::{Value, parse_documents, parse_documents_lenient};

/// Options of one build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// kustomize's `--load-restrictor`.
    pub load_restrictor: LoadRestrictor,
    /// A directory nothing may escape (the artifact root in a controller); `None` for the CLI.
    pub sandbox: Option<PathBuf>,
    /// Size limits.
    pub limits: Limits,
    /// Build a directory without a kustomization file from every YAML file below it (Flux's
    /// behaviour) instead of failing as `kustomize build` does.
    pub plain_directories: bool,
}

/// What a kustomization level has accumulated.
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    /// The resources.
    pub resmap: ResMap,
    /// Field specs in force.
    pub config: TransformerConfig,
    /// Declared vars, each bound to its object when its kustomization was accumulated.
    pub vars: Vec<transform::refvar::BoundVar>,
}

struct Ctx {
    stack: Vec<PathBuf>,
    /// The merge schema in force (kustomize keeps one per build: the top kustomization's
    /// `openapi`, else the first nested one that sets it).
    schema: Option<crate::patch::Schema>,
    schema_set: bool,
}

impl Ctx {
    fn new() -> Ctx {
        Ctx {
            stack: Vec::new(),
            schema: None,
            schema_set: false,
        }
    }

    fn set_schema(&mut self, target: &Target, reset: bool) -> Result<()> {
        if self.schema_set && !reset {
            return Ok(());
        }
        let Some(openapi) = &target.kustomization.open_api else {
            return Ok(());
        };
        let version = openapi.get("version");
        if let Some(path) = openapi.get("path") {
            if version.is_some() {
                return Err(Error::msg(
                    "builtin version and custom schema provided, cannot use both",
                ));
            }
            let text = target.loader.read_string(path)?;
            let doc = crate::yaml::parse_one(&text).map_err(|source| Error::Yaml {
                file: path.clone(),
                source,
            })?;
            self.schema = Some(crate::patch::Schema::builtin().with_custom(&doc)?);
            self.schema_set = true;
            return Ok(());
        }
        if let Some(v) = version {
            if v != "v1.21.2" {
                return Err(Error::msg("the specified OpenAPI version is not built in"));
            }
            self.schema = None;
            self.schema_set = true;
        }
        Ok(())
    }

    fn schema(&self) -> crate::patch::Schema {
        self.schema
            .clone()
            .unwrap_or_else(crate::patch::Schema::builtin)
    }
}

/// One kustomization directory, loaded.
pub struct Target {
    loader: Loader,
    kustomization: Kustomization,
    file_name: String,
    /// This kustomization's directory as origins name it: the `resources:`/`components:`
    /// entries walked from the top kustomization, joined (kustomize's `origin.Path`; `""` at
    /// the top).
    origin_dir: String,
}

/// Builds the kustomization at `dir` (a plain directory without a kustomization file builds
/// every `*.yaml`/`*.yml` file below it). `overlay`, when given, is applied on top as if it were
/// a kustomization in `dir` whose only resource is `dir`'s own result (the Render spec's fields).
pub fn build(
    dir: &Path,
    options: &BuildOptions,
    overlay: Option<&Kustomization>,
) -> Result<ResMap> {
    let loader = Loader::new(
        dir,
        options.sandbox.as_deref(),
        options.load_restrictor,
        options.limits,
    )?;
    let mut ctx = Ctx::new();
    let target = match Target::load(loader.clone()) {
        Ok(t) => t,
        Err(Error::Io { message, .. })
            if message.starts_with("unable to find one of") && options.plain_directories =>
        {
            Target::plain_directory(loader.clone())?
        }
        Err(e) => return Err(e),
    };
    ctx.set_schema(&target, true)?;
    let mut acc = target.accumulate(&mut ctx, Accumulator::default())?;
    let mut top = target;
    if let Some(overlay) = overlay {
        let overlay_target = Target {
            loader: loader.clone(),
            kustomization: overlay.clone(),
            file_name: "(Render overlay)".into(),
            origin_dir: String::new(),
        };
        acc = overlay_target.accumulate_on(&mut ctx, acc, false)?;
        top.kustomization.sort_options = overlay
            .sort_options
            .clone()
            .or(top.kustomization.sort_options);
    }
    finish(&top, acc)
}

fn finish(top: &Target, mut acc: Accumulator) -> Result<ResMap> {
    transform::hash::add_hashes(&mut acc.resmap)?;
    transform::nameref::fix_back_references(&mut acc.resmap, &acc.config)?;
    transform::refvar::resolve_bound_vars(&mut acc.resmap, &acc.vars, &acc.config)?;
    acc.resmap.retain(|r| !r.is_local_config());
    transform::sort::apply(&mut acc.resmap, top.kustomization.sort_options.as_ref())?;
    let keep_origin = top
        .kustomization
        .build_metadata
        .iter()
        .any(|b| b == "originAnnotations");
    let keep_transformer = top
        .kustomization
        .build_metadata
        .iter()
        .any(|b| b == "transformerAnnotations");
    let managed_by = top
        .kustomization
        .build_metadata
        .iter()
        .any(|b| b == "managedByLabel");
    transform::origin::finalize(&mut acc.resmap, keep_origin, keep_transformer, managed_by)?;
    if acc.resmap.len() > top.loader.limits().max_objects {
        return Err(Error::Limit(format!(
            "the build produced {} objects, more than the limit of {}",
            acc.resmap.len(),
            top.loader.limits().max_objects
        )));
    }
    Ok(acc.resmap)
}

/// Builds and prints as `kustomize build` does.
pub fn build_yaml(
    dir: &Path,
    options: &BuildOptions,
    overlay: Option<&Kustomization>,
) -> Result<String> {
    let resmap = build(dir, options, overlay)?;
    Ok(to_yaml(&resmap))
}

/// Prints a result as `kustomize build` does (documents separated by `---`).
pub fn to_yaml(resmap: &ResMap) -> String {
    let docs: Vec<_> = resmap.resources().iter().map(|r| r.obj.clone()).collect();
    crate::yaml::to_yaml_stream(&docs)
}

/// Reads the kustomization file of a directory.
fn load_kustomization(loader: &Loader) -> Result<(Kustomization, String)> {
    let mut found = Vec::new();
    for name in KUSTOMIZATION_FILE_NAMES {
        let path = loader.root().join(name);
        if path.is_file() {
            found.push(name);
        }
    }
    let root = loader.display(loader.root());
    let name = match found.as_slice() {
        [] => {
            return Err(Error::Io {
                path: root,
                message: "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in the directory".into(),
            });
        }
        [one] => *one,
        _ => {
            return Err(Error::Invalid {
                what: "kustomization".into(),
                file: root,
                message: "found multiple kustomization files".into(),
            });
        }
    };
    let shown = loader.display(&loader.root().join(name));
    let text = loader.read_string(name)?;
    let docs = parse_documents_lenient(&text).map_err(|source| Error::Yaml {
        file: shown.clone(),
        source,
    })?;
    let value = docs.into_iter().next().unwrap_or(Value::Null);
    let mut k = Kustomization::from_value(&value, &shown)?;
    let kind = k.kind.clone().unwrap_or_default();
    if !kind.is_empty() && kind != "Kustomization" && kind != "Component" {
        return Err(Error::Invalid {
            what: "kustomization".into(),
            file: shown,
            message: "kind should be Kustomization or Component".into(),
        });
    }
    let required = if kind == "Component" {
        COMPONENT_API_VERSION
    } else {
        KUSTOMIZATION_API_VERSION
    };
    if let Some(v) = &k.api_version
        && !v.is_empty()
        && v != required
    {
        return Err(Error::Invalid {
            what: "kustomization".into(),
            file: shown,
            message: format!(
                "apiVersion for {} should be {required}",
                if kind.is_empty() {
                    "Kustomization"
                } else {
                    &kind
                }
            ),
        });
    }
    let bases = std::mem::take(&mut k.bases);
    k.resources.extend(bases);
    let tags = std::mem::take(&mut k.image_tags);
    k.images.extend(tags);
    for g in k
        .config_map_generator
        .iter_mut()
        .chain(k.secret_generator.iter_mut())
    {
        if !g.env.is_empty() {
            let env = std::mem::take(&mut g.env);
            g.envs.push(env);
        }
    }
    if !k.helm_charts.is_empty() || !k.helm_chart_inflation_generator.is_empty() {
        return Err(Error::Unsupported(format!(
            "helmCharts (in {shown}; render the chart into the repository instead)"
        )));
    }
    Ok((k, name.to_string()))
}

impl Target {
    /// Loads the kustomization in the loader's directory.
    pub fn load(loader: Loader) -> Result<Target> {
        let (kustomization, file_name) = load_kustomization(&loader)?;
        Ok(Target {
            loader,
            kustomization,
            file_name,
            origin_dir: String::new(),
        })
    }

    /// A directory without a kustomization file: every YAML file below it (Flux's behaviour);
    /// a subdirectory holding a kustomization file is included as a whole instead.
    pub fn plain_directory(loader: Loader) -> Result<Target> {
        let mut resources = Vec::new();
        collect_yaml(loader.root(), loader.root(), &mut resources)?;
        Ok(Target {
            loader,
            kustomization: Kustomization {
                resources,
                ..Kustomization::default()
            },
            file_name: "(generated)".into(),
            origin_dir: String::new(),
        })
    }

    fn shown_file(&self) -> String {
        self.loader
            .display(&self.loader.root().join(&self.file_name))
    }

    fn accumulate(&self, ctx: &mut Ctx, acc: Accumulator) -> Result<Accumulator> {
        self.accumulate_on(ctx, acc, false)
    }

    fn accumulate_on(
        &self,
        ctx: &mut Ctx,
        mut acc: Accumulator,
        _is_component: bool,
    ) -> Result<Accumulator> {
        let k = &self.kustomization;
        if ctx.stack.len() > 64 {
            return Err(Error::Limit(
                "kustomizations nest more than 64 levels deep".into(),
            ));
        }
        for entry in &k.resources {
            self.accumulate_resource(ctx, &mut acc, entry)
                .map_err(|e| e.context("accumulating resources"))?;
        }
        let mut config = TransformerConfig::builtin()?;
        for path in &k.configurations {
            let text = self.loader.read_string(path)?;
            let tc = TransformerConfig::parse(&text, path)?;
            config.merge(&tc);
        }
        for path in &k.crds {
            let tc = transform::crds::config_from_crd_file(&self.loader, path)?;
            config.merge(&tc);
        }
        acc.config.merge(&config);
        self.run_generators(&mut acc)?;
        for entry in &k.components {
            let dir = self
                .loader
                .resolve(entry)
                .map_err(|e| e.context(format!("accumulating components: loader.New {entry}")))?;
            if !dir.is_dir() {
                return Err(Error::Io {
                    path: entry.clone(),
                    message: "must build at directory: file is not directory".into(),
                }
                .context("accumulating components"));
            }
            let child = self.child_target_with_schema(ctx, &dir, entry)?;
            if !child.kustomization.is_component() {
                return Err(Error::Invalid {
                    what: "component".into(),
                    file: child.shown_file(),
                    message: format!(
                        "expected kind 'Component' but got '{}'",
                        child
                            .kustomization
                            .kind
                            .as_deref()
                            .unwrap_or("Kustomization")
                    ),
                }
                .context("accumulating components"));
            }
            ctx.stack.push(dir.clone());
            let result = child.accumulate_on(ctx, acc, true);
            ctx.stack.pop();
            acc = result.map_err(|e| {
                e.context(format!(
                    "accumulating components: recursed accumulation of path '{}'",
                    self.loader.display(&dir)
                ))
            })?;
        }
        let schema = ctx.schema();
        self.run_transformers(&mut acc, &schema)?;
        transform::refvar::merge_vars(&acc.resmap, &mut acc.vars, &k.vars)?;
        Ok(acc)
    }

    fn child_target(&self, ctx: &Ctx, dir: &Path, entry: &str) -> Result<Target> {
        if ctx.stack.iter().any(|d| d == dir) || dir == self.loader.root() {
            return Err(Error::Cycle(self.loader.display(dir)));
        }
        let loader = self.loader.child(dir)?;
        let mut child = Target::load(loader).map_err(|e| {
            e.context(format!(
                "couldn't make target for path '{}'",
                self.loader.display(dir)
            ))
        })?;
        child.origin_dir = transform::origin::join(&self.origin_dir, entry);
        Ok(child)
    }

    /// This kustomization file as origins name it (`configuredIn` of what it configures).
    fn origin_file(&self) -> String {
        transform::origin::join(&self.origin_dir, &self.file_name)
    }

    fn child_target_with_schema(&self, ctx: &mut Ctx, dir: &Path, entry: &str) -> Result<Target> {
        let child = self.child_target(ctx, dir, entry)?;
        ctx.set_schema(&child, false)?;
        Ok(child)
    }

    fn accumulate_resource(&self, ctx: &mut Ctx, acc: &mut Accumulator, entry: &str) -> Result<()> {
        let path = self
            .loader
            .resolve(entry)
            .map_err(|e| e.context(format!("accumulating resources from '{entry}'")))?;
        if path.is_dir() {
            let child = self
                .child_target_with_schema(ctx, &path, entry)
                .map_err(|e| e.context(format!("accumulating resources from '{entry}'")))?;
            if child.kustomization.is_component() {
                return Err(Error::Invalid {
                    what: "resource".into(),
                    file: self.loader.display(&path),
                    message: "expected kind != 'Component' (a Component belongs in `components:`)"
                        .into(),
                });
            }
            ctx.stack.push(path.clone());
            let sub = child.accumulate(ctx, Accumulator::default());
            ctx.stack.pop();
            let sub = sub.map_err(|e| {
                e.context(format!(
                    "recursed accumulation of path '{}'",
                    self.loader.display(&path)
                ))
            })?;
            acc.resmap.append_all(sub.resmap).map_err(|e| {
                e.context(format!(
                    "recursed merging from path '{}'",
                    self.loader.display(&path)
                ))
            })?;
            acc.config.merge(&sub.config);
            transform::refvar::append_vars(&mut acc.vars, sub.vars).map_err(|e| {
                e.context(format!(
                    "recursed merging from path '{}'",
                    self.loader.display(&path)
                ))
            })?;
            return Ok(());
        }
        let resources = self
            .load_resource_file(entry)
            .map_err(|e| e.context(format!("accumulating resources from '{entry}'")))?;
        for r in resources {
            acc.resmap
                .append(r)
                .map_err(|e| e.context(format!("merging resources from '{entry}'")))?;
        }
        Ok(())
    }

    /// Loads the objects of a resource file (restricted like every file read).
    pub fn load_resource_file(&self, entry: &str) -> Result<Vec<Resource>> {
        let path = self.loader.resolve_file(entry)?;
        let shown = self.loader.display(&path);
        let bytes = self.loader.read_path(&path)?;
        let text = String::from_utf8(bytes).map_err(|_| Error::Io {
            path: shown.clone(),
            message: "file is not valid UTF-8".into(),
        })?;
        let origin =
            transform::origin::file_origin(&transform::origin::join(&self.origin_dir, entry));
        resources_from_text(&text, &shown).map(|mut rs| {
            for r in &mut rs {
                r.origin = Some(origin.clone());
            }
            rs
        })
    }

    fn run_generators(&self, acc: &mut Accumulator) -> Result<()> {
        let k = &self.kustomization;
        let global = k.generator_options.as_ref();
        let mut generated = Vec::new();
        for args in &k.config_map_generator {
            generated.push(crate::generators::make_config_map(
                &self.loader,
                args,
                global,
            )?);
        }
        for args in &k.secret_generator {
            generated.push(crate::generators::make_secret(&self.loader, args, global)?);
        }
        // The generators name this kustomization file relative to its own directory.
        for r in &mut generated {
            if let Some(o) = r.origin.as_mut() {
                o.path = transform::origin::join(&self.origin_dir, &o.path);
            }
        }
        for config in self.plugin_config_list(&k.generators)? {
            let out = transform::plugins::generate(&self.loader, &config)?;
            generated.extend(out);
        }
        for r in generated {
            absorb(&mut acc.resmap, r).map_err(|e| e.context("merging from generator"))?;
        }
        Ok(())
    }

    /// The plugin configurations of a `generators:`/`transformers:` list in kustomize's order:
    /// every inline configuration first, then those from files and directories.
    fn plugin_config_list(&self, entries: &[String]) -> Result<Vec<Resource>> {
        let (inline, paths): (Vec<&String>, Vec<&String>) =
            entries.iter().partition(|e| e.contains('\n'));
        let mut configs = Vec::new();
        for entry in inline.into_iter().chain(paths) {
            configs.extend(self.plugin_configs(entry)?);
        }
        Ok(configs)
    }

    /// The plugin configurations named by a `generators:`/`transformers:` entry: inline YAML,
    /// a file, or a kustomization directory whose output is the configurations.
    fn plugin_configs(&self, entry: &str) -> Result<Vec<Resource>> {
        if entry.contains('\n') {
            let origin = transform::origin::file_origin(&self.origin_file());
            let mut configs = resources_from_text(entry, &self.shown_file())?;
            for c in &mut configs {
                c.origin = Some(origin.clone());
            }
            return Ok(configs);
        }
        let path = self.loader.resolve(entry)?;
        if path.is_dir() {
            let loader = self.loader.child(&path)?;
            let mut target = Target::load(loader)?;
            target.origin_dir = transform::origin::join(&self.origin_dir, entry);
            let mut ctx = Ctx::new();
            let acc = target.accumulate(&mut ctx, Accumulator::default())?;
            return Ok(acc.resmap.into_resources());
        }
        self.load_resource_file(entry)
    }

    fn run_transformers(&self, acc: &mut Accumulator, schema: &crate::patch::Schema) -> Result<()> {
        let k = &self.kustomization;
        let tc = acc.config.clone();
        // Every builtin transformer instance kustomize configures from this kustomization is
        // recorded in the transformations of the objects present when it ran.
        let configured_in = self.origin_file();
        let mark = |m: &mut ResMap, kind: &str| {
            transform::origin::record_transformation(
                m,
                &transform::origin::builtin_origin(&configured_in, kind),
            );
        };
        if !k.patches_strategic_merge.is_empty() {
            transform::patches::strategic_merge_list(
                &self.loader,
                &mut acc.resmap,
                &k.patches_strategic_merge,
                schema,
            )?;
            mark(&mut acc.resmap, "PatchStrategicMergeTransformer");
        }
        for p in &k.patches {
            transform::patches::patch(&self.loader, &mut acc.resmap, p, schema)?;
            mark(&mut acc.resmap, "PatchTransformer");
        }
        if let Some(ns) = k.namespace.as_deref().filter(|ns| !ns.is_empty()) {
            transform::builtins::namespace(&mut acc.resmap, ns, &tc.namespace, false, "")?;
            mark(&mut acc.resmap, "NamespaceTransformer");
        }
        if let Some(prefix) = k.name_prefix.as_deref().filter(|p| !p.is_empty()) {
            transform::builtins::prefix(&mut acc.resmap, prefix, &tc.name_prefix)?;
            mark(&mut acc.resmap, "PrefixTransformer");
        }
        if let Some(suffix) = k.name_suffix.as_deref().filter(|p| !p.is_empty()) {
            transform::builtins::suffix(&mut acc.resmap, suffix, &tc.name_suffix)?;
            mark(&mut acc.resmap, "SuffixTransformer");
        }
        for label in &k.labels {
            let mut specs = label.fields.clone();
            transform::config::merge_fs(&mut specs, &tc.labels);
            if label.include_selectors {
                transform::config::merge_fs(&mut specs, &tc.common_labels);
            } else {
                if label.include_templates {
                    transform::config::merge_fs(&mut specs, &tc.template_labels);
                }
                transform::config::merge_fs(
                    &mut specs,
                    &[crate::kustomization::FieldSpec {
                        path: "metadata/labels".into(),
                        create: true,
                        ..Default::default()
                    }],
                );
            }
            transform::builtins::labels(&mut acc.resmap, &label.pairs, &specs)?;
            mark(&mut acc.resmap, "LabelTransformer");
        }
        transform::builtins::labels(&mut acc.resmap, &k.common_labels, &tc.common_labels)?;
        // kustomize configures the commonLabels instance whenever `labels` or `commonLabels`
        // is set, even when commonLabels is empty.
        if !k.labels.is_empty() || !k.common_labels.is_empty() {
            mark(&mut acc.resmap, "LabelTransformer");
        }
        transform::builtins::annotations(
            &mut acc.resmap,
            &k.common_annotations,
            &tc.common_annotations,
        )?;
        if !k.common_annotations.is_empty() {
            mark(&mut acc.resmap, "AnnotationsTransformer");
        }
        for p in &k.patches_json6902 {
            transform::patches::json6902_entry(&self.loader, &mut acc.resmap, p)?;
            mark(&mut acc.resmap, "PatchJson6902Transformer");
        }
        for r in &k.replicas {
            transform::builtins::replicas(&mut acc.resmap, r, &tc.replicas)?;
            mark(&mut acc.resmap, "ReplicaCountTransformer");
        }
        for img in &k.images {
            transform::builtins::images(&mut acc.resmap, img, &tc.images)?;
            mark(&mut acc.resmap, "ImageTagTransformer");
        }
        if !k.replacements.is_empty() {
            transform::replacement::apply_fields(&self.loader, &mut acc.resmap, &k.replacements)?;
            mark(&mut acc.resmap, "ReplacementTransformer");
        }
        for config in self.plugin_config_list(&k.transformers)? {
            transform::plugins::transform_with_schema(
                &self.loader,
                &mut acc.resmap,
                &config,
                schema,
            )?;
        }
        Ok(())
    }
}

/// Adds a generated resource, honouring its behavior (create / merge / replace).
pub fn absorb(m: &mut ResMap, mut r: Resource) -> Result<()> {
    let id = r.cur_id();
    let matches = m.find_by_any_id(&id);
    match matches.as_slice() {
        [] => match r.behavior {
            Behavior::Merge | Behavior::Replace => Err(Error::msg(format!(
                "id {id} does not exist; cannot merge or replace"
            ))),
            Behavior::Create => m.append(r),
        },
        [index] => {
            let old = m.resources()[*index].clone();
            match r.behavior {
                Behavior::Create => {
                    return Err(Error::msg(format!(
                        "id {id} exists; behavior must be merge or replace"
                    )));
                }
                Behavior::Replace => {
                    copy_merge_metadata(&mut r, &old);
                    if r.origin.is_none() {
                        r.origin = old.origin.clone();
                    }
                }
                Behavior::Merge => {
                    copy_merge_metadata(&mut r, &old);
                    for field in ["data", "binaryData"] {
                        merge_string_map_field(&mut r.obj, &old.obj, field);
                    }
                    if old.origin.is_some() {
                        r.origin = old.origin.clone();
                    }
                }
            }
            m.resources_mut()[*index] = r;
            Ok(())
        }
        _ => Err(Error::msg(format!(
            "found multiple objects that could accept merge of {id}"
        ))),
    }
}

fn copy_merge_metadata(r: &mut Resource, old: &Resource) {
    for field in ["labels", "annotations"] {
        let mut merged = crate::yaml::Map::new();
        if let Some(m) = old
            .obj
            .get_path(&["metadata", field])
            .and_then(Value::as_map)
        {
            merged.extend(m.clone());
        }
        if let Some(m) = r.obj.get_path(&["metadata", field]).and_then(Value::as_map) {
            merged.extend(m.clone());
        }
        if let Some(meta) = r.metadata_mut() {
            if merged.is_empty() {
                meta.shift_remove(field);
            } else {
                meta.insert(field.into(), Value::Map(merged));
            }
        }
    }
    let name = old.name().to_string();
    let ns = old.namespace().to_string();
    r.set_name(&name);
    if ns.is_empty() {
        if let Some(meta) = r.metadata_mut() {
            meta.shift_remove("namespace");
        }
    } else {
        r.set_namespace(&ns);
    }
    r.needs_hash = r.needs_hash && old.needs_hash;
    r.previous = old.previous.clone();
    r.prefixes = old.prefixes.clone();
    r.suffixes = old.suffixes.clone();
    r.ref_by = old.ref_by.clone();
    // The annotations merge keeps the transformations recorded on the old object.
    if r.transformations.is_empty() {
        r.transformations = old.transformations.clone();
    }
}

fn merge_string_map_field(into: &mut Value, from: &Value, field: &str) {
    let mut merged = crate::yaml::Map::new();
    if let Some(m) = from.get(field).and_then(Value::as_map) {
        merged.extend(m.clone());
    }
    if let Some(m) = into.get(field).and_then(Value::as_map) {
        merged.extend(m.clone());
    }
    if let Some(map) = into.as_map_mut() {
        if merged.is_empty() {
            map.shift_remove(field);
        } else {
            map.insert(field.into(), Value::Map(merged));
        }
    }
}

/// Decodes the objects of a YAML stream: empty documents are skipped, `List` kinds are
/// flattened into their items.
pub fn resources_from_text(text: &str, shown: &str) -> Result<Vec<Resource>> {
    let docs = parse_documents(text).map_err(|source| Error::Yaml {
        file: shown.to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for doc in docs {
        push_object(doc, shown, &mut out)?;
    }
    Ok(out)
}

fn push_object(doc: Value, shown: &str, out: &mut Vec<Resource>) -> Result<()> {
    match doc {
        Value::Null => Ok(()),
        Value::Map(ref m) if m.is_empty() => Ok(()),
        Value::Map(_) => {
            let kind = doc.str_at(&["kind"]).unwrap_or("");
            if kind.ends_with("List") && doc.get("items").is_some() {
                if let Some(Value::Seq(items)) = doc.get("items") {
                    for item in items.clone() {
                        push_object(item, shown, out)?;
                    }
                }
                return Ok(());
            }
            if kind.is_empty() {
                return Err(Error::Invalid {
                    what: "resource".into(),
                    file: shown.to_string(),
                    message: "missing Resource metadata: an object has no 'kind'".into(),
                });
            }
            let mut doc = doc;
            stringify_metadata_maps(&mut doc);
            out.push(Resource::new(doc));
            Ok(())
        }
        Value::Seq(items) => {
            for item in items {
                push_object(item, shown, out)?;
            }
            Ok(())
        }
        other => Err(Error::Invalid {
            what: "resource".into(),
            file: shown.to_string(),
            message: format!("expected an object, found a {}", other.type_name()),
        }),
    }
}

/// kustomize reads labels and annotations as string maps: `port: 8080` becomes `"8080"`.
fn stringify_metadata_maps(doc: &mut Value) {
    for field in ["labels", "annotations"] {
        if let Some(Value::Map(m)) = doc.get_path_mut(&["metadata", field]) {
            for v in m.values_mut() {
                if !matches!(v, Value::String(_) | Value::Map(_) | Value::Seq(_)) {
                    let s = if v.is_null() {
                        String::new()
                    } else {
                        v.scalar_string().unwrap_or_default()
                    };
                    *v = Value::String(s);
                }
            }
        }
    }
}

fn collect_yaml(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::Io {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().to_string())
            .unwrap_or_default();
        if ft.is_dir() {
            if KUSTOMIZATION_FILE_NAMES
                .iter()
                .any(|k| path.join(k).is_file())
            {
                out.push(rel);
            } else {
                collect_yaml(root, &path, out)?;
            }
        } else if ft.is_file() && (name.ends_with(".yaml") || name.ends_with(".yml")) {
            out.push(rel);
        }
    }
    Ok(())
}
