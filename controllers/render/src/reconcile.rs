//! The Render reconciler.
//!
//! # Flow
//! 1. Ensure the finalizer (kube-runtime's `finalizer`); on deletion remove the Render's stored
//!    artifacts, forget it in the source index and let it go.
//! 2. Suspended: do nothing until the spec changes; the last artifact stays served.
//! 3. Resolve `spec.sourceRef` (any kind; cross-namespace only when allowed), register the
//!    Render in the source index (which watches the source's kind), and read the source's
//!    `status.artifact`. No artifact yet is *waiting*: Ready=False/SourceNotReady, not Stalled.
//! 4. The same inputs (source artifact, generation, `requestedAt`) rendered successfully less than
//!    an interval ago: done, nothing is rendered again ([`crate::recent`]). Otherwise, when the
//!    source revision or the spec generation is new, show Reconciling=True.
//! 5. Load substitution variables, download the source artifact (size limit, digest check),
//!    render it ([`crate::render`]) under `spec.timeout` (default: the interval).
//! 6. Store the result only when its digest differs from the current artifact's (or its file is
//!    missing from storage): an unchanged output publishes nothing new, so consumers do no work;
//!    `revision` still follows the source. Before publishing, re-read `spec.suspend` from the
//!    apiserver: a suspension accepted while the render ran wins.
//! 7. Always write one summarised status (skipped when only timestamps changed).
//!
//! # Guarantees
//! A failure never removes `status.artifact` nor its file: the last good manifests stay served.
//! Bad input (malformed YAML, missing files, duplicate ids, path escapes, links or oversize
//! content in the artifact, digest mismatches, cycles, missing variables) becomes conditions
//! and a Warning event, never a panic or a crash. Renders run in parallel (up to
//! `--concurrent`), sharing nothing but the source index's short-lived lock.
//!
//! # Caveats
//! A render is CPU work on a blocking thread; when it overruns `spec.timeout` the reconcile
//! reports `Timeout` at once, but the thread finishes its build before it is released.

use std::{sync::Arc, time::Duration};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{
    Api, Resource, ResourceExt,
    runtime::{
        controller::Action,
        events::{EventType, Recorder},
        finalizer::{Event as FinalizerEvent, finalizer},
    },
};
use weir_api::{
    Artifact, Render, RenderStatus,
    conditions::{self, reasons, types},
    reconcile::{requested_at, unhandled_request},
};
use weir_artifact::{ArtifactKey, FetchError, Fetcher, Storage, UntarLimits};
use weir_runtime::{events, metrics::Metrics, requeue::jittered, status::apply_status};

use crate::{
    error::{Error, Failure},
    overlay::overlay,
    recent::{RecentRenders, RenderedFrom, RenderedTo},
    render::{RenderInputs, Rendered, render},
    source::{self, SourceState},
    variables,
    watch::{RenderKey, SourceWatches},
};

/// The finalizer that removes stored artifacts.
pub const FINALIZER: &str = "render.weir.dev/finalizer";
/// Field manager for status writes.
pub const FIELD_MANAGER: &str = "weir-render-controller";
const KIND: &str = "Render";
/// Retry delay after an API error that aborted a reconcile.
const RETRY: Duration = Duration::from_secs(30);

/// What a reconcile needs.
pub struct Context {
    /// Kubernetes client.
    pub client: kube::Client,
    /// Artifact storage.
    pub storage: Storage,
    /// `http://host[:port]` consumers download artifacts from.
    pub base_url: String,
    /// Metrics.
    pub metrics: Metrics,
    /// Event recorder.
    pub recorder: Recorder,
    /// Downloads source artifacts (size limit, retries, digest check).
    pub fetcher: Fetcher,
    /// Bounds on what a source artifact may unpack to.
    pub untar_limits: UntarLimits,
    /// The source index and its watches.
    pub sources: SourceWatches,
    /// Whether a `sourceRef` may name another namespace.
    pub allow_cross_namespace: bool,
    /// What each Render was last rendered from.
    pub recent: RecentRenders,
}

/// Reconciles one Render.
pub async fn reconcile(obj: Arc<Render>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let namespace = obj.namespace().ok_or(Error::Unnamed)?;
    let api: Api<Render> = Api::namespaced(ctx.client.clone(), &namespace);
    // The outcome category for the metric: a failure written into conditions still counts
    // under its reason, not as "success".
    let outcome = std::sync::OnceLock::new();
    let result = finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            FinalizerEvent::Apply(obj) => apply(&obj, &ctx, &api, &outcome).await,
            FinalizerEvent::Cleanup(obj) => cleanup(&obj, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    });
    let category = match &result {
        Ok(_) => outcome.get().copied().unwrap_or("success"),
        Err(e) => e.category(),
    };
    ctx.metrics.reconciled(KIND, category, started.elapsed());
    result
}

