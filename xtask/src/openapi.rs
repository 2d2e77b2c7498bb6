//! `cargo xtask openapi [--check]`: the strategic-merge table of weir's kustomize engine.
//!
//! Starts the test control plane, reads the apiserver's `/openapi/v2` document and keeps only
//! what a strategic merge patch needs: the definitions carrying `x-kubernetes-group-version-kind`
//! and, below them, every property that is (or leads through `$ref`s, `items` and
//! `additionalProperties` to) a field with `x-kubernetes-patch-strategy`. The result is still a
//! Swagger document (`definitions` only), so the engine reads it with the same code as a
//! kustomization's own `openapi: {path: …}` file. It is written one definition per line to
//! `crates/kustomize/src/patch/k8s_schema.json`.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    process::ExitCode,
};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};
use weir_testenv::{ControlPlane, ControlPlaneOptions, binaries::KUBERNETES_VERSION};

/// Where the table lives, relative to the workspace root.
const TABLE: &str = "crates/kustomize/src/patch/k8s_schema.json";

const REF_PREFIX: &str = "#/definitions/";

/// The extensions copied onto the kept properties.
const EXTENSIONS: [&str; 4] = [
    "x-kubernetes-patch-strategy",
    "x-kubernetes-patch-merge-key",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
];

/// Regenerates the table (or, with `check`, fails when the committed one differs).
pub fn openapi(check: bool) -> Result<ExitCode> {
    let swagger = fetch()?;
    let text = render(&prune(&swagger)?)?;
    let path = super::workspace_root().join(TABLE);
    let current = fs::read_to_string(&path).ok();
    match (check, current.as_deref() == Some(text.as_str())) {
        (_, true) => println!("{TABLE} is up to date"),
        (true, false) => bail!("{TABLE} is stale: run `cargo xtask openapi`"),
        (false, false) => {
            fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {TABLE} ({} bytes)", text.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts a minimal control plane (etcd + kube-apiserver) and GETs `/openapi/v2`.
fn fetch() -> Result<Value> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let plane = ControlPlane::start(ControlPlaneOptions::default()).await?;
        let client = plane.client().await?;
        let request = kube::core::Request::new("/openapi")
            .get("v2", &kube::api::GetParams::default())
            .context("building the /openapi/v2 request")?;
        let text = client
            .request_text(request)
            .await
            .context("GET /openapi/v2")?;
        drop(plane);
        serde_json::from_str(&text).context("parsing /openapi/v2")
    })
}

/// Keeps the merge-relevant part of a Swagger document.
fn prune(swagger: &Value) -> Result<BTreeMap<String, Value>> {
    let defs = swagger
        .get("definitions")
        .and_then(Value::as_object)
        .context("/openapi/v2 has no definitions")?;

    // A definition is relevant when something under it has a patch strategy; find the fixpoint
    // (definitions refer to each other, sometimes in cycles).
    let mut relevant: BTreeSet<String> = BTreeSet::new();
    loop {
        let before = relevant.len();
        for (name, schema) in defs {
            if !relevant.contains(name) && prune_schema(schema, &relevant).is_some() {
                relevant.insert(name.clone());
            }
        }
        if relevant.len() == before {
            break;
        }
    }

    // Keep the relevant kinds and everything they reach.
    let mut out = BTreeMap::new();
    let mut queue: Vec<String> = defs
        .iter()
        .filter(|(name, schema)| {
            relevant.contains(*name) && schema.get("x-kubernetes-group-version-kind").is_some()
        })
        .map(|(name, _)| name.clone())
        .collect();
    while let Some(name) = queue.pop() {
        if out.contains_key(&name) {
            continue;
        }
        let Some(schema) = defs.get(&name) else {
            continue;
        };
        let Some(mut pruned) = prune_schema(schema, &relevant) else {
            continue;
        };
        if let (Some(gvk), Some(obj)) = (
            schema.get("x-kubernetes-group-version-kind"),
            pruned.as_object_mut(),
        ) {
            obj.insert("x-kubernetes-group-version-kind".into(), gvk.clone());
        }
        collect_refs(&pruned, &mut queue);
        out.insert(name, pruned);
    }
    Ok(out)
}

