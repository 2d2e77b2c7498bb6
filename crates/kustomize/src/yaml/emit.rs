//! Encoding [`Value`]s exactly as `kustomize build` prints them (placeholder, being written).

use super::value::Value;

/// Formats a float as Go's `strconv.FormatFloat(f, 'g', -1, 64)` after a JSON round trip.
pub fn format_float(f: f64) -> String {
    format!("{f}")
}

/// One document as YAML text ending in a newline.
pub fn to_yaml(v: &Value) -> String {
    format!("{v:?}\n")
}

/// Documents joined by `---\n`, as `kustomize build` prints a resource list.
pub fn to_yaml_stream(docs: &[Value]) -> String {
    docs.iter().map(to_yaml).collect::<Vec<_>>().join("---\n")
}
