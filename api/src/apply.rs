//! `Apply` (`apply.weir.dev/v1alpha1`): rendered manifests applied to the cluster.

// kube's `printcolumn(...)` repeats `type_ = "string"`, which clippy mistakes for a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Condition, GoDuration, ResourceInventory, SourceReference,
    reference::NamespacedObjectKindReference,
};

/// API group of Apply.
pub const GROUP: &str = "apply.weir.dev";

/// Desired state of an Apply.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "apply.weir.dev",
    version = "v1alpha1",
    kind = "Apply",
    namespaced,
    status = "ApplyStatus",
    shortname = "apl",
    category = "weir",
    doc = "Apply server-side applies the manifests of a source artifact, prunes what disappeared and waits for health.",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
    printcolumn(
        name = "Revision",
        type_ = "string",
        json_path = ".status.lastAppliedRevision",
        priority = 1
    )
)]
#[x_kube(validation = Rule::new("!(has(self.wait) && self.wait && has(self.healthChecks) && size(self.healthChecks) > 0)").message("spec.wait and spec.healthChecks are mutually exclusive: wait already checks every applied object"))]
#[serde(rename_all = "camelCase")]
pub struct ApplySpec {
    /// The object whose artifact holds the manifests (a Render, or a source of plain YAML).
    pub source_ref: SourceReference,
    /// Directory inside the artifact whose YAML files are applied; default the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("!self.startsWith('/') && !self.split('/').exists(s, s == '..')").message("path must be relative and must not contain '..'"))]
    #[schemars(length(max = 1024))]
    pub path: Option<String>,
    /// How often to re-apply (drift correction) without a new artifact.
    pub interval: GoDuration,
    /// How soon to retry after a failure. Default: the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_interval: Option<GoDuration>,
    /// Upper bound of an apply and of the health wait. Default: the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    /// Stop reconciling; the applied objects stay as they are.
    #[serde(default)]
    pub suspend: bool,
    /// Delete objects that were applied before and are no longer in the manifests.
    pub prune: bool,
    /// Wait until every applied object is healthy before reporting Ready.
    #[serde(default)]
    pub wait: bool,
    /// Objects whose health decides Ready (when `wait` is false).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<NamespacedObjectKindReference>,
    /// Apply objects that must be Ready at their latest revision first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<DependencyReference>,
    /// ServiceAccount in the Apply's namespace to impersonate for every write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub service_account_name: Option<String>,
    /// Set the namespace of every namespaced object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub target_namespace: Option<String>,
    /// What happens to applied objects when the Apply is deleted. Default `Delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Recreate objects whose immutable fields changed.
    #[serde(default)]
    pub force: bool,
}

/// Another Apply that must be Ready first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DependencyReference {
    /// Name of the Apply.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Apply; defaults to this one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// What to do with applied objects when their Apply is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the objects in the inventory.
    #[default]
    Delete,
    /// Leave them in the cluster.
    Orphan,
}

/// Observed state of an Apply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplyStatus {
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled, Healthy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
    /// The objects applied by the last successful apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<ResourceInventory>,
    /// Source revision of the last successful apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    /// Artifact digest of the last successful apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_digest: Option<String>,
    /// Source revision of the last attempt, successful or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,
    /// The last five applies, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// The last handled value of the `reconcile.weir.dev/requestedAt` annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// One apply attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryEntry {
    /// Source revision.
    pub revision: String,
    /// Artifact digest.
    pub digest: String,
    /// `Succeeded` or the failure reason.
    pub result: String,
    /// When the attempt finished.
    pub time: Time,
}
