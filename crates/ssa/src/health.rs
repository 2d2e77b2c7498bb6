//! Health of live objects, following kstatus (sigs.k8s.io/cli-utils `pkg/kstatus/status`).
//!
//! [`assess`] is a pure function of one object's JSON: the caller reads the object once and
//! requeues while anything is [`HealthStatus::InProgress`]; nothing here waits.
//!
//! Rules, in order:
//! 1. `metadata.deletionTimestamp` set → InProgress (terminating).
//! 2. `status.observedGeneration` below `metadata.generation` → InProgress (not observed yet).
//! 3. A kind-specific rule from the table in this module (Deployment, StatefulSet, DaemonSet,
//!    ReplicaSet, Job, PersistentVolumeClaim, Service, CustomResourceDefinition, Namespace, Pod).
//! 4. Otherwise the generic conditions: `Stalled=True` → Failed, `Reconciling=True` →
//!    InProgress, `Ready=False` → InProgress, `Ready=True` → Current; an object without these
//!    conditions (a ConfigMap, a Secret) is Current.

use serde_json::Value;

/// A kstatus status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HealthStatus {
    /// The object has reached the state its spec asks for.
    Current,
    /// Still converging; check again later.
    InProgress,
    /// It will not get there without a change (a failed Job, an exceeded progress deadline,
    /// `Stalled=True`).
    Failed,
    /// The engine could not tell (the object could not be read).
    Unknown,
}

/// A status with a human-readable reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthVerdict {
    /// The status.
    pub status: HealthStatus,
    /// Why, e.g. `Deployment is available. Replicas: 3` or `Ready: 1/3`.
    pub message: String,
}

impl HealthVerdict {
    fn new(status: HealthStatus, message: impl Into<String>) -> Self {
        HealthVerdict {
            status,
            message: message.into(),
        }
    }

    /// Current with a message.
    pub fn current(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Current, message)
    }

    /// InProgress with a message.
    pub fn in_progress(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::InProgress, message)
    }

    /// Failed with a message.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Failed, message)
    }

    /// Unknown with a message.
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Unknown, message)
    }
}

type Rule = fn(&Value) -> HealthVerdict;

/// Kind-specific rules: (group, kind, rule).
const RULES: &[(&str, &str, Rule)] = &[
    ("apps", "Deployment", deployment),
    ("apps", "StatefulSet", stateful_set),
    ("apps", "DaemonSet", daemon_set),
    ("apps", "ReplicaSet", replica_set),
    ("batch", "Job", job),
    ("", "PersistentVolumeClaim", pvc),
    ("", "Service", service),
    ("apiextensions.k8s.io", "CustomResourceDefinition", crd),
    ("", "Namespace", namespace),
    ("", "Pod", pod),
];

/// The health of one live object (the JSON of a GET).
///
/// ```
/// use weir_ssa::health::{assess, HealthStatus};
/// let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
///     "metadata": {"name": "a"}, "status": {"phase": "Active"}});
/// assert_eq!(assess(&ns).status, HealthStatus::Current);
/// ```
pub fn assess(object: &Value) -> HealthVerdict {
    if object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        return HealthVerdict::in_progress("Resource is being deleted");
    }
    let generation = int(object, "/metadata/generation");
    let observed = int(object, "/status/observedGeneration");
    if let (Some(g), Some(o)) = (generation, observed)
        && o < g
    {
        return HealthVerdict::in_progress(format!(
            "Generation {g} not observed yet (observedGeneration {o})"
        ));
    }
    let (group, kind) = group_kind(object);
    match RULES.iter().find(|(g, k, _)| *g == group && *k == kind) {
        Some((_, _, rule)) => rule(object),
        None => generic(object),
    }
}

fn group_kind(object: &Value) -> (&str, &str) {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    (group, kind)
}

fn int(object: &Value, pointer: &str) -> Option<i64> {
    object.pointer(pointer).and_then(Value::as_i64)
}

fn text<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

/// A `status.conditions[]` entry of type `type_`: (status, reason, message).
fn condition<'a>(object: &'a Value, type_: &str) -> Option<(&'a str, &'a str, &'a str)> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
        .map(|c| {
            let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default();
            (s("status"), s("reason"), s("message"))
        })
}

fn is_true(object: &Value, type_: &str) -> bool {
    condition(object, type_).is_some_and(|(s, _, _)| s == "True")
}

