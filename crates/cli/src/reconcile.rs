//! `weir reconcile`, `weir suspend`, `weir resume`.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use k8s_openapi::jiff::Timestamp;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::Value;
use weir_api::reconcile::request_patch;

use crate::{
    client::Cluster,
    error::{Error, Result},
    events,
    kinds::{self, WeirKind},
    write_out,
};

/// How the wait for a reconcile ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ready=True.
    Ready {
        /// The revision the object reports.
        revision: Option<String>,
        /// The Ready message.
        message: String,
    },
    /// Ready=False.
    NotReady {
        /// The reason.
        reason: String,
        /// The message.
        message: String,
    },
}

/// Where a handled request stands: `None` while the controller has not finished with `token`.
pub fn judge(kind: &WeirKind, obj: &DynamicObject, token: &str) -> Option<Outcome> {
    let status = obj.data.get("status")?;
    if status.get("lastHandledReconcileAt").and_then(Value::as_str) != Some(token) {
        return None;
    }
    let observed = status.get("observedGeneration").and_then(Value::as_i64);
    if observed < obj.metadata.generation {
        return None;
    }
    if kinds::condition(obj, "Reconciling").is_some_and(|c| c.status == "True") {
        return None;
    }
    let ready = kinds::condition(obj, "Ready")?;
    match ready.status.as_str() {
        "True" => Some(Outcome::Ready {
            revision: kind.revision(obj),
            message: ready.message,
        }),
        "False" => Some(Outcome::NotReady {
            reason: ready.reason,
            message: ready.message,
        }),
        _ => None,
    }
}

/// The time limits of one `weir reconcile`, shared by every step of a `--with-source` chain.
struct Wait {
    deadline: Instant,
    timeout: Duration,
    /// When the command started: change sets recorded since then belong to this reconcile
    /// (a new source artifact may trigger the Apply before our own request reaches it).
    started: Timestamp,
}

/// Runs `weir reconcile`.
pub async fn reconcile(
    cluster: &Cluster,
    kind: &'static WeirKind,
    name: &str,
    with_source: bool,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<()> {
    let wait = Wait {
        deadline: Instant::now() + timeout,
        timeout,
        started: Timestamp::now(),
    };
    chain(cluster, kind, name, with_source, &wait, out).await
}

async fn chain(
    cluster: &Cluster,
    kind: &'static WeirKind,
    name: &str,
    with_source: bool,
    wait: &Wait,
    out: &mut dyn Write,
) -> Result<()> {
    let ns = cluster.namespace.clone();
    let obj = kind.get(&cluster.client, &ns, name).await?;
    if with_source {
        match kinds::source_ref(&obj) {
            Some(r) => match WeirKind::of_reference(&r.kind, r.api_version.as_deref()) {
                Some(source_kind) => {
                    let upstream = Cluster {
                        client: cluster.client.clone(),
                        namespace: r.namespace.clone(),
                    };
                    // The whole chain: an Apply of a Render first reconciles the Render's source.
                    Box::pin(chain(
                        &upstream,
                        source_kind,
                        &r.name,
                        source_kind.has_source,
                        wait,
                        out,
                    ))
                    .await?;
                }
                None => {
                    return Err(Error::Usage(format!(
                        "--with-source: {} reads a {} that weir cannot reconcile",
                        kind.display(name),
                        r.kind
                    )));
                }
            },
            None => {
                return Err(Error::Usage(format!(
                    "--with-source: {} has no source",
                    kind.display(name)
                )));
            }
        }
    }
    once(cluster, kind, &ns, name, wait, out).await
}

async fn once(
    cluster: &Cluster,
    kind: &'static WeirKind,
    ns: &str,
    name: &str,
    wait: &Wait,
    out: &mut dyn Write,
) -> Result<()> {
    let (deadline, timeout) = (wait.deadline, wait.timeout);
    let obj = kind.get(&cluster.client, ns, name).await?;
    let display = kind.display(name);
    if kinds::suspended(&obj) {
        return Err(Error::Failed(format!(
            "{display} in namespace {ns} is suspended: resume it first (weir resume {} {name})",
            kind.kind.to_ascii_lowercase()
        )));
    }
    let requested = Timestamp::now();
    let token = requested.to_string();
    write_out(
        out,
        &format!("► asking for a reconcile of {display} in namespace {ns}\n"),
    )?;
    kind.api(&cluster.client, Some(ns))
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(request_patch(&token)),
        )
        .await
        .map_err(|e| kind.not_found(e, ns, name))?;
    write_out(out, &format!("◎ waiting for {display} to be reconciled\n"))?;
    let mut last = obj;
    loop {
        if let Some(outcome) = judge(kind, &last, &token) {
            return report(cluster, kind, ns, name, outcome, wait.started, out).await;
        }
        if Instant::now() >= deadline {
            let state = kinds::condition(&last, "Ready")
                .map(|c| format!("Ready={} {}: {}", c.status, c.reason, c.message))
                .unwrap_or_else(|| "no Ready condition yet".into());
            return Err(Error::Timeout(format!(
                "timed out after {} waiting for {display} in namespace {ns} to be reconciled (is its controller running?); last status: {state}",
                crate::output::human_duration(i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX))
            )));
        }
        tokio::time::sleep(Duration::from_millis(500).min(deadline - Instant::now())).await;
        last = kind.get(&cluster.client, ns, name).await?;
    }
}

