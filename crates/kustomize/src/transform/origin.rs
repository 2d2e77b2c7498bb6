//! Origin bookkeeping and end-of-build metadata (`buildMetadata`): the
//! `config.kubernetes.io/origin` and `alpha.config.kubernetes.io/transformations` annotations and
//! the `app.kubernetes.io/managed-by` label.
//!
//! kustomize (v5.5) tracks origins only when the top kustomization lists any `buildMetadata`
//! option, keeping them as annotations on the objects while it builds. This engine always keeps
//! them beside the objects ([`Resource::origin`], [`Resource::transformations`]) and writes the
//! annotations at the end, which gives the same output:
//!
//! - an object read from a file has `path`: the file as written in the kustomization, joined
//!   (and lexically cleaned, like Go's `filepath.Join`) onto the directories the build walked
//!   through from the top kustomization (`../base/service.yaml`);
//! - an object made by `configMapGenerator`/`secretGenerator` has `configuredIn` (that
//!   kustomization file, joined the same way) and `configuredBy` (`builtin` and the generator's
//!   kind); one made by a plugin configuration (`generators:`) has `configuredIn` where the
//!   configuration came from (its file, or the kustomization file for an inline one) and
//!   `configuredBy` the configuration's apiVersion, kind, name and namespace
//!   ([`plugin_origin`]);
//! - after every transformer kustomize would run (one per builtin transformer instance, one per
//!   plugin configuration), every object present gets that transformer's origin appended to its
//!   transformations; an object without an origin takes it as its origin instead
//!   ([`record_transformation`]).
//!
//! At the end ([`finalize`], after the sort, as `kustomize build` does) the managed-by label is
//! added, and each annotation is written when its option is listed; when it is not, the
//! annotation is removed even if an input file carried it, and an emptied `annotations` mapping
//! is dropped (kustomize's `RemoveOriginAnnotations`/`RemoveTransformerAnnotations`).

use super::builtins;
use crate::error::Result;
use crate::kustomization::{FieldSpec, StringMap};
use crate::resmap::ResMap;
use crate::resource::{Origin, Resource};
use crate::yaml::{Map, Value};

/// The origin annotation.
pub const ORIGIN_ANNOTATION: &str = "config.kubernetes.io/origin";
/// The transformations annotation.
pub const TRANSFORMATIONS_ANNOTATION: &str = "alpha.config.kubernetes.io/transformations";
/// The managed-by label key.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The managed-by label value kustomize v5.5.0 writes.
pub const MANAGED_BY_VALUE: &str = "kustomize-v5.5.0";

/// `configuredBy.namespace` of an origin (the namespace of the plugin configuration object).
fn configured_by_namespace(o: &Origin) -> &str {
    &o.config_namespace
}

/// Sets `configuredBy.namespace`.
fn set_configured_by_namespace(o: &mut Origin, namespace: &str) {
    o.config_namespace = namespace.to_string();
}

/// Go's `filepath.Join(base, path)` (lexically cleaned; empty parts are skipped, and joining
/// nothing but empty parts gives `""`).
pub fn join(base: &str, path: &str) -> String {
    let joined = match (base.is_empty(), path.is_empty()) {
        (true, true) => return String::new(),
        (true, false) => path.to_string(),
        (false, true) => base.to_string(),
        (false, false) => format!("{base}/{path}"),
    };
    clean(&joined)
}

/// Go's `filepath.Clean` on a slash-separated path.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// An origin with these fields (and every other one empty); written so that it keeps compiling
/// when [`Origin`] grows fields.
fn make_origin(path: String, config_ref: Option<(String, String, String)>) -> Origin {
    fill(Origin::default(), path, config_ref)
}

fn fill(mut o: Origin, path: String, config_ref: Option<(String, String, String)>) -> Origin {
    o.path = path;
    o.config_ref = config_ref;
    o
}

/// The origin of an object read from a file: `path` only.
pub fn file_origin(path: &str) -> Origin {
    make_origin(path.to_string(), None)
}

/// The origin of a builtin generator or transformer configured by a kustomization field:
/// `configuredIn` the kustomization file, `configuredBy` `builtin` and `kind`.
pub fn builtin_origin(configured_in: &str, kind: &str) -> Origin {
    make_origin(
        configured_in.to_string(),
        Some(("builtin".into(), kind.into(), String::new())),
    )
}

