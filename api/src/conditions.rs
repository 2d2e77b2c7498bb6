//! Status conditions in the `metav1.Condition` shape, with kstatus semantics.
//!
//! Every weir kind reports `Ready` (`True`/`False`/`Unknown`); `Reconciling` and `Stalled` are
//! present only while they are `True`. Use [`set`] for every change: it stamps
//! `observedGeneration` and moves `lastTransitionTime` only when status, reason or message really
//! change, so a reconcile that finds nothing new produces a status equal (by
//! [`equal_ignoring_time`]) to the one already stored and can skip its patch.
//!
//! ```
//! use weir_api::conditions::{self, ConditionStatus, types, reasons};
//! use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
//! use k8s_openapi::jiff::Timestamp;
//!
//! let mut list = Vec::new();
//! let t0 = Time(Timestamp::from_second(0).unwrap());
//! let t1 = Time(Timestamp::from_second(60).unwrap());
//! conditions::set(&mut list, types::READY, ConditionStatus::True, reasons::SUCCEEDED, "stored artifact", Some(1), t0.clone());
//! // Same state one minute later: nothing moves but the generation.
//! assert!(!conditions::set(&mut list, types::READY, ConditionStatus::True, reasons::SUCCEEDED, "stored artifact", Some(1), t1));
//! assert_eq!(list[0].last_transition_time, t0);
//! ```

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The `metav1.Condition` type used in every weir status.
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Condition types used by weir controllers.
pub mod types {
    /// The object is fully reconciled; `False` says why not, `Unknown` while in progress.
    pub const READY: &str = "Ready";
    /// Present (True) only while a reconcile is under way.
    pub const RECONCILING: &str = "Reconciling";
    /// Present (True) only when the controller cannot make progress without a spec change.
    pub const STALLED: &str = "Stalled";
    /// The artifact named in `status.artifact` exists in the controller's storage.
    pub const ARTIFACT_IN_STORAGE: &str = "ArtifactInStorage";
    /// The last fetch from upstream failed; absent when the last fetch succeeded.
    pub const FETCH_FAILED: &str = "FetchFailed";
    /// The applied objects pass their health checks.
    pub const HEALTHY: &str = "Healthy";
}

/// Condition reasons: stable, CamelCase categories, also used as Event reasons and metric labels.
pub mod reasons {
    /// The reconcile finished and the object is up to date.
    pub const SUCCEEDED: &str = "Succeeded";
    /// Work is under way.
    pub const PROGRESSING: &str = "Progressing";
    /// The object is suspended; the controller does nothing until it is resumed.
    pub const SUSPENDED: &str = "Suspended";
    /// The spec cannot be acted on (for example a path escape or an unparsable range).
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// A reference to another namespace was refused (`--no-cross-namespace-refs`, as Flux).
    pub const ACCESS_DENIED: &str = "AccessDenied";
    /// Credentials were missing, malformed or refused.
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    /// The referenced Secret does not exist or lacks a required key.
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    /// The requested branch, tag, commit or ref does not exist upstream.
    pub const REF_NOT_FOUND: &str = "RefNotFound";
    /// A Git operation failed for another reason (network, protocol, corrupt data).
    pub const GIT_OPERATION_FAILED: &str = "GitOperationFailed";
    /// An upstream operation exceeded `spec.timeout`.
    pub const TIMEOUT: &str = "Timeout";
    /// Writing, reading or garbage-collecting storage failed.
    pub const STORAGE_OPERATION_FAILED: &str = "StorageOperationFailed";
    /// The referenced source exists but has no artifact yet (waiting, not failed).
    pub const SOURCE_NOT_READY: &str = "SourceNotReady";
    /// Downloading or verifying the source artifact failed.
    pub const ARTIFACT_FETCH_FAILED: &str = "ArtifactFetchFailed";
    /// Rendering the manifests failed.
    pub const BUILD_FAILED: &str = "BuildFailed";
    /// Variable substitution failed.
    pub const SUBSTITUTION_FAILED: &str = "SubstitutionFailed";
    /// The manifest set failed validation (dry-run) before any write.
    pub const VALIDATION_FAILED: &str = "ValidationFailed";
    /// The manifests were applied (and, where asked, are healthy).
    pub const APPLY_SUCCEEDED: &str = "ApplySucceeded";
    /// Server-side apply failed.
    pub const APPLY_FAILED: &str = "ApplyFailed";
    /// Deleting objects that left the inventory failed.
    pub const PRUNE_FAILED: &str = "PruneFailed";
    /// A dependency is not Ready at its latest revision.
    pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
    /// Applied objects did not become healthy within the timeout.
    pub const HEALTH_CHECK_FAILED: &str = "HealthCheckFailed";
}

