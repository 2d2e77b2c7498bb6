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
use weir_api::{Artifact, SourceReference};

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

/// The `apiVersion` assumed for a `sourceRef` that names only a kind: weir's own producers.
/// Any other kind needs its `apiVersion` spelled out.
pub const DEFAULT_API_VERSIONS: &[(&str, &str)] = &[
    ("GitRepository", "source.weir.dev/v1alpha1"),
    ("Render", "render.weir.dev/v1alpha1"),
];

/// Why a reference cannot be followed. Each is a spec problem (the controllers report it as
/// Stalled): retrying cannot help until the spec or the controller's flags change.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// Another namespace while `--no-cross-namespace-refs` is set (Flux's `AccessDenied`).
    #[error(
        "cross-namespace references are not allowed (--no-cross-namespace-refs): {what} in namespace '{namespace}'"
    )]
    CrossNamespace {
        /// What refers (e.g. `sourceRef GitRepository 'app'`).
        what: String,
        /// The namespace it points into.
        namespace: String,
    },
    /// A kind weir does not know, without `apiVersion`.
    #[error("sourceRef.apiVersion is required for kind '{0}'")]
    MissingApiVersion(String),
    /// An `apiVersion` that is neither `<group>/<version>` nor `<version>`.
    #[error("sourceRef.apiVersion '{0}' is not <group>/<version> or <version>")]
    BadApiVersion(String),
}

impl ReferenceError {
    /// The condition reason: `AccessDenied` for a refused namespace (as Flux), `InvalidSpec`
    /// otherwise.
    pub fn reason(&self) -> &'static str {
        match self {
            ReferenceError::CrossNamespace { .. } => weir_api::conditions::reasons::ACCESS_DENIED,
            _ => weir_api::conditions::reasons::INVALID_SPEC,
        }
    }
}

/// The namespace a reference made from `own_namespace` points into; refused when it is another
/// namespace and cross-namespace references are not allowed. `what` names the reference in the
/// error.
pub fn referenced_namespace(
    own_namespace: &str,
    referenced: Option<&str>,
    what: &str,
    allow_cross_namespace: bool,
) -> Result<String, ReferenceError> {
    let namespace = referenced.unwrap_or(own_namespace).to_owned();
    if namespace != own_namespace && !allow_cross_namespace {
        return Err(ReferenceError::CrossNamespace {
            what: what.to_owned(),
            namespace,
        });
    }
    Ok(namespace)
}

/// Resolves a `sourceRef` made by a consumer in `namespace` to the source object it names,
/// whatever its kind.
pub fn resolve(
    namespace: &str,
    reference: &SourceReference,
    allow_cross_namespace: bool,
) -> Result<SourceKey, ReferenceError> {
    let namespace = referenced_namespace(
        namespace,
        reference.namespace.as_deref(),
        &format!("sourceRef {} '{}'", reference.kind, reference.name),
        allow_cross_namespace,
    )?;
    let api_version = match &reference.api_version {
        Some(v) => v.as_str(),
        None => DEFAULT_API_VERSIONS
            .iter()
            .find(|(kind, _)| *kind == reference.kind)
            .map(|(_, v)| *v)
            .ok_or_else(|| ReferenceError::MissingApiVersion(reference.kind.clone()))?,
    };
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    if version.is_empty()
        || version.contains('/')
        || (group.is_empty() && api_version.contains('/'))
    {
        return Err(ReferenceError::BadApiVersion(api_version.to_owned()));
    }
    Ok(SourceKey {
        gvk: GroupVersionKind::gvk(group, version, &reference.kind),
        namespace,
        name: reference.name.clone(),
    })
}

/// What a source holds now.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceState {
    /// The object does not exist.
    Missing,
    /// It exists without an artifact.
    NoArtifact,
    /// Its artifact.
    Ready(Artifact),
}

