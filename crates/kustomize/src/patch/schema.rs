//! Merge keys and strategies from OpenAPI (Swagger 2.0) definitions, looked up the way kyaml's
//! `openapi` package does: a resource's schema is found by `apiVersion` + `kind` through
//! `x-kubernetes-group-version-kind`; a field's schema is its `properties` entry (or
//! `additionalProperties`) with `$ref`s resolved; a list's elements are its `items` (only when its
//! `type` is `array`); a list merges by key when its `x-kubernetes-patch-strategy` contains
//! `merge`, with `x-kubernetes-list-map-keys` as keys, else `x-kubernetes-patch-merge-key`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::resid::Gvk;
use crate::yaml::Value;

/// The builtin table: Kubernetes' `/openapi/v2`, pruned to the merge-relevant definitions by
/// `cargo xtask openapi`.
const BUILTIN_TABLE: &str = include_str!("k8s_schema.json");

/// How many `$ref`s in a row are followed before giving up (a definition referring to itself).
const MAX_REF_CHAIN: usize = 64;

/// Where a `$ref` points.
#[derive(Debug, Clone, PartialEq)]
enum Ref {
    /// `#/definitions/<name>`.
    Definition(String),
    /// Anything else: never resolves (kyaml then has no schema for the field).
    Unresolvable,
}

/// One schema, reduced to what merging needs.
#[derive(Debug, Default, Clone)]
pub(crate) struct Node {
    reference: Option<Ref>,
    array: bool,
    properties: HashMap<String, Node>,
    additional: Option<Box<Node>>,
    items: Option<Box<Node>>,
    strategy: Option<String>,
    merge_key: Option<String>,
    map_keys: Option<Vec<String>>,
}

/// The definitions of one OpenAPI document and the kinds they describe.
#[derive(Debug, Default)]
struct Definitions {
    defs: HashMap<String, Node>,
    /// `(apiVersion, kind)` → definition name.
    kinds: HashMap<(String, String), String>,
}

/// Merge keys and strategies, from the committed OpenAPI table plus any custom schema a
/// kustomization supplies (`openapi: {path: …}`).
///
/// `Schema::default()` knows no kinds at all: every list is then replaced by a patch.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Highest precedence first.
    layers: Vec<Arc<Definitions>>,
}

impl Schema {
    /// The builtin Kubernetes schema (generated from a real apiserver's `/openapi/v2` by
    /// `cargo xtask openapi`, plus the beta versions kustomize v5.5 still knows).
    pub fn builtin() -> Schema {
        static BUILTIN: OnceLock<Arc<Definitions>> = OnceLock::new();
        let defs = BUILTIN.get_or_init(|| {
            let parsed = serde_json::from_str::<serde_json::Value>(BUILTIN_TABLE)
                .ok()
                .and_then(|json| parse_document(&Value::from_json(&json)).ok());
            Arc::new(parsed.unwrap_or_default())
        });
        Schema {
            layers: vec![defs.clone()],
        }
    }

    /// The schema of one OpenAPI document alone (what `openapi: {path: …}` in a kustomization
    /// names: Swagger JSON or YAML with `definitions`, their `x-kubernetes-group-version-kind`
    /// and `x-kubernetes-patch-merge-key`/`-strategy`); builtin kinds are unknown to it.
    pub fn from_openapi(doc: &Value) -> Result<Schema> {
        let defs = parse_document(doc)
            .map_err(|message| Error::msg(format!("invalid schema file: {message}")))?;
        Ok(Schema {
            layers: vec![Arc::new(defs)],
        })
    }

    /// This schema with a custom OpenAPI document on top (see [`Schema::from_openapi`]): its
    /// kinds and definitions take precedence; `$ref`s to definitions it lacks resolve in `self`.
    pub fn with_custom(&self, doc: &Value) -> Result<Schema> {
        Ok(Schema::from_openapi(doc)?.with_fallback(self))
    }

    /// This schema, then `other` for the kinds and definitions it lacks.
    pub fn with_fallback(&self, other: &Schema) -> Schema {
        let mut layers = self.layers.clone();
        layers.extend(other.layers.iter().cloned());
        Schema { layers }
    }

    /// Whether the schema describes objects of kind `gvk`.
    pub fn knows(&self, gvk: &Gvk) -> bool {
        self.for_kind(&gvk.api_version(), &gvk.kind).is_some()
    }

    /// The schema of a resource type.
    pub(crate) fn for_kind(&self, api_version: &str, kind: &str) -> Option<&Node> {
        let key = (api_version.to_string(), kind.to_string());
        self.layers.iter().find_map(|layer| {
            let name = layer.kinds.get(&key)?;
            layer.defs.get(name).or_else(|| self.definition(name))
        })
    }