/// The origin of what a plugin configuration object generates or transforms (kustomize's
/// `OriginFromCustomPlugin`): `configuredIn` is where the configuration came from and
/// `configuredBy` names the configuration object. `None` when the configuration's own origin
/// is unknown.
pub fn plugin_origin(config: &Resource) -> Option<Origin> {
    let from = config.origin.as_ref()?;
    let mut o = make_origin(
        from.path.clone(),
        Some((
            config.api_version().to_string(),
            config.kind().to_string(),
            config.name().to_string(),
        )),
    );
    set_configured_by_namespace(&mut o, config.namespace());
    Some(o)
}

/// Gives `origin` to every resource of `resources` that has none (kustomize's
/// `AddOriginAnnotation`, used for what a generator made).
pub fn set_missing_origin(resources: &mut [Resource], origin: Option<&Origin>) {
    let Some(origin) = origin else { return };
    for r in resources {
        if r.origin.is_none() {
            r.origin = Some(origin.clone());
        }
    }
}

/// Records that a transformer with `origin` ran over every resource of `m` (kustomize's
/// `AddTransformerAnnotation`): appended to each resource's transformations, or taken as the
/// origin of a resource that has none.
pub fn record_transformation(m: &mut ResMap, origin: &Origin) {
    for r in m.resources_mut() {
        if r.origin.is_none() {
            r.origin = Some(origin.clone());
        } else {
            r.transformations.push(origin.clone());
        }
    }
}

/// The text of the origin annotation for `o` (yaml.v3's rendering of kustomize's `Origin`).
pub fn origin_yaml(o: &Origin) -> String {
    let mut out = String::new();
    write_origin(&mut out, o, "", "");
    if out.is_empty() {
        out.push_str("{}\n");
    }
    out
}

/// The text of the transformations annotation for `list`.
pub fn transformations_yaml(list: &[Origin]) -> String {
    if list.is_empty() {
        return "[]\n".into();
    }
    let mut out = String::new();
    for o in list {
        let before = out.len();
        write_origin(&mut out, o, "- ", "  ");
        if out.len() == before {
            out.push_str("- {}\n");
        }
    }
    out
}

/// Writes the fields of an origin in kustomize's struct order (path, repo, ref, configuredIn,
/// configuredBy), each omitted when empty. The first line starts with `first`, the others with
/// `rest`.
fn write_origin(out: &mut String, o: &Origin, first: &str, rest: &str) {
    let mut lines: Vec<String> = Vec::new();
    match &o.config_ref {
        None => {
            if !o.path.is_empty() {
                lines.push(format!("path: {}", scalar(&o.path)));
            }
        }
        Some((api_version, kind, name)) => {
            if !o.path.is_empty() {
                lines.push(format!("configuredIn: {}", scalar(&o.path)));
            }
            let namespace = configured_by_namespace(o);
            let by: Vec<(&str, &str)> = [
                ("apiVersion", api_version.as_str()),
                ("kind", kind.as_str()),
                ("name", name.as_str()),
                ("namespace", namespace),
            ]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
            if !by.is_empty() {
                lines.push("configuredBy:".into());
                for (k, v) in by {
                    lines.push(format!("  {k}: {}", scalar(v)));
                }
            }
        }
    }
    for (i, line) in lines.iter().enumerate() {
        out.push_str(if i == 0 { first } else { rest });
        out.push_str(line);
        out.push('\n');
    }
}

