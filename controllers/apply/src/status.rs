//! Pure status logic: history, dependency readiness, health targets and verdicts.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use weir_api::{
    Apply, ApplyStatus,
    apply::HistoryEntry,
    conditions::{self, types},
    inventory::ResourceInventory,
    reference::NamespacedObjectKindReference,
};
use weir_ssa::{HealthStatus, HealthVerdict, ObjectRef, split_api_version};

/// How many attempts `status.history` keeps.
pub const HISTORY_LIMIT: usize = 5;

/// The `result` of a successful attempt in `status.history`.
pub const SUCCEEDED: &str = "Succeeded";

/// Records an attempt at the front of `history` (newest first, at most [`HISTORY_LIMIT`]).
/// Repeating the newest entry's revision, digest and result changes nothing: a steady state
/// (every interval applying the same artifact) writes no status.
pub fn record_history(
    history: &mut Vec<HistoryEntry>,
    revision: &str,
    digest: &str,
    result: &str,
    now: Time,
) {
    if history
        .first()
        .is_some_and(|h| h.revision == revision && h.digest == digest && h.result == result)
    {
        return;
    }
    history.insert(
        0,
        HistoryEntry {
            revision: revision.to_owned(),
            digest: digest.to_owned(),
            result: result.to_owned(),
            time: now,
        },
    );
    history.truncate(HISTORY_LIMIT);
}

/// Why a dependency is not Ready at its latest revision, or `None` when it is.
///
/// Ready means: `Ready=True` for the current generation, not reconciling, and the last applied
/// revision is the last attempted one (a dependency that failed a newer revision while its old
/// objects still stand is not ready).
pub fn dependency_not_ready(dependency: &Apply) -> Option<String> {
    let Some(status) = &dependency.status else {
        return Some("has no status yet".into());
    };
    if status.observed_generation != dependency.metadata.generation {
        return Some("has not observed its latest generation".into());
    }
    if conditions::is_true(&status.conditions, types::RECONCILING) {
        return Some("is reconciling".into());
    }
    if !conditions::is_true(&status.conditions, types::READY) {
        let why = conditions::get(&status.conditions, types::READY)
            .map(|c| format!("is not Ready ({}: {})", c.reason, c.message))
            .unwrap_or_else(|| "is not Ready".into());
        return Some(why);
    }
    if status.last_applied_revision != status.last_attempted_revision {
        return Some(format!(
            "has not applied its latest revision '{}'",
            status
                .last_attempted_revision
                .as_deref()
                .unwrap_or_default()
        ));
    }
    None
}

/// The objects whose health decides Ready: every applied object when `wait`, else the
/// `healthChecks` (their namespace defaulting to the Apply's).
pub fn health_targets(
    wait: bool,
    checks: &[NamespacedObjectKindReference],
    inventory: &ResourceInventory,
    namespace: &str,
) -> Vec<ObjectRef> {
    if wait {
        return inventory
            .entries
            .iter()
            .filter_map(ObjectRef::from_entry)
            .collect();
    }
    checks
        .iter()
        .map(|c| {
            let (group, version) = split_api_version(c.api_version.as_deref().unwrap_or("v1"));
            ObjectRef {
                group,
                version,
                kind: c.kind.clone(),
                namespace: c.namespace.clone().unwrap_or_else(|| namespace.to_owned()),
                name: c.name.clone(),
            }
        })
        .collect()
}

/// The combined health of the checked objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Every object is Current.
    Healthy(String),
    /// Something is still converging (or cannot be read yet).
    Progressing(String),
    /// Something failed for good.
    Failed(String),
}

/// Sums up per-object verdicts, naming the objects that are not Current (at most five, then a
/// count).
pub fn summarise(verdicts: &[(ObjectRef, HealthVerdict)]) -> Health {
    let list = |status: fn(HealthStatus) -> bool| {
        let bad: Vec<String> = verdicts
            .iter()
            .filter(|(_, v)| status(v.status))
            .map(|(o, v)| format!("{o}: {}", v.message))
            .collect();
        let mut text = bad.iter().take(5).cloned().collect::<Vec<_>>().join("; ");
        if bad.len() > 5 {
            text.push_str(&format!("; and {} more", bad.len() - 5));
        }
        (bad.len(), text)
    };
    let (failed, failures) = list(|s| s == HealthStatus::Failed);
    if failed > 0 {
        return Health::Failed(format!("{failed} object(s) failed: {failures}"));
    }
    let (pending, waiting) = list(|s| s != HealthStatus::Current);
    if pending > 0 {
        return Health::Progressing(format!("waiting for {pending} object(s): {waiting}"));
    }
    Health::Healthy(format!("{} object(s) healthy", verdicts.len()))
}