    fn definition(&self, name: &str) -> Option<&Node> {
        self.layers.iter().find_map(|layer| layer.defs.get(name))
    }

    /// Follows `$ref`s; `None` when one does not resolve.
    fn resolve<'a>(&'a self, mut node: &'a Node) -> Option<&'a Node> {
        for _ in 0..MAX_REF_CHAIN {
            match &node.reference {
                None => return Some(node),
                Some(Ref::Definition(name)) => node = self.definition(name)?,
                Some(Ref::Unresolvable) => return None,
            }
        }
        None
    }

    /// The schema of field `name` of an object (kyaml's `ResourceSchema.Field`).
    pub(crate) fn field<'a>(&'a self, node: &'a Node, name: &str) -> Option<&'a Node> {
        let field = node.properties.get(name).or(node.additional.as_deref())?;
        self.resolve(field)
    }

    /// The schema of a list's elements (kyaml's `ResourceSchema.Elements`).
    pub(crate) fn elements<'a>(&'a self, node: &'a Node) -> Option<&'a Node> {
        if !node.array {
            return None;
        }
        self.resolve(node.items.as_deref()?)
    }
}

impl Node {
    /// Whether a list with this schema merges by key (its strategy includes `merge`).
    pub(crate) fn merges(&self) -> bool {
        self.strategy
            .as_deref()
            .is_some_and(|s| s.split(',').any(|s| s == "merge"))
    }

    /// The patch strategy and merge keys (kyaml's `PatchStrategyAndKeyList`): no keys without a
    /// strategy; `x-kubernetes-list-map-keys` before `x-kubernetes-patch-merge-key`.
    pub(crate) fn strategy_and_keys(&self) -> (&str, Vec<String>) {
        let Some(strategy) = self.strategy.as_deref() else {
            return ("", Vec::new());
        };
        let keys = match (&self.map_keys, &self.merge_key) {
            (Some(keys), _) => keys.clone(),
            (None, Some(key)) => vec![key.clone()],
            (None, None) => Vec::new(),
        };
        (strategy, keys)
    }
}

/// Whether kustomize knows the namespace scope of `apiVersion`/`kind` without parsing its schema
/// (kyaml's `precomputedIsNamespaceScoped`).
///
/// This decides how a custom `openapi: {path: …}` schema combines with the builtin one in
/// kustomize v5.5, whose schema is global to a build: loading a resource of any *other* kind
/// before the custom schema is set makes kyaml parse its builtin schema too, after the custom
/// one (see "Which schema a build uses" in [`crate::patch`]).
pub fn scope_is_precomputed(api_version: &str, kind: &str) -> bool {
    PRECOMPUTED_SCOPE.contains(&(api_version, kind))
}

