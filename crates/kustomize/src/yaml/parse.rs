//! Decoding YAML text into [`Value`]s with yaml.v3's rules, which is what kustomize uses.
//!
//! Plain scalars are resolved the way yaml.v3 resolves them when decoding into `interface{}`:
//! `true`/`True`/`TRUE`, `null`/`~`/empty, decimal, `0x`, `0o`, `0b` and legacy `0777` octal
//! integers (underscores ignored), floats, `.inf`/`.nan`; timestamps stay strings, and `yes`/`no`/
//! `on`/`off` are strings (YAML 1.2). Quoted and block scalars are always strings. Anchors and
//! aliases are expanded, `<<` merge keys applied, and a repeated key is an error naming both lines.

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use super::value::{Map, Value};

/// A YAML syntax or decoding error with its position (1-based line).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("yaml: line {line}: {message}")]
pub struct YamlError {
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column of the problem.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Most nested collections accepted in one document (a guard against stack exhaustion).
const MAX_DEPTH: usize = 512;
/// Most values an alias expansion may produce in one document (a guard against "billion laughs").
const MAX_ALIAS_NODES: usize = 1_000_000;

/// Decodes every document of a multi-document YAML stream. Empty documents (nothing but
/// comments, or a bare `---`) decode to [`Value::Null`] and are kept, so callers decide.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, YamlError> {
    parse_with(text, false)
}

/// Like [`parse_documents`], but a repeated mapping key replaces the earlier value instead of
/// failing (how kustomize reads kustomization files).
pub fn parse_documents_lenient(text: &str) -> Result<Vec<Value>, YamlError> {
    parse_with(text, true)
}

fn parse_with(text: &str, lenient: bool) -> Result<Vec<Value>, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    let mut builder = Builder {
        lenient,
        ..Builder::default()
    };
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| YamlError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        match event {
            Event::StreamStart | Event::Nothing => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                builder = Builder {
                    lenient,
                    ..Builder::default()
                };
            }
            Event::DocumentEnd => {
                docs.push(builder.finish());
            }
            other => builder.event(other, span)?,
        }
    }
    Ok(docs)
}

/// Decodes a single-document YAML text (the first document; `Null` when there is none).
pub fn parse_one(text: &str) -> Result<Value, YamlError> {
    Ok(parse_documents(text)?
        .into_iter()
        .next()
        .unwrap_or(Value::Null))
}

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
    },
    Map {
        map: Map,
        lines: Vec<usize>,
        pending_key: Option<(String, usize, bool)>,
        merges: Vec<Value>,
        anchor: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Value>,
    anchors: std::collections::HashMap<usize, Value>,
    alias_nodes: usize,
    lenient: bool,
}

fn err(span: &Span, message: impl Into<String>) -> YamlError {
    YamlError {
        line: span.start.line(),
        column: span.start.col() + 1,
        message: message.into(),
    }
}

fn count_nodes(v: &Value) -> usize {
    match v {
        Value::Seq(s) => 1 + s.iter().map(count_nodes).sum::<usize>(),
        Value::Map(m) => 1 + m.values().map(count_nodes).sum::<usize>(),
        _ => 1,
    }
}

