//! The Receiver reconciler: keeps `status.webhookPath` and `Ready` current.
//!
//! # Flow
//! 1. Suspended: do nothing (the webhook answers `503` for a suspended Receiver).
//! 2. Check the spec the schema cannot: every resource has an API version (given, or the weir
//!    default for its kind), and, with `--no-cross-namespace-refs`, stays in the Receiver's
//!    namespace.
//! 3. Read the token from the Secret named by `spec.secretRef` (key `token`).
//! 4. Write one summarised status: `webhookPath` = `/hook/<hex sha256(token + name + namespace)>`
//!    and `Ready=True`, or `Ready=False` with `InvalidSpec`, `AccessDenied`, `SecretNotFound` or
//!    `TokenMissing` and no `webhookPath` (so the webhook answers `404`).
//!
//! A change of the Secret reconciles the Receivers that name it (a metadata-only watch), so a
//! rotated token moves the path at once. Nothing is stored outside the object, so there is no
//! finalizer.
//!
//! # Guarantees
//! The token never appears in a condition, an Event or a log line; only its digest (the path)
//! is written, to `status.webhookPath`. A bad object becomes conditions and a Warning event,
//! never a panic.

use std::{sync::Arc, time::Duration};

use k8s_openapi::{
    api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp,
};
use kube::{
    Api, Resource, ResourceExt,
    api::PartialObjectMeta,
    runtime::{
        controller::{self, Action},
        events::{EventType, Recorder},
        reflector::ObjectRef,
        watcher,
    },
};
use sha2::{Digest, Sha256};
use weir_api::{
    Receiver,
    conditions::{self, reasons, types},
    receiver::{TOKEN_KEY, WEBHOOK_PATH_PREFIX},
};
use weir_runtime::{events, metrics::Metrics, requeue::jittered, status::apply_status};

use crate::error::{Error, Failure};

/// Field manager for Receiver status writes.
pub const FIELD_MANAGER: &str = "weir-source-controller";
const KIND: &str = "Receiver";
/// The Secret exists but has no (or an empty) `token` key.
pub const TOKEN_MISSING: &str = "TokenMissing";
/// Reading the Secret failed for another reason (API error, permissions).
const SECRET_READ_FAILED: &str = "SecretReadFailed";
/// How often a Ready Receiver is checked again (the Secret watch covers token changes).
const RESYNC: Duration = Duration::from_secs(600);
/// Retry delay after a failure that may go away.
const RETRY: Duration = Duration::from_secs(30);

/// What a Receiver reconcile needs.
pub struct Context {
    /// Kubernetes client.
    pub client: kube::Client,
    /// Event recorder.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Metrics,
    /// `--no-cross-namespace-refs`: resources must be in the Receiver's namespace.
    pub no_cross_namespace_refs: bool,
}

