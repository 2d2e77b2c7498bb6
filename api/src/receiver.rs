//! `Receiver` (`source.weir.dev/v1alpha1`): a webhook that asks for an immediate reconcile of
//! the objects it lists, modelled on Flux's notification-controller `Receiver`.
//!
//! The source-controller serves every Receiver on its webhook listener (`--webhook-addr`,
//! default `:9292`) under `status.webhookPath`, which is
//! `/hook/<hex sha256(token + name + namespace)>`: the path itself is unguessable without the
//! token held in the Secret named by `spec.secretRef` (key `token`). A call that passes the
//! check of `spec.type` sets the `reconcile.weir.dev/requestedAt` annotation (see
//! [`crate::reconcile`]) on every object in `spec.resources`, and their controllers reconcile.
//!
//! | `type` | what is checked |
//! |---|---|
//! | `generic` | nothing more: knowing the path is the proof |
//! | `generic-hmac` | `X-Signature: sha256=<hex>` (or `sha1=`/`sha512=`), an HMAC of the body keyed with the token |
//! | `github` | `X-Hub-Signature-256: sha256=<hex>` HMAC; `X-GitHub-Event` filtered by `spec.events`; `ping` is answered without a reconcile |
//! | `gitlab` | `X-Gitlab-Token` equals the token; `X-Gitlab-Event` filtered by `spec.events` |

// kube's `printcolumn(...)` repeats `type_ = "string"`, which clippy mistakes for a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Condition, reference::LocalObjectReference};

/// The prefix of every `status.webhookPath`.
pub const WEBHOOK_PATH_PREFIX: &str = "/hook/";

/// The Secret key that holds a Receiver's token.
pub const TOKEN_KEY: &str = "token";

/// Desired state of a Receiver.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "source.weir.dev",
    version = "v1alpha1",
    kind = "Receiver",
    namespaced,
    status = "ReceiverStatus",
    shortname = "rcv",
    category = "weir",
    doc = "Receiver is a webhook endpoint that requests an immediate reconcile of the objects it lists.",
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
        name = "Path",
        type_ = "string",
        json_path = ".status.webhookPath",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverSpec {
    /// How calls are verified: `generic`, `generic-hmac`, `github` or `gitlab`.
    #[serde(rename = "type")]
    pub type_: ReceiverType,
    /// Event names accepted (`X-GitHub-Event` / `X-Gitlab-Event`, compared case-insensitively);
    /// empty accepts every event. Other events are answered `200` and ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub events: Vec<String>,
    /// The objects whose reconcile a verified call requests.
    #[schemars(length(min = 1, max = 256))]
    pub resources: Vec<ReceiverResource>,
    /// A Secret in the Receiver's namespace whose key `token` holds the shared secret.
    pub secret_ref: LocalObjectReference,
    /// Stop serving the webhook (calls are answered `503`) until resumed.
    #[serde(default)]
    pub suspend: bool,
}

/// How a Receiver verifies a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ReceiverType {
    /// The secret path is the only proof.
    #[serde(rename = "generic")]
    Generic,
    /// `X-Signature: <algo>=<hex>`, an HMAC of the body keyed with the token.
    #[serde(rename = "generic-hmac")]
    GenericHmac,
    /// GitHub: `X-Hub-Signature-256` and `X-GitHub-Event`.
    #[serde(rename = "github")]
    GitHub,
    /// GitLab: `X-Gitlab-Token` and `X-Gitlab-Event`.
    #[serde(rename = "gitlab")]
    GitLab,
}

impl ReceiverType {
    /// The wire form, e.g. `generic-hmac`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiverType::Generic => "generic",
            ReceiverType::GenericHmac => "generic-hmac",
            ReceiverType::GitHub => "github",
            ReceiverType::GitLab => "gitlab",
        }
    }
}

/// An object (or, with `name: "*"`, every object matching `matchLabels`) a Receiver triggers.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("self.name != '*' || has(self.matchLabels)").message("name '*' needs matchLabels"))]
#[serde(rename_all = "camelCase")]
pub struct ReceiverResource {
    /// API version of the referent, e.g. `source.weir.dev/v1alpha1`. Defaults to the weir
    /// version for `GitRepository`, `Render`, `Apply`; required for other kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub api_version: Option<String>,
    /// Kind of the referent, e.g. `GitRepository`.
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
    /// Name of the referent, or `*` for every object matching `matchLabels`.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the referent; defaults to the Receiver's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
    /// With `name: "*"`: the labels the objects must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

impl ReceiverResource {
    /// `apiVersion`, or the weir default for the kind.
    pub fn api_version_or_default(&self) -> Option<&str> {
        if let Some(v) = self.api_version.as_deref() {
            return Some(v);
        }
        match self.kind.as_str() {
            "GitRepository" | "Receiver" => Some("source.weir.dev/v1alpha1"),
            "Render" => Some("render.weir.dev/v1alpha1"),
            "Apply" => Some("apply.weir.dev/v1alpha1"),
            _ => None,
        }
    }
}

/// Observed state of a Receiver.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverStatus {
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
    /// The path the webhook is served under, `/hook/<sha256 hex>`; absent until the token is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_path: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_use_flux_spelling() {
        for (t, s) in [
            (ReceiverType::Generic, "generic"),
            (ReceiverType::GenericHmac, "generic-hmac"),
            (ReceiverType::GitHub, "github"),
            (ReceiverType::GitLab, "gitlab"),
        ] {
            assert_eq!(serde_json::to_value(t).unwrap(), s);
            assert_eq!(t.as_str(), s);
        }
    }

    #[test]
    fn weir_kinds_default_their_api_version() {
        let r = |kind: &str, v: Option<&str>| ReceiverResource {
            api_version: v.map(str::to_owned),
            kind: kind.into(),
            name: "x".into(),
            namespace: None,
            match_labels: None,
        };
        assert_eq!(
            r("Render", None).api_version_or_default(),
            Some("render.weir.dev/v1alpha1")
        );
        assert_eq!(r("ConfigMap", None).api_version_or_default(), None);
        assert_eq!(
            r("ConfigMap", Some("v1")).api_version_or_default(),
            Some("v1")
        );
    }
}