/// The three values of a condition's `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionStatus {
    /// `"True"`
    True,
    /// `"False"`
    False,
    /// `"Unknown"`
    Unknown,
}

impl ConditionStatus {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for ConditionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

/// Sets condition `type_` in `conditions`, returning whether anything but timestamps changed.
///
/// `observedGeneration` is always set to `generation`. `lastTransitionTime` becomes `now` only
/// when the condition is new or its status, reason or message differ from the stored ones.
#[allow(clippy::too_many_arguments)]
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Time,
) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => {
            let same_state = existing.status == status.as_str()
                && existing.reason == reason
                && existing.message == message;
            let changed = !same_state || existing.observed_generation != generation;
            if !same_state {
                existing.status = status.as_str().to_owned();
                existing.reason = reason.to_owned();
                existing.message = message.to_owned();
                existing.last_transition_time = now;
            }
            existing.observed_generation = generation;
            changed
        }
        None => {
            conditions.push(Condition {
                type_: type_.to_owned(),
                status: status.as_str().to_owned(),
                reason: reason.to_owned(),
                message: message.to_owned(),
                observed_generation: generation,
                last_transition_time: now,
            });
            true
        }
    }
}

/// Removes condition `type_`; returns whether it was present.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

/// The condition of type `type_`, if present.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether condition `type_` is present with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_some_and(|c| c.status == ConditionStatus::True.as_str())
}

/// Whether two condition lists say the same thing, ignoring `lastTransitionTime` and order.
///
/// A controller compares the status it computed with the stored one through this and skips the
/// status patch when they are equal.
pub fn equal_ignoring_time(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            get(b, &x.type_).is_some_and(|y| {
                x.status == y.status
                    && x.reason == y.reason
                    && x.message == y.message
                    && x.observed_generation == y.observed_generation
            })
        })
}

/// Marks the start of a reconcile the kstatus way: `Reconciling=True` and `Ready=Unknown`,
/// `Stalled` removed. Returns whether anything changed.
pub fn mark_reconciling(
    conditions: &mut Vec<Condition>,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Time,
) -> bool {
    let mut changed = remove(conditions, types::STALLED);
    changed |= set(
        conditions,
        types::RECONCILING,
        ConditionStatus::True,
        reason,
        message,
        generation,
        now.clone(),
    );
    changed |= set(
        conditions,
        types::READY,
        ConditionStatus::Unknown,
        reason,
        message,
        generation,
        now,
    );
    changed
}

