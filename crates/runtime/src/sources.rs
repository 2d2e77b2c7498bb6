//! Sources of any kind, shared by the controllers that consume artifacts (render, apply).
//!
//! A consumer reads its `sourceRef` as a dynamic object: whatever the kind, only
//! `status.artifact` matters (GUIDE §4). [`SourceWatches`] keeps the index of which consumer
//! reads which source and the artifact (revision and digest) it last saw
//! ([`SourceWatches::track`], [`SourceWatches::saw`]). The first consumer to name a kind starts
//! one cluster-wide watch of that kind (discovered at run time, so any producer kind works). When
//! a watched source shows an artifact that a consumer reading it has not seen, that consumer is
//! sent to the controller's trigger stream; events whose artifact the consumer already saw
//! (conditions, progress) cause nothing. Deleted consumers are forgotten through
//! [`SourceWatches::untrack`]; a watch, once started, runs until shutdown (kinds are few).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
};

use futures::{StreamExt, channel::mpsc::UnboundedSender};
use kube::{
    Api, Client, Resource,
    api::{ApiResource, DynamicObject, GroupVersionKind},
    discovery,
    runtime::{WatchStreamExt, reflector::ObjectRef, watcher},
};
use tokio::{sync::watch, task::JoinHandle};
use weir_api::Artifact;

/// A consumer object, by namespace and name.
pub type ConsumerKey = (String, String);

/// Identifies one source object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SourceKey {
    /// Group, version and kind.
    pub gvk: GroupVersionKind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl std::fmt::Display for SourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} '{}/{}'", self.gvk.kind, self.namespace, self.name)
    }
}

/// What identifies a published artifact for change detection: revision and digest. A new
/// revision with the same content is news too (a Render's `revision` follows its source).
pub fn artifact_version(artifact: &Artifact) -> String {
    version(&artifact.revision, &artifact.digest)
}

/// [`artifact_version`] of an object's `status.artifact`, read without a full decode.
pub fn object_artifact_version(obj: &DynamicObject) -> Option<String> {
    let artifact = obj.data.get("status")?.get("artifact")?;
    let revision = artifact.get("revision").and_then(|r| r.as_str());
    Some(version(
        revision.unwrap_or_default(),
        artifact.get("digest")?.as_str()?,
    ))
}

fn version(revision: &str, digest: &str) -> String {
    format!("{revision}\n{digest}")
}

/// The source index and the watches behind it, for consumers of kind `K`. Cheap to clone.
pub struct SourceWatches<K: Resource<DynamicType = ()>> {
    inner: Arc<Inner<K>>,
}

impl<K: Resource<DynamicType = ()>> Clone for SourceWatches<K> {
    fn clone(&self) -> Self {
        SourceWatches {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<K: Resource<DynamicType = ()>> {
    client: Client,
    trigger: UnboundedSender<ObjectRef<K>>,
    stop: watch::Receiver<bool>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Discovered API resources by kind.
    resources: HashMap<GroupVersionKind, ApiResource>,
    /// Running watches by kind.
    watches: HashMap<GroupVersionKind, JoinHandle<()>>,
    /// Which consumers read a source, with the source artifact version each last saw.
    readers: HashMap<SourceKey, HashMap<ConsumerKey, Option<String>>>,
    /// Which source each consumer reads.
    sources: HashMap<ConsumerKey, SourceKey>,
}

impl<K: Resource<DynamicType = ()> + 'static> SourceWatches<K> {
    /// An empty index whose watches send triggered consumers to `trigger` and end when `stop`
    /// turns true.
    pub fn new(
        client: Client,
        trigger: UnboundedSender<ObjectRef<K>>,
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

    /// Records that `consumer` reads `source` and makes sure the source's kind is watched. Call it
    /// before reading the source, then [`SourceWatches::saw`] with what was read: a change that
    /// lands in between still triggers the consumer.
    pub fn track(&self, consumer: &ConsumerKey, source: &SourceKey, resource: &ApiResource) {
        let mut state = self.state();
        if let Some(previous) = state.sources.insert(consumer.clone(), source.clone())
            && previous != *source
        {
            remove_reader(&mut state.readers, &previous, consumer);
        }
        state
            .readers
            .entry(source.clone())
            .or_default()
            .entry(consumer.clone())
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

    /// Records the source artifact version (`source::artifact_version`) `consumer` last read
    /// (`None`: no artifact).
    pub fn saw(&self, consumer: &ConsumerKey, source: &SourceKey, version: Option<String>) {
        if let Some(seen) = self
            .state()
            .readers
            .get_mut(source)
            .and_then(|readers| readers.get_mut(consumer))
        {
            *seen = version;
        }
    }

    /// Forgets `consumer` (it was deleted).
    pub fn untrack(&self, consumer: &ConsumerKey) {
        let mut state = self.state();
        if let Some(source) = state.sources.remove(consumer) {
            remove_reader(&mut state.readers, &source, consumer);
        }
    }

    /// Stops every watch.
    pub fn shutdown(&self) {
        for (_, task) in self.state().watches.drain() {
            task.abort();
        }
    }

    /// Number of consumers tracked (for tests and debugging).
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

    /// Sends every consumer that reads `obj` and has not seen its current artifact.
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
        let stale: Vec<ConsumerKey> = match self.state().readers.get(&key) {
            Some(readers) => readers
                .iter()
                .filter(|(_, seen)| **seen != version)
                .map(|(consumer, _)| consumer.clone())
                .collect(),
            None => return,
        };
        for consumer in stale {
            tracing::debug!(source = %key, consumer = %format!("{}/{}", consumer.0, consumer.1), "source changed");
            self.trigger(&consumer);
        }
    }

    /// Sends `consumer` to the controller's trigger stream.
    pub fn trigger(&self, consumer: &ConsumerKey) {
        // The receiver lives as long as the controller; after shutdown nobody listens.
        let _ = self
            .inner
            .trigger
            .unbounded_send(ObjectRef::new(&consumer.1).within(&consumer.0));
    }

    /// consumers reading `source` (for tests and debugging).
    pub fn readers(&self, source: &SourceKey) -> HashSet<ConsumerKey> {
        self.state()
            .readers
            .get(source)
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default()
    }
}

fn remove_reader(
    readers: &mut HashMap<SourceKey, HashMap<ConsumerKey, Option<String>>>,
    source: &SourceKey,
    consumer: &ConsumerKey,
) {
    if let Some(set) = readers.get_mut(source) {
        set.remove(consumer);
        if set.is_empty() {
            readers.remove(source);
        }
    }
}
