//! Post-build variable substitution, as Flux's `postBuild` does it.
//!
//! After the build, every object is printed as YAML, each `${VAR}` in that text is replaced,
//! and the text is decoded again, so `replicas: ${REPLICAS}` with `REPLICAS=3` becomes the number
//! `3` and `image: app:${TAG}` keeps a string. Substitution is strict: a variable that is not set
//! and has no default is an error naming the object, never an empty string.
//!
//! | form | value |
//! |---|---|
//! | `${VAR}` | `VAR`; an error when it is not set |
//! | `${VAR:-default}` / `${VAR:=default}` | `VAR` when set and not empty, else `default` |
//! | `${VAR-default}` / `${VAR=default}` | `VAR` when set (even empty), else `default` |
//! | `$${VAR}` | the literal text `${VAR}` (an escape) |
//! | `$VAR` | left alone, so shell scripts embedded in objects survive |
//!
//! A default may itself hold substitutions (`${A:-${B}}`). Other shell operators (`${#VAR}`,
//! `${VAR/x/y}`, …) are refused with an error rather than guessed at. An object opts out with the
//! annotation (or label) `render.weir.dev/substitute: disabled`.
//!
//! ```
//! use std::collections::BTreeMap;
//! use weir_kustomize::substitute::substitute_text;
//!
//! let vars = BTreeMap::from([("REPLICAS".to_owned(), "3".to_owned())]);
//! let out = substitute_text("replicas: ${REPLICAS}\ntag: ${TAG:=latest}\n", &vars)?;
//! assert_eq!(out, "replicas: 3\ntag: latest\n");
//! # Ok::<(), weir_kustomize::substitute::SubstituteError>(())
//! ```

use std::collections::BTreeMap;

use crate::resmap::ResMap;
use crate::yaml::{self, YamlError};

/// The annotation (or label) an object carries to opt out of substitution.
pub const DISABLE_KEY: &str = "render.weir.dev/substitute";
/// The value of [`DISABLE_KEY`] that turns substitution off for the object.
pub const DISABLED: &str = "disabled";

/// Most nested defaults (`${A:-${B:-${C}}}`) followed, a guard against hostile input.
const MAX_NESTING: usize = 32;

/// Why a substitution failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubstituteError {
    /// A variable is referenced without a default but is not set.
    #[error("variable '{0}' is not set and has no default")]
    Undefined(String),
    /// A variable's name is not an identifier (`^[_a-zA-Z][_a-zA-Z0-9]*$`), e.g. a ConfigMap key
    /// like `app.name`.
    #[error("'{0}' is not a valid variable name: must match ^[_a-zA-Z][_a-zA-Z0-9]*$")]
    InvalidName(String),
    /// `${` without its closing brace, or an operator this implementation does not support.
    #[error("bad substitution '{text}': {reason}")]
    Syntax {
        /// The offending text (cut to a readable length).
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A substitution failed in one object.
    #[error("{object}: {source}")]
    InObject {
        /// The object's id (`Kind.version.group/name.namespace`).
        object: String,
        /// The failure.
        #[source]
        source: Box<SubstituteError>,
    },
    /// An object's YAML is no longer valid after substitution (a value broke its structure).
    #[error("{object}: YAML after substitution is invalid: {source}")]
    Yaml {
        /// The object's id.
        object: String,
        /// The parser's complaint.
        #[source]
        source: YamlError,
    },
}

/// Checks that every variable name is an identifier, as Flux requires.
pub fn validate_names(vars: &BTreeMap<String, String>) -> Result<(), SubstituteError> {
    match vars.keys().find(|name| !is_identifier(name)) {
        Some(bad) => Err(SubstituteError::InvalidName(bad.clone())),
        None => Ok(()),
    }
}

fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b == b'_' || b.is_ascii_alphabetic())
        && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
}

