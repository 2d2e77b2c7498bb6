//! `configMapGenerator` and `secretGenerator`, and the content hash kustomize appends to the names
//! of generated objects.
//!
//! Semantics follow kustomize v5.5 (`api/kv`, `api/internal/generators`, `api/hasher`,
//! `types.MergeGlobalOptionsIntoLocal`):
//!
//! - Key/value pairs come from `envs` (then the older singular `env`), then `literals`, then
//!   `files`; a key seen twice is an error.
//! - A literal is `key=value`, split at the first `=`; a value wrapped in a matching pair of `"` or
//!   `'` loses that pair, nothing else is unquoted. A missing or leading `=` is an error.
//! - An env file is read line by line: leading whitespace is dropped, blank lines and `#` lines
//!   are skipped, a UTF-8 BOM is dropped from the first line, `\r\n` endings are accepted, the key
//!   is everything before the first `=` and the value everything after it (no unquoting, trailing
//!   whitespace kept), and a line without `=` gives its key an empty value.
//! - A file source is `path` (the key is the path's base name) or `key=path`; a directory is an
//!   error. In a ConfigMap, content that is not UTF-8 goes to `binaryData`, base64-encoded.
//! - Secret values are base64-encoded; encodings of 70 characters or more are broken into lines
//!   of 70, each followed by a newline, exactly as kustomize does.
//! - kustomize v5.5 validates neither keys nor env variable names (its validator is a no-op), and
//!   an unknown `behavior` is treated as `create`; both are reproduced here.

use std::collections::HashSet;
use std::fmt::Write as _;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::kustomization::{GeneratorArgs, GeneratorOptions, KUSTOMIZATION_FILE_NAMES, StringMap};
use crate::loader::Loader;
use crate::resource::{Behavior, Origin, Resource};
use crate::yaml::{Map, Value};

/// Makes a ConfigMap from generator arguments. `global` is the kustomization's `generatorOptions`.
///
/// The object's name is the plain `name` (no hash yet); [`Resource::needs_hash`] says whether
/// [`content_hash`] must be appended at the end of the build. [`Resource::origin`] is set as
/// kustomize's `originAnnotations` describe a generated object: `configuredBy` is
/// `builtin`/`ConfigMapGenerator`, and `path` (kustomize's `configuredIn`) is the kustomization
/// file's name, relative to the generator's kustomization directory — the build prefixes it with
/// that directory's path from the build root.
pub fn make_config_map(
    loader: &Loader,
    args: &GeneratorArgs,
    global: Option<&GeneratorOptions>,
) -> Result<Resource> {
    make(loader, args, global, Kind::ConfigMap)
}

/// Makes a Secret from generator arguments. `global` is the kustomization's `generatorOptions`.
///
/// Like [`make_config_map`]; the Secret's `type` defaults to `Opaque` and every value is
/// base64-encoded into `data` (which is present even when empty).
pub fn make_secret(
    loader: &Loader,
    args: &GeneratorArgs,
    global: Option<&GeneratorOptions>,
) -> Result<Resource> {
    make(loader, args, global, Kind::Secret)
}