/// Requeue after an error that aborted the reconcile (API failures).
pub fn error_policy(_obj: Arc<Render>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "reconcile failed");
    Action::requeue(jittered(RETRY, 0.2))
}

fn key(obj: &Render) -> Result<ArtifactKey, Error> {
    ArtifactKey::new(
        KIND,
        obj.namespace().as_deref().unwrap_or_default(),
        &obj.name_any(),
    )
    .map_err(|_| Error::Unnamed)
}

fn render_key(obj: &Render) -> RenderKey {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

async fn cleanup(obj: &Render, ctx: &Context) -> Result<Action, Error> {
    let key = key(obj)?;
    if let Err(e) = ctx.storage.remove_all(&key) {
        // Keep the finalizer and retry: leaving files behind would leak storage.
        return Err(Error::Finalizer(format!("removing stored artifacts: {e}")));
    }
    ctx.sources.untrack(&render_key(obj));
    ctx.recent.forget(&render_key(obj));
    ctx.metrics.ready_status(KIND, &key.dir(), None);
    Ok(Action::await_change())
}

async fn apply(
    obj: &Render,
    ctx: &Context,
    api: &Api<Render>,
    outcome: &std::sync::OnceLock<&'static str>,
) -> Result<Action, Error> {
    if obj.spec.suspend {
        let _ = outcome.set(reasons::SUSPENDED);
        return Ok(Action::await_change());
    }
    let key = key(obj)?;
    let old = obj.status.clone();
    let mut status = old.clone().unwrap_or_default();
    let generation = obj.metadata.generation;
    let interval = obj
        .spec
        .interval
        .to_std()
        .unwrap_or(Duration::from_secs(60))
        .max(Duration::from_secs(1));
    let now = || Time(Timestamp::now());

    // What the apiserver holds now: a progress write during `sync` replaces `old`.
    let mut written = old.clone();
    let outcome_of_sync = match obj.spec.timeout.as_ref().map(|t| t.to_std()) {
        Some(Err(e)) => Err(Failure::stalled(
            reasons::INVALID_SPEC,
            format!("spec.timeout: {e}"),
        )),
        timeout => {
            let timeout = match timeout {
                Some(Ok(t)) => t,
                _ => interval,
            };
            let work = sync(obj, ctx, api, &key, &mut status, &mut written, interval);
            match tokio::time::timeout(timeout, work).await {
                Ok(result) => result,
                Err(_) => Err(Failure::transient(
                    reasons::TIMEOUT,
                    format!("render did not finish within {}s", timeout.as_secs()),
                )),
            }
        }
    };
    if let Ok(Synced::Suspended) = outcome_of_sync {
        // Take back the progress this reconcile showed; everything else stays as it was.
        let untouched = old.clone().unwrap_or_default();
        apply_status(api, obj, FIELD_MANAGER, written.as_ref(), &untouched).await?;
        let _ = outcome.set(reasons::SUSPENDED);
        return Ok(Action::await_change());
    }
    if let Some(request) =
        unhandled_request(&obj.metadata, status.last_handled_reconcile_at.as_deref())
    {
        status.last_handled_reconcile_at = Some(request.to_owned());
    }
    status.observed_generation = generation;
    let previous_ready = conditions::get(&status.conditions, types::READY).cloned();
    let requeue = match outcome_of_sync {
        Ok(synced) => {
            let (artifact, objects) = match synced {
                Synced::New(artifact, objects) => {
                    let note = format!(
                        "rendered {objects} object{} from revision '{}'",
                        if objects == 1 { "" } else { "s" },
                        artifact.revision
                    );
                    publish(ctx, obj, EventType::Normal, "NewArtifact", &note).await;
                    (artifact, objects)
                }
                Synced::Unchanged(artifact, objects) => (artifact, objects),
                // Handled above.
                Synced::Suspended => return Ok(Action::await_change()),
            };
            let message = format!(
                "rendered revision '{}' ({objects} object{})",
                artifact.revision,
                if objects == 1 { "" } else { "s" }
            );
            status.artifact = Some(artifact);
            status.object_count = i64::try_from(objects).ok();
            conditions::mark_ready(
                &mut status.conditions,
                true,
                false,
                reasons::SUCCEEDED,
                &message,
                generation,
                now(),
            );
            jittered(interval, 0.05)
        }
        Err(failure) => {
            let _ = outcome.set(failure.reason);
            conditions::mark_ready(
                &mut status.conditions,
                false,
                failure.is_stalled(),
                failure.reason,
                &failure.message,
                generation,
                now(),
            );
            let changed = previous_ready
                .is_none_or(|c| c.reason != failure.reason || c.message != failure.message);
            if changed {
                let type_ = if failure.reason == reasons::SOURCE_NOT_READY {
                    EventType::Normal
                } else {
                    EventType::Warning
                };
                publish(ctx, obj, type_, failure.reason, &failure.message).await;
            }
            jittered(failure.requeue_after(interval), 0.2)
        }
    };
    apply_status(api, obj, FIELD_MANAGER, written.as_ref(), &status).await?;
    let ready = conditions::get(&status.conditions, types::READY).map(|c| c.status.clone());
    ctx.metrics.ready_status(KIND, &key.dir(), ready.as_deref());
    Ok(Action::requeue(requeue))
}

/// What [`sync`] produced: the artifact to publish and its object count.
enum Synced {
    /// A new artifact was stored.
    New(Artifact, usize),
    /// The output equals the stored artifact (possibly for a new source revision).
    Unchanged(Artifact, usize),
    /// The Render was suspended while it rendered: nothing was published.
    Suspended,
}

/// Reads the source, renders it and brings storage up to date. Records the attempted source
/// revision in `status.last_attempted_revision`.
async fn sync(
    obj: &Render,
    ctx: &Context,
    api: &Api<Render>,
    key: &ArtifactKey,
    status: &mut RenderStatus,
    written: &mut Option<RenderStatus>,
    interval: Duration,
) -> Result<Synced, Failure> {
    let spec = &obj.spec;
    let this = render_key(obj);
    let source_key = source::resolve(
        &this.0,
        &this.1,
        &spec.source_ref,
        ctx.allow_cross_namespace,
    )?;
    let resource = ctx.sources.resource(&source_key.gvk).await.map_err(|e| {
        let message = format!(
            "source kind {}.{} is not served by the cluster: {e}",
            source_key.gvk.kind, source_key.gvk.group
        );
        match &e {
            kube::Error::Api(s) if s.code == 404 => {
                Failure::waiting(reasons::SOURCE_NOT_READY, message)
            }
            _ => Failure::transient(reasons::SOURCE_NOT_READY, message),
        }
    })?;
    ctx.sources.track(&this, &source_key, &resource);
    let state = source::read(&ctx.client, &resource, &source_key).await?;
    let artifact = match state {
        SourceState::Missing => {
            ctx.sources.saw(&this, &source_key, None);
            return Err(Failure::waiting(
                reasons::SOURCE_NOT_READY,
                format!("{source_key} not found"),
            ));
        }
        SourceState::NoArtifact => {
            ctx.sources.saw(&this, &source_key, None);
            return Err(Failure::waiting(
                reasons::SOURCE_NOT_READY,
                format!("{source_key} has no artifact yet"),
            ));
        }
        SourceState::Ready(artifact) => artifact,
    };
    ctx.sources.saw(
        &this,
        &source_key,
        Some(source::artifact_version(&artifact)),
    );
    status.last_attempted_revision = Some(artifact.revision.clone());

    let storage_failure = |e: weir_artifact::Error| {
        Failure::transient(reasons::STORAGE_OPERATION_FAILED, e.to_string())
    };
    // The URL is derived like everything else, never trusted from the stored status (a changed
    // --storage-adv-addr must converge); the revision follows the source.
    let republish = |current: &Artifact| -> Result<Artifact, Failure> {
        let path = key.file(&current.digest).map_err(storage_failure)?;
        Ok(Artifact {
            url: format!("{}/{path}", ctx.base_url.trim_end_matches('/')),
            revision: artifact.revision.clone(),
            ..current.clone()
        })
    };
    let from = RenderedFrom {
        source: source::artifact_version(&artifact),
        generation: obj.metadata.generation,
        requested_at: requested_at(&obj.metadata).map(str::to_owned),
    };
    if let Some(to) = ctx.recent.fresh(&this, &from, interval) {
        let current = status
            .artifact
            .as_ref()
            .filter(|a| a.digest == to.digest && ctx.storage.contains(key, &a.digest));
        if let Some(current) = current {
            return Ok(Synced::Unchanged(republish(current)?, to.objects));
        }
    }
    // Until this render succeeds, the last one says nothing about the current inputs.
    ctx.recent.forget(&this);

    let current = status.artifact.as_ref();
    let new_work = current.is_none_or(|a| a.revision != artifact.revision)
        || status.observed_generation != obj.metadata.generation;
    if new_work {
        // Show the work (kstatus Reconciling, Ready Unknown) before the slow part.
        let mut progress = status.clone();
        conditions::mark_reconciling(
            &mut progress.conditions,
            reasons::PROGRESSING,
            &format!("rendering revision '{}'", artifact.revision),
            obj.metadata.generation,
            Time(Timestamp::now()),
        );
        match apply_status(api, obj, FIELD_MANAGER, written.as_ref(), &progress).await {
            Ok(_) => *written = Some(progress),
            Err(e) => tracing::warn!(object = %key.dir(), error = %e, "writing progress failed"),
        }
    }

    let vars = variables::load(&ctx.client, &this.0, spec).await?;
    let bytes = fetch(ctx, &artifact).await?;
    let inputs = RenderInputs {
        path: spec.path.clone(),
        overlay: overlay(spec),
        vars,
        untar_limits: ctx.untar_limits.clone(),
    };
    let Rendered { packed, objects } = tokio::task::spawn_blocking(move || render(&bytes, &inputs))
        .await
        .map_err(|e| {
            Failure::transient(reasons::BUILD_FAILED, format!("render task failed: {e}"))
        })??;

    let to = RenderedTo {
        digest: packed.digest.clone(),
        objects,
    };
    let unchanged = status
        .artifact
        .as_ref()
        .filter(|a| a.digest == packed.digest && ctx.storage.contains(key, &a.digest));
    // The reconcile may have started from a cached object older than a `suspend: true` the
    // apiserver has already accepted: ask before publishing anything (rare, so cheap), so that
    // no new artifact or revision appears once a suspension is acknowledged.
    let publishes = unchanged.is_none_or(|current| current.revision != artifact.revision);
    // The same fresh read also catches a cache that has not yet seen our own last publication of
    // this very content: re-publishing it would only move `lastUpdateTime` and repeat the event.
    let fresh_current = if publishes {
        match fresh_state(api, &this.1).await {
            Fresh::Suspended => return Ok(Synced::Suspended),
            Fresh::Status(current) => current.filter(|a| {
                a.digest == packed.digest
                    && a.revision == artifact.revision
                    && ctx.storage.contains(key, &a.digest)
            }),
            Fresh::Unknown => None,
        }
    } else {
        None
    };
    if let Some(current) = fresh_current.as_ref().or(unchanged) {
        // Nothing new to publish.
        let republished = republish(current)?;
        ctx.recent.record(&this, from, to);
        return Ok(Synced::Unchanged(republished, objects));
    }
    let stored = ctx.storage.store(key, &packed).map_err(storage_failure)?;
    if let Err(e) = ctx.storage.collect_garbage(key, &stored.digest) {
        tracing::warn!(object = %key.dir(), error = %e, "artifact garbage collection failed");
    }
    let new = Artifact {
        url: Storage::url(&ctx.base_url, &stored),
        revision: artifact.revision,
        digest: stored.digest,
        size: i64::try_from(stored.size).ok(),
        last_update_time: Time(Timestamp::now()),
        metadata: None,
    };
    ctx.recent.record(&this, from, to);
    Ok(Synced::New(new, objects))
}

/// What the apiserver (not the cache) says about a Render before anything is published.
enum Fresh {
    /// Suspended, or gone.
    Suspended,
    /// Not suspended; its current artifact, if any.
    Status(Option<Artifact>),
    /// The read failed: it says nothing, so it does not stop the publication.
    Unknown,
}

async fn fresh_state(api: &Api<Render>, name: &str) -> Fresh {
    match api.get_opt(name).await {
        Ok(Some(fresh)) if fresh.spec.suspend => Fresh::Suspended,
        Ok(Some(fresh)) => Fresh::Status(fresh.status.and_then(|s| s.artifact)),
        Ok(None) => Fresh::Suspended,
        Err(_) => Fresh::Unknown,
    }
}

/// Downloads and verifies the source artifact. A 404 means the producer has not served it yet:
/// waiting, not failed.
async fn fetch(ctx: &Context, artifact: &Artifact) -> Result<Vec<u8>, Failure> {
    ctx.fetcher
        .fetch(&artifact.url, &artifact.digest)
        .await
        .map_err(|e| match e {
            FetchError::NotFound { .. } => {
                Failure::waiting(reasons::SOURCE_NOT_READY, e.to_string())
            }
            e if e.is_transient() => {
                Failure::transient(reasons::ARTIFACT_FETCH_FAILED, e.to_string())
            }
            e => Failure::persistent(reasons::ARTIFACT_FETCH_FAILED, e.to_string()),
        })
}

async fn publish(ctx: &Context, obj: &Render, type_: EventType, reason: &str, note: &str) {
    let reference = obj.object_ref(&());
    events::publish(&ctx.recorder, &reference, type_, reason, "Reconcile", note).await;
}