/// Replaces every `${…}` in `text` from `vars` (see the module documentation for the forms).
pub fn substitute_text(
    text: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, SubstituteError> {
    expand(text, vars, 0)
}

fn expand(
    text: &str,
    vars: &BTreeMap<String, String>,
    depth: usize,
) -> Result<String, SubstituteError> {
    if depth > MAX_NESTING {
        return Err(syntax(text, "defaults nested too deeply"));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(escaped) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
        } else if let Some(inner) = tail.strip_prefix("${") {
            let end = closing_brace(inner).ok_or_else(|| syntax(tail, "no closing '}'"))?;
            out.push_str(&expression(&inner[..end], vars, depth)?);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` closing an expression whose text starts at `s` (after `${`), counting
/// nested `${`.
fn closing_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Evaluates the text between `${` and `}`.
fn expression(
    expr: &str,
    vars: &BTreeMap<String, String>,
    depth: usize,
) -> Result<String, SubstituteError> {
    let name_len = expr
        .bytes()
        .take_while(|b| *b == b'_' || b.is_ascii_alphanumeric())
        .count();
    let (name, op) = expr.split_at(name_len);
    let shown = || format!("${{{expr}}}");
    if name.is_empty() {
        return Err(syntax(&shown(), "expected a variable name after '${'"));
    }
    let value = vars.get(name);
    let (default, use_default) = if op.is_empty() {
        return value
            .cloned()
            .ok_or_else(|| SubstituteError::Undefined(name.to_owned()));
    } else if let Some(d) = op.strip_prefix(":-").or_else(|| op.strip_prefix(":=")) {
        (d, value.is_none_or(|v| v.is_empty()))
    } else if let Some(d) = op.strip_prefix('-').or_else(|| op.strip_prefix('=')) {
        (d, value.is_none())
    } else {
        return Err(syntax(
            &shown(),
            "unsupported operator (only ${VAR}, ${VAR:-default}, ${VAR:=default}, ${VAR-default}, ${VAR=default})",
        ));
    };
    match value {
        Some(v) if !use_default => Ok(v.clone()),
        _ => expand(default, vars, depth + 1),
    }
}

fn syntax(text: &str, reason: &'static str) -> SubstituteError {
    let mut text: String = text.chars().take(80).collect();
    if let Some(line_end) = text.find('\n') {
        text.truncate(line_end);
    }
    SubstituteError::Syntax { text, reason }
}

/// Whether an object opted out with `render.weir.dev/substitute: disabled`.
fn opted_out(obj: &yaml::Value) -> bool {
    ["annotations", "labels"]
        .iter()
        .any(|field| obj.str_at(&["metadata", field, DISABLE_KEY]) == Some(DISABLED))
}

/// Substitutes `vars` into every object of `resmap` that did not opt out: each object's YAML text
/// is substituted and decoded again. Returns how many objects changed. Variable names are
/// checked first ([`validate_names`]).
///
/// As in Flux, callers that have no variables at all skip this step: it is strict, and a build
/// without variables must not trip over a `${…}` that was never meant for it.
pub fn substitute_resources(
    resmap: &mut ResMap,
    vars: &BTreeMap<String, String>,
) -> Result<usize, SubstituteError> {
    validate_names(vars)?;
    let mut changed = 0;
    for resource in resmap.resources_mut() {
        if opted_out(&resource.obj) {
            continue;
        }
        let text = yaml::to_yaml(&resource.obj);
        if !text.contains("${") {
            continue;
        }
        let object = || resource.cur_id().to_string();
        let substituted = substitute_text(&text, vars).map_err(|e| SubstituteError::InObject {
            object: object(),
            source: Box::new(e),
        })?;
        if substituted == text {
            continue;
        }
        let value = yaml::parse_one(&substituted).map_err(|source| SubstituteError::Yaml {
            object: object(),
            source,
        })?;
        if value.as_map().is_none() {
            return Err(SubstituteError::Yaml {
                object: object(),
                source: YamlError {
                    line: 1,
                    column: 1,
                    message: format!("the object became a {}", value.type_name()),
                },
            });
        }
        resource.obj = value;
        changed += 1;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Resource;
    use crate::yaml::Value;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sub(text: &str, pairs: &[(&str, &str)]) -> Result<String, SubstituteError> {
        substitute_text(text, &vars(pairs))
    }

    #[test]
    fn plain_and_default_forms() {
        let v = [("A", "1"), ("EMPTY", "")];
        for (input, want) in [
            ("x ${A} y", "x 1 y"),
            ("${A}${A}", "11"),
            ("${B:-two}", "two"),
            ("${B:=two}", "two"),
            ("${A:-two}", "1"),
            ("${EMPTY:-two}", "two"),
            ("${EMPTY-two}", ""),
            ("${EMPTY=two}", ""),
            ("${B-two}", "two"),
            ("${B:-}", ""),
            ("${B:-a b: c}", "a b: c"),
            ("${B:-${A}}", "1"),
            ("${B:-${C:-deep}}", "deep"),
            ("no variables", "no variables"),
        ] {
            assert_eq!(sub(input, &v).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn dollar_forms_that_are_not_substituted() {
        for (input, want) in [
            ("echo $HOME and $1", "echo $HOME and $1"),
            ("cost: 5$", "cost: 5$"),
            ("$${A} stays", "${A} stays"),
            ("$$ pid", "$$ pid"),
        ] {
            assert_eq!(sub(input, &[("A", "1")]).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn strict_mode_and_syntax_errors() {
        assert_eq!(
            sub("${MISSING}", &[]).unwrap_err(),
            SubstituteError::Undefined("MISSING".into())
        );
        assert_eq!(
            sub("${B:-${MISSING}}", &[]).unwrap_err(),
            SubstituteError::Undefined("MISSING".into())
        );
        for bad in ["${A", "${}", "${#A}", "${A/x/y}", "${A:+x}", "${ A }"] {
            assert!(
                matches!(sub(bad, &[("A", "1")]), Err(SubstituteError::Syntax { .. })),
                "{bad}: {:?}",
                sub(bad, &[("A", "1")])
            );
        }
        let deep = format!("{}x{}", "${A:-".repeat(40), "}".repeat(40));
        assert!(matches!(
            sub(&deep, &[]),
            Err(SubstituteError::Syntax { .. })
        ));
    }

    #[test]
    fn names_must_be_identifiers() {
        assert!(validate_names(&vars(&[("_ok", ""), ("A1", "")])).is_ok());
        for bad in ["1A", "app.name", "a-b", ""] {
            assert_eq!(
                validate_names(&vars(&[(bad, "")])).unwrap_err(),
                SubstituteError::InvalidName(bad.into())
            );
        }
    }

    fn resmap(docs: &str) -> ResMap {
        yaml::parse_documents(docs)
            .unwrap()
            .into_iter()
            .map(Resource::new)
            .collect()
    }

    #[test]
    fn values_are_redecoded_so_numbers_become_numbers() {
        let mut rm = resmap(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: ${REPLICAS}\n  template:\n    spec:\n      containers:\n      - image: app:${TAG:=latest}\n        name: app\n",
        );
        let n = substitute_resources(&mut rm, &vars(&[("REPLICAS", "3")])).unwrap();
        assert_eq!(n, 1);
        let obj = &rm.resources()[0].obj;
        assert_eq!(obj.get_path(&["spec", "replicas"]), Some(&Value::Int(3)));
        let image = obj
            .get_path(&["spec", "template", "spec", "containers"])
            .and_then(Value::as_seq)
            .and_then(|c| c[0].str_at(&["image"]));
        assert_eq!(image, Some("app:latest"));
    }

    #[test]
    fn opted_out_objects_are_left_alone_and_errors_name_the_object() {
        let mut rm = resmap(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: script\n  annotations:\n    render.weir.dev/substitute: disabled\ndata:\n  run: echo ${NOT_OURS}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: labelled\n  labels:\n    render.weir.dev/substitute: disabled\ndata:\n  run: echo ${NOT_OURS}\n",
        );
        let before = rm.clone();
        assert_eq!(
            substitute_resources(&mut rm, &vars(&[("A", "1")])).unwrap(),
            0
        );
        assert_eq!(rm, before);

        let mut rm = resmap(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  x: ${NOPE}\n",
        );
        let err = substitute_resources(&mut rm, &vars(&[("A", "1")])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ConfigMap") && text.contains("app"), "{text}");
        assert!(text.contains("'NOPE' is not set"), "{text}");
    }

    #[test]
    fn a_value_that_breaks_the_yaml_is_an_error() {
        let mut rm =
            resmap("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  x: ${V}\n");
        let err = substitute_resources(&mut rm, &vars(&[("V", "[unclosed")])).unwrap_err();
        assert!(matches!(err, SubstituteError::Yaml { .. }), "{err}");
    }

    #[test]
    fn invalid_names_fail_before_any_object_changes() {
        let mut rm =
            resmap("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  x: ${V}\n");
        assert_eq!(
            substitute_resources(&mut rm, &vars(&[("V", "1"), ("a.b", "2")])).unwrap_err(),
            SubstituteError::InvalidName("a.b".into())
        );
    }
}