/// kustomize's content hash of a ConfigMap or Secret (the 10-character name suffix).
///
/// As in kustomize v5.5, the hash covers `kind`, `data` and `binaryData` (ConfigMap, when it is
/// a mapping) or `kind`, `type`, `data` and `stringData` (Secret, when it is a mapping). kustomize
/// also means to hash `metadata.name` but looks it up under a key literally named
/// `metadata/name`, so the name always hashes as `""`; this is reproduced. Other kinds are an
/// error: kustomize only hashes them for generator plugins, which this engine does not run.
pub fn content_hash(obj: &Value) -> Result<String> {
    let kind = obj.str_at(&["kind"]).unwrap_or("");
    let mut fields = Map::new();
    match kind {
        "ConfigMap" => {
            fields.insert("kind".into(), Value::from("ConfigMap"));
            fields.insert("name".into(), Value::from(""));
            fields.insert("data".into(), hashed_field(obj.get("data")));
            if let Some(v) = obj.get("binaryData")
                && !is_scalar(v)
            {
                fields.insert("binaryData".into(), hashed_field(Some(v)));
            }
        }
        "Secret" => {
            fields.insert("kind".into(), Value::from("Secret"));
            fields.insert("type".into(), hashed_field(obj.get("type")));
            fields.insert("name".into(), Value::from(""));
            fields.insert("data".into(), hashed_field(obj.get("data")));
            if let Some(v) = obj.get("stringData")
                && !is_scalar(v)
            {
                fields.insert("stringData".into(), hashed_field(Some(v)));
            }
        }
        other => {
            return Err(Error::msg(format!(
                "cannot compute the name suffix hash of a {}: only ConfigMaps and Secrets are hashed",
                if other.is_empty() {
                    "object without a kind"
                } else {
                    other
                }
            )));
        }
    }
    let mut encoded = String::new();
    go_json(&Value::Map(fields), &mut encoded)?;
    Ok(encode_hash(&Sha256::digest(encoded.as_bytes())))
}

/// Which generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ConfigMap,
    Secret,
}

impl Kind {
    fn kind(self) -> &'static str {
        match self {
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
        }
    }

    /// The kustomization field, for messages.
    fn field(self) -> &'static str {
        match self {
            Kind::ConfigMap => "configMapGenerator",
            Kind::Secret => "secretGenerator",
        }
    }

    /// The builtin plugin's kind (origin annotations).
    fn plugin(self) -> &'static str {
        match self {
            Kind::ConfigMap => "ConfigMapGenerator",
            Kind::Secret => "SecretGenerator",
        }
    }

    /// The word kustomize-like messages use for the object.
    fn noun(self) -> &'static str {
        match self {
            Kind::ConfigMap => "configmap",
            Kind::Secret => "secret",
        }
    }
}

/// `generatorOptions` merged into a generator's own `options`.
#[derive(Debug, Default, PartialEq)]
struct MergedOptions {
    labels: StringMap,
    annotations: StringMap,
    disable_name_suffix_hash: bool,
    immutable: bool,
}

