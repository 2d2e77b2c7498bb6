//! Reading what a consumer reads: its source's `status.artifact`, downloaded and verified.

use std::time::Duration;

use kube::api::DynamicObject;
use serde_json::Value;
use weir_artifact::{FetchOptions, Fetcher};

use crate::{
    client::Cluster,
    error::{Error, Result},
    kinds::{self, WeirKind},
};

/// A source's artifact as its status names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceArtifact {
    /// `kind/name` of the source, for messages.
    pub source: String,
    /// Download URL.
    pub url: String,
    /// `sha256:<hex>` the bytes must match.
    pub digest: String,
    /// The source revision.
    pub revision: String,
}

/// The artifact of the source `consumer` (a Render or an Apply) reads.
pub async fn of_consumer(cluster: &Cluster, consumer: &DynamicObject) -> Result<SourceArtifact> {
    let name = consumer.metadata.name.clone().unwrap_or_default();
    let r = kinds::source_ref(consumer)
        .ok_or_else(|| Error::Failed(format!("{name} has no spec.sourceRef")))?;
    let kind = WeirKind::of_reference(&r.kind, r.api_version.as_deref()).ok_or_else(|| {
        Error::Failed(format!(
            "{name} reads a {} source, which weir cannot download (only gitrepository and render)",
            r.kind
        ))
    })?;
    let source = kind.get(&cluster.client, &r.namespace, &r.name).await?;
    let display = kind.display(&r.name);
    let field = |k: &str| {
        source
            .data
            .pointer(&format!("/status/artifact/{k}"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match (field("url"), field("digest")) {
        (Some(url), Some(digest)) => Ok(SourceArtifact {
            source: display,
            url,
            digest,
            revision: field("revision").unwrap_or_default(),
        }),
        _ => Err(Error::Failed(format!(
            "{display} in namespace {} has no artifact yet (is it Ready? see weir get {} {})",
            r.namespace, kind.plural, r.name
        ))),
    }
}

/// Downloads `artifact` and checks its digest.
pub async fn download(artifact: &SourceArtifact, timeout: Duration) -> Result<Vec<u8>> {
    let fetcher = Fetcher::new(FetchOptions {
        timeout,
        attempts: 2,
        ..FetchOptions::default()
    });
    fetcher
        .fetch(&artifact.url, &artifact.digest)
        .await
        .map_err(|e| {
            Error::Failed(format!(
                "downloading the artifact of {} from {}: {} — artifact servers are usually reachable only inside the cluster: port-forward the controller's storage service, or build a checkout with weir build <dir> (weir diff <dir> --apply <name>)",
                artifact.source,
                artifact.url,
                crate::error::chain(&e)
            ))
        })
}
