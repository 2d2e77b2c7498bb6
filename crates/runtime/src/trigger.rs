//! What wakes a controller for its own objects: a change of intent, not of status.
//!
//! kube's `Controller::new` reconciles on every watch event, including the controller's own
//! status writes, so every reconcile of a GitRepository was followed by another that asked the
//! Git server again. [`controller`] builds the Controller on a watch filtered by [`intent`]
//! (like Flux's generation-changed and reconcile-requested predicates): the spec (generation),
//! labels (sharding), annotations (`reconcile.weir.dev/requestedAt` and per-object policies),
//! finalizers and deletion. Periodic work keeps coming from each reconcile's requeue.

use std::{
    fmt::Debug,
    hash::{DefaultHasher, Hash, Hasher},
};

use kube::{
    Api, Resource,
    runtime::{Controller, PredicateConfig, WatchStreamExt, reflector, watcher},
};
use serde::de::DeserializeOwned;

/// A hash of what in `obj` asks for a reconcile; status changes leave it unchanged.
pub fn intent<K: Resource>(obj: &K) -> Option<u64> {
    let meta = obj.meta();
    let mut h = DefaultHasher::new();
    meta.generation.hash(&mut h);
    meta.labels.hash(&mut h);
    meta.annotations.hash(&mut h);
    meta.finalizers.hash(&mut h);
    meta.deletion_timestamp.as_ref().map(|t| t.0).hash(&mut h);
    Some(h.finish())
}

/// A Controller for `K` (objects matching `config`) that reconciles an object when it first
/// sees it and whenever its [`intent`] changes, never for a status-only change.
pub fn controller<K>(api: Api<K>, config: watcher::Config) -> Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api, config))
        .default_backoff()
        .applied_objects()
        .predicate_filter(intent::<K>, PredicateConfig::default());
    Controller::for_stream(stream, reader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use std::collections::BTreeMap;

    #[test]
    fn status_is_not_intent_but_spec_and_metadata_are() {
        let mut obj = ConfigMap::default();
        obj.metadata.generation = Some(1);
        let base = intent(&obj);
        // A ConfigMap has no status; its data stands for anything outside metadata.
        obj.data = Some(BTreeMap::from([("k".to_owned(), "v".to_owned())]));
        obj.metadata.resource_version = Some("42".into());
        obj.metadata.managed_fields = Some(Vec::new());
        assert_eq!(intent(&obj), base, "status and bookkeeping are not intent");

        let changes: [fn(&mut ConfigMap); 5] = [
            |o| o.metadata.generation = Some(2),
            |o| {
                o.metadata.annotations = Some(BTreeMap::from([(
                    "reconcile.weir.dev/requestedAt".to_owned(),
                    "now".to_owned(),
                )]))
            },
            |o| o.metadata.labels = Some(BTreeMap::from([("shard".to_owned(), "a".to_owned())])),
            |o| o.metadata.finalizers = Some(vec!["f".to_owned()]),
            |o| {
                o.metadata.deletion_timestamp =
                    Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                    ))
            },
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut changed = obj.clone();
            change(&mut changed);
            assert_ne!(intent(&changed), base, "change {i} is intent");
        }
    }
}
