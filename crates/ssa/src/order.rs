//! The order objects are applied (and, reversed, pruned) in.
//!
//! **Definitions stage** (applied first, then awaited): `CustomResourceDefinition`, `Namespace`,
//! `ClusterRole`, `ClusterRoleBinding`. Custom resources and namespaced objects of the set cannot
//! be validated before their CRD or namespace exists.
//!
//! **Resources stage**, by kind in this order: `PriorityClass`, `StorageClass`, `IngressClass`,
//! `RuntimeClass`, `ResourceQuota`, `LimitRange`, `ServiceAccount`, `Role`, `RoleBinding`,
//! `ConfigMap`, `Secret`, `PersistentVolume`, `PersistentVolumeClaim`, `Service`, `Endpoints`,
//! `PodDisruptionBudget`, `Pod`, `ReplicationController`, `ReplicaSet`, `DaemonSet`,
//! `Deployment`, `StatefulSet`, `Job`, `CronJob`, `HorizontalPodAutoscaler`, `Ingress`,
//! `NetworkPolicy`; then every other kind (custom resources included); then `APIService`,
//! `MutatingWebhookConfiguration`, `ValidatingWebhookConfiguration` last, so that a webhook
//! whose backend the same set deploys does not block the rest of the set. Ties break by kind,
//! namespace and name, so the order is total and reproducible.
//!
//! Prune deletes in the reverse order, which puts Namespaces and CRDs last.

use crate::manifest::ObjectRef;

/// Kinds of the definitions stage, in apply order (group, kind).
const DEFINITIONS: &[(&str, &str)] = &[
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("", "Namespace"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
];

/// Kinds of the resources stage with a fixed place, in apply order.
const RESOURCES: &[&str] = &[
    "PriorityClass",
    "StorageClass",
    "IngressClass",
    "RuntimeClass",
    "ResourceQuota",
    "LimitRange",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Secret",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Service",
    "Endpoints",
    "PodDisruptionBudget",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "DaemonSet",
    "Deployment",
    "StatefulSet",
    "Job",
    "CronJob",
    "HorizontalPodAutoscaler",
    "Ingress",
    "NetworkPolicy",
];

/// Kinds applied after everything else.
const LAST: &[&str] = &[
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Whether the object belongs to the definitions stage.
pub fn is_definition(object: &ObjectRef) -> bool {
    DEFINITIONS
        .iter()
        .any(|(g, k)| object.group == *g && object.kind == *k)
}

/// Whether the object is a CustomResourceDefinition.
pub fn is_crd(object: &ObjectRef) -> bool {
    object.group == "apiextensions.k8s.io" && object.kind == "CustomResourceDefinition"
}

/// Whether the object is a Namespace.
pub fn is_namespace(object: &ObjectRef) -> bool {
    object.group.is_empty() && object.kind == "Namespace"
}

/// The apply rank of an object: lower goes first.
pub fn rank(object: &ObjectRef) -> usize {
    if let Some(i) = DEFINITIONS
        .iter()
        .position(|(g, k)| object.group == *g && object.kind == *k)
    {
        return i;
    }
    let base = DEFINITIONS.len();
    if let Some(i) = RESOURCES.iter().position(|k| object.kind == *k) {
        return base + i;
    }
    let other = base + RESOURCES.len();
    match LAST.iter().position(|k| object.kind == *k) {
        Some(i) => other + 1 + i,
        None => other,
    }
}

/// The total apply order: rank, then kind, namespace, name.
pub fn sort_key(object: &ObjectRef) -> (usize, &str, &str, &str, &str) {
    (
        rank(object),
        object.kind.as_str(),
        object.group.as_str(),
        object.namespace.as_str(),
        object.name.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(group: &str, kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: String::new(),
            name: name.into(),
        }
    }

    #[test]
    fn definitions_then_fixed_kinds_then_others_then_webhooks() {
        let mut objects = vec![
            obj(
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration",
                "v",
            ),
            obj("example.com", "Widget", "w"),
            obj("apps", "Deployment", "d"),
            obj("", "ConfigMap", "b"),
            obj("", "ConfigMap", "a"),
            obj("", "ServiceAccount", "sa"),
            obj("rbac.authorization.k8s.io", "ClusterRole", "cr"),
            obj("", "Namespace", "ns"),
            obj("apiextensions.k8s.io", "CustomResourceDefinition", "crd"),
            obj("", "Service", "s"),
        ];
        objects.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
        let names: Vec<&str> = objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            ["crd", "ns", "cr", "sa", "a", "b", "s", "d", "w", "v"]
        );
        assert!(is_definition(&objects[2]));
        assert!(!is_definition(&objects[3]));
        // A custom kind that happens to be called Namespace is not a definition.
        assert!(!is_definition(&obj("example.com", "Namespace", "x")));
    }
}
