//! Remembering what each Render was last rendered from, so a reconcile with the same inputs
//! inside the interval is not rendered again.
//!
//! Every status write changes the Render, and the Render's watch turns that into another
//! reconcile; without this memory each real render would be followed by a second, identical one.
//! The memory is keyed by what can change the output and that the controller sees change: the
//! source artifact (revision and digest), the spec generation and the `requestedAt` annotation. Inputs it does not watch
//! (ConfigMaps and Secrets of `substituteFrom`) are picked up when the interval has passed, as in
//! Flux: an entry is only trusted for one interval after the render it describes.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::watch::RenderKey;

/// What a render was made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedFrom {
    /// The source artifact's version (`source::artifact_version`: revision and digest).
    pub source: String,
    /// `metadata.generation` of the Render.
    pub generation: Option<i64>,
    /// The `reconcile.weir.dev/requestedAt` annotation.
    pub requested_at: Option<String>,
}

/// A successful render's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedTo {
    /// Digest of the stored artifact.
    pub digest: String,
    /// Number of objects in it.
    pub objects: usize,
}

#[derive(Debug)]
struct Entry {
    from: RenderedFrom,
    to: RenderedTo,
    at: Instant,
}

/// The last successful render of each Render (in memory; empty after a restart).
#[derive(Debug, Default)]
pub struct RecentRenders {
    entries: Mutex<HashMap<RenderKey, Entry>>,
}

impl RecentRenders {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<RenderKey, Entry>> {
        // Each update is a single insert or remove, so a poisoned map is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The output of the last render of `render` if it was made from `from` less than
    /// `interval` ago.
    pub fn fresh(
        &self,
        render: &RenderKey,
        from: &RenderedFrom,
        interval: Duration,
    ) -> Option<RenderedTo> {
        self.entries()
            .get(render)
            .filter(|e| e.from == *from && e.at.elapsed() < interval)
            .map(|e| e.to.clone())
    }

    /// Records a successful render.
    pub fn record(&self, render: &RenderKey, from: RenderedFrom, to: RenderedTo) {
        self.entries().insert(
            render.clone(),
            Entry {
                from,
                to,
                at: Instant::now(),
            },
        );
    }

    /// Forgets `render` (deleted, or its last render failed).
    pub fn forget(&self, render: &RenderKey) {
        self.entries().remove(render);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(digest: &str, generation: i64, requested: Option<&str>) -> RenderedFrom {
        RenderedFrom {
            source: digest.into(),
            generation: Some(generation),
            requested_at: requested.map(Into::into),
        }
    }

    #[test]
    fn only_the_same_inputs_within_the_interval_are_fresh() {
        let recent = RecentRenders::default();
        let key: RenderKey = ("ns".into(), "app".into());
        let to = RenderedTo {
            digest: "sha256:x".into(),
            objects: 3,
        };
        let hour = Duration::from_secs(3600);
        assert_eq!(recent.fresh(&key, &from("a", 1, None), hour), None);
        recent.record(&key, from("a", 1, None), to.clone());
        assert_eq!(recent.fresh(&key, &from("a", 1, None), hour), Some(to));
        for changed in [
            from("b", 1, None),
            from("a", 2, None),
            from("a", 1, Some("now")),
        ] {
            assert_eq!(recent.fresh(&key, &changed, hour), None, "{changed:?}");
        }
        assert_eq!(
            recent.fresh(&key, &from("a", 1, None), Duration::ZERO),
            None,
            "the interval passed"
        );
        recent.forget(&key);
        assert_eq!(recent.fresh(&key, &from("a", 1, None), hour), None);
    }
}
