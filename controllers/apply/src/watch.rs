//! Watching the sources Applies use, of whatever kind, so a new source artifact triggers exactly
//! the Applies that read it; and the dependency index, so an Apply turning Ready triggers the
//! Applies that wait for it.
//!
//! Every reconcile records which source its Apply reads and the source artifact (revision and
//! digest) it saw ([`SourceWatches::track`], [`SourceWatches::saw`]). The first Apply to name a
//! kind starts one cluster-wide watch of that kind (discovered at run time, so any producer kind
//! works). When a watched source shows an artifact that an Apply reading it has not seen, that
//! Apply is sent to the controller's trigger stream. Suppressing events whose artifact the
//! Apply already saw keeps status-only churn on sources (conditions, progress) from causing
//! applies.
//!
//! Dependencies: every reconcile records the Applies its Apply `dependsOn`
//! ([`SourceWatches::depends_on`]); when an Apply's reconcile ends Ready, the Applies that depend
//! on it are triggered ([`SourceWatches::became_ready`]).
//!
//! Deleted Applies are forgotten through [`SourceWatches::untrack`]; a watch, once started, runs
//! until shutdown (kinds are few).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use futures::channel::mpsc::UnboundedSender;
use kube::{Client, runtime::reflector::ObjectRef};
use tokio::sync::watch;
use weir_api::Apply;

pub use weir_runtime::sources::ConsumerKey as ApplyKey;

/// The source index and its watches (see [`weir_runtime::sources`]), plus the dependency index.
/// Cheap to clone; the source-index methods come through `Deref`.
#[derive(Clone)]
pub struct SourceWatches {
    sources: weir_runtime::sources::SourceWatches<Apply>,
    /// The Applies each Apply depends on.
    dependencies: Arc<Mutex<HashMap<ApplyKey, Vec<ApplyKey>>>>,
}

impl std::ops::Deref for SourceWatches {
    type Target = weir_runtime::sources::SourceWatches<Apply>;

    fn deref(&self) -> &Self::Target {
        &self.sources
    }
}

impl SourceWatches {
    /// An empty index whose watches send triggered Applies to `trigger` and end when `stop`
    /// turns true.
    pub fn new(
        client: Client,
        trigger: UnboundedSender<ObjectRef<Apply>>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        SourceWatches {
            sources: weir_runtime::sources::SourceWatches::new(client, trigger, stop),
            dependencies: Arc::default(),
        }
    }

    fn dependencies(&self) -> MutexGuard<'_, HashMap<ApplyKey, Vec<ApplyKey>>> {
        // Each update is one insert or remove: a panic elsewhere cannot leave it half-done.
        self.dependencies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets `apply` (it was deleted): its source and its dependencies.
    pub fn untrack(&self, apply: &ApplyKey) {
        self.sources.untrack(apply);
        self.dependencies().remove(apply);
    }

    /// Records the Applies `apply` depends on (its `dependsOn`).
    pub fn depends_on(&self, apply: &ApplyKey, dependencies: Vec<ApplyKey>) {
        let mut all = self.dependencies();
        if dependencies.is_empty() {
            all.remove(apply);
        } else {
            all.insert(apply.clone(), dependencies);
        }
    }

    /// Triggers the Applies that depend on `apply` (it just became Ready).
    pub fn became_ready(&self, apply: &ApplyKey) {
        let dependents: Vec<ApplyKey> = self
            .dependencies()
            .iter()
            .filter(|(_, deps)| deps.contains(apply))
            .map(|(dependent, _)| dependent.clone())
            .collect();
        for dependent in dependents {
            self.sources.trigger(&dependent);
        }
    }
}
