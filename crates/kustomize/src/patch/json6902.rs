//! RFC 6902 JSON patches with the behaviour of `gopkg.in/evanphx/json-patch.v4`, which kustomize
//! applies them with:
//!
//! - a `null` member counts as absent when a path is walked, read or tested;
//! - `add` needs every parent to exist, `-` appends, an index inserts, negative indices count
//!   from the end (for `add`, `-1` appends);
//! - `remove` of a missing member or index fails;
//! - `replace` of a missing member of an object *adds* it (only arrays check the index);
//! - `move` and `copy` read a missing member as `null` (`move` then fails removing it);
//! - `test` compares structurally; `null` and absent are equal.
//!
//! Errors repeat the library's messages, which kustomize prints as they are.

use crate::error::{Error, Result};
use crate::yaml::{Map, Value};

/// Applies JSON 6902 operations to `target`; on error `target` is left unchanged.
pub(crate) fn apply(target: &mut Value, ops: &Value) -> Result<()> {
    let ops = ops.as_seq().ok_or_else(|| {
        Error::msg(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            json_type(ops)
        ))
    })?;
    let mut doc = target.clone();
    for op in ops {
        let op = op.as_map().ok_or_else(|| {
            Error::msg(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                json_type(op)
            ))
        })?;
        apply_op(&mut doc, op)?;
    }
    if !matches!(doc, Value::Map(_)) {
        return Err(Error::msg(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_type(&doc)
        )));
    }
    *target = doc;
    Ok(())
}

/// How encoding/json names a value's type in its errors.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Int(_) | Value::Float(_) => "number",
        Value::String(_) => "string",
        Value::Seq(_) => "array",
        Value::Map(_) => "object",
    }
}

const MISSING: &str = "missing value";
const INVALID_INDEX: &str = "invalid index referenced";

fn err(message: String) -> Error {
    Error::msg(message)
}

/// A string member of the operation (`path`, `from`); `Err` carries the library's complaint.
fn string_member(op: &Map, name: &str, missing: &str) -> std::result::Result<String, String> {
    match op.get(name) {
        None | Some(Value::Null) => Err(format!("{missing}: {MISSING}")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go value of type string",
            json_type(other)
        )),
    }
}

fn path_of(op: &Map) -> std::result::Result<String, String> {
    string_member(op, "path", "operation missing path field")
}

fn from_of(op: &Map) -> std::result::Result<String, String> {
    string_member(op, "from", "operation, missing from field")
}

/// The operation's `value`: `None` when absent (it then adds `null`).
fn value_of(op: &Map) -> Option<&Value> {
    op.get("value")
}