/// Stalled / Reconciling / Ready, as kstatus reads any object.
fn generic(object: &Value) -> HealthVerdict {
    if let Some(("True", reason, message)) = condition(object, "Stalled") {
        return HealthVerdict::failed(format!("Stalled: {reason}: {message}"));
    }
    if let Some(("True", reason, message)) = condition(object, "Reconciling") {
        return HealthVerdict::in_progress(format!("Reconciling: {reason}: {message}"));
    }
    match condition(object, "Ready") {
        Some(("True", _, message)) => HealthVerdict::current(format!("Ready: {message}")),
        Some((status, reason, message)) => {
            HealthVerdict::in_progress(format!("Ready={status}: {reason}: {message}"))
        }
        None => HealthVerdict::current("Resource is current"),
    }
}

fn deployment(d: &Value) -> HealthVerdict {
    if let Some((_, "ProgressDeadlineExceeded", message)) = condition(d, "Progressing") {
        return HealthVerdict::failed(format!("Progress deadline exceeded: {message}"));
    }
    let spec = int(d, "/spec/replicas").unwrap_or(1);
    let replicas = int(d, "/status/replicas").unwrap_or(0);
    let updated = int(d, "/status/updatedReplicas").unwrap_or(0);
    let ready = int(d, "/status/readyReplicas").unwrap_or(0);
    let available = int(d, "/status/availableReplicas").unwrap_or(0);
    if spec > replicas {
        return HealthVerdict::in_progress(format!("Replicas: {replicas}/{spec}"));
    }
    if spec > updated {
        return HealthVerdict::in_progress(format!("Updated: {updated}/{spec}"));
    }
    if replicas > updated {
        return HealthVerdict::in_progress(format!("Pending termination: {}", replicas - updated));
    }
    if spec > available {
        return HealthVerdict::in_progress(format!("Available: {available}/{spec}"));
    }
    if spec > ready {
        return HealthVerdict::in_progress(format!("Ready: {ready}/{spec}"));
    }
    let progressing = matches!(
        condition(d, "Progressing"),
        Some(("True", "NewReplicaSetAvailable", _))
    );
    if !progressing {
        return HealthVerdict::in_progress("Rollout not complete (Progressing)");
    }
    if !is_true(d, "Available") {
        return HealthVerdict::in_progress("Deployment not Available");
    }
    HealthVerdict::current(format!("Deployment is available. Replicas: {replicas}"))
}

fn stateful_set(s: &Value) -> HealthVerdict {
    let spec = int(s, "/spec/replicas").unwrap_or(1);
    let replicas = int(s, "/status/replicas").unwrap_or(0);
    let ready = int(s, "/status/readyReplicas").unwrap_or(0);
    let current = int(s, "/status/currentReplicas").unwrap_or(0);
    let updated = int(s, "/status/updatedReplicas").unwrap_or(0);
    if text(s, "/spec/updateStrategy/type") == Some("OnDelete") {
        return HealthVerdict::current("StatefulSet is using the OnDelete strategy");
    }
    if spec > replicas {
        return HealthVerdict::in_progress(format!("Replicas: {replicas}/{spec}"));
    }
    if spec > ready {
        return HealthVerdict::in_progress(format!("Ready: {ready}/{spec}"));
    }
    let partition = int(s, "/spec/updateStrategy/rollingUpdate/partition").unwrap_or(0);
    if partition > 0 {
        let want = (spec - partition).max(0);
        if updated < want {
            return HealthVerdict::in_progress(format!(
                "Partitioned rollout: {updated}/{want} updated"
            ));
        }
        return HealthVerdict::current(format!("Partitioned rollout complete: {updated} updated"));
    }
    if spec > current {
        return HealthVerdict::in_progress(format!("Current: {current}/{spec}"));
    }
    let (cur_rev, upd_rev) = (
        text(s, "/status/currentRevision"),
        text(s, "/status/updateRevision"),
    );
    if cur_rev != upd_rev {
        return HealthVerdict::in_progress(format!(
            "Revision {} not rolled out yet",
            upd_rev.unwrap_or_default()
        ));
    }
    HealthVerdict::current(format!(
        "All replicas scheduled as expected. Replicas: {replicas}"
    ))
}