/// Whether the Ready condition of `status` is True.
pub fn is_ready(status: &ApplyStatus) -> bool {
    conditions::is_true(&status.conditions, types::READY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;
    use weir_api::conditions::{ConditionStatus, reasons};

    fn at(s: i64) -> Time {
        Time(Timestamp::from_second(s).unwrap())
    }

    #[test]
    fn history_keeps_five_newest_first_without_repeats() {
        let mut h = Vec::new();
        for i in 0..7 {
            record_history(&mut h, &format!("r{i}"), "d", SUCCEEDED, at(i));
        }
        assert_eq!(h.len(), HISTORY_LIMIT);
        assert_eq!(h[0].revision, "r6");
        assert_eq!(h[4].revision, "r2");
        record_history(&mut h, "r6", "d", SUCCEEDED, at(100));
        assert_eq!((h.len(), h[0].time.clone()), (5, at(6)));
        record_history(&mut h, "r6", "d", "HealthCheckFailed", at(101));
        assert_eq!(h[0].result, "HealthCheckFailed");
    }

    fn dependency(ready: bool, applied: &str, attempted: &str) -> Apply {
        let mut a = Apply::new(
            "dep",
            serde_json::from_value(serde_json::json!({
                "sourceRef": {"kind": "Render", "name": "r"}, "interval": "1m", "prune": true
            }))
            .unwrap(),
        );
        a.metadata.generation = Some(2);
        let mut status = ApplyStatus {
            observed_generation: Some(2),
            last_applied_revision: Some(applied.into()),
            last_attempted_revision: Some(attempted.into()),
            ..Default::default()
        };
        conditions::mark_ready(
            &mut status.conditions,
            ready,
            false,
            reasons::SUCCEEDED,
            "m",
            Some(2),
            at(0),
        );
        a.status = Some(status);
        a
    }

    #[test]
    fn dependencies_must_be_ready_at_their_latest_revision() {
        assert_eq!(dependency_not_ready(&dependency(true, "a", "a")), None);
        assert!(
            dependency_not_ready(&dependency(false, "a", "a"))
                .unwrap()
                .contains("not Ready")
        );
        assert!(
            dependency_not_ready(&dependency(true, "a", "b"))
                .unwrap()
                .contains("'b'")
        );
        let mut stale = dependency(true, "a", "a");
        stale.metadata.generation = Some(3);
        assert!(dependency_not_ready(&stale).is_some());
        let mut reconciling = dependency(true, "a", "a");
        conditions::set(
            &mut reconciling.status.as_mut().unwrap().conditions,
            types::RECONCILING,
            ConditionStatus::True,
            reasons::PROGRESSING,
            "x",
            Some(2),
            at(0),
        );
        assert!(dependency_not_ready(&reconciling).is_some());
        let mut fresh = dependency(true, "a", "a");
        fresh.status = None;
        assert!(dependency_not_ready(&fresh).is_some());
    }

    #[test]
    fn health_targets_and_summary() {
        let inventory = ResourceInventory {
            entries: vec![weir_api::inventory::InventoryEntry {
                id: "ns_web_apps_Deployment".into(),
                v: "v1".into(),
            }],
        };
        let all = health_targets(true, &[], &inventory, "ns");
        assert_eq!(all[0].to_string(), "Deployment.apps ns/web");
        let checks = vec![NamespacedObjectKindReference {
            api_version: Some("apps/v1".into()),
            kind: "StatefulSet".into(),
            name: "db".into(),
            namespace: None,
        }];
        let some = health_targets(false, &checks, &inventory, "ns");
        assert_eq!(some[0].to_string(), "StatefulSet.apps ns/db");
        assert!(health_targets(false, &[], &inventory, "ns").is_empty());

        let o = all[0].clone();
        assert_eq!(
            summarise(&[(o.clone(), HealthVerdict::current("ok"))]),
            Health::Healthy("1 object(s) healthy".into())
        );
        assert_eq!(
            summarise(&[(o.clone(), HealthVerdict::in_progress("Ready: 0/1"))]),
            Health::Progressing(
                "waiting for 1 object(s): Deployment.apps ns/web: Ready: 0/1".into()
            )
        );
        assert!(matches!(
            summarise(&[
                (o.clone(), HealthVerdict::in_progress("x")),
                (o, HealthVerdict::failed("deadline exceeded"))
            ]),
            Health::Failed(m) if m.contains("deadline exceeded")
        ));
    }
}