fn apply_op(doc: &mut Value, op: &Map) -> Result<()> {
    let kind = match op.get("op") {
        Some(Value::String(s)) => s.as_str(),
        _ => "unknown",
    };
    match kind {
        "add" => {
            let path = path_of(op)
                .map_err(|_| err(format!("add operation failed to decode path: {MISSING}")))?;
            let Some((con, key)) = find_object(doc, &path) else {
                return Err(err(format!(
                    "add operation does not apply: doc is missing path: \"{path}\": {MISSING}"
                )));
            };
            add(con, &key, value_of(op).cloned().unwrap_or(Value::Null))
                .map_err(|e| err(format!("error in add for path: '{path}': {e}")))
        }
        "remove" => {
            let path = path_of(op)
                .map_err(|_| err(format!("remove operation failed to decode path: {MISSING}")))?;
            let Some((con, key)) = find_object(doc, &path) else {
                return Err(err(format!(
                    "remove operation does not apply: doc is missing path: \"{path}\": {MISSING}"
                )));
            };
            remove(con, &key).map_err(|e| err(format!("error in remove for path: '{path}': {e}")))
        }
        "replace" => {
            let path = path_of(op)
                .map_err(|e| err(format!("replace operation failed to decode path: {e}")))?;
            if path.is_empty() {
                return match value_of(op) {
                    Some(v @ (Value::Map(_) | Value::Seq(_))) => {
                        *doc = v.clone();
                        Ok(())
                    }
                    _ => Err(err(
                        "replace operation value must be object or array".to_string()
                    )),
                };
            }
            let Some((con, key)) = find_object(doc, &path) else {
                return Err(err(format!(
                    "replace operation does not apply: doc is missing path: {path}: {MISSING}"
                )));
            };
            if get(con, &key).is_err() {
                return Err(err(format!(
                    "replace operation does not apply: doc is missing key: {path}: {MISSING}"
                )));
            }
            set(con, &key, value_of(op).cloned().unwrap_or(Value::Null))
                .map_err(|e| err(format!("error in remove for path: '{path}': {e}")))
        }
        "move" => {
            let from = from_of(op)
                .map_err(|e| err(format!("move operation failed to decode from: {e}")))?;
            let Some((con, key)) = find_object(doc, &from) else {
                return Err(err(format!(
                    "move operation does not apply: doc is missing from path: {from}: {MISSING}"
                )));
            };
            let val = get(con, &key)
                .map_err(|e| err(format!("error in move for path: '{key}': {e}")))?
                .cloned()
                .unwrap_or(Value::Null);
            remove(con, &key).map_err(|e| err(format!("error in move for path: '{key}': {e}")))?;
            let path = path_of(op)
                .map_err(|e| err(format!("move operation failed to decode path: {e}")))?;
            let Some((con, key)) = find_object(doc, &path) else {
                return Err(err(format!(
                    "move operation does not apply: doc is missing destination path: {path}: {MISSING}"
                )));
            };
            add(con, &key, val).map_err(|e| err(format!("error in move for path: '{path}': {e}")))
        }
        "test" => {
            let path = path_of(op)
                .map_err(|e| err(format!("test operation failed to decode path: {e}")))?;
            let failed = || err(format!("testing value {path} failed: test failed"));
            let expected = value_of(op).filter(|v| !v.is_null());
            if path.is_empty() {
                return match expected {
                    Some(v) if json_equal(doc, v) => Ok(()),
                    _ => Err(failed()),
                };
            }
            let Some((con, key)) = find_object(doc, &path) else {
                return Err(err(format!(
                    "test operation does not apply: is missing path: {path}: {MISSING}"
                )));
            };
            let actual = get(con, &key)
                .map_err(|e| err(format!("error in test for path: '{path}': {e}")))?;
            match (actual, expected) {
                (None, None) => Ok(()),
                (Some(a), Some(e)) if json_equal(a, e) => Ok(()),
                _ => Err(failed()),
            }
        }
        "copy" => {
            let from = from_of(op)
                .map_err(|e| err(format!("copy operation failed to decode from: {e}")))?;
            let Some((con, key)) = find_object(doc, &from) else {
                return Err(err(format!(
                    "copy operation does not apply: doc is missing from path: {from}: {MISSING}"
                )));
            };
            let val = get(con, &key)
                .map_err(|e| err(format!("error in copy for from: '{from}': {e}")))?
                .cloned()
                .unwrap_or(Value::Null);
            let path = path_of(op)
                .map_err(|_| err(format!("copy operation failed to decode path: {MISSING}")))?;
            let Some((con, key)) = find_object(doc, &path) else {
                return Err(err(format!(
                    "copy operation does not apply: doc is missing destination path: {path}: {MISSING}"
                )));
            };
            add(con, &key, val)
                .map_err(|e| err(format!("error while adding value during copy: {e}")))
        }
        other => Err(err(format!("Unexpected kind: {other}"))),
    }
}

/// RFC 6901 unescaping.
fn decode_key(key: &str) -> String {
    key.replace("~1", "/").replace("~0", "~")
}

/// The container holding the last token of `path`, and that token (decoded); `None` when a
/// parent is missing, `null`, a scalar, or not addressable.
fn find_object<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
    let tokens: Vec<&str> = path.split('/').collect();
    if tokens.len() < 2 {
        return None;
    }
    let (last, parents) = tokens[1..].split_last()?;
    let mut cur = doc;
    for part in parents {
        let key = decode_key(part);
        let next = match cur {
            Value::Map(m) => m.get_mut(&key),
            Value::Seq(items) => {
                let idx = array_index(items.len(), &key).ok()?;
                items.get_mut(idx)
            }
            _ => None,
        }?;
        if !matches!(next, Value::Map(_) | Value::Seq(_)) {
            return None;
        }
        cur = next;
    }
    Some((cur, decode_key(last)))
}

