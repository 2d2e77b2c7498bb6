//! YAML in and out, byte-compatible with kustomize: decoding follows yaml.v3 (what kustomize reads
//! with), encoding follows `sigs.k8s.io/yaml`'s JSON-to-YAML path over go-yaml v2 (what
//! `kustomize build` prints with): keys sorted, 80-column folding, v2 quoting rules.

mod emit;
mod parse;
mod value;

pub use emit::{format_float, to_yaml, to_yaml_stream};
pub use parse::{YamlError, parse_documents, parse_documents_lenient, parse_one, resolve_plain};
pub use value::{Map, Value};