/// The webhook path of a Receiver: `/hook/<hex sha256(token + name + namespace)>`, as Flux
/// computes it, so the path proves knowledge of the token.
pub fn webhook_path(token: &[u8], name: &str, namespace: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(token);
    hash.update(name.as_bytes());
    hash.update(namespace.as_bytes());
    let mut path = String::with_capacity(WEBHOOK_PATH_PREFIX.len() + 64);
    path.push_str(WEBHOOK_PATH_PREFIX);
    for byte in hash.finalize() {
        path.push(char::from(HEX[usize::from(byte >> 4)]));
        path.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    path
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Reads the token of Secret `secret` in `namespace`. Messages name the Secret, never its data.
pub async fn read_token(
    client: &kube::Client,
    namespace: &str,
    secret: &str,
) -> Result<Vec<u8>, Failure> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let found = api.get_opt(secret).await.map_err(|e| {
        Failure::transient(
            SECRET_READ_FAILED,
            format!("reading Secret '{namespace}/{secret}': {e}"),
        )
    })?;
    let Some(found) = found else {
        return Err(Failure::transient(
            reasons::SECRET_NOT_FOUND,
            format!("Secret '{namespace}/{secret}' not found"),
        ));
    };
    match found.data.and_then(|mut d| d.remove(TOKEN_KEY)) {
        Some(token) if !token.0.is_empty() => Ok(token.0),
        _ => Err(Failure::transient(
            TOKEN_MISSING,
            format!("Secret '{namespace}/{secret}' has no '{TOKEN_KEY}' key (or it is empty)"),
        )),
    }
}

/// Checks what the schema cannot express.
pub fn validate(receiver: &Receiver, no_cross_namespace_refs: bool) -> Result<(), Failure> {
    let namespace = receiver.namespace().unwrap_or_default();
    for (i, resource) in receiver.spec.resources.iter().enumerate() {
        let what = format!(
            "spec.resources[{i}] ({} '{}')",
            resource.kind, resource.name
        );
        let Some(api_version) = resource.api_version_or_default() else {
            return Err(Failure::stalled(
                reasons::INVALID_SPEC,
                format!(
                    "{what}: apiVersion is required for kind '{}'",
                    resource.kind
                ),
            ));
        };
        let version_ok = match api_version.split_once('/') {
            Some((group, version)) => {
                !group.is_empty() && !version.is_empty() && !version.contains('/')
            }
            None => !api_version.is_empty(),
        };
        if !version_ok {
            return Err(Failure::stalled(
                reasons::INVALID_SPEC,
                format!("{what}: apiVersion '{api_version}' is not of the form group/version"),
            ));
        }
        if resource.name == "*" && resource.match_labels.as_ref().is_none_or(|l| l.is_empty()) {
            return Err(Failure::stalled(
                reasons::INVALID_SPEC,
                format!("{what}: name '*' needs matchLabels"),
            ));
        }
        if no_cross_namespace_refs
            && resource
                .namespace
                .as_deref()
                .is_some_and(|ns| ns != namespace)
        {
            return Err(Failure::stalled(
                reasons::ACCESS_DENIED,
                format!(
                    "{what}: cross-namespace references are disabled (--no-cross-namespace-refs)"
                ),
            ));
        }
    }
    Ok(())
}

/// Reconciles one Receiver.
pub async fn reconcile(obj: Arc<Receiver>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_inner(&obj, &ctx).await;
    let category = match &result {
        Ok(_) => "success",
        Err(e) => e.category(),
    };
    ctx.metrics.reconciled(KIND, category, started.elapsed());
    result
}

async fn reconcile_inner(obj: &Receiver, ctx: &Context) -> Result<Action, Error> {
    let namespace = obj.namespace().ok_or(Error::Unnamed)?;
    let name = obj.meta().name.clone().ok_or(Error::Unnamed)?;
    if obj.spec.suspend {
        return Ok(Action::await_change());
    }
    let api: Api<Receiver> = Api::namespaced(ctx.client.clone(), &namespace);
    let outcome = async {
        validate(obj, ctx.no_cross_namespace_refs)?;
        let token = read_token(&ctx.client, &namespace, &obj.spec.secret_ref.name).await?;
        Ok::<_, Failure>(webhook_path(&token, &name, &namespace))
    }
    .await;

    let old = obj.status.clone();
    let mut status = old.clone().unwrap_or_default();
    let generation = obj.metadata.generation;
    status.observed_generation = generation;
    let previous_ready = conditions::get(&status.conditions, types::READY).cloned();
    let now = Time(Timestamp::now());
    let requeue = match outcome {
        Ok(path) => {
            status.webhook_path = Some(path);
            conditions::mark_ready(
                &mut status.conditions,
                true,
                false,
                reasons::SUCCEEDED,
                "receiver is serving its webhook at status.webhookPath",
                generation,
                now,
            );
            jittered(RESYNC, 0.05)
        }
        Err(failure) => {
            status.webhook_path = None;
            conditions::mark_ready(
                &mut status.conditions,
                false,
                failure.stalled,
                failure.reason,
                &failure.message,
                generation,
                now,
            );
            if previous_ready
                .is_none_or(|c| c.reason != failure.reason || c.message != failure.message)
            {
                publish(ctx, obj, failure.reason, &failure.message).await;
            }
            if failure.stalled {
                RESYNC
            } else {
                jittered(RETRY, 0.2)
            }
        }
    };
    apply_status(&api, obj, FIELD_MANAGER, old.as_ref(), &status).await?;
    let ready = conditions::get(&status.conditions, types::READY).map(|c| c.status.clone());
    ctx.metrics
        .ready_status(KIND, &format!("{namespace}/{name}"), ready.as_deref());
    Ok(Action::requeue(requeue))
}

/// Requeue after an error that aborted the reconcile (API failures).
pub fn error_policy(_obj: Arc<Receiver>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "receiver reconcile failed");
    Action::requeue(jittered(RETRY, 0.2))
}