impl Builder {
    fn finish(&mut self) -> Value {
        self.root.take().unwrap_or(Value::Null)
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let is_merge_key = style == ScalarStyle::Plain && tag.is_none() && text == "<<";
                let value = resolve_scalar(&text, style, tag.as_deref(), &span)?;
                if anchor != 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                self.push(value, &span, is_merge_key)
            }
            Event::Alias(id) => {
                let value = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| err(&span, "unknown anchor referenced"))?;
                self.alias_nodes += count_nodes(&value);
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(err(&span, "document contains excessive aliasing"));
                }
                self.push(value, &span, false)
            }
            Event::SequenceStart(anchor, _) => {
                self.check_depth(&span)?;
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.check_depth(&span)?;
                self.stack.push(Frame::Map {
                    map: Map::new(),
                    lines: Vec::new(),
                    pending_key: None,
                    merges: Vec::new(),
                    anchor,
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Err(err(&span, "unbalanced collection end"));
                };
                let (value, anchor) = match frame {
                    Frame::Seq { items, anchor } => (Value::Seq(items), anchor),
                    Frame::Map {
                        mut map,
                        merges,
                        anchor,
                        ..
                    } => {
                        for merged in merges {
                            apply_merge(&mut map, merged, &span)?;
                        }
                        (Value::Map(map), anchor)
                    }
                };
                if anchor != 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                self.push(value, &span, false)
            }
            _ => Ok(()),
        }
    }

    fn check_depth(&self, span: &Span) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(err(span, "document nests collections too deeply"));
        }
        Ok(())
    }

    fn push(&mut self, value: Value, span: &Span, is_merge_key: bool) -> Result<(), YamlError> {
        let lenient = self.lenient;
        match self.stack.last_mut() {
            None => {
                self.root = Some(value);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(value);
                Ok(())
            }
            Some(Frame::Map {
                map,
                lines,
                pending_key,
                merges,
                ..
            }) => match pending_key.take() {
                None => {
                    let key = key_string(&value)
                        .ok_or_else(|| err(span, "invalid map key: a collection"))?;
                    *pending_key = Some((key, span.start.line(), is_merge_key));
                    Ok(())
                }
                Some((_, _, true)) => {
                    merges.push(value);
                    Ok(())
                }
                Some((key, line, false)) => {
                    if lenient && map.contains_key(&key) {
                        map.insert(key, value);
                        return Ok(());
                    }
                    if let Some(index) = map.get_index_of(&key) {
                        let first = lines.get(index).copied().unwrap_or(0);
                        return Err(YamlError {
                            line,
                            column: 1,
                            message: format!(
                                "mapping key \"{key}\" already defined at line {first}"
                            ),
                        });
                    }
                    map.insert(key, value);
                    lines.push(line);
                    Ok(())
                }
            },
        }
    }
}

fn apply_merge(map: &mut Map, merged: Value, span: &Span) -> Result<(), YamlError> {
    match merged {
        Value::Map(m) => {
            for (k, v) in m {
                map.entry(k).or_insert(v);
            }
            Ok(())
        }
        Value::Seq(items) => {
            for item in items {
                match item {
                    Value::Map(m) => {
                        for (k, v) in m {
                            map.entry(k).or_insert(v);
                        }
                    }
                    _ => {
                        return Err(err(
                            span,
                            "map merge requires map or sequence of maps as the value",
                        ));
                    }
                }
            }
            Ok(())
        }
        _ => Err(err(
            span,
            "map merge requires map or sequence of maps as the value",
        )),
    }
}

/// The string form of a mapping key (Go's `fmt.Sprint` of the decoded key).
fn key_string(v: &Value) -> Option<String> {
    v.scalar_string()
        .map(|s| if v.is_null() { "null".to_string() } else { s })
}

fn resolve_scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    span: &Span,
) -> Result<Value, YamlError> {
    if let Some(tag) = tag {
        if tag.handle == "tag:yaml.org,2002:" || tag.handle == "!!" {
            return match tag.suffix.as_str() {
                "str" | "binary" | "timestamp" => Ok(Value::String(text.to_string())),
                "null" => Ok(Value::Null),
                "bool" => match resolve_plain(text) {
                    v @ Value::Bool(_) => Ok(v),
                    _ => Err(err(
                        span,
                        format!("cannot decode !!str `{text}` as a !!bool"),
                    )),
                },
                "int" => match resolve_plain(text) {
                    v @ Value::Int(_) => Ok(v),
                    _ => Err(err(
                        span,
                        format!("cannot decode !!str `{text}` as a !!int"),
                    )),
                },
                "float" => match resolve_plain(text) {
                    Value::Int(i) => Ok(Value::Float(i as f64)),
                    v @ Value::Float(_) => Ok(v),
                    _ => Err(err(
                        span,
                        format!("cannot decode !!str `{text}` as a !!float"),
                    )),
                },
                _ => Ok(Value::String(text.to_string())),
            };
        }
        if style != ScalarStyle::Plain {
            return Ok(Value::String(text.to_string()));
        }
        // A local tag (`!foo`) keeps the scalar a string, as yaml.v3 does for unknown tags.
        return Ok(Value::String(text.to_string()));
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::String(text.to_string()));
    }
    Ok(resolve_plain(text))
}

