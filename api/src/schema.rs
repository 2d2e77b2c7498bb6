//! Schema fragments that derive macros cannot express.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// A list of `metav1.Condition` as a list-map keyed on `type`, so server-side apply merges
/// conditions by type instead of replacing the whole list.
pub(crate) fn conditions(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    });
    schema.insert(
        "items".to_owned(),
        crate::conditions::Condition::json_schema(generator).to_value(),
    );
    schema
}