/// kustomize's `MergeGlobalOptionsIntoLocal`: labels and annotations are the union with the
/// generator's own values winning; a `true` boolean on either side wins (a local `false` cannot
/// override a global `true`).
fn merge_options(
    local: Option<&GeneratorOptions>,
    global: Option<&GeneratorOptions>,
) -> MergedOptions {
    let mut merged = MergedOptions::default();
    if let Some(local) = local {
        merged.labels = local.labels.clone();
        merged.annotations = local.annotations.clone();
        merged.disable_name_suffix_hash = local.disable_name_suffix_hash.unwrap_or(false);
        merged.immutable = local.immutable;
    }
    if let Some(global) = global {
        for (k, v) in &global.labels {
            merged.labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &global.annotations {
            merged
                .annotations
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        if global.disable_name_suffix_hash == Some(true) {
            merged.disable_name_suffix_hash = true;
        }
        if global.immutable {
            merged.immutable = true;
        }
    }
    merged
}

/// A loaded value: text, or file content that is not UTF-8.
#[derive(Debug, Clone, PartialEq)]
enum Content {
    Text(String),
    Bytes(Vec<u8>),
}

impl Content {
    fn bytes(&self) -> &[u8] {
        match self {
            Content::Text(s) => s.as_bytes(),
            Content::Bytes(b) => b,
        }
    }
}

fn make(
    loader: &Loader,
    args: &GeneratorArgs,
    global: Option<&GeneratorOptions>,
    kind: Kind,
) -> Result<Resource> {
    let kust_file = kustomization_file_name(loader);
    let shown_file = loader.display(&loader.root().join(kust_file));
    let invalid = |message: String| Error::Invalid {
        what: kind.field().to_string(),
        file: shown_file.clone(),
        message,
    };
    let options = merge_options(args.options.as_ref(), global);
    let (args, options) = config_round_trip(args, options).map_err(|m| {
        invalid(format!(
            "{} '{}': {m}",
            kind.field(),
            args.name.escape_debug()
        ))
    })?;
    let args = &args;
    if kind == Kind::ConfigMap && !args.type_.is_empty() {
        // kustomize's ConfigMapArgs has no `type`; its strict decoding refuses the field.
        return Err(invalid(format!(
            "unknown field \"type\" in configMapGenerator '{}' (only secretGenerator has a type)",
            args.name
        )));
    }
    if args.name.is_empty() {
        return Err(invalid(format!("a {} must have a name", kind.noun())));
    }
    let pairs = load_pairs(loader, args, kind, &invalid)?;

    let mut seen = HashSet::new();
    for (key, _) in &pairs {
        if !seen.insert(key.as_str()) {
            return Err(invalid(format!(
                "{} {} illegally repeats the key `{}`",
                kind.noun(),
                args.name,
                key
            )));
        }
    }

    let mut metadata = Map::new();
    metadata.insert("name".into(), Value::from(args.name.as_str()));
    if !args.namespace.is_empty() {
        metadata.insert("namespace".into(), Value::from(args.namespace.as_str()));
    }
    if !options.labels.is_empty() {
        metadata.insert("labels".into(), string_map_value(&options.labels));
    }
    if !options.annotations.is_empty() {
        metadata.insert("annotations".into(), string_map_value(&options.annotations));
    }

    let mut obj = Map::new();
    obj.insert("apiVersion".into(), Value::from("v1"));
    obj.insert("kind".into(), Value::from(kind.kind()));
    obj.insert("metadata".into(), Value::Map(metadata));
    match kind {
        Kind::ConfigMap => {
            let mut data = Map::new();
            let mut binary = Map::new();
            for (key, content) in pairs {
                match content {
                    Content::Text(s) => {
                        data.insert(key, Value::String(s));
                    }
                    Content::Bytes(b) => {
                        binary.insert(key, Value::String(encode_base64(&b)));
                    }
                }
            }
            if !data.is_empty() {
                obj.insert("data".into(), Value::Map(data));
            }
            if !binary.is_empty() {
                obj.insert("binaryData".into(), Value::Map(binary));
            }
        }
        Kind::Secret => {
            let type_ = if args.type_.is_empty() {
                "Opaque"
            } else {
                args.type_.as_str()
            };
            obj.insert("type".into(), Value::from(type_));
            let data: Map = pairs
                .into_iter()
                .map(|(key, content)| (key, Value::String(encode_base64(content.bytes()))))
                .collect();
            obj.insert("data".into(), Value::Map(data));
        }
    }
    if options.immutable {
        obj.insert("immutable".into(), Value::Bool(true));
    }

    let mut res = Resource::new(Value::Map(obj));
    res.needs_hash = !options.disable_name_suffix_hash;
    // kustomize maps any unknown behavior to "unspecified", which acts as "create".
    res.behavior = Behavior::parse(&args.behavior).unwrap_or(Behavior::Create);
    res.origin = Some(Origin {
        path: kust_file.to_string(),
        config_ref: Some((
            "builtin".to_string(),
            kind.plugin().to_string(),
            String::new(),
        )),
        config_namespace: String::new(),
    });
    Ok(res)
}

/// kustomize hands a generator its configuration as YAML produced from JSON (`yaml.Marshal` of
/// the merged arguments, then parsed back). Two things survive that trip differently from the
/// kustomization file's own values, and both are reproduced for every string of the arguments:
///
/// - characters YAML may not contain raw and JSON does not escape (DEL, C1 controls other than
///   NEL, U+FFFE, U+FFFF) fail the build ("control characters are not allowed");
/// - NEL (U+0085) is a YAML 1.1 line break, so inside the double-quoted JSON string it folds:
///   a run of spaces and NELs becomes one space (one NEL) or `n-1` newlines (`n` NELs).
fn config_round_trip(
    args: &GeneratorArgs,
    options: MergedOptions,
) -> std::result::Result<(GeneratorArgs, MergedOptions), String> {
    let s = |v: &str| yaml_json_round_trip(v);
    let list = |v: &[String]| {
        v.iter()
            .map(|x| s(x))
            .collect::<std::result::Result<Vec<_>, _>>()
    };
    let map = |m: &StringMap| {
        m.iter()
            .map(|(k, v)| Ok((s(k)?, s(v)?)))
            .collect::<std::result::Result<StringMap, String>>()
    };
    let args = GeneratorArgs {
        name: s(&args.name)?,
        namespace: s(&args.namespace)?,
        behavior: s(&args.behavior)?,
        literals: list(&args.literals)?,
        files: list(&args.files)?,
        envs: list(&args.envs)?,
        env: s(&args.env)?,
        type_: s(&args.type_)?,
        // Already merged into `options`.
        options: None,
    };
    let options = MergedOptions {
        labels: map(&options.labels)?,
        annotations: map(&options.annotations)?,
        ..options
    };
    Ok((args, options))
}

/// One string through Go's `json.Marshal` and yaml.v2's reader (see [`config_round_trip`]).
fn yaml_json_round_trip(v: &str) -> std::result::Result<String, String> {
    // Characters json.Marshal leaves raw that yaml.v2's reader refuses.
    if let Some(c) = v
        .chars()
        .find(|&c| matches!(u32::from(c), 0x7f..=0x84 | 0x86..=0x9f | 0xfffe | 0xffff))
    {
        return Err(format!(
            "the value {:?} contains the character U+{:04X}: yaml: control characters are not allowed",
            v,
            u32::from(c)
        ));
    }
    if !v.contains('\u{85}') {
        return Ok(v.to_string());
    }
    let mut out = String::with_capacity(v.len());
    let mut run = String::new();
    let mut breaks = 0usize;
    let flush = |out: &mut String, run: &mut String, breaks: &mut usize| {
        match *breaks {
            0 => out.push_str(run),
            1 => out.push(' '),
            n => out.extend(std::iter::repeat_n('\n', n - 1)),
        }
        run.clear();
        *breaks = 0;
    };
    for c in v.chars() {
        match c {
            ' ' => run.push(c),
            '\u{85}' => breaks += 1,
            _ => {
                flush(&mut out, &mut run, &mut breaks);
                out.push(c);
            }
        }
    }
    flush(&mut out, &mut run, &mut breaks);
    Ok(out)
}

/// The kustomization file's name in the loader's directory (the first that exists, in
/// kustomize's order of preference).
fn kustomization_file_name(loader: &Loader) -> &'static str {
    KUSTOMIZATION_FILE_NAMES
        .iter()
        .copied()
        .find(|name| loader.root().join(name).is_file())
        .unwrap_or(KUSTOMIZATION_FILE_NAMES[0])
}

fn string_map_value(m: &StringMap) -> Value {
    Value::Map(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// All pairs in kustomize's order: env files, literals, files.
fn load_pairs(
    loader: &Loader,
    args: &GeneratorArgs,
    kind: Kind,
    invalid: &dyn Fn(String) -> Error,
) -> Result<Vec<(String, Content)>> {
    let what = |source: &str| format!("{} '{}': {source}", kind.field(), args.name);
    let mut pairs = Vec::new();

    let env_files = args
        .envs
        .iter()
        .chain(std::iter::once(&args.env).filter(|e| !e.is_empty()));
    for path in env_files {
        let bytes = loader
            .read(path)
            .map_err(|e| e.context(what(&format!("env file '{path}'"))))?;
        let parsed = parse_env_file(&bytes)
            .map_err(|m| invalid(format!("env file '{path}' of {}: {m}", args.name)))?;
        pairs.extend(parsed.into_iter().map(|(k, v)| (k, Content::Text(v))));
    }

    for literal in &args.literals {
        let (key, value) = parse_literal(literal).map_err(invalid)?;
        pairs.push((key, Content::Text(value)));
    }

    for source in &args.files {
        let (key, path) = parse_file_source(source).map_err(invalid)?;
        let bytes = loader
            .read(path)
            .map_err(|e| e.context(what(&format!("file source '{source}'"))))?;
        let content = match String::from_utf8(bytes) {
            Ok(s) => Content::Text(s),
            Err(e) => Content::Bytes(e.into_bytes()),
        };
        pairs.push((key, content));
    }
    Ok(pairs)
}

/// Splits a literal source `key=value` at the first `=` and unquotes the value.
fn parse_literal(source: &str) -> std::result::Result<(String, String), String> {
    match source.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), remove_quotes(value))),
        _ => Err(format!(
            "invalid literal source \"{source}\", expected key=value"
        )),
    }
}

