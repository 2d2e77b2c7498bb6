//! Setting `reconcile.weir.dev/requestedAt` on the objects a Receiver lists, of any kind.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams},
    discovery::{self, Scope},
};
use weir_api::{Receiver, receiver::ReceiverResource, reconcile::request_patch};

/// The most objects one `name: "*"` entry patches; more are refused rather than patched in part
/// without notice.
pub const MAX_MATCHES: u32 = 500;
/// Resolved kinds kept; the cache is emptied when it grows past this.
const MAX_KINDS: usize = 256;

/// Resolves `apiVersion` + `kind` to the API resource (plural, scope) through discovery, once
/// per kind.
#[derive(Clone, Default)]
pub struct Kinds(Arc<Mutex<HashMap<KindKey, (ApiResource, Scope)>>>);

/// `(apiVersion, kind)`.
type KindKey = (String, String);

impl Kinds {
    async fn resolve(
        &self,
        client: &Client,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, Scope), String> {
        let key = (api_version.to_owned(), kind.to_owned());
        if let Some(found) = self.0.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(found);
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, capabilities) = discovery::pinned_kind(client, &gvk)
            .await
            .map_err(|e| format!("kind {kind} in {api_version} is not served: {e}"))?;
        let found = (resource, capabilities.scope);
        if let Ok(mut cache) = self.0.lock() {
            if cache.len() >= MAX_KINDS {
                cache.clear();
            }
            cache.insert(key, found.clone());
        }
        Ok(found)
    }
}

/// What a trigger did: how many objects were annotated, and one readable line per failure.
#[derive(Debug, Default)]
pub struct Triggered {
    /// Objects annotated.
    pub patched: usize,
    /// Failures, e.g. `GitRepository ns/name: not found`.
    pub failures: Vec<String>,
}

/// Sets the annotation to `value` on every object `receiver` lists. Resources in other
/// namespaces are refused when `no_cross_namespace_refs`.
pub async fn request_reconciles(
    client: &Client,
    kinds: &Kinds,
    receiver: &Receiver,
    value: &str,
    no_cross_namespace_refs: bool,
) -> Triggered {
    let own_namespace = receiver.metadata.namespace.clone().unwrap_or_default();
    let mut triggered = Triggered::default();
    for resource in &receiver.spec.resources {
        let namespace = resource.namespace.as_deref().unwrap_or(&own_namespace);
        let what = format!("{} {namespace}/{}", resource.kind, resource.name);
        if no_cross_namespace_refs && namespace != own_namespace {
            triggered
                .failures
                .push(format!("{what}: cross-namespace references are disabled"));
            continue;
        }
        match trigger_one(client, kinds, resource, namespace, value).await {
            Ok(n) => triggered.patched += n,
            Err(e) => triggered.failures.push(format!("{what}: {e}")),
        }
    }
    triggered
}

async fn trigger_one(
    client: &Client,
    kinds: &Kinds,
    resource: &ReceiverResource,
    namespace: &str,
    value: &str,
) -> Result<usize, String> {
    let api_version = resource
        .api_version_or_default()
        .ok_or("apiVersion is required for this kind")?;
    let (ar, scope) = kinds.resolve(client, api_version, &resource.kind).await?;
    if !matches!(scope, Scope::Namespaced) {
        return Err("only namespaced kinds can be triggered".into());
    }
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    let patch = Patch::Merge(request_patch(value));
    let params = PatchParams::default();
    if resource.name != "*" {
        api.patch_metadata(&resource.name, &params, &patch)
            .await
            .map_err(describe)?;
        return Ok(1);
    }
    let labels = resource
        .match_labels
        .as_ref()
        .filter(|l| !l.is_empty())
        .ok_or("name '*' needs matchLabels")?;
    let selector = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let list = api
        .list_metadata(&ListParams::default().labels(&selector).limit(MAX_MATCHES))
        .await
        .map_err(describe)?;
    if list
        .metadata
        .continue_
        .as_deref()
        .is_some_and(|c| !c.is_empty())
    {
        return Err(format!(
            "more than {MAX_MATCHES} objects match {selector}; refusing to trigger a part of them"
        ));
    }
    let mut patched = 0;
    for item in list.items {
        let Some(name) = item.metadata.name else {
            continue;
        };
        match api.patch_metadata(&name, &params, &patch).await {
            Ok(_) => patched += 1,
            // Deleted between the list and the patch: nothing to reconcile.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(format!("{name}: {}", describe(e))),
        }
    }
    Ok(patched)
}

fn describe(e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 404 => "not found".into(),
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}