/// Go's `strconv.Atoi` error text.
fn parse_index(key: &str) -> std::result::Result<i64, String> {
    let digits = key.strip_prefix(['+', '-']).unwrap_or(key);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing \"{key}\": invalid syntax"));
    }
    key.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing \"{key}\": value out of range"))
}

fn invalid_index(idx: i64) -> String {
    format!("Unable to access invalid index: {idx}: {INVALID_INDEX}")
}

/// An existing element's index (`get`/`set`): negative counts from the end.
fn array_index(len: usize, key: &str) -> std::result::Result<usize, String> {
    let idx = parse_index(key)?;
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let mut i = idx;
    if i < 0 {
        if i < -len {
            return Err(invalid_index(idx));
        }
        i += len;
    }
    if i >= len {
        return Err(invalid_index(idx));
    }
    usize::try_from(i).map_err(|_| invalid_index(idx))
}

/// The member or element at `key`; `Ok(None)` for a missing or `null` member of an object.
fn get<'a>(con: &'a Value, key: &str) -> std::result::Result<Option<&'a Value>, String> {
    match con {
        Value::Map(m) => Ok(m.get(key).filter(|v| !v.is_null())),
        Value::Seq(items) => {
            let idx = array_index(items.len(), key)?;
            Ok(items.get(idx).filter(|v| !v.is_null()))
        }
        _ => Ok(None),
    }
}

fn set(con: &mut Value, key: &str, val: Value) -> std::result::Result<(), String> {
    match con {
        Value::Map(m) => {
            m.insert(key.to_string(), val);
            Ok(())
        }
        Value::Seq(items) => {
            let idx = array_index(items.len(), key)?;
            if let Some(slot) = items.get_mut(idx) {
                *slot = val;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn add(con: &mut Value, key: &str, val: Value) -> std::result::Result<(), String> {
    match con {
        Value::Map(m) => {
            m.insert(key.to_string(), val);
            Ok(())
        }
        Value::Seq(items) => {
            if key == "-" {
                items.push(val);
                return Ok(());
            }
            let idx = parse_index(key)
                .map_err(|e| format!("value was not a proper array index: '{key}': {e}"))?;
            let size = i64::try_from(items.len()).unwrap_or(i64::MAX) + 1;
            let mut i = idx;
            if i >= size {
                return Err(invalid_index(idx));
            }
            if i < 0 {
                if i < -size {
                    return Err(invalid_index(idx));
                }
                i += size;
            }
            let i = usize::try_from(i).map_err(|_| invalid_index(idx))?;
            items.insert(i.min(items.len()), val);
            Ok(())
        }
        _ => Ok(()),
    }
}

fn remove(con: &mut Value, key: &str) -> std::result::Result<(), String> {
    match con {
        Value::Map(m) => {
            if m.shift_remove(key).is_none() {
                return Err(format!(
                    "Unable to remove nonexistent key: {key}: {MISSING}"
                ));
            }
            Ok(())
        }
        Value::Seq(items) => {
            let idx = parse_index(key)?;
            let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
            let mut i = idx;
            if i >= len {
                return Err(invalid_index(idx));
            }
            if i < 0 {
                if i < -len {
                    return Err(invalid_index(idx));
                }
                i += len;
            }
            let i = usize::try_from(i).map_err(|_| invalid_index(idx))?;
            items.remove(i);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Structural equality as the library compares JSON (numbers by value; a `null` member equals
/// an absent one only at the top of a `test`).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.get(k).is_some_and(|w| match (v.is_null(), w.is_null()) {
                        (true, true) => true,
                        (false, false) => json_equal(v, w),
                        _ => false,
                    })
                })
        }
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_equal(v, w))
        }
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
        (Value::Float(x), Value::Float(y)) => x == y,
        _ => a == b,
    }
}