/// Removes one pair of matching surrounding `"` or `'` (and nothing else).
fn remove_quotes(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 2 && b[0] == b[b.len() - 1] && (b[0] == b'"' || b[0] == b'\'') {
        // Both ends are ASCII quote bytes, so these are character boundaries.
        s.get(1..s.len() - 1).unwrap_or(s).to_string()
    } else {
        s.to_string()
    }
}

/// Parses a file source: `path` (key = the path's base name) or `key=path`.
fn parse_file_source(source: &str) -> std::result::Result<(String, &str), String> {
    let separators = source.matches('=').count();
    if separators == 0 {
        return Ok((go_path_base(source), source));
    }
    if separators > 1 {
        return Err(format!(
            "file source \"{source}\": key name or file path contains '='"
        ));
    }
    match source.split_once('=') {
        Some(("", path)) => Err(format!(
            "missing key name for file path \"{path}\" in file source \"{source}\""
        )),
        Some((key, "")) => Err(format!(
            "missing file path for key name \"{key}\" in file source \"{source}\""
        )),
        Some((key, path)) => Ok((key.to_string(), path)),
        None => Ok((go_path_base(source), source)),
    }
}

/// Go's `path.Base`: the last slash-separated element, trailing slashes ignored.
fn go_path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    match trimmed.rfind('/') {
        Some(i) => trimmed[i + 1..].to_string(),
        None => trimmed.to_string(),
    }
}

