//! Remembering what each Apply last applied successfully, so a reconcile with the same inputs
//! inside the interval does not apply again.
//!
//! Every status write changes the Apply, and the Apply's watch turns that into another
//! reconcile; while a health check is pending the controller also requeues every few seconds.
//! Without this memory each of those would fetch, dry-run and compare every object again. The
//! memory is keyed by what can change the result and that the controller sees change: the source
//! artifact (revision and digest), the spec generation and the `requestedAt` annotation. Drift
//! in the cluster is not watched: it is corrected when the interval has passed, as in Flux — an
//! entry is only trusted for one interval after the apply it describes.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use weir_api::inventory::ResourceInventory;

use crate::watch::ApplyKey;

/// What an apply was made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedFrom {
    /// The source artifact's version (`source::artifact_version`: revision and digest).
    pub source: String,
    /// `metadata.generation` of the Apply.
    pub generation: Option<i64>,
    /// The `reconcile.weir.dev/requestedAt` annotation.
    pub requested_at: Option<String>,
}

/// A successful apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The inventory it produced.
    pub inventory: ResourceInventory,
    /// When it finished: the start of the health wait.
    pub at: Instant,
}

#[derive(Debug)]
struct Entry {
    from: AppliedFrom,
    applied: Applied,
}

/// The last successful apply of each Apply (in memory; empty after a restart).
#[derive(Debug, Default)]
pub struct RecentApplies {
    entries: Mutex<HashMap<ApplyKey, Entry>>,
}

impl RecentApplies {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<ApplyKey, Entry>> {
        // Each update is a single insert or remove, so a poisoned map is still consistent.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last apply of `apply` if it was made from `from` less than `interval` ago.
    pub fn fresh(
        &self,
        apply: &ApplyKey,
        from: &AppliedFrom,
        interval: Duration,
    ) -> Option<Applied> {
        self.entries()
            .get(apply)
            .filter(|e| e.from == *from && e.applied.at.elapsed() < interval)
            .map(|e| e.applied.clone())
    }

    /// Records a successful apply that finished now.
    pub fn record(
        &self,
        apply: &ApplyKey,
        from: AppliedFrom,
        inventory: ResourceInventory,
    ) -> Applied {
        let applied = Applied {
            inventory,
            at: Instant::now(),
        };
        self.entries().insert(
            apply.clone(),
            Entry {
                from,
                applied: applied.clone(),
            },
        );
        applied
    }

    /// Forgets `apply` (deleted, or its last apply failed).
    pub fn forget(&self, apply: &ApplyKey) {
        self.entries().remove(apply);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(source: &str, generation: i64, requested: Option<&str>) -> AppliedFrom {
        AppliedFrom {
            source: source.into(),
            generation: Some(generation),
            requested_at: requested.map(Into::into),
        }
    }

    #[test]
    fn only_the_same_inputs_within_the_interval_are_fresh() {
        let recent = RecentApplies::default();
        let key: ApplyKey = ("ns".into(), "app".into());
        let hour = Duration::from_secs(3600);
        assert_eq!(recent.fresh(&key, &from("a", 1, None), hour), None);
        let applied = recent.record(&key, from("a", 1, None), ResourceInventory::default());
        assert_eq!(recent.fresh(&key, &from("a", 1, None), hour), Some(applied));
        for changed in [
            from("b", 1, None),
            from("a", 2, None),
            from("a", 1, Some("now")),
        ] {
            assert_eq!(recent.fresh(&key, &changed, hour), None, "{changed:?}");
        }
        assert_eq!(
            recent.fresh(&key, &from("a", 1, None), Duration::ZERO),
            None
        );
        recent.forget(&key);
        assert_eq!(recent.fresh(&key, &from("a", 1, None), hour), None);
    }
}
