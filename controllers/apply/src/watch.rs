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
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
};

use futures::{StreamExt, channel::mpsc::UnboundedSender};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind},
    discovery,
    runtime::{WatchStreamExt, reflector::ObjectRef, watcher},
};
use tokio::{sync::watch, task::JoinHandle};
use weir_api::Apply;

use crate::source::{SourceKey, object_artifact_version};

/// An Apply, by namespace and name.
pub type ApplyKey = (String, String);

/// The source index and the watches behind it. Cheap to clone.
#[derive(Clone)]
pub struct SourceWatches {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    trigger: UnboundedSender<ObjectRef<Apply>>,
    stop: watch::Receiver<bool>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Discovered API resources by kind.
    resources: HashMap<GroupVersionKind, ApiResource>,
    /// Running watches by kind.
    watches: HashMap<GroupVersionKind, JoinHandle<()>>,
    /// Which Applies read a source, with the source artifact version each last saw.
    readers: HashMap<SourceKey, HashMap<ApplyKey, Option<String>>>,
    /// Which source each Apply reads.
    sources: HashMap<ApplyKey, SourceKey>,
    /// The Applies each Apply depends on.
    dependencies: HashMap<ApplyKey, Vec<ApplyKey>>,
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
            inner: Arc::new(Inner {
                client,
                trigger,
                stop,
                state: Mutex::default(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters (each update is one insert or remove), so keep going with the data.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The API resource (plural, scope) of `gvk`, discovered once and cached.
    pub async fn resource(&self, gvk: &GroupVersionKind) -> Result<ApiResource, kube::Error> {
        if let Some(found) = self.state().resources.get(gvk) {
            return Ok(found.clone());
        }
        let (resource, _) = discovery::pinned_kind(&self.inner.client, gvk).await?;
        self.state().resources.insert(gvk.clone(), resource.clone());
        Ok(resource)
    }

    /// Records that `apply` reads `source` and makes sure the source's kind is watched. Call it
    /// before reading the source, then [`SourceWatches::saw`] with what was read: a change that
    /// lands in between still triggers the Apply.
    pub fn track(&self, apply: &ApplyKey, source: &SourceKey, resource: &ApiResource) {
        let mut state = self.state();
        if let Some(previous) = state.sources.insert(apply.clone(), source.clone())
            && previous != *source
        {
            remove_reader(&mut state.readers, &previous, apply);
        }
        state
            .readers
            .entry(source.clone())
            .or_default()
            .entry(apply.clone())
            .or_insert(None);
        let running = state
            .watches
            .get(&source.gvk)
            .is_some_and(|task| !task.is_finished());
        if !running {
            let task = tokio::spawn(
                self.clone()
                    .watch_kind(source.gvk.clone(), resource.clone()),
            );
            state.watches.insert(source.gvk.clone(), task);
        }
    }

    /// Records the source artifact version (`source::artifact_version`) `apply` last read
    /// (`None`: no artifact).
    pub fn saw(&self, apply: &ApplyKey, source: &SourceKey, version: Option<String>) {
        if let Some(seen) = self
            .state()
            .readers
            .get_mut(source)
            .and_then(|readers| readers.get_mut(apply))
        {
            *seen = version;
        }
    }

    /// Forgets `apply` (it was deleted).
    pub fn untrack(&self, apply: &ApplyKey) {
        let mut state = self.state();
        if let Some(source) = state.sources.remove(apply) {
            remove_reader(&mut state.readers, &source, apply);
        }
        state.dependencies.remove(apply);
    }

    /// Records the Applies `apply` depends on (empty: none).
    pub fn depends_on(&self, apply: &ApplyKey, dependencies: Vec<ApplyKey>) {
        let mut state = self.state();
        if dependencies.is_empty() {
            state.dependencies.remove(apply);
        } else {
            state.dependencies.insert(apply.clone(), dependencies);
        }
    }

    /// Triggers every Apply that depends on `apply`, which just became Ready.
    pub fn became_ready(&self, apply: &ApplyKey) {
        let dependents: Vec<ApplyKey> = self
            .state()
            .dependencies
            .iter()
            .filter(|(_, deps)| deps.contains(apply))
            .map(|(dependent, _)| dependent.clone())
            .collect();
        for (namespace, name) in dependents {
            let _ = self
                .inner
                .trigger
                .unbounded_send(ObjectRef::new(&name).within(&namespace));
        }
    }

    /// Stops every watch.
    pub fn shutdown(&self) {
        for (_, task) in self.state().watches.drain() {
            task.abort();
        }
    }

    /// Number of Applies tracked (for tests and debugging).
    pub fn tracked(&self) -> usize {
        self.state().sources.len()
    }

    async fn watch_kind(self, gvk: GroupVersionKind, resource: ApiResource) {
        let api: Api<DynamicObject> = Api::all_with(self.inner.client.clone(), &resource);
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let mut events = std::pin::pin!(events);
        let mut stop = self.inner.stop.clone();
        tracing::debug!(kind = %gvk.kind, group = %gvk.group, "watching source kind");
        loop {
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => break,
                next = events.next() => match next {
                    Some(Ok(obj)) => self.source_changed(&gvk, &obj),
                    Some(Err(e)) => tracing::debug!(kind = %gvk.kind, error = %e, "source watch error"),
                    None => break,
                },
            }
        }
    }

    /// Sends every Apply that reads `obj` and has not seen its current artifact.
    fn source_changed(&self, gvk: &GroupVersionKind, obj: &DynamicObject) {
        let (Some(namespace), Some(name)) = (&obj.metadata.namespace, &obj.metadata.name) else {
            return;
        };
        let key = SourceKey {
            gvk: gvk.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
        };
        let version = object_artifact_version(obj);
        let stale: Vec<ApplyKey> = match self.state().readers.get(&key) {
            Some(readers) => readers
                .iter()
                .filter(|(_, seen)| **seen != version)
                .map(|(apply, _)| apply.clone())
                .collect(),
            None => return,
        };
        for (namespace, name) in stale {
            tracing::debug!(source = %key, apply = %format!("{namespace}/{name}"), "source changed");
            // The receiver lives as long as the controller; after shutdown nobody listens.
            let _ = self
                .inner
                .trigger
                .unbounded_send(ObjectRef::new(&name).within(&namespace));
        }
    }

    /// Applies reading `source` (for tests and debugging).
    pub fn readers(&self, source: &SourceKey) -> HashSet<ApplyKey> {
        self.state()
            .readers
            .get(source)
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default()
    }
}

fn remove_reader(
    readers: &mut HashMap<SourceKey, HashMap<ApplyKey, Option<String>>>,
    source: &SourceKey,
    apply: &ApplyKey,
) {
    if let Some(set) = readers.get_mut(source) {
        set.remove(apply);
        if set.is_empty() {
            readers.remove(source);
        }
    }
}