/// Longest line Go's `bufio.Scanner` (default buffer) returns; kustomize silently stops reading
/// an env file at a longer line.
const MAX_ENV_LINE: usize = 64 * 1024 - 1;

/// Parses an env file into `(key, value)` pairs, as kustomize's `keyValuesFromLines`.
fn parse_env_file(content: &[u8]) -> std::result::Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut rest = content;
    let mut line_no = 0usize;
    while !rest.is_empty() {
        let (mut line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        if line.len() > MAX_ENV_LINE {
            break;
        }
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        let Ok(mut text) = std::str::from_utf8(line) else {
            return Err(format!("line {} has invalid UTF-8 bytes", line_no + 1));
        };
        if line_no == 0 {
            text = text.strip_prefix('\u{feff}').unwrap_or(text);
        }
        line_no += 1;
        let text = text.trim_start();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let (key, value) = text.split_once('=').unwrap_or((text, ""));
        if key.is_empty() {
            // kustomize treats an empty key like a blank line.
            continue;
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    Ok(pairs)
}

/// Base64 as kustomize writes generated values: standard alphabet with padding; an encoding of
/// 70 characters or more is broken into lines of 70, each line (the last too) ending in `\n`.
fn encode_base64(bytes: &[u8]) -> String {
    const LINE: usize = 70;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    if encoded.len() < LINE {
        return encoded;
    }
    let mut out = String::with_capacity(encoded.len() + encoded.len() / LINE + 1);
    let mut rest = encoded.as_str();
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(LINE));
        out.push_str(chunk);
        out.push('\n');
        rest = tail;
    }
    out
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Map(_) | Value::Seq(_))
}