/// A string scalar as yaml.v3 prints it in block context: plain when that reads back as the
/// same string, otherwise single-quoted, or double-quoted when it would resolve to another type
/// or holds characters only double quotes can carry.
fn scalar(s: &str) -> String {
    if s.chars().any(|c| c.is_control() && c != '\t') || s.contains('\t') {
        return double_quoted(s);
    }
    if resolves_to_non_string(s) {
        return double_quoted(s);
    }
    if plain_allowed(s) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "''"))
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether yaml.v3 would read the plain scalar as something other than a string (or refuses
/// to print it plain: YAML 1.1 booleans and base-60 numbers).
fn resolves_to_non_string(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    const WORDS: [&str; 32] = [
        "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "y", "Y",
        "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", ".nan", ".NaN", "<<",
    ];
    if WORDS.contains(&s) || matches!(s, "-.inf" | "-.Inf" | "-.INF" | "+.inf" | "+.Inf" | "+.INF")
    {
        return true;
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    if body.is_empty() {
        return false;
    }
    let digits = body.replace('_', "");
    if digits.chars().all(|c| c.is_ascii_digit()) && !digits.is_empty() {
        return true;
    }
    for prefix in ["0x", "0o", "0b"] {
        if let Some(rest) = body.strip_prefix(prefix)
            && !rest.is_empty()
            && rest.chars().all(|c| c.is_ascii_hexdigit() || c == '_')
        {
            return true;
        }
    }
    if body.parse::<f64>().is_ok()
        && body
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.')
    {
        return true;
    }
    // Base-60 numbers (`1:20`).
    let mut parts = body.split(':');
    let head = parts.next().unwrap_or("");
    let rest: Vec<&str> = parts.collect();
    !rest.is_empty()
        && !head.is_empty()
        && head.chars().all(|c| c.is_ascii_digit() || c == '_')
        && rest.iter().enumerate().all(|(i, p)| {
            let p = if i + 1 == rest.len() {
                p.split_once('.').map_or(*p, |(a, _)| a)
            } else {
                p
            };
            !p.is_empty() && p.len() <= 2 && p.chars().all(|c| c.is_ascii_digit())
        })
}

/// Whether the emitter may print `s` as a plain scalar in block context.
fn plain_allowed(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.starts_with(' ') || s.ends_with(' ') {
        return false;
    }
    let second = s.chars().nth(1);
    let followed_by_blank = second.is_none_or(|c| c == ' ');
    if matches!(
        first,
        '#' | ','
            | '['
            | ']'
            | '{'
            | '}'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
    ) {
        return false;
    }
    if matches!(first, '-' | '?' | ':') && followed_by_blank {
        return false;
    }
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    !(s.contains(": ") || s.contains(" #") || s.ends_with(':'))
}

/// Applies `buildMetadata` options to the final objects, after the sort (kustomize's
/// `Kustomizer.Run`): the managed-by label, then the origin and transformations annotations,
/// each written when asked for and removed otherwise.
pub fn finalize(
    m: &mut ResMap,
    keep_origin: bool,
    keep_transformer: bool,
    managed_by: bool,
) -> Result<()> {
    if managed_by {
        let mut labels = StringMap::new();
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into());
        let fs = FieldSpec {
            path: "metadata/labels".into(),
            create: true,
            ..FieldSpec::default()
        };
        builtins::labels(m, &labels, std::slice::from_ref(&fs))?;
    }
    for r in m.resources_mut() {
        if keep_origin {
            if let Some(o) = &r.origin {
                let text = origin_yaml(o);
                set_annotation(r, ORIGIN_ANNOTATION, text);
            }
        } else {
            remove_annotation(r, ORIGIN_ANNOTATION);
        }
        if keep_transformer {
            if !r.transformations.is_empty() {
                let text = transformations_yaml(&r.transformations);
                set_annotation(r, TRANSFORMATIONS_ANNOTATION, text);
            }
        } else {
            remove_annotation(r, TRANSFORMATIONS_ANNOTATION);
        }
    }
    Ok(())
}

fn set_annotation(r: &mut Resource, key: &str, value: String) {
    let Some(meta) = r.metadata_mut() else { return };
    let slot = meta
        .entry("annotations".to_string())
        .or_insert_with(|| Value::Map(Map::new()));
    if !matches!(slot, Value::Map(_)) {
        *slot = Value::Map(Map::new());
    }
    if let Value::Map(annotations) = slot {
        annotations.insert(key.to_string(), Value::String(value));
    }
}

/// kustomize's `SetAnnotations(GetAnnotations() minus key)`: the key goes, and an annotations
/// mapping left empty (or null) is removed.
fn remove_annotation(r: &mut Resource, key: &str) {
    let Some(meta) = r.metadata_mut() else { return };
    let empty = match meta.get_mut("annotations") {
        None => return,
        Some(Value::Map(annotations)) => {
            annotations.shift_remove(key);
            annotations.is_empty()
        }
        Some(Value::Null) => true,
        Some(_) => false,
    };
    if empty {
        meta.shift_remove("annotations");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_one;

    #[test]
    fn joins_like_go_filepath_join() {
        assert_eq!(join("", "service.yaml"), "service.yaml");
        assert_eq!(
            join("../base", "kustomization.yaml"),
            "../base/kustomization.yaml"
        );
        assert_eq!(join("./a", "./b.yaml"), "a/b.yaml");
        assert_eq!(join("../base", "../other/x.yaml"), "../other/x.yaml");
        assert_eq!(join("a/b", ".."), "a");
        assert_eq!(join("a", ".."), ".");
        assert_eq!(join("", ""), "");
        assert_eq!(join("../../x", "../y"), "../../y");
        assert_eq!(join("/abs", "../x"), "/x");
    }

    // Annotation texts recorded from `kubectl kustomize` (kustomize v5.5.0).
    #[test]
    fn prints_origins_like_kustomize() {
        assert_eq!(
            origin_yaml(&file_origin("service.yaml")),
            "path: service.yaml\n"
        );
        assert_eq!(
            origin_yaml(&builtin_origin(
                "../base/kustomization.yaml",
                "ConfigMapGenerator"
            )),
            "configuredIn: ../base/kustomization.yaml\nconfiguredBy:\n  apiVersion: builtin\n  kind: ConfigMapGenerator\n"
        );
        let mut named = builtin_origin("configmap.yaml", "ConfigMapGenerator");
        named.config_ref = Some((
            "builtin".into(),
            "ConfigMapGenerator".into(),
            "notImportantHere".into(),
        ));
        assert_eq!(
            origin_yaml(&named),
            "configuredIn: configmap.yaml\nconfiguredBy:\n  apiVersion: builtin\n  kind: ConfigMapGenerator\n  name: notImportantHere\n"
        );
        assert_eq!(
            transformations_yaml(&[
                builtin_origin("../base/kustomization.yaml", "PrefixTransformer"),
                builtin_origin("kustomization.yaml", "PrefixTransformer"),
            ]),
            "- configuredIn: ../base/kustomization.yaml\n  configuredBy:\n    apiVersion: builtin\n    kind: PrefixTransformer\n\
             - configuredIn: kustomization.yaml\n  configuredBy:\n    apiVersion: builtin\n    kind: PrefixTransformer\n"
        );
    }

    #[test]
    fn quotes_scalars_like_yaml_v3() {
        assert_eq!(scalar("a.yaml"), "a.yaml");
        assert_eq!(scalar("../x/y.yaml"), "../x/y.yaml");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("y"), "\"y\"");
        assert_eq!(scalar("123"), "\"123\"");
        assert_eq!(scalar("1.5"), "\"1.5\"");
        assert_eq!(scalar("a: b"), "'a: b'");
        assert_eq!(scalar("#x"), "'#x'");
        assert_eq!(scalar("-x"), "-x");
        assert_eq!(scalar(""), "\"\"");
    }

    fn resource(text: &str) -> Resource {
        Resource::new(parse_one(text).unwrap())
    }

    // Recorded from `kubectl kustomize` (kustomize v5.5.0): without `buildMetadata`, origin and
    // transformations annotations in the input are removed and an emptied (or empty)
    // `annotations` mapping goes with them; `labels: {}` stays.
    #[test]
    fn removes_unrequested_annotations_and_empty_maps() {
        let mut m = ResMap::new();
        m.push_unchecked(resource(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  annotations: {}\n  labels: {}\n",
        ));
        m.push_unchecked(resource(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  annotations:\n    config.kubernetes.io/origin: 'path: foo'\n    alpha.config.kubernetes.io/transformations: bar\n",
        ));
        finalize(&mut m, false, false, false).unwrap();
        assert_eq!(
            crate::build::to_yaml(&m),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {}\n  name: x\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"y\"\n"
        );
    }

    #[test]
    fn writes_requested_annotations_and_label() {
        let mut m = ResMap::new();
        let mut r = resource("apiVersion: v1\nkind: Service\nmetadata:\n  name: myService\n");
        r.origin = Some(file_origin("service.yaml"));
        m.push_unchecked(r);
        record_transformation(
            &mut m,
            &builtin_origin("kustomization.yaml", "PrefixTransformer"),
        );
        finalize(&mut m, true, true, true).unwrap();
        assert_eq!(
            crate::build::to_yaml(&m),
            "apiVersion: v1\nkind: Service\nmetadata:\n  annotations:\n    alpha.config.kubernetes.io/transformations: |\n      - configuredIn: kustomization.yaml\n        configuredBy:\n          apiVersion: builtin\n          kind: PrefixTransformer\n    config.kubernetes.io/origin: |\n      path: service.yaml\n  labels:\n    app.kubernetes.io/managed-by: kustomize-v5.5.0\n  name: myService\n"
        );
    }

    #[test]
    fn transformation_without_origin_becomes_the_origin() {
        let mut m = ResMap::new();
        m.push_unchecked(resource(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n",
        ));
        let o = builtin_origin("kustomization.yaml", "NamespaceTransformer");
        record_transformation(&mut m, &o);
        assert_eq!(m.resources()[0].origin.as_ref(), Some(&o));
        assert!(m.resources()[0].transformations.is_empty());
    }
}