fn daemon_set(d: &Value) -> HealthVerdict {
    let desired = int(d, "/status/desiredNumberScheduled");
    let Some(desired) = desired else {
        return HealthVerdict::in_progress("Missing status.desiredNumberScheduled");
    };
    let current = int(d, "/status/currentNumberScheduled").unwrap_or(0);
    let updated = int(d, "/status/updatedNumberScheduled").unwrap_or(0);
    let available = int(d, "/status/numberAvailable").unwrap_or(0);
    let ready = int(d, "/status/numberReady").unwrap_or(0);
    for (what, n) in [
        ("Scheduled", current),
        ("Updated", updated),
        ("Available", available),
        ("Ready", ready),
    ] {
        if desired > n {
            return HealthVerdict::in_progress(format!("{what}: {n}/{desired}"));
        }
    }
    HealthVerdict::current(format!(
        "All replicas scheduled as expected. Replicas: {desired}"
    ))
}

fn replica_set(r: &Value) -> HealthVerdict {
    if let Some(("True", reason, message)) = condition(r, "ReplicaFailure") {
        return HealthVerdict::in_progress(format!("ReplicaFailure: {reason}: {message}"));
    }
    let spec = int(r, "/spec/replicas").unwrap_or(1);
    for (what, n) in [
        (
            "Labelled",
            int(r, "/status/fullyLabeledReplicas").unwrap_or(0),
        ),
        (
            "Available",
            int(r, "/status/availableReplicas").unwrap_or(0),
        ),
        ("Ready", int(r, "/status/readyReplicas").unwrap_or(0)),
    ] {
        if spec > n {
            return HealthVerdict::in_progress(format!("{what}: {n}/{spec}"));
        }
    }
    let replicas = int(r, "/status/replicas").unwrap_or(0);
    if replicas > spec {
        return HealthVerdict::in_progress(format!("Pending termination: {}", replicas - spec));
    }
    HealthVerdict::current(format!("ReplicaSet is available. Replicas: {spec}"))
}

fn job(j: &Value) -> HealthVerdict {
    if let Some(("True", reason, message)) = condition(j, "Failed") {
        return HealthVerdict::failed(format!("Job failed: {reason}: {message}"));
    }
    let succeeded = int(j, "/status/succeeded").unwrap_or(0);
    if is_true(j, "Complete") {
        return HealthVerdict::current(format!("Job completed. Succeeded: {succeeded}"));
    }
    if is_true(j, "Suspended") {
        return HealthVerdict::current("Job is suspended");
    }
    let active = int(j, "/status/active").unwrap_or(0);
    let failed = int(j, "/status/failed").unwrap_or(0);
    HealthVerdict::in_progress(format!(
        "Job in progress. Succeeded: {succeeded}, active: {active}, failed: {failed}"
    ))
}

fn pvc(p: &Value) -> HealthVerdict {
    match text(p, "/status/phase") {
        Some("Bound") => HealthVerdict::current("PVC is Bound"),
        Some("Lost") => HealthVerdict::failed("PVC lost its volume"),
        phase => HealthVerdict::in_progress(format!("PVC is {}", phase.unwrap_or("not bound"))),
    }
}

fn service(s: &Value) -> HealthVerdict {
    if text(s, "/spec/type") != Some("LoadBalancer") {
        return HealthVerdict::current("Service is ready");
    }
    let has_ingress = s
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|i| !i.is_empty());
    if has_ingress {
        HealthVerdict::current("LoadBalancer has an ingress address")
    } else {
        HealthVerdict::in_progress("LoadBalancer has no ingress address yet")
    }
}

fn crd(c: &Value) -> HealthVerdict {
    if let Some(("False", reason, message)) = condition(c, "NamesAccepted") {
        return HealthVerdict::failed(format!("Names not accepted: {reason}: {message}"));
    }
    if is_true(c, "Established") {
        HealthVerdict::current("CRD is Established")
    } else {
        HealthVerdict::in_progress("CRD is not Established yet")
    }
}

fn namespace(n: &Value) -> HealthVerdict {
    match text(n, "/status/phase") {
        Some("Active") => HealthVerdict::current("Namespace is Active"),
        phase => {
            HealthVerdict::in_progress(format!("Namespace is {}", phase.unwrap_or("not Active")))
        }
    }
}

