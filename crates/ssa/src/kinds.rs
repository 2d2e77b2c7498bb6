//! The apiserver's kinds, discovered once and refreshed when a kind is missing.

use std::{sync::Arc, time::Instant};

use kube::{
    Client,
    discovery::{ApiResource, Discovery, Scope},
};
use tokio::sync::RwLock;

use crate::error::{Error, Result};

/// A resolved kind: how to address it and whether its objects live in namespaces.
#[derive(Clone, Debug)]
pub struct ResolvedKind {
    /// The API resource (group, version, kind, plural).
    pub resource: ApiResource,
    /// Whether objects of this kind are namespaced.
    pub namespaced: bool,
}

/// A shared cache of discovery. Cloning shares the cache, so one controller can hand the same
/// `Kinds` to every [`Engine`](crate::Engine) it builds. The engine refreshes it (two requests
/// with aggregated discovery) when a kind of a set is missing (once per apply) and after it
/// applied CRDs.
#[derive(Clone, Default)]
pub struct Kinds {
    inner: Arc<RwLock<Option<(Discovery, Instant)>>>,
}

impl std::fmt::Debug for Kinds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kinds").finish_non_exhaustive()
    }
}

impl Kinds {
    /// An empty cache; the first lookup runs discovery.
    pub fn new() -> Self {
        Kinds::default()
    }

    /// Runs discovery again (aggregated discovery, falling back to per-group discovery on
    /// apiservers without it).
    pub async fn refresh(&self, client: &Client) -> Result<()> {
        let discovery = match Discovery::new(client.clone()).run_aggregated().await {
            Ok(d) => d,
            Err(_) => Discovery::new(client.clone())
                .run()
                .await
                .map_err(Error::Discovery)?,
        };
        *self.inner.write().await = Some((discovery, Instant::now()));
        Ok(())
    }

    /// When the cache was last filled, if ever.
    pub async fn refreshed_at(&self) -> Option<Instant> {
        self.inner.read().await.as_ref().map(|(_, at)| *at)
    }

    /// Looks a group/version/kind up in the cache (no request).
    pub async fn lookup(&self, group: &str, version: &str, kind: &str) -> Option<ResolvedKind> {
        let guard = self.inner.read().await;
        let (discovery, _) = guard.as_ref()?;
        let group = discovery.get(group)?;
        group
            .versioned_resources(version)
            .into_iter()
            .find(|(r, _)| r.kind == kind)
            .map(|(resource, caps)| ResolvedKind {
                resource,
                namespaced: caps.scope == Scope::Namespaced,
            })
    }

    /// Looks a group/kind up at the version the apiserver prefers (no request); used for
    /// inventory entries whose recorded version is no longer served.
    pub async fn lookup_any_version(&self, group: &str, kind: &str) -> Option<ResolvedKind> {
        let guard = self.inner.read().await;
        let (discovery, _) = guard.as_ref()?;
        discovery
            .get(group)?
            .recommended_kind(kind)
            .map(|(resource, caps)| ResolvedKind {
                resource,
                namespaced: caps.scope == Scope::Namespaced,
            })
    }

    /// Makes sure discovery ran at least once.
    pub async fn ensure(&self, client: &Client) -> Result<()> {
        if self.inner.read().await.is_none() {
            self.refresh(client).await?;
        }
        Ok(())
    }
}
