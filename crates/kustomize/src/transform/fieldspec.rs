//! Walking a field spec's path through an object (kustomize's `fieldspec.Filter`): sequences are
//! entered element by element, missing fields are created only when the spec says `create`.

use crate::error::{Error, Result};
use crate::kustomization::FieldSpec;
use crate::resid::Gvk;
use crate::yaml::{Map, Value};

/// What to create at the end of a path when the field is missing and the spec allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    /// An empty string scalar (names, namespaces).
    Scalar,
    /// An empty mapping (labels, annotations).
    Map,
}

/// Whether a field spec applies to objects of `gvk`.
pub fn matches_gvk(fs: &FieldSpec, gvk: &Gvk) -> bool {
    (fs.kind.is_empty() || fs.kind == gvk.kind)
        && (fs.group.is_empty() || fs.group == gvk.group)
        && (fs.version.is_empty() || fs.version == gvk.version)
}

/// Splits a field path on `/`, keeping `[...]` parts whole.
pub fn split_path(path: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in path.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            '/' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

/// Applies `set` to every field `fs` names in `obj` (when `fs` applies to `gvk`).
pub fn apply(
    obj: &mut Value,
    gvk: &Gvk,
    fs: &FieldSpec,
    create: Option<CreateKind>,
    set: &mut dyn FnMut(&mut Value) -> Result<()>,
) -> Result<()> {
    if !matches_gvk(fs, gvk) {
        return Ok(());
    }
    let path = split_path(&fs.path);
    walk(obj, &path, fs.create, create, set)
        .map_err(|e| e.context(format!("considering field '{}'", fs.path)))
}

fn walk(
    node: &mut Value,
    path: &[String],
    create_allowed: bool,
    create: Option<CreateKind>,
    set: &mut dyn FnMut(&mut Value) -> Result<()>,
) -> Result<()> {
    let Some((head, rest)) = path.split_first() else {
        return set(node);
    };
    match node {
        Value::Null => Ok(()),
        Value::Seq(items) => {
            for item in items.iter_mut() {
                walk(item, path, create_allowed, create, set)?;
            }
            Ok(())
        }
        Value::Map(map) => {
            let (name, is_seq) = match head.strip_suffix("[]") {
                Some(n) => (n, true),
                None => (head.as_str(), false),
            };
            if name.is_empty() {
                return Err(Error::msg("cannot set or create an empty field name"));
            }
            let creating = create_allowed && create.is_some() && !is_seq;
            if !map.contains_key(name) {
                if !creating {
                    return Ok(());
                }
                let fresh = if rest.is_empty() {
                    match create {
                        Some(CreateKind::Scalar) => Value::String(String::new()),
                        _ => Value::Map(Map::new()),
                    }
                } else {
                    Value::Map(Map::new())
                };
                map.insert(name.to_string(), fresh);
            }
            let Some(field) = map.get_mut(name) else {
                return Ok(());
            };
            if field.is_null() && creating {
                *field = if rest.is_empty() {
                    match create {
                        Some(CreateKind::Scalar) => Value::String(String::new()),
                        _ => Value::Map(Map::new()),
                    }
                } else {
                    Value::Map(Map::new())
                };
            } else if field.is_null() && is_seq {
                return Ok(());
            }
            walk(field, rest, create_allowed, create, set)
        }
        _ => Err(Error::msg("expected sequence or mapping node")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_one;

    fn fs(path: &str, create: bool) -> FieldSpec {
        FieldSpec {
            path: path.into(),
            create,
            ..FieldSpec::default()
        }
    }

    #[test]
    fn walks_sequences_and_creates_when_allowed() {
        let mut v = parse_one("spec:\n  containers:\n  - name: a\n  - name: b\n").unwrap();
        let gvk = Gvk::default();
        let mut seen = Vec::new();
        apply(
            &mut v,
            &gvk,
            &fs("spec/containers/name", false),
            None,
            &mut |n| {
                seen.push(n.as_str().unwrap_or("").to_string());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, ["a", "b"]);
        apply(
            &mut v,
            &gvk,
            &fs("metadata/labels", true),
            Some(CreateKind::Map),
            &mut |_| Ok(()),
        )
        .unwrap();
        assert!(v.get_path(&["metadata", "labels"]).is_some());
        apply(
            &mut v,
            &gvk,
            &fs("spec/missing/x", false),
            Some(CreateKind::Map),
            &mut |_| Ok(()),
        )
        .unwrap();
        assert!(v.get_path(&["spec", "missing"]).is_none());
    }
}