/// Resolves an untagged plain scalar with yaml.v3's rules.
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.') {
        return Value::String(text.to_string());
    }
    let plain: String = text.chars().filter(|c| *c != '_').collect();
    if let Some(i) = go_parse_int(&plain) {
        return Value::Int(i);
    }
    if let Some(u) = go_parse_uint(&plain) {
        return Value::Float(u as f64);
    }
    if is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Value::Float(f);
    }
    if let Some(rest) = plain.strip_prefix("0b")
        && let Ok(i) = i64::from_str_radix(rest, 2)
    {
        return Value::Int(i);
    }
    if let Some(rest) = plain.strip_prefix("-0b")
        && let Ok(i) = i64::from_str_radix(rest, 2)
    {
        return Value::Int(-i);
    }
    if let Some(rest) = plain.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(rest, 8)
    {
        return Value::Int(i);
    }
    if let Some(rest) = plain.strip_prefix("-0o")
        && let Ok(i) = i64::from_str_radix(rest, 8)
    {
        return Value::Int(-i);
    }
    Value::String(text.to_string())
}

/// `strconv.ParseInt(s, 0, 64)`: optional sign, then `0x`/`0o`/`0b`/leading-`0` octal/decimal.
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = go_parse_magnitude(body)?;
    if neg {
        if magnitude <= (i64::MAX as u64) + 1 {
            Some((magnitude as i128).wrapping_neg() as i64)
        } else {
            None
        }
    } else if magnitude <= i64::MAX as u64 {
        Some(magnitude as i64)
    } else {
        None
    }
}

/// `strconv.ParseUint(s, 0, 64)`.
fn go_parse_uint(s: &str) -> Option<u64> {
    go_parse_magnitude(s)
}

fn go_parse_magnitude(body: &str) -> Option<u64> {
    if body.is_empty() {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// yaml.v3's float pattern: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let start = i;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let digits = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits {
            return false;
        }
    } else {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let digits = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_plain_scalars_like_yaml_v3() {
        assert_eq!(resolve_plain("0777"), Value::Int(511));
        assert_eq!(resolve_plain("0x1F"), Value::Int(31));
        assert_eq!(resolve_plain("1_000"), Value::Int(1000));
        assert_eq!(resolve_plain("08"), Value::Float(8.0));
        assert_eq!(resolve_plain("yes"), Value::String("yes".into()));
        assert_eq!(resolve_plain("True"), Value::Bool(true));
        assert_eq!(resolve_plain("1.5"), Value::Float(1.5));
        assert_eq!(resolve_plain("-12"), Value::Int(-12));
        assert_eq!(
            resolve_plain("2001-12-14"),
            Value::String("2001-12-14".into())
        );
        assert_eq!(resolve_plain("1e3"), Value::Float(1000.0));
        assert_eq!(resolve_plain("."), Value::String(".".into()));
    }

    #[test]
    fn decodes_documents_aliases_merges_and_styles() {
        let docs = parse_documents(
            "a: &x {b: 1}\nc: *x\nd: '1'\ne:\n  <<: *x\n  f: 2\n---\n# only a comment\n---\n- 1\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 3);
        let d = &docs[0];
        assert_eq!(d.get_path(&["c", "b"]), Some(&Value::Int(1)));
        assert_eq!(d.get("d"), Some(&Value::String("1".into())));
        assert_eq!(d.get_path(&["e", "b"]), Some(&Value::Int(1)));
        assert!(docs[1].is_null());
    }

    #[test]
    fn duplicate_keys_name_both_lines() {
        let e = parse_documents("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("already defined at line 1"), "{e}");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = parse_documents("a: 1\nb: [\n").unwrap_err();
        assert!(e.line >= 2, "{e}");
    }
}