/// Why a source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The API call failed (transient: retry).
    #[error("reading {key}: {source}")]
    Api {
        /// The source, as `Kind 'namespace/name'`.
        key: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// `status.artifact` is there but does not decode (the producer is broken).
    #[error("{key} has a malformed status.artifact: {source}")]
    Malformed {
        /// The source, as `Kind 'namespace/name'`.
        key: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
}

impl ReadError {
    /// The condition reason: `SourceNotReady` when the API call failed (transient),
    /// `ArtifactFetchFailed` when the producer published a malformed artifact.
    pub fn reason(&self) -> &'static str {
        match self {
            ReadError::Api { .. } => weir_api::conditions::reasons::SOURCE_NOT_READY,
            ReadError::Malformed { .. } => weir_api::conditions::reasons::ARTIFACT_FETCH_FAILED,
        }
    }

    /// Whether a retry soon may help (an API failure), rather than a new artifact.
    pub fn is_transient(&self) -> bool {
        matches!(self, ReadError::Api { .. })
    }
}

/// Reads the source object and its `status.artifact`.
pub async fn read(
    client: &Client,
    resource: &ApiResource,
    key: &SourceKey,
) -> Result<SourceState, ReadError> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &key.namespace, resource);
    let obj = api
        .get_opt(&key.name)
        .await
        .map_err(|source| ReadError::Api {
            key: key.to_string(),
            source,
        })?;
    let Some(obj) = obj else {
        return Ok(SourceState::Missing);
    };
    match obj.data.get("status").and_then(|s| s.get("artifact")) {
        None | Some(serde_json::Value::Null) => Ok(SourceState::NoArtifact),
        Some(raw) => serde_json::from_value::<Artifact>(raw.clone())
            .map(SourceState::Ready)
            .map_err(|source| ReadError::Malformed {
                key: key.to_string(),
                source,
            }),
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn reference(api_version: Option<&str>, kind: &str, ns: Option<&str>) -> SourceReference {
        SourceReference {
            api_version: api_version.map(Into::into),
            kind: kind.into(),
            name: "app".into(),
            namespace: ns.map(Into::into),
        }
    }

    #[test]
    fn defaults_the_api_version_of_weir_kinds_only() {
        let key = resolve("ns", &reference(None, "Render", None), true).unwrap();
        assert_eq!(
            key.gvk,
            GroupVersionKind::gvk("render.weir.dev", "v1alpha1", "Render")
        );
        assert_eq!((key.namespace.as_str(), key.name.as_str()), ("ns", "app"));
        let git = resolve("ns", &reference(None, "GitRepository", None), true).unwrap();
        assert_eq!(
            git.gvk,
            GroupVersionKind::gvk("source.weir.dev", "v1alpha1", "GitRepository")
        );
        let other = resolve(
            "ns",
            &reference(Some("example.com/v1"), "Bucket", Some("other")),
            true,
        )
        .unwrap();
        assert_eq!(
            other.gvk,
            GroupVersionKind::gvk("example.com", "v1", "Bucket")
        );
        assert_eq!(other.namespace, "other");
        let core = resolve("ns", &reference(Some("v1"), "ConfigMap", None), true).unwrap();
        assert_eq!(core.gvk, GroupVersionKind::gvk("", "v1", "ConfigMap"));
        assert!(matches!(
            resolve("ns", &reference(None, "Bucket", None), true),
            Err(ReferenceError::MissingApiVersion(kind)) if kind == "Bucket"
        ));
        for bad in ["a/b/c", "/v1", "example.com/"] {
            let e = resolve("ns", &reference(Some(bad), "X", None), true).unwrap_err();
            assert!(matches!(e, ReferenceError::BadApiVersion(_)), "{bad}");
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn cross_namespace_refs_follow_the_flag() {
        let r = reference(None, "Render", Some("elsewhere"));
        assert!(resolve("ns", &r, true).is_ok());
        let denied = resolve("ns", &r, false).unwrap_err();
        assert_eq!(
            denied.to_string(),
            "cross-namespace references are not allowed (--no-cross-namespace-refs): \
             sourceRef Render 'app' in namespace 'elsewhere'"
        );
        // The same namespace spelled out is not a cross-namespace reference.
        assert!(resolve("ns", &reference(None, "Render", Some("ns")), false).is_ok());
    }
}