/// kyaml v0.18.1 `openapi.precomputedIsNamespaceScoped`'s keys.
const PRECOMPUTED_SCOPE: &[(&str, &str)] = &[
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1beta1",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1beta1",
        "ValidatingWebhookConfiguration",
    ),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"),
    ("apiregistration.k8s.io/v1", "APIService"),
    ("apiregistration.k8s.io/v1beta1", "APIService"),
    ("apps/v1", "ControllerRevision"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "ReplicaSet"),
    ("apps/v1", "StatefulSet"),
    ("autoscaling/v1", "HorizontalPodAutoscaler"),
    ("autoscaling/v1", "Scale"),
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler"),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"),
    ("batch/v1", "CronJob"),
    ("batch/v1", "Job"),
    ("batch/v1beta1", "CronJob"),
    ("certificates.k8s.io/v1", "CertificateSigningRequest"),
    ("certificates.k8s.io/v1beta1", "CertificateSigningRequest"),
    ("coordination.k8s.io/v1", "Lease"),
    ("coordination.k8s.io/v1beta1", "Lease"),
    ("discovery.k8s.io/v1", "EndpointSlice"),
    ("discovery.k8s.io/v1beta1", "EndpointSlice"),
    ("events.k8s.io/v1", "Event"),
    ("events.k8s.io/v1beta1", "Event"),
    ("extensions/v1beta1", "Ingress"),
    ("flowcontrol.apiserver.k8s.io/v1beta1", "FlowSchema"),
    (
        "flowcontrol.apiserver.k8s.io/v1beta1",
        "PriorityLevelConfiguration",
    ),
    ("networking.k8s.io/v1", "Ingress"),
    ("networking.k8s.io/v1", "IngressClass"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("networking.k8s.io/v1beta1", "Ingress"),
    ("networking.k8s.io/v1beta1", "IngressClass"),
    ("node.k8s.io/v1", "RuntimeClass"),
    ("node.k8s.io/v1beta1", "RuntimeClass"),
    ("policy/v1", "PodDisruptionBudget"),
    ("policy/v1beta1", "PodDisruptionBudget"),
    ("policy/v1beta1", "PodSecurityPolicy"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1beta1", "Role"),
    ("rbac.authorization.k8s.io/v1beta1", "RoleBinding"),
    ("scheduling.k8s.io/v1", "PriorityClass"),
    ("scheduling.k8s.io/v1beta1", "PriorityClass"),
    ("storage.k8s.io/v1", "CSIDriver"),
    ("storage.k8s.io/v1", "CSINode"),
    ("storage.k8s.io/v1", "StorageClass"),
    ("storage.k8s.io/v1", "VolumeAttachment"),
    ("storage.k8s.io/v1beta1", "CSIDriver"),
    ("storage.k8s.io/v1beta1", "CSINode"),
    ("storage.k8s.io/v1beta1", "CSIStorageCapacity"),
    ("storage.k8s.io/v1beta1", "StorageClass"),
    ("storage.k8s.io/v1beta1", "VolumeAttachment"),
    ("v1", "ComponentStatus"),
    ("v1", "ConfigMap"),
    ("v1", "Endpoints"),
    ("v1", "Event"),
    ("v1", "LimitRange"),
    ("v1", "Namespace"),
    ("v1", "Node"),
    ("v1", "NodeProxyOptions"),
    ("v1", "PersistentVolume"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Pod"),
    ("v1", "PodAttachOptions"),
    ("v1", "PodExecOptions"),
    ("v1", "PodPortForwardOptions"),
    ("v1", "PodProxyOptions"),
    ("v1", "PodTemplate"),
    ("v1", "ReplicationController"),
    ("v1", "ResourceQuota"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("v1", "ServiceProxyOptions"),
];

/// Reads the `definitions` of a Swagger document.
fn parse_document(doc: &Value) -> Result<Definitions, String> {
    let root = doc
        .as_map()
        .ok_or_else(|| format!("expected a mapping, got a {}", doc.type_name()))?;
    let mut out = Definitions::default();
    let Some(defs) = root.get("definitions") else {
        return Ok(out);
    };
    if defs.is_null() {
        return Ok(out);
    }
    let defs = defs.as_map().ok_or_else(|| {
        format!(
            "definitions: expected a mapping, got a {}",
            defs.type_name()
        )
    })?;
    for (name, def) in defs {
        let node = parse_node(def).map_err(|e| format!("definition {name}: {e}"))?;
        if let Some(Value::Seq(gvks)) = def.get("x-kubernetes-group-version-kind") {
            for gvk in gvks {
                let (Some(version), Some(kind)) = (
                    gvk.get("version").and_then(Value::as_str),
                    gvk.get("kind").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let api_version = match gvk.get("group").and_then(Value::as_str) {
                    Some(group) if !group.is_empty() => format!("{group}/{version}"),
                    _ => version.to_string(),
                };
                out.kinds
                    .insert((api_version, kind.to_string()), name.clone());
            }
        }
        out.defs.insert(name.clone(), node);
    }
    Ok(out)
}

fn parse_node(v: &Value) -> Result<Node, String> {
    let map = v
        .as_map()
        .ok_or_else(|| format!("expected a schema object, got a {}", v.type_name()))?;
    let mut node = Node::default();
    if let Some(r) = map.get("$ref") {
        let r = r.as_str().ok_or("$ref: expected a string")?;
        node.reference = Some(match r.strip_prefix("#/definitions/") {
            Some(name) if !name.contains('/') => {
                Ref::Definition(name.replace("~1", "/").replace("~0", "~"))
            }
            _ => Ref::Unresolvable,
        });
    }
    node.array = match map.get("type") {
        Some(Value::String(t)) => t == "array",
        Some(Value::Seq(ts)) => ts.len() == 1 && ts[0].as_str() == Some("array"),
        _ => false,
    };
    match map.get("properties") {
        Some(Value::Map(props)) => {
            for (name, prop) in props {
                let prop = parse_node(prop).map_err(|e| format!("{name}: {e}"))?;
                node.properties.insert(name.clone(), prop);
            }
        }
        None | Some(Value::Null) => {}
        Some(other) => {
            return Err(format!(
                "properties: expected a mapping, got a {}",
                other.type_name()
            ));
        }
    }
    if let Some(extra @ Value::Map(_)) = map.get("additionalProperties") {
        node.additional = Some(Box::new(
            parse_node(extra).map_err(|e| format!("additionalProperties: {e}"))?,
        ));
    }
    if let Some(items @ Value::Map(_)) = map.get("items") {
        node.items = Some(Box::new(
            parse_node(items).map_err(|e| format!("items: {e}"))?,
        ));
    }
    let string = |key: &str| -> Result<Option<String>, String> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!(
                "{key}: expected a string, got a {}",
                other.type_name()
            )),
        }
    };
    node.strategy = string("x-kubernetes-patch-strategy")?;
    node.merge_key = string("x-kubernetes-patch-merge-key")?;
    node.map_keys = match map.get("x-kubernetes-list-map-keys") {
        None | Some(Value::Null) => None,
        Some(Value::Seq(keys)) => Some(
            keys.iter()
                .map(|k| {
                    k.as_str()
                        .map(str::to_string)
                        .ok_or("x-kubernetes-list-map-keys: expected strings")
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(other) => {
            return Err(format!(
                "x-kubernetes-list-map-keys: expected a list, got a {}",
                other.type_name()
            ));
        }
    };
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_one;

    fn keys_at(
        schema: &Schema,
        api_version: &str,
        kind: &str,
        path: &[&str],
    ) -> (String, Vec<String>) {
        let mut node = schema.for_kind(api_version, kind).expect("kind");
        for (i, p) in path.iter().enumerate() {
            node = if *p == "[]" {
                schema.elements(node).expect("elements")
            } else {
                schema
                    .field(node, p)
                    .unwrap_or_else(|| panic!("field {p} at {i}"))
            };
        }
        let (s, k) = node.strategy_and_keys();
        (s.to_string(), k)
    }

    #[test]
    fn builtin_table_parses_and_has_the_usual_merge_keys() {
        let s = Schema::builtin();
        let pod = ["spec", "template", "spec"];
        let at = |rest: &[&str]| {
            let path: Vec<&str> = pod.iter().chain(rest).copied().collect();
            keys_at(&s, "apps/v1", "Deployment", &path)
        };
        assert_eq!(at(&["containers"]), ("merge".into(), vec!["name".into()]));
        assert_eq!(
            at(&["containers", "[]", "ports"]),
            (
                "merge".into(),
                vec!["containerPort".into(), "protocol".into()]
            )
        );
        assert_eq!(
            at(&["containers", "[]", "env"]),
            ("merge".into(), vec!["name".into()])
        );
        assert_eq!(
            at(&["volumes"]),
            ("merge,retainKeys".into(), vec!["name".into()])
        );
        assert_eq!(
            keys_at(&s, "v1", "Service", &["spec", "ports"]),
            ("merge".into(), vec!["port".into(), "protocol".into()])
        );
        assert_eq!(
            keys_at(&s, "v1", "Pod", &["metadata", "finalizers"]),
            ("merge".into(), vec![])
        );
        // A kind kustomize knows from its v1.21 schema that apiservers no longer serve.
        assert_eq!(
            keys_at(
                &s,
                "batch/v1beta1",
                "CronJob",
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "spec",
                    "containers"
                ]
            ),
            ("merge".into(), vec!["name".into()])
        );
        assert!(s.knows(&Gvk::from_api_version("apps/v1", "StatefulSet")));
        assert!(!s.knows(&Gvk::from_api_version("example.com/v1", "Thing")));
    }

    #[test]
    fn custom_definitions_take_precedence_and_fall_back_to_builtin() {
        let doc = parse_one(
            r##"
definitions:
  v1alpha1.MyCRD:
    type: object
    x-kubernetes-group-version-kind:
    - {group: example.com, kind: MyCRD, version: v1alpha1}
    properties:
      spec:
        properties:
          template:
            $ref: "#/definitions/io.k8s.api.core.v1.PodTemplateSpec"
          things:
            type: array
            x-kubernetes-patch-strategy: merge
            x-kubernetes-patch-merge-key: id
  io.k8s.api.core.v1.Container:
    properties:
      ports:
        type: array
        x-kubernetes-patch-strategy: merge
        x-kubernetes-patch-merge-key: name
"##,
        )
        .unwrap();
        let s = Schema::builtin().with_custom(&doc).unwrap();
        assert_eq!(
            keys_at(&s, "example.com/v1alpha1", "MyCRD", &["spec", "things"]),
            ("merge".into(), vec!["id".into()])
        );
        // PodTemplateSpec and PodSpec come from the builtin table ...
        assert_eq!(
            keys_at(
                &s,
                "example.com/v1alpha1",
                "MyCRD",
                &["spec", "template", "spec", "containers"]
            ),
            ("merge".into(), vec!["name".into()])
        );
        // ... but the custom Container wins, also for builtin kinds.
        assert_eq!(
            keys_at(
                &s,
                "apps/v1",
                "Deployment",
                &["spec", "template", "spec", "containers", "[]", "ports"]
            ),
            ("merge".into(), vec!["name".into()])
        );
        assert!(Schema::builtin().with_custom(&Value::from("nope")).is_err());
    }
}