async fn publish(ctx: &Context, obj: &Receiver, reason: &str, note: &str) {
    let reference = obj.object_ref(&());
    events::publish(
        &ctx.recorder,
        &reference,
        EventType::Warning,
        reason,
        "Reconcile",
        note,
    )
    .await;
}

/// Runs the Receiver controller until `over` turns true: Receivers matching `watch_config`,
/// and every Secret change mapped to the Receivers in its namespace that name it. In-flight
/// reconciles finish first ([`weir_runtime::leader::drive_controller`]).
pub async fn run(
    ctx: Arc<Context>,
    watch_config: watcher::Config,
    concurrency: u16,
    over: tokio::sync::watch::Receiver<bool>,
) {
    let client = ctx.client.clone();
    let controller =
        weir_runtime::trigger::controller(Api::<Receiver>::all(client.clone()), watch_config);
    let store = controller.store();
    let own = controller.store();
    // Metadata only: the controller never holds other Secrets' data.
    let secrets: Api<PartialObjectMeta<Secret>> = Api::all(client);
    let results = controller
        .watches(
            secrets,
            watcher::Config::default(),
            move |secret: PartialObjectMeta<Secret>| {
                let namespace = secret.metadata.namespace.clone();
                let name = secret.metadata.name.clone();
                store
                    .state()
                    .into_iter()
                    .filter(|r| {
                        r.metadata.namespace == namespace
                            && Some(&r.spec.secret_ref.name) == name.as_ref()
                    })
                    .map(|r| ObjectRef::from_obj(r.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .with_config(controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(weir_runtime::servers::stopped(over.clone()))
        .run(reconcile, error_policy, ctx);
    weir_runtime::leader::drive_controller(own, results, over).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_api::ReceiverSpec;

    fn receiver(resources: serde_json::Value) -> Receiver {
        let spec: ReceiverSpec = serde_json::from_value(serde_json::json!({
            "type": "generic",
            "resources": resources,
            "secretRef": { "name": "s" },
        }))
        .unwrap();
        let mut r = Receiver::new("hook", spec);
        r.metadata.namespace = Some("ns".into());
        r
    }

    #[test]
    fn path_is_sha256_of_token_name_namespace() {
        // sha256("tokenhookns"), computed independently with `printf tokenhookns | sha256sum`.
        assert_eq!(
            webhook_path(b"token", "hook", "ns"),
            "/hook/e5654a8443a9a73233f101cdfd0113063af720e3bbac8aca30ebcf14c32a57c8"
        );
    }

    #[test]
    fn spec_checks() {
        let ok = receiver(serde_json::json!([
            { "kind": "GitRepository", "name": "a" },
            { "apiVersion": "v1", "kind": "ConfigMap", "name": "*", "matchLabels": { "a": "b" } },
        ]));
        assert_eq!(validate(&ok, true), Ok(()));
        for (resources, reason, needle) in [
            (
                serde_json::json!([{ "kind": "ConfigMap", "name": "a" }]),
                reasons::INVALID_SPEC,
                "apiVersion is required for kind 'ConfigMap'",
            ),
            (
                serde_json::json!([{ "apiVersion": "a/b/c", "kind": "X", "name": "a" }]),
                reasons::INVALID_SPEC,
                "not of the form group/version",
            ),
            (
                serde_json::json!([{ "kind": "Render", "name": "*" }]),
                reasons::INVALID_SPEC,
                "name '*' needs matchLabels",
            ),
            (
                serde_json::json!([{ "kind": "Apply", "name": "a", "namespace": "other" }]),
                reasons::ACCESS_DENIED,
                "cross-namespace",
            ),
        ] {
            let failure = validate(&receiver(resources), true).unwrap_err();
            assert_eq!(failure.reason, reason);
            assert!(failure.message.contains(needle), "{}", failure.message);
        }
        let cross =
            receiver(serde_json::json!([{ "kind": "Apply", "name": "a", "namespace": "other" }]));
        assert_eq!(validate(&cross, false), Ok(()));
    }
}
