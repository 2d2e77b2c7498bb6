//! Deciding whether an apply would change an object, without writing it.
//!
//! The engine server-side applies every object as a dry-run and compares the result with the
//! live object. The apiserver computes the result with the real merge semantics (defaults,
//! list-map keys, fields owned by other managers kept), so the comparison needs no schema
//! knowledge: if the dry-run result equals the live object, applying would change nothing and
//! nothing is written. Edits made out of band to fields the set declares show up as a
//! difference (the dry-run puts our values back); fields the set does not declare are not ours
//! and never count as drift. This is the approach of Flux's `ssa` package.

use serde_json::Value;

/// Whether `dry_run` (the dry-run apply result) differs from `live` in what an apply can
/// change: labels, annotations and everything outside `metadata` and `status`. Bookkeeping that
/// every write changes (resourceVersion, generation, managedFields, timestamps) is ignored.
pub fn has_drifted(live: &Value, dry_run: &Value) -> bool {
    let meta = |v: &Value, key: &str| {
        v.get("metadata")
            .and_then(|m| m.get(key))
            .filter(|x| !x.is_null() && x.as_object().is_none_or(|o| !o.is_empty()))
            .cloned()
    };
    if meta(live, "labels") != meta(dry_run, "labels")
        || meta(live, "annotations") != meta(dry_run, "annotations")
    {
        return true;
    }
    strip(live) != strip(dry_run)
}

fn strip(object: &Value) -> Value {
    let mut v = object.clone();
    if let Some(map) = v.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    v
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cm(data: Value, labels: Value, rv: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "labels": labels, "resourceVersion": rv,
                         "managedFields": [{"manager": rv}]},
            "data": data,
        })
    }

    #[test]
    fn bookkeeping_is_not_drift() {
        let live = cm(json!({"k": "v"}), json!({"x": "1"}), "1");
        let dry = cm(json!({"k": "v"}), json!({"x": "1"}), "2");
        assert!(!has_drifted(&live, &dry));
    }

    #[test]
    fn data_and_label_changes_are_drift() {
        let live = cm(json!({"k": "v"}), json!({"x": "1"}), "1");
        assert!(has_drifted(
            &live,
            &cm(json!({"k": "w"}), json!({"x": "1"}), "1")
        ));
        assert!(has_drifted(
            &live,
            &cm(json!({"k": "v"}), json!({"x": "2"}), "1")
        ));
        assert!(has_drifted(&live, &cm(json!({}), json!({"x": "1"}), "1")));
    }

    #[test]
    fn status_is_not_drift_and_empty_maps_equal_absent() {
        let mut a = cm(json!({"k": "v"}), json!({}), "1");
        let mut b = cm(json!({"k": "v"}), Value::Null, "1");
        a["status"] = json!({"phase": "A"});
        b["status"] = json!({"phase": "B"});
        assert!(!has_drifted(&a, &b));
    }
}