/// The merge-relevant part of one schema, or `None` when nothing under it matters.
fn prune_schema(schema: &Value, relevant: &BTreeSet<String>) -> Option<Value> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.strip_prefix(REF_PREFIX).unwrap_or(reference);
        return relevant
            .contains(name)
            .then(|| json!({ "$ref": format!("{REF_PREFIX}{name}") }));
    }
    let mut out = Map::new();
    if schema.get("x-kubernetes-patch-strategy").is_some() {
        for ext in EXTENSIONS {
            if let Some(v) = schema.get(ext) {
                out.insert(ext.into(), v.clone());
            }
        }
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        let kept: Map<String, Value> = props
            .iter()
            .filter_map(|(k, v)| prune_schema(v, relevant).map(|p| (k.clone(), p)))
            .collect();
        if !kept.is_empty() {
            out.insert("properties".into(), Value::Object(kept));
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(p) = schema.get(key).and_then(|s| prune_schema(s, relevant)) {
            out.insert(key.into(), p);
        }
    }
    if out.is_empty() {
        return None;
    }
    if let Some(t) = schema.get("type") {
        out.insert("type".into(), t.clone());
    }
    Some(Value::Object(out))
}

fn collect_refs(schema: &Value, queue: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(REF_PREFIX))
            {
                queue.push(name.to_string());
            }
            for v in map.values() {
                collect_refs(v, queue);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, queue)),
        _ => {}
    }
}

/// One definition per line, sorted, so that diffs stay readable.
fn render(defs: &BTreeMap<String, Value>) -> Result<String> {
    let info = json!({
        "title": format!(
            "Strategic-merge table of Kubernetes {KUBERNETES_VERSION}, generated by `cargo xtask openapi` from the apiserver's /openapi/v2. Do not edit."
        ),
        "version": KUBERNETES_VERSION,
    });
    let mut text = String::from("{\n\"swagger\": \"2.0\",\n");
    text.push_str(&format!("\"info\": {},\n", serde_json::to_string(&info)?));
    text.push_str("\"definitions\": {\n");
    let count = defs.len();
    for (i, (name, schema)) in defs.iter().enumerate() {
        let sep = if i + 1 == count { "" } else { "," };
        text.push_str(&format!(
            "{}: {}{sep}\n",
            serde_json::to_string(name)?,
            serde_json::to_string(schema)?
        ));
    }
    text.push_str("}\n}\n");
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prunes_to_merge_relevant_paths() {
        let swagger = json!({"definitions": {
            "a.Kind": {
                "type": "object",
                "x-kubernetes-group-version-kind": [{"group": "g", "version": "v1", "kind": "Kind"}],
                "properties": {
                    "spec": {"$ref": "#/definitions/a.Spec"},
                    "status": {"$ref": "#/definitions/a.Status"},
                    "name": {"type": "string"}
                }
            },
            "a.Spec": {"type": "object", "properties": {
                "items": {"type": "array", "items": {"$ref": "#/definitions/a.Item"},
                          "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name",
                          "description": "dropped"}
            }},
            "a.Item": {"type": "object", "properties": {"name": {"type": "string"}}},
            "a.Status": {"type": "object", "properties": {"phase": {"type": "string"}}}
        }});
        let out = prune(&swagger).unwrap();
        assert_eq!(out.keys().collect::<Vec<_>>(), ["a.Kind", "a.Spec"]);
        assert_eq!(
            out["a.Spec"],
            json!({"type": "object", "properties": {"items": {"type": "array",
                "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"}}})
        );
        assert_eq!(
            out["a.Kind"]["properties"],
            json!({"spec": {"$ref": "#/definitions/a.Spec"}})
        );
    }
}