/// A field as kustomize's hasher sees it: a mapping as itself, a scalar as its text, a missing
/// (or null) field as `""`, a sequence as `null` (kustomize fails to decode it into a map).
fn hashed_field(v: Option<&Value>) -> Value {
    match v {
        None | Some(Value::Null) => Value::from(""),
        Some(Value::Map(m)) => Value::Map(m.clone()),
        Some(Value::Seq(_)) => Value::Null,
        Some(other) => Value::String(other.scalar_string().unwrap_or_default()),
    }
}

/// The first ten hex digits of the digest with kubectl's substitutions (no vowels, no digits
/// that read as letters): `0→g 1→h 3→k a→m e→t`.
fn encode_hash(digest: &[u8]) -> String {
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex.chars()
        .take(10)
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            other => other,
        })
        .collect()
}

/// Go's `encoding/json` output for the value after a JSON round trip into `interface{}`:
/// mapping keys sorted bytewise, every number a float64, HTML-safe string escaping.
fn go_json(v: &Value, out: &mut String) -> Result<()> {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // json.Unmarshal into interface{} turns every number into a float64.
        Value::Int(i) => out.push_str(&go_float(*i as f64)?),
        Value::Float(f) => out.push_str(&go_float(*f)?),
        Value::String(s) => go_json_string(s, out),
        Value::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(item, out)?;
            }
            out.push(']');
        }
        Value::Map(m) => {
            let mut entries: Vec<_> = m.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(k, out);
                out.push(':');
                go_json(v, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// Go's float64 JSON encoding: shortest round-trip digits, plain notation unless the magnitude
/// is below 1e-6 or at least 1e21 (then `1e+21`, `1e-7`).
fn go_float(f: f64) -> Result<String> {
    if !f.is_finite() {
        return Err(Error::msg(format!(
            "cannot compute the name suffix hash: unsupported value {f} in the data"
        )));
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust's `{:e}` gives the same shortest digits; only the exponent's sign differs.
        let s = format!("{f:e}");
        Ok(match s.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => s,
        })
    } else {
        Ok(format!("{f}"))
    }
}

/// A string as Go's `encoding/json` writes it (with its default HTML escaping).
fn go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_split_at_the_first_equals_and_unquote_matching_pairs() {
        let p = |s: &str| parse_literal(s).unwrap();
        assert_eq!(p("a=b"), ("a".into(), "b".into()));
        assert_eq!(p("a=b=c"), ("a".into(), "b=c".into()));
        assert_eq!(p("a="), ("a".into(), String::new()));
        assert_eq!(p("a=\"x y\""), ("a".into(), "x y".into()));
        assert_eq!(p("a='x y'"), ("a".into(), "x y".into()));
        assert_eq!(p("a=\"x y'"), ("a".into(), "\"x y'".into()));
        assert_eq!(p("a='"), ("a".into(), "'".into()));
        assert_eq!(p("a=''"), ("a".into(), String::new()));
        assert_eq!(p("a=\"é\""), ("a".into(), "é".into()));
        assert!(parse_literal("=a").is_err());
        assert!(parse_literal("a").is_err());
    }

    #[test]
    fn file_sources() {
        assert_eq!(
            parse_file_source("dir/f.txt").unwrap(),
            ("f.txt".into(), "dir/f.txt")
        );
        assert_eq!(parse_file_source("k=dir/f").unwrap(), ("k".into(), "dir/f"));
        assert_eq!(parse_file_source("sub/").unwrap(), ("sub".into(), "sub/"));
        assert!(parse_file_source("a=b=c").is_err());
        assert!(parse_file_source("=x").is_err());
        assert!(parse_file_source("x=").is_err());
        assert_eq!(go_path_base(""), ".");
        assert_eq!(go_path_base("///"), "/");
    }

    #[test]
    fn env_lines() {
        let text = b"\xef\xbb\xbfA=1\r\n# c\n  # c\n\n  B=x  \nC\n=skipped\nD=\"q\"\nE=a=b\n\xef\xbb\xbfF=bom";
        let pairs = parse_env_file(text).unwrap();
        let expect: Vec<(String, String)> = [
            ("A", "1"),
            ("B", "x  "),
            ("C", ""),
            ("D", "\"q\""),
            ("E", "a=b"),
            ("\u{feff}F", "bom"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(pairs, expect);
        assert!(parse_env_file(b"A=\xff\n").is_err());
        let mut long = b"A=1\nB=".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_ENV_LINE));
        long.extend(b"\nC=3\n");
        assert_eq!(parse_env_file(&long).unwrap().len(), 1);
    }

    #[test]
    fn base64_wraps_at_seventy() {
        assert_eq!(encode_base64(b"apple"), "YXBwbGU=");
        let wrapped = encode_base64(&[b'x'; 52]);
        assert_eq!(
            wrapped,
            "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eA\n==\n"
        );
        // 51 bytes encode to 68 characters (no wrapping), 52 to 72 (wrapped).
        assert_eq!(encode_base64(&[b'x'; 51]).len(), 68);
        assert_eq!(encode_base64(&[b'x'; 53]).len(), 74);
    }

    #[test]
    fn go_json_matches_encoding_json() {
        let mut s = String::new();
        go_json_string("<a&b> \"\\\n\t\u{1}\u{8}\u{c}\u{7f}\u{2028}é", &mut s);
        assert_eq!(
            s,
            r#""\u003ca\u0026b\u003e \"\\\n\t\u0001\b\f"#.to_string() + "\u{7f}\\u2028é\""
        );
        assert_eq!(go_float(1.0).unwrap(), "1");
        assert_eq!(go_float(0.5).unwrap(), "0.5");
        assert_eq!(go_float(1e21).unwrap(), "1e+21");
        assert_eq!(go_float(1.5e-7).unwrap(), "1.5e-7");
        assert_eq!(go_float(1e20).unwrap(), "100000000000000000000");
        assert!(go_float(f64::NAN).is_err());
    }

    #[test]
    fn options_merge_like_kustomize() {
        let opts =
            |labels: &[(&str, &str)], disable: Option<bool>, immutable: bool| GeneratorOptions {
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                annotations: StringMap::new(),
                disable_name_suffix_hash: disable,
                immutable,
            };
        let local = opts(&[("a", "local"), ("l", "1")], Some(false), false);
        let global = opts(&[("a", "global"), ("g", "2")], Some(true), true);
        let m = merge_options(Some(&local), Some(&global));
        assert_eq!(m.labels.get("a").map(String::as_str), Some("local"));
        assert_eq!(m.labels.get("g").map(String::as_str), Some("2"));
        assert_eq!(m.labels.get("l").map(String::as_str), Some("1"));
        assert!(m.disable_name_suffix_hash && m.immutable);
        let m = merge_options(
            Some(&opts(&[], Some(true), true)),
            Some(&opts(&[], Some(false), false)),
        );
        assert!(m.disable_name_suffix_hash && m.immutable);
        assert_eq!(merge_options(None, None), MergedOptions::default());
    }

    #[test]
    fn config_round_trip_folds_nel_and_refuses_control_characters() {
        let rt = |v: &str| yaml_json_round_trip(v).unwrap();
        assert_eq!(rt("a \u{85} b"), "a b");
        assert_eq!(rt("x\u{85} \u{85}y"), "x\ny");
        assert_eq!(rt("\u{85}"), " ");
        assert_eq!(rt("\t\u{85}\tz"), "\t \tz");
        assert_eq!(rt("a  b\t\u{1}\u{e000}"), "a  b\t\u{1}\u{e000}");
        for bad in ["\u{7f}", "\u{80}", "\u{9f}", "\u{fffe}", "\u{ffff}"] {
            assert!(yaml_json_round_trip(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn other_kinds_are_not_hashed() {
        let obj = Value::from_json(&serde_json::json!({"kind": "Deployment"}));
        assert!(content_hash(&obj).is_err());
    }
}