/// Marks a finished reconcile: `Ready` as given, `Reconciling` removed, and `Stalled=True` only
/// when `stalled` (a failure that only a spec change can fix). Returns whether anything changed.
pub fn mark_ready(
    conditions: &mut Vec<Condition>,
    ready: bool,
    stalled: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Time,
) -> bool {
    let mut changed = remove(conditions, types::RECONCILING);
    if stalled && !ready {
        changed |= set(
            conditions,
            types::STALLED,
            ConditionStatus::True,
            reason,
            message,
            generation,
            now.clone(),
        );
    } else {
        changed |= remove(conditions, types::STALLED);
    }
    changed |= set(
        conditions,
        types::READY,
        ready.into(),
        reason,
        message,
        generation,
        now,
    );
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap())
    }

    fn ready(
        list: &mut Vec<Condition>,
        status: ConditionStatus,
        reason: &str,
        msg: &str,
        generation: i64,
        t: i64,
    ) -> bool {
        set(
            list,
            types::READY,
            status,
            reason,
            msg,
            Some(generation),
            at(t),
        )
    }

    #[test]
    fn new_condition_gets_now_and_generation() {
        let mut list = Vec::new();
        assert!(ready(
            &mut list,
            ConditionStatus::True,
            reasons::SUCCEEDED,
            "ok",
            3,
            10
        ));
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].status, "True");
        assert_eq!(list[0].observed_generation, Some(3));
        assert_eq!(list[0].last_transition_time, at(10));
    }

    #[test]
    fn same_state_keeps_transition_time() {
        let mut list = Vec::new();
        ready(
            &mut list,
            ConditionStatus::True,
            reasons::SUCCEEDED,
            "ok",
            1,
            10,
        );
        assert!(!ready(
            &mut list,
            ConditionStatus::True,
            reasons::SUCCEEDED,
            "ok",
            1,
            20
        ));
        assert_eq!(list[0].last_transition_time, at(10));
    }

    #[test]
    fn new_generation_alone_changes_generation_not_time() {
        let mut list = Vec::new();
        ready(
            &mut list,
            ConditionStatus::True,
            reasons::SUCCEEDED,
            "ok",
            1,
            10,
        );
        assert!(ready(
            &mut list,
            ConditionStatus::True,
            reasons::SUCCEEDED,
            "ok",
            2,
            20
        ));
        assert_eq!(list[0].observed_generation, Some(2));
        assert_eq!(list[0].last_transition_time, at(10));
    }

    #[test]
    fn status_reason_or_message_change_moves_time() {
        for (status, reason, msg) in [
            (ConditionStatus::False, reasons::SUCCEEDED, "ok"),
            (ConditionStatus::True, reasons::PROGRESSING, "ok"),
            (ConditionStatus::True, reasons::SUCCEEDED, "other"),
        ] {
            let mut list = Vec::new();
            ready(
                &mut list,
                ConditionStatus::True,
                reasons::SUCCEEDED,
                "ok",
                1,
                10,
            );
            assert!(ready(&mut list, status, reason, msg, 1, 20));
            assert_eq!(
                list[0].last_transition_time,
                at(20),
                "{status} {reason} {msg}"
            );
            assert_eq!(
                (
                    list[0].status.as_str(),
                    list[0].reason.as_str(),
                    list[0].message.as_str()
                ),
                (status.as_str(), reason, msg)
            );
        }
    }

    #[test]
    fn remove_and_lookup() {
        let mut list = Vec::new();
        set(
            &mut list,
            types::STALLED,
            ConditionStatus::True,
            reasons::INVALID_SPEC,
            "bad",
            None,
            at(0),
        );
        assert!(is_true(&list, types::STALLED));
        assert!(!is_true(&list, types::READY));
        assert!(remove(&mut list, types::STALLED));
        assert!(!remove(&mut list, types::STALLED));
        assert!(get(&list, types::STALLED).is_none());
    }

    #[test]
    fn equality_ignores_time_and_order_but_not_content() {
        let mut a = Vec::new();
        set(
            &mut a,
            types::READY,
            ConditionStatus::True,
            reasons::SUCCEEDED,
            "ok",
            Some(1),
            at(1),
        );
        set(
            &mut a,
            types::HEALTHY,
            ConditionStatus::True,
            reasons::SUCCEEDED,
            "ok",
            Some(1),
            at(1),
        );
        let mut b = Vec::new();
        set(
            &mut b,
            types::HEALTHY,
            ConditionStatus::True,
            reasons::SUCCEEDED,
            "ok",
            Some(1),
            at(9),
        );
        set(
            &mut b,
            types::READY,
            ConditionStatus::True,
            reasons::SUCCEEDED,
            "ok",
            Some(1),
            at(9),
        );
        assert!(equal_ignoring_time(&a, &b));
        set(
            &mut b,
            types::READY,
            ConditionStatus::True,
            reasons::SUCCEEDED,
            "changed",
            Some(1),
            at(9),
        );
        assert!(!equal_ignoring_time(&a, &b));
        b.pop();
        assert!(!equal_ignoring_time(&a, &b));
    }

    #[test]
    fn kstatus_lifecycle() {
        let mut list = Vec::new();
        assert!(mark_reconciling(
            &mut list,
            reasons::PROGRESSING,
            "fetching",
            Some(1),
            at(0)
        ));
        assert!(is_true(&list, types::RECONCILING));
        assert_eq!(get(&list, types::READY).unwrap().status, "Unknown");

        assert!(mark_ready(
            &mut list,
            false,
            true,
            reasons::INVALID_SPEC,
            "bad range",
            Some(1),
            at(1)
        ));
        assert!(
            get(&list, types::RECONCILING).is_none(),
            "Reconciling must be absent when not True"
        );
        assert!(is_true(&list, types::STALLED));
        assert_eq!(get(&list, types::READY).unwrap().status, "False");

        assert!(mark_ready(
            &mut list,
            true,
            false,
            reasons::SUCCEEDED,
            "done",
            Some(2),
            at(2)
        ));
        assert!(
            get(&list, types::STALLED).is_none(),
            "Stalled must be absent when not True"
        );
        assert!(is_true(&list, types::READY));
        assert!(!mark_ready(
            &mut list,
            true,
            false,
            reasons::SUCCEEDED,
            "done",
            Some(2),
            at(3)
        ));
    }
}
