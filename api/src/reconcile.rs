//! The `reconcile.weir.dev/requestedAt` annotation: any new value asks for an immediate reconcile;
//! the controller copies the handled value to `status.lastHandledReconcileAt`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The annotation key.
pub const REQUESTED_AT_ANNOTATION: &str = "reconcile.weir.dev/requestedAt";

/// The value of the requestedAt annotation, if set.
pub fn requested_at(meta: &ObjectMeta) -> Option<&str> {
    meta.annotations
        .as_ref()?
        .get(REQUESTED_AT_ANNOTATION)
        .map(String::as_str)
}

/// The value a controller should store in `status.lastHandledReconcileAt` after a reconcile, or
/// `None` when there is no request it has not handled yet.
pub fn unhandled_request<'a>(meta: &'a ObjectMeta, last_handled: Option<&str>) -> Option<&'a str> {
    requested_at(meta).filter(|v| Some(*v) != last_handled)
}

/// A merge patch that sets the annotation to `value` (e.g. the current time in RFC 3339).
pub fn request_patch(value: &str) -> serde_json::Value {
    serde_json::json!({ "metadata": { "annotations": { REQUESTED_AT_ANNOTATION: value } } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn meta(value: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            annotations: value
                .map(|v| BTreeMap::from([(REQUESTED_AT_ANNOTATION.to_owned(), v.to_owned())])),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn only_a_new_value_is_unhandled() {
        assert_eq!(unhandled_request(&meta(None), None), None);
        assert_eq!(unhandled_request(&meta(Some("t1")), None), Some("t1"));
        assert_eq!(unhandled_request(&meta(Some("t1")), Some("t1")), None);
        assert_eq!(unhandled_request(&meta(Some("t2")), Some("t1")), Some("t2"));
    }

    #[test]
    fn patch_sets_the_annotation() {
        let p = request_patch("2026-01-01T00:00:00Z");
        assert_eq!(
            p["metadata"]["annotations"][REQUESTED_AT_ANNOTATION],
            "2026-01-01T00:00:00Z"
        );
    }
}