fn pod(p: &Value) -> HealthVerdict {
    match text(p, "/status/phase") {
        Some("Succeeded") => HealthVerdict::current("Pod succeeded"),
        Some("Failed") => HealthVerdict::failed("Pod failed"),
        Some("Running") if is_true(p, "Ready") => HealthVerdict::current("Pod is Ready"),
        phase => HealthVerdict::in_progress(format!("Pod is {}", phase.unwrap_or("Pending"))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// A builder for fixtures: `obj("apps/v1", "Deployment").spec(..).status(..)`.
    struct Fixture(Value);

    fn obj(api_version: &str, kind: &str) -> Fixture {
        Fixture(json!({"apiVersion": api_version, "kind": kind,
            "metadata": {"name": "x", "namespace": "ns", "generation": 1}}))
    }

    impl Fixture {
        fn spec(mut self, spec: Value) -> Self {
            self.0["spec"] = spec;
            self
        }
        fn status(mut self, status: Value) -> Self {
            self.0["status"] = status;
            self
        }
        fn generation(mut self, g: i64) -> Self {
            self.0["metadata"]["generation"] = json!(g);
            self
        }
        fn status_of(&self) -> HealthStatus {
            assess(&self.0).status
        }
    }

    fn cond(type_: &str, status: &str, reason: &str) -> Value {
        json!({"type": type_, "status": status, "reason": reason, "message": "m"})
    }

    fn deployment_status(replicas: i64, updated: i64, ready: i64, available: i64) -> Value {
        json!({"observedGeneration": 1, "replicas": replicas, "updatedReplicas": updated,
               "readyReplicas": ready, "availableReplicas": available,
               "conditions": [cond("Progressing", "True", "NewReplicaSetAvailable"),
                              cond("Available", "True", "MinimumReplicasAvailable")]})
    }

    #[test]
    fn deployment_rules() {
        let d = || obj("apps/v1", "Deployment").spec(json!({"replicas": 2}));
        assert_eq!(
            d().status(deployment_status(2, 2, 2, 2)).status_of(),
            HealthStatus::Current
        );
        assert_eq!(
            d().status(deployment_status(2, 1, 2, 2)).status_of(),
            HealthStatus::InProgress
        );
        assert_eq!(
            d().status(deployment_status(3, 2, 2, 2)).status_of(),
            HealthStatus::InProgress
        );
        assert_eq!(
            d().status(deployment_status(2, 2, 1, 2)).status_of(),
            HealthStatus::InProgress
        );
        assert_eq!(
            d().status(deployment_status(2, 2, 2, 1)).status_of(),
            HealthStatus::InProgress
        );
        // Not observed yet.
        assert_eq!(
            d().generation(2)
                .status(deployment_status(2, 2, 2, 2))
                .status_of(),
            HealthStatus::InProgress
        );
        // No status at all: the controller has not seen it.
        assert_eq!(d().status_of(), HealthStatus::InProgress);
        let stuck = json!({"observedGeneration": 1, "replicas": 2,
            "conditions": [cond("Progressing", "False", "ProgressDeadlineExceeded")]});
        assert_eq!(d().status(stuck).status_of(), HealthStatus::Failed);
        // Zero replicas, as the controller-manager reports them.
        let zero = obj("apps/v1", "Deployment")
            .spec(json!({"replicas": 0}))
            .status(json!({
            "observedGeneration": 1,
            "conditions": [cond("Available", "True", "MinimumReplicasAvailable"),
                           cond("Progressing", "True", "NewReplicaSetAvailable")]}));
        assert_eq!(zero.status_of(), HealthStatus::Current);
    }

    #[test]
    fn stateful_set_and_daemon_set_rules() {
        let s = |status: Value| {
            obj("apps/v1", "StatefulSet")
                .spec(json!({"replicas": 2}))
                .status(status)
        };
        let full = json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 2,
            "currentReplicas": 2, "updatedReplicas": 2, "currentRevision": "r1", "updateRevision": "r1"});
        assert_eq!(s(full.clone()).status_of(), HealthStatus::Current);
        let mut rolling = full.clone();
        rolling["updateRevision"] = json!("r2");
        assert_eq!(s(rolling).status_of(), HealthStatus::InProgress);
        let mut unready = full;
        unready["readyReplicas"] = json!(1);
        assert_eq!(s(unready).status_of(), HealthStatus::InProgress);

        let ds = |ready: i64| {
            obj("apps/v1", "DaemonSet").status(json!({"observedGeneration": 1,
            "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "updatedNumberScheduled": 3,
            "numberAvailable": 3, "numberReady": ready}))
        };
        assert_eq!(ds(3).status_of(), HealthStatus::Current);
        assert_eq!(ds(2).status_of(), HealthStatus::InProgress);
        assert_eq!(
            obj("apps/v1", "DaemonSet").status_of(),
            HealthStatus::InProgress
        );
    }

    #[test]
    fn replica_set_and_job_rules() {
        let rs = |spec: i64, n: i64| {
            obj("apps/v1", "ReplicaSet")
                .spec(json!({"replicas": spec}))
                .status(
                    json!({"observedGeneration": 1, "replicas": n, "fullyLabeledReplicas": n,
                "availableReplicas": n, "readyReplicas": n}),
                )
        };
        assert_eq!(rs(0, 0).status_of(), HealthStatus::Current);
        assert_eq!(rs(2, 2).status_of(), HealthStatus::Current);
        assert_eq!(rs(2, 1).status_of(), HealthStatus::InProgress);
        assert_eq!(rs(1, 2).status_of(), HealthStatus::InProgress);

        let job = |conds: Value| obj("batch/v1", "Job").status(json!({"conditions": conds}));
        assert_eq!(
            job(json!([cond("Complete", "True", "")])).status_of(),
            HealthStatus::Current
        );
        assert_eq!(
            job(json!([cond("Failed", "True", "BackoffLimitExceeded")])).status_of(),
            HealthStatus::Failed
        );
        assert_eq!(job(json!([])).status_of(), HealthStatus::InProgress);
    }

    #[test]
    fn pvc_service_crd_namespace_rules() {
        let phase =
            |api: &str, kind: &str, p: &str| obj(api, kind).status(json!({"phase": p})).status_of();
        assert_eq!(
            phase("v1", "PersistentVolumeClaim", "Bound"),
            HealthStatus::Current
        );
        assert_eq!(
            phase("v1", "PersistentVolumeClaim", "Pending"),
            HealthStatus::InProgress
        );
        assert_eq!(
            obj("v1", "PersistentVolumeClaim").status_of(),
            HealthStatus::InProgress
        );
        assert_eq!(phase("v1", "Namespace", "Active"), HealthStatus::Current);
        assert_eq!(
            phase("v1", "Namespace", "Terminating"),
            HealthStatus::InProgress
        );

        let svc = |t: &str, status: Value| {
            obj("v1", "Service")
                .spec(json!({"type": t}))
                .status(status)
                .status_of()
        };
        assert_eq!(svc("ClusterIP", json!({})), HealthStatus::Current);
        assert_eq!(
            svc("LoadBalancer", json!({"loadBalancer": {}})),
            HealthStatus::InProgress
        );
        assert_eq!(
            svc(
                "LoadBalancer",
                json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}})
            ),
            HealthStatus::Current
        );

        let crd = |conds: Value| {
            obj("apiextensions.k8s.io/v1", "CustomResourceDefinition")
                .status(json!({"conditions": conds}))
                .status_of()
        };
        assert_eq!(
            crd(json!([cond("Established", "True", "")])),
            HealthStatus::Current
        );
        assert_eq!(
            crd(json!([cond("Established", "False", "Installing")])),
            HealthStatus::InProgress
        );
        assert_eq!(
            crd(json!([cond("NamesAccepted", "False", "NameConflict")])),
            HealthStatus::Failed
        );
    }

    #[test]
    fn generic_ready_conditions_and_plain_objects() {
        let custom = |conds: Value| {
            obj("example.com/v1", "Widget")
                .status(json!({"observedGeneration": 1, "conditions": conds}))
                .status_of()
        };
        assert_eq!(
            custom(json!([cond("Ready", "True", "Succeeded")])),
            HealthStatus::Current
        );
        assert_eq!(
            custom(json!([cond("Ready", "False", "Failing")])),
            HealthStatus::InProgress
        );
        assert_eq!(
            custom(json!([
                cond("Ready", "False", "X"),
                cond("Stalled", "True", "Bad")
            ])),
            HealthStatus::Failed
        );
        assert_eq!(
            custom(json!([
                cond("Ready", "True", "X"),
                cond("Reconciling", "True", "Y")
            ])),
            HealthStatus::InProgress
        );
        assert_eq!(
            obj("example.com/v1", "Widget")
                .generation(3)
                .status(json!({"observedGeneration": 2, "conditions": [cond("Ready", "True", "")]}))
                .status_of(),
            HealthStatus::InProgress
        );
        assert_eq!(obj("v1", "ConfigMap").status_of(), HealthStatus::Current);
        let mut deleting = obj("v1", "ConfigMap");
        deleting.0["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(deleting.status_of(), HealthStatus::InProgress);
    }
}