async fn report(
    cluster: &Cluster,
    kind: &'static WeirKind,
    ns: &str,
    name: &str,
    outcome: Outcome,
    since: Timestamp,
    out: &mut dyn Write,
) -> Result<()> {
    let display = kind.display(name);
    match outcome {
        Outcome::Ready { revision, message } => {
            let mut text = format!("✔ {display} reconciled");
            if let Some(r) = revision {
                text.push_str(&format!(": revision {r}"));
            }
            text.push('\n');
            if !message.is_empty() {
                text.push_str(&format!("  {message}\n"));
            }
            // The change set is in the Events the controller recorded for this reconcile.
            if kind.kind == "Apply" {
                let evs = events::for_object(cluster, kind, ns, name)
                    .await
                    .unwrap_or_default();
                for e in evs.iter().filter(|e| e.time.is_some_and(|t| t >= since)) {
                    if e.reason == weir_api::conditions::reasons::APPLY_SUCCEEDED {
                        text.push_str(&format!("  change set: {}\n", e.message));
                    }
                }
            }
            write_out(out, &text)
        }
        Outcome::NotReady { reason, message } => Err(Error::Failed(format!(
            "{display} in namespace {ns} is not ready: {reason}: {message}"
        ))),
    }
}

/// Runs `weir suspend` (`suspend = true`) or `weir resume` (`false`, plus a reconcile request).
pub async fn set_suspend(
    cluster: &Cluster,
    kind: &'static WeirKind,
    name: &str,
    suspend: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let ns = &cluster.namespace;
    // Read first, so a missing object is a clear not-found and not a patch error.
    kind.get(&cluster.client, ns, name).await?;
    let mut patch = serde_json::json!({ "spec": { "suspend": suspend } });
    if !suspend {
        // Like flux resume: reconcile at once instead of at the next interval.
        if let (Some(p), Value::Object(m)) = (
            patch.as_object_mut(),
            request_patch(&Timestamp::now().to_string()),
        ) {
            p.extend(m);
        }
    }
    kind.api(&cluster.client, Some(ns))
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(|e| kind.not_found(e, ns, name))?;
    let verb = if suspend { "suspended" } else { "resumed" };
    write_out(
        out,
        &format!("✔ {} in namespace {ns} {verb}\n", kind.display(name)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::APPLY;

    fn obj(status: Value, generation: i64) -> DynamicObject {
        let mut o = DynamicObject::new("a", &APPLY.resource());
        o.metadata.generation = Some(generation);
        o.data = serde_json::json!({ "status": status });
        o
    }

    #[test]
    fn waits_for_the_token_the_generation_and_a_final_ready() {
        let ready = |s: &str| serde_json::json!([{ "type": "Ready", "status": s, "reason": "R", "message": "m" }]);
        let base = |token: &str, generation: i64, conds: Value| serde_json::json!({ "lastHandledReconcileAt": token, "observedGeneration": generation, "conditions": conds, "lastAppliedRevision": "main@sha1:1" });
        assert_eq!(
            judge(&APPLY, &obj(base("old", 1, ready("True")), 1), "t"),
            None
        );
        assert_eq!(
            judge(&APPLY, &obj(base("t", 1, ready("True")), 2), "t"),
            None
        );
        assert_eq!(
            judge(&APPLY, &obj(base("t", 1, ready("Unknown")), 1), "t"),
            None
        );
        let mut reconciling = ready("True");
        reconciling
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({ "type": "Reconciling", "status": "True" }));
        assert_eq!(judge(&APPLY, &obj(base("t", 1, reconciling), 1), "t"), None);
        assert_eq!(
            judge(&APPLY, &obj(base("t", 1, ready("True")), 1), "t"),
            Some(Outcome::Ready {
                revision: Some("main@sha1:1".into()),
                message: "m".into()
            })
        );
        assert_eq!(
            judge(&APPLY, &obj(base("t", 1, ready("False")), 1), "t"),
            Some(Outcome::NotReady {
                reason: "R".into(),
                message: "m".into()
            })
        );
    }
}
