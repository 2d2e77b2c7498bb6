//! `GitRepository` (`source.weir.dev/v1alpha1`): a Git ref fetched into a reproducible tar.gz.

// kube's `printcolumn(...)` repeats `type_ = "string"`, which clippy mistakes for a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Artifact, Condition, GoDuration, reference::LocalObjectReference};

/// API group of the source kinds.
pub const GROUP: &str = "source.weir.dev";

/// Desired state of a GitRepository.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "source.weir.dev",
    version = "v1alpha1",
    kind = "GitRepository",
    namespaced,
    status = "GitRepositoryStatus",
    shortname = "gitrepo",
    category = "weir",
    doc = "GitRepository fetches a Git ref and publishes its tree as a reproducible tar.gz artifact.",
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.url"),
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
        json_path = ".status.artifact.revision",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositorySpec {
    /// Repository URL: `https://`, `http://`, `ssh://user@host[:port]/path` or `file://`.
    #[x_kube(validation = Rule::new("self.matches('^(https?|ssh|file)://[^\\\\s]+$')").message("url must start with https://, http://, ssh:// or file:// and contain no spaces"))]
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,

    /// What to check out. Precedence when several are set: name > commit > semver > tag > branch.
    /// Default: the remote's HEAD branch.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<GitRepositoryRef>,

    /// How often to check the remote for changes.
    pub interval: GoDuration,

    /// Upper bound of each Git operation. Default 60s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,

    /// Stop reconciling; the last artifact stays served.
    #[serde(default)]
    pub suspend: bool,

    /// A Secret in the same namespace with credentials: `username`+`password`, `bearerToken`,
    /// `identity`+`known_hosts` (ssh), and `ca.crt` for https.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// Paths to leave out of the artifact, in gitignore syntax; replaces the default exclusions.
    /// `.sourceignore` files in the repository apply in addition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub ignore: Option<String>,

    /// Also fetch submodules, with the same credentials.
    #[serde(default)]
    pub recurse_submodules: bool,
}

/// The Git reference to check out.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryRef {
    /// Branch name, e.g. `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub branch: Option<String>,
    /// Tag name, e.g. `v1.2.3`; annotated tags are peeled to their commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub tag: Option<String>,
    /// A semver range over the tags, e.g. `>=6.0.0 <7.0.0`; the highest match wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub semver: Option<String>,
    /// A full commit SHA; with `branch`, only that branch is fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^([0-9a-f]{40}|[0-9a-f]{64})$')").message("commit must be a full lowercase hex SHA (40 or 64 characters)"))]
    #[schemars(length(max = 64))]
    pub commit: Option<String>,
    /// Any full ref, e.g. `refs/pull/1/head`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('refs/')").message("name must be a full ref starting with refs/"))]
    #[schemars(length(max = 255))]
    pub name: Option<String>,
}

/// Observed state of a GitRepository.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryStatus {
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled, ArtifactInStorage, FetchFailed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
    /// The artifact of the last successful fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// The last handled value of the `reconcile.weir.dev/requestedAt` annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// `spec.ignore` as it was when the artifact was produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ignore: Option<String>,
    /// `spec.recurseSubmodules` as it was when the artifact was produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_recurse_submodules: Option<bool>,
}
