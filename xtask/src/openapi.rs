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

/// Kinds that kustomize v5.5 merges with the Kubernetes v1.21.2 schema it embeds but that later
/// Kubernetes releases no longer serve: `(apiVersion, kind, served apiVersion)`. Each is merged
/// like the served version of the kind; their merge keys were checked against kustomize's
/// embedded table (the served versions only add fields).
const LEGACY: &[(&str, &str, &str)] = &[
    (
        "admissionregistration.k8s.io/v1beta1",
        "MutatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1",
    ),
    (
        "admissionregistration.k8s.io/v1beta1",
        "ValidatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1",
    ),
    (
        "apiextensions.k8s.io/v1beta1",
        "CustomResourceDefinition",
        "apiextensions.k8s.io/v1",
    ),
    (
        "apiregistration.k8s.io/v1beta1",
        "APIService",
        "apiregistration.k8s.io/v1",
    ),
    (
        "authentication.k8s.io/v1beta1",
        "TokenReview",
        "authentication.k8s.io/v1",
    ),
    (
        "authorization.k8s.io/v1beta1",
        "LocalSubjectAccessReview",
        "authorization.k8s.io/v1",
    ),
    (
        "authorization.k8s.io/v1beta1",
        "SelfSubjectAccessReview",
        "authorization.k8s.io/v1",
    ),
    (
        "authorization.k8s.io/v1beta1",
        "SelfSubjectRulesReview",
        "authorization.k8s.io/v1",
    ),
    (
        "authorization.k8s.io/v1beta1",
        "SubjectAccessReview",
        "authorization.k8s.io/v1",
    ),
    (
        "autoscaling/v2beta1",
        "HorizontalPodAutoscaler",
        "autoscaling/v2",
    ),
    (
        "autoscaling/v2beta2",
        "HorizontalPodAutoscaler",
        "autoscaling/v2",
    ),
    ("batch/v1beta1", "CronJob", "batch/v1"),
    (
        "certificates.k8s.io/v1beta1",
        "CertificateSigningRequest",
        "certificates.k8s.io/v1",
    ),
    (
        "coordination.k8s.io/v1beta1",
        "Lease",
        "coordination.k8s.io/v1",
    ),
    (
        "discovery.k8s.io/v1beta1",
        "EndpointSlice",
        "discovery.k8s.io/v1",
    ),
    ("events.k8s.io/v1beta1", "Event", "events.k8s.io/v1"),
    ("extensions/v1beta1", "Ingress", "networking.k8s.io/v1"),
    (
        "flowcontrol.apiserver.k8s.io/v1beta1",
        "FlowSchema",
        "flowcontrol.apiserver.k8s.io/v1",
    ),
    (
        "flowcontrol.apiserver.k8s.io/v1beta1",
        "PriorityLevelConfiguration",
        "flowcontrol.apiserver.k8s.io/v1",
    ),
    (
        "networking.k8s.io/v1beta1",
        "Ingress",
        "networking.k8s.io/v1",
    ),
    (
        "networking.k8s.io/v1beta1",
        "IngressClass",
        "networking.k8s.io/v1",
    ),
    ("node.k8s.io/v1beta1", "RuntimeClass", "node.k8s.io/v1"),
    ("policy/v1beta1", "Eviction", "policy/v1"),
    ("policy/v1beta1", "PodDisruptionBudget", "policy/v1"),
    (
        "rbac.authorization.k8s.io/v1beta1",
        "ClusterRole",
        "rbac.authorization.k8s.io/v1",
    ),
    (
        "rbac.authorization.k8s.io/v1beta1",
        "ClusterRoleBinding",
        "rbac.authorization.k8s.io/v1",
    ),
    (
        "rbac.authorization.k8s.io/v1beta1",
        "Role",
        "rbac.authorization.k8s.io/v1",
    ),
    (
        "rbac.authorization.k8s.io/v1beta1",
        "RoleBinding",
        "rbac.authorization.k8s.io/v1",
    ),
    (
        "scheduling.k8s.io/v1beta1",
        "PriorityClass",
        "scheduling.k8s.io/v1",
    ),
    ("storage.k8s.io/v1beta1", "CSIDriver", "storage.k8s.io/v1"),
    ("storage.k8s.io/v1beta1", "CSINode", "storage.k8s.io/v1"),
    (
        "storage.k8s.io/v1beta1",
        "CSIStorageCapacity",
        "storage.k8s.io/v1",
    ),
    (
        "storage.k8s.io/v1beta1",
        "StorageClass",
        "storage.k8s.io/v1",
    ),
    (
        "storage.k8s.io/v1beta1",
        "VolumeAttachment",
        "storage.k8s.io/v1",
    ),
];

/// Regenerates the table (or, with `check`, fails when the committed one differs).
pub fn openapi(check: bool) -> Result<ExitCode> {
    let swagger = fetch()?;
    let mut defs = prune(&swagger)?;
    add_legacy_kinds(&mut defs, LEGACY)?;
    let text = render(&defs)?;
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

/// `(group, version)` of an apiVersion.
fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// Adds legacy kinds ([`LEGACY`]) to the `x-kubernetes-group-version-kind` of their served
/// definition.
fn add_legacy_kinds(
    defs: &mut BTreeMap<String, Value>,
    legacy: &[(&str, &str, &str)],
) -> Result<()> {
    for (old, kind, served) in legacy {
        let (group, version) = split_api_version(served);
        let wanted = json!({"group": group, "kind": kind, "version": version});
        let gvks = defs
            .values_mut()
            .filter_map(|d| d.get_mut("x-kubernetes-group-version-kind"))
            .filter_map(Value::as_array_mut)
            .find(|gvks| gvks.contains(&wanted))
            .with_context(|| format!("{served} {kind} (for {old}) is not served any more"))?;
        let (group, version) = split_api_version(old);
        gvks.push(json!({"group": group, "kind": kind, "version": version}));
    }
    Ok(())
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
    // kyaml only walks into the elements of lists it merges by key.
    let merges = schema
        .get("x-kubernetes-patch-strategy")
        .and_then(Value::as_str)
        .is_some_and(|s| s.split(',').any(|s| s == "merge"));
    if merges && let Some(p) = schema.get("items").and_then(|s| prune_schema(s, relevant)) {
        out.insert("items".into(), p);
    }
    if let Some(p) = schema
        .get("additionalProperties")
        .and_then(|s| prune_schema(s, relevant))
    {
        out.insert("additionalProperties".into(), p);
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

    #[test]
    fn legacy_kinds_join_their_served_definition() {
        let mut defs = BTreeMap::from([(
            "b.CronJob".to_string(),
            json!({"x-kubernetes-group-version-kind": [{"group": "batch", "kind": "CronJob", "version": "v1"}]}),
        )]);
        add_legacy_kinds(&mut defs, &[("batch/v1beta1", "CronJob", "batch/v1")]).unwrap();
        assert_eq!(
            defs["b.CronJob"]["x-kubernetes-group-version-kind"][1],
            json!({"group": "batch", "kind": "CronJob", "version": "v1beta1"})
        );
        assert!(add_legacy_kinds(&mut defs, &[("x/v1beta1", "Gone", "x/v1")]).is_err());
    }
}
