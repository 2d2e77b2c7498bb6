//! The Apply reconciler.
//!
//! # Flow
//! 1. Ensure the finalizer (kube-runtime's `finalizer`). On deletion, with `deletionPolicy:
//!    Delete` (the default) delete the inventory's objects that still carry this Apply's owner
//!    labels, in reverse apply order (Namespaces and CRDs last), as the Apply's account; with
//!    `Orphan` leave them. Then the finalizer goes.
//! 2. Suspended: do nothing until the spec changes; the applied objects stay as they are.
//! 3. `dependsOn`: every named Apply must be Ready at its latest revision
//!    ([`status::dependency_not_ready`]); otherwise Ready=False/DependencyNotReady (waiting), and
//!    the dependency triggers this Apply when it becomes Ready.
//! 4. Resolve `spec.sourceRef` (any kind; cross-namespace only when allowed), register the Apply
//!    with the source watches and read `status.artifact`. Missing source, no artifact or a 404 on
//!    download is *waiting*: Ready=False/SourceNotReady, not Stalled.
//! 5. The same inputs (artifact, generation, `requestedAt`) applied successfully less than an
//!    interval ago: skip to the health step ([`crate::recent`]). Otherwise show Reconciling=True
//!    for a new revision or generation, download the artifact (size limit, digest check), unpack
//!    it safely and read the YAML below `spec.path` ([`crate::manifests`]).
//! 6. Apply with [`weir_ssa::Engine`] as the Apply's ServiceAccount ([`crate::impersonation`]),
//!    `targetNamespace` as the default namespace, under `spec.timeout`. Then, with `prune`,
//!    delete what left the inventory.
//! 7. Health: every applied object when `wait`, else `healthChecks`. Never waits in the worker:
//!    while something is in progress the status says Reconciling/Healthy=Unknown and the Apply is
//!    requeued in a few seconds, until `spec.timeout` has passed since the apply
//!    (HealthCheckFailed).
//! 8. Always write one summarised status (skipped when only timestamps changed), an Event when
//!    objects were written or pruned or the state changed, and metrics.
//!
//! # Guarantees
//! Nothing is pruned unless the artifact was fetched, read and applied successfully. A failed
//! apply keeps the previous inventory, `lastAppliedRevision` and `lastAppliedDigest`; the engine
//! validates the whole set before writing, so bad manifests change nothing in the cluster. A
//! failed prune keeps the objects it could not delete in the inventory, so a later prune retries.
//!
//! A write failing after validation (a race with another writer, an admission refusal the
//! dry-run did not see) can leave the set partly applied: the engine reports what it reached
//! ([`weir_ssa::Error::Partial`]) and those objects join the inventory — old entries stay, nothing
//! is pruned — while Ready=False carries the underlying error's reason. The next successful apply
//! completes the set and prunes what left it.
//!
//! # Caveats
//! An apply cut off by `spec.timeout` reports nothing it wrote; those objects stay labelled, and
//! the next apply that completes records them (they are pruned only once recorded).

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
    Apply, ApplyStatus, Artifact,
    apply::DeletionPolicy,
    conditions::{self, ConditionStatus, reasons, types},
    inventory::ResourceInventory,
    reconcile::{requested_at, unhandled_request},
};
use weir_artifact::{FetchError, Fetcher, UntarLimits};
use weir_runtime::{events, metrics::Metrics, requeue::jittered, status::apply_status};
use weir_ssa::{ApplyOptions, Engine, Kinds, Owner};

use crate::{
    error::{Error, Failure},
    impersonation::Clients,
    manifests,
    recent::{Applied, AppliedFrom, RecentApplies},
    source::{self, SourceState},
    status::{self, Health},
    watch::{ApplyKey, SourceWatches},
};

/// The finalizer that deletes (or orphans) applied objects.
pub const FINALIZER: &str = "apply.weir.dev/finalizer";
/// Field manager for status writes (objects are written as [`weir_ssa::FIELD_MANAGER`]).
pub const FIELD_MANAGER: &str = "weir-apply-controller";
const KIND: &str = "Apply";
/// Retry delay after an API error that aborted a reconcile.
const RETRY: Duration = Duration::from_secs(30);
/// How soon health is checked again while objects are still converging.
pub const HEALTH_POLL: Duration = Duration::from_secs(2);

/// What a reconcile needs.
pub struct Context {
    /// The controller's own client and the impersonating ones.
    pub clients: Clients,
    /// Metrics.
    pub metrics: Metrics,
    /// Event recorder.
    pub recorder: Recorder,
    /// Downloads artifacts (size limit, retries, digest check).
    pub fetcher: Fetcher,
    /// Bounds on what an artifact may unpack to.
    pub untar_limits: UntarLimits,
    /// The source index and its watches, and the dependency index.
    pub sources: SourceWatches,
    /// Whether a `sourceRef` or `dependsOn` may name another namespace.
    pub allow_cross_namespace: bool,
    /// Discovery, shared by every engine.
    pub kinds: Kinds,
    /// What each Apply last applied.
    pub recent: RecentApplies,
}

/// Reconciles one Apply.
pub async fn reconcile(obj: Arc<Apply>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let namespace = obj.namespace().ok_or(Error::Unnamed)?;
    let api: Api<Apply> = Api::namespaced(ctx.clients.own(), &namespace);
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
pub fn error_policy(_obj: Arc<Apply>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "reconcile failed");
    Action::requeue(jittered(RETRY, 0.2))
}

fn apply_key(obj: &Apply) -> ApplyKey {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

fn engine(ctx: &Context, obj: &Apply) -> Result<Engine, Error> {
    let (namespace, name) = apply_key(obj);
    let client = ctx
        .clients
        .for_apply(&namespace, obj.spec.service_account_name.as_deref())?;
    Ok(Engine::new(client, Owner::new(namespace, name)).with_kinds(ctx.kinds.clone()))
}

async fn cleanup(obj: &Apply, ctx: &Context) -> Result<Action, Error> {
    let key = apply_key(obj);
    let inventory = obj
        .status
        .as_ref()
        .and_then(|s| s.inventory.clone())
        .unwrap_or_default();
    let policy = obj.spec.deletion_policy.unwrap_or_default();
    if policy == DeletionPolicy::Delete && !inventory.entries.is_empty() {
        let engine = engine(ctx, obj)?;
        // Keep the finalizer and retry on failure: leaving objects behind silently would break
        // the policy's promise.
        let deleted = engine
            .prune(&inventory, &ResourceInventory::default())
            .await
            .map_err(Error::Cleanup)?;
        if deleted.has_writes() {
            publish(
                ctx,
                obj,
                EventType::Normal,
                "Deleted",
                &format!("Apply deleted: {}", deleted.summary()),
            )
            .await;
        }
    }
    ctx.sources.untrack(&key);
    ctx.recent.forget(&key);
    ctx.metrics
        .ready_status(KIND, &format!("{}/{}", key.0, key.1), None);
    Ok(Action::await_change())
}

/// The timings of one Apply, from its spec.
struct Timing {
    interval: Duration,
    retry: Duration,
    timeout: Duration,
}

fn timing(obj: &Apply) -> Result<Timing, Failure> {
    let parse = |field: &str, d: &weir_api::GoDuration| {
        d.to_std()
            .map_err(|e| Failure::stalled(reasons::INVALID_SPEC, format!("spec.{field}: {e}")))
    };
    let interval = parse("interval", &obj.spec.interval)?.max(Duration::from_secs(1));
    let retry = match &obj.spec.retry_interval {
        Some(d) => parse("retryInterval", d)?.max(Duration::from_secs(1)),
        None => interval,
    };
    let timeout = match &obj.spec.timeout {
        Some(d) => parse("timeout", d)?,
        None => interval,
    };
    Ok(Timing {
        interval,
        retry,
        timeout,
    })
}

/// How far a reconcile got.
enum Synced {
    /// Applied (now or within the interval) and healthy, or no health checks.
    Ready {
        /// The Ready message.
        message: String,
        /// Whether health checks ran (and the Healthy condition applies).
        checked: bool,
        /// Time left until the next drift correction.
        next: Duration,
    },
    /// Applied; health checks still in progress.
    Progressing(String),
}

/// What this attempt worked on, for the history.
#[derive(Default)]
struct Attempt {
    artifact: Option<Artifact>,
}

async fn apply(
    obj: &Apply,
    ctx: &Context,
    api: &Api<Apply>,
    outcome: &std::sync::OnceLock<&'static str>,
) -> Result<Action, Error> {
    if obj.spec.suspend {
        let _ = outcome.set(reasons::SUSPENDED);
        return Ok(Action::await_change());
    }
    let key = apply_key(obj);
    let metric_key = format!("{}/{}", key.0, key.1);
    let old = obj.status.clone();
    let mut status = old.clone().unwrap_or_default();
    let generation = obj.metadata.generation;
    let now = || Time(Timestamp::now());
    let previous_ready = conditions::get(&status.conditions, types::READY).cloned();

    // What the apiserver holds now: a progress write during `sync` replaces `old`.
    let mut written = old.clone();
    let mut attempt = Attempt::default();
    let timing = timing(obj);
    let result = match &timing {
        Ok(timing) => {
            sync(
                obj,
                ctx,
                api,
                timing,
                &mut status,
                &mut written,
                &mut attempt,
            )
            .await
        }
        Err(failure) => Err(failure.clone()),
    };
    // An unparsable spec is Stalled: a spec change triggers the next reconcile anyway.
    let retry = timing
        .as_ref()
        .map(|t| t.retry)
        .unwrap_or(Duration::from_secs(600));

    if let Some(request) =
        unhandled_request(&obj.metadata, status.last_handled_reconcile_at.as_deref())
    {
        status.last_handled_reconcile_at = Some(request.to_owned());
    }
    status.observed_generation = generation;
    let requeue = match result {
        Ok(Synced::Ready {
            message,
            checked,
            next,
        }) => {
            conditions::mark_ready(
                &mut status.conditions,
                true,
                false,
                reasons::APPLY_SUCCEEDED,
                &message,
                generation,
                now(),
            );
            if checked {
                conditions::set(
                    &mut status.conditions,
                    types::HEALTHY,
                    ConditionStatus::True,
                    reasons::SUCCEEDED,
                    "health checks passed",
                    generation,
                    now(),
                );
            } else {
                conditions::remove(&mut status.conditions, types::HEALTHY);
            }
            if let Some(a) = &attempt.artifact {
                status::record_history(
                    &mut status.history,
                    &a.revision,
                    &a.digest,
                    status::SUCCEEDED,
                    now(),
                );
            }
            jittered(next, 0.05)
        }
        Ok(Synced::Progressing(message)) => {
            let _ = outcome.set(reasons::PROGRESSING);
            conditions::mark_reconciling(
                &mut status.conditions,
                reasons::PROGRESSING,
                &message,
                generation,
                now(),
            );
            conditions::set(
                &mut status.conditions,
                types::HEALTHY,
                ConditionStatus::Unknown,
                reasons::PROGRESSING,
                &message,
                generation,
                now(),
            );
            HEALTH_POLL
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
            if failure.reason == reasons::HEALTH_CHECK_FAILED {
                conditions::set(
                    &mut status.conditions,
                    types::HEALTHY,
                    ConditionStatus::False,
                    reasons::HEALTH_CHECK_FAILED,
                    &failure.message,
                    generation,
                    now(),
                );
            }
            if let (Some(a), false) = (&attempt.artifact, failure.is_waiting()) {
                status::record_history(
                    &mut status.history,
                    &a.revision,
                    &a.digest,
                    failure.reason,
                    now(),
                );
            }
            let changed = previous_ready
                .as_ref()
                .is_none_or(|c| c.reason != failure.reason || c.message != failure.message);
            if changed {
                let type_ = if failure.is_waiting() {
                    EventType::Normal
                } else {
                    EventType::Warning
                };
                publish(ctx, obj, type_, failure.reason, &failure.message).await;
            }
            jittered(failure.requeue_after(retry), 0.2)
        }
    };
    apply_status(api, obj, FIELD_MANAGER, written.as_ref(), &status).await?;
    let ready = status::is_ready(&status);
    let was_ready = written.as_ref().is_some_and(|w| {
        status::is_ready(w) && w.last_applied_revision == status.last_applied_revision
    });
    if ready && !was_ready {
        ctx.sources.became_ready(&key);
    }
    let ready_status = conditions::get(&status.conditions, types::READY).map(|c| c.status.clone());
    ctx.metrics
        .ready_status(KIND, &metric_key, ready_status.as_deref());
    Ok(Action::requeue(requeue))
}

/// Checks dependencies, reads the source, applies, prunes and checks health. Records progress in
/// `status` (attempted revision, inventory, last applied revision and digest) as it goes, so a
/// failure late in the flow keeps what the earlier steps achieved.
async fn sync(
    obj: &Apply,
    ctx: &Context,
    api: &Api<Apply>,
    timing: &Timing,
    status: &mut ApplyStatus,
    written: &mut Option<ApplyStatus>,
    attempt: &mut Attempt,
) -> Result<Synced, Failure> {
    let spec = &obj.spec;
    let this = apply_key(obj);

    check_dependencies(obj, ctx, &this).await?;

    let source_key = source::resolve(&this.0, &spec.source_ref, ctx.allow_cross_namespace)?;
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
    let state = source::read(&ctx.clients.own(), &resource, &source_key).await?;
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
    attempt.artifact = Some(artifact.clone());

    let engine =
        engine(ctx, obj).map_err(|e| Failure::transient(reasons::APPLY_FAILED, e.to_string()))?;
    let from = AppliedFrom {
        source: source::artifact_version(&artifact),
        generation: obj.metadata.generation,
        requested_at: requested_at(&obj.metadata).map(str::to_owned),
    };
    let applied = match ctx.recent.fresh(&this, &from, timing.interval) {
        Some(applied) => {
            // The object this reconcile started from may predate the status that recorded this
            // apply (the cache lags behind our own writes): restate what the apply produced, or
            // the status write below would take it back.
            status.inventory = Some(applied.inventory.clone());
            status.last_applied_revision = Some(artifact.revision.clone());
            status.last_applied_digest = Some(artifact.digest.clone());
            applied
        }
        None => {
            ctx.recent.forget(&this);
            let inventory =
                apply_artifact(obj, ctx, api, timing, &engine, &artifact, status, written).await?;
            ctx.recent.record(&this, from, inventory)
        }
    };
    check_health(obj, timing, &engine, &artifact, &applied).await
}

/// Requires every `dependsOn` Apply to be Ready at its latest revision.
async fn check_dependencies(obj: &Apply, ctx: &Context, this: &ApplyKey) -> Result<(), Failure> {
    let mut keys = Vec::new();
    for dep in &obj.spec.depends_on {
        let namespace = source::referenced_namespace(
            &this.0,
            dep.namespace.as_deref(),
            &format!("dependsOn '{}'", dep.name),
            ctx.allow_cross_namespace,
        )?;
        keys.push((namespace, dep.name.clone()));
    }
    ctx.sources.depends_on(this, keys.clone());
    for (namespace, name) in keys {
        if (namespace.as_str(), name.as_str()) == (this.0.as_str(), this.1.as_str()) {
            return Err(Failure::stalled(
                reasons::INVALID_SPEC,
                "an Apply cannot depend on itself",
            ));
        }
        let api: Api<Apply> = Api::namespaced(ctx.clients.own(), &namespace);
        let dependency = api.get_opt(&name).await.map_err(|e| {
            Failure::transient(
                reasons::DEPENDENCY_NOT_READY,
                format!("reading dependency '{namespace}/{name}': {e}"),
            )
        })?;
        let why = match &dependency {
            None => Some("does not exist".to_owned()),
            Some(dep) => status::dependency_not_ready(dep),
        };
        if let Some(why) = why {
            return Err(Failure::waiting(
                reasons::DEPENDENCY_NOT_READY,
                format!("dependency '{namespace}/{name}' {why}"),
            ));
        }
    }
    Ok(())
}

/// Downloads, reads and applies the artifact, then prunes. Returns the new inventory.
#[allow(clippy::too_many_arguments)]
async fn apply_artifact(
    obj: &Apply,
    ctx: &Context,
    api: &Api<Apply>,
    timing: &Timing,
    engine: &Engine,
    artifact: &Artifact,
    status: &mut ApplyStatus,
    written: &mut Option<ApplyStatus>,
) -> Result<ResourceInventory, Failure> {
    let spec = &obj.spec;
    let new_work = status.last_applied_digest.as_deref() != Some(artifact.digest.as_str())
        || status.last_applied_revision.as_deref() != Some(artifact.revision.as_str())
        || status.observed_generation != obj.metadata.generation;
    if new_work {
        // Show the work (kstatus Reconciling, Ready Unknown) before the slow part.
        let mut progress = status.clone();
        conditions::mark_reconciling(
            &mut progress.conditions,
            reasons::PROGRESSING,
            &format!("applying revision '{}'", artifact.revision),
            obj.metadata.generation,
            Time(Timestamp::now()),
        );
        match apply_status(api, obj, FIELD_MANAGER, written.as_ref(), &progress).await {
            Ok(_) => *written = Some(progress),
            Err(e) => tracing::warn!(error = %e, "writing progress failed"),
        }
    }

    let bytes = fetch(&ctx.fetcher, artifact).await?;
    let path = spec.path.clone();
    let limits = ctx.untar_limits.clone();
    let objects =
        tokio::task::spawn_blocking(move || manifests::read(&bytes, path.as_deref(), &limits))
            .await
            .map_err(|e| {
                Failure::transient(
                    reasons::ARTIFACT_FETCH_FAILED,
                    format!("reading manifests failed: {e}"),
                )
            })??;

    let options = ApplyOptions {
        force: spec.force,
        default_namespace: spec.target_namespace.clone(),
        wait_timeout: timing.timeout,
        ..ApplyOptions::default()
    };
    let outcome = tokio::time::timeout(timing.timeout, engine.apply(objects, &options))
        .await
        .map_err(|_| {
            Failure::transient(
                reasons::TIMEOUT,
                format!("apply did not finish within {}s", timing.timeout.as_secs()),
            )
        })?;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => return Err(partly_applied(status, &e)),
    };
    let old = status.inventory.clone().unwrap_or_default();
    status.inventory = Some(outcome.inventory.clone());
    status.last_applied_revision = Some(artifact.revision.clone());
    status.last_applied_digest = Some(artifact.digest.clone());

    let mut note = format!(
        "revision '{}': {}",
        artifact.revision,
        outcome.change_set.summary()
    );
    let mut wrote = outcome.change_set.has_writes();
    if spec.prune {
        match engine.prune(&old, &outcome.inventory).await {
            Ok(pruned) => {
                if pruned.has_writes() {
                    note.push_str(&format!("; pruned: {}", pruned.summary()));
                    wrote = true;
                }
            }
            Err(e) => {
                // Keep the old objects in the inventory so a later prune retries them.
                status.inventory = Some(merge_inventories(&old, &outcome.inventory));
                if wrote {
                    publish(ctx, obj, EventType::Normal, reasons::APPLY_SUCCEEDED, &note).await;
                }
                return Err(Failure::from_engine(&e, true));
            }
        }
    }
    if wrote {
        publish(ctx, obj, EventType::Normal, reasons::APPLY_SUCCEEDED, &note).await;
    }
    Ok(outcome.inventory)
}

/// The failure for an apply that failed. When the engine had begun writing
/// ([`weir_ssa::Error::Partial`]), what it reached joins the inventory (the old entries stay:
/// nothing is pruned, and objects written before the failure must not escape a later prune) and
/// the message says what was written; the reason is the underlying error's.
/// `lastAppliedRevision` and `lastAppliedDigest` are left alone: the revision was not applied.
fn partly_applied(status: &mut ApplyStatus, error: &weir_ssa::Error) -> Failure {
    let mut failure = Failure::from_engine(error, false);
    if let Some(reached) = error.partial_outcome() {
        let old = status.inventory.clone().unwrap_or_default();
        status.inventory = Some(merge_inventories(&old, &reached.inventory));
        if reached.change_set.has_writes() {
            failure.message.push_str(&format!(
                " (partly applied: {})",
                reached.change_set.summary()
            ));
        }
    }
    failure
}

/// `old` ∪ `new`, sorted by id, without duplicates: the inventory to keep when an apply or prune
/// failed part-way (entries are never dropped then, so a later prune still sees them).
fn merge_inventories(old: &ResourceInventory, new: &ResourceInventory) -> ResourceInventory {
    let mut entries: Vec<_> = new.entries.iter().chain(&old.entries).cloned().collect();
    entries.sort();
    entries.dedup();
    ResourceInventory { entries }
}

/// Checks the health of the objects `wait` or `healthChecks` name.
async fn check_health(
    obj: &Apply,
    timing: &Timing,
    engine: &Engine,
    artifact: &Artifact,
    applied: &Applied,
) -> Result<Synced, Failure> {
    let spec = &obj.spec;
    let namespace = obj.namespace().unwrap_or_default();
    let objects = applied.inventory.entries.len();
    let message = format!(
        "applied revision '{}' ({objects} object{})",
        artifact.revision,
        if objects == 1 { "" } else { "s" }
    );
    let next = timing
        .interval
        .saturating_sub(applied.at.elapsed())
        .max(Duration::from_secs(1));
    let targets = status::health_targets(
        spec.wait,
        &spec.health_checks,
        &applied.inventory,
        &namespace,
    );
    if targets.is_empty() {
        return Ok(Synced::Ready {
            message,
            checked: false,
            next,
        });
    }
    let verdicts = engine.check_health(&targets).await;
    match status::summarise(&verdicts) {
        Health::Healthy(_) => Ok(Synced::Ready {
            message,
            checked: true,
            next,
        }),
        Health::Failed(why) => Err(Failure::persistent(reasons::HEALTH_CHECK_FAILED, why)),
        Health::Progressing(why) => {
            if applied.at.elapsed() >= timing.timeout {
                Err(Failure::persistent(
                    reasons::HEALTH_CHECK_FAILED,
                    format!("timed out after {}s: {why}", timing.timeout.as_secs()),
                ))
            } else {
                Ok(Synced::Progressing(format!(
                    "revision '{}': {why}",
                    artifact.revision
                )))
            }
        }
    }
}

/// Downloads and verifies the artifact. A 404 means the producer has not served it yet: waiting,
/// not failed.
async fn fetch(fetcher: &Fetcher, artifact: &Artifact) -> Result<Vec<u8>, Failure> {
    fetcher
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

async fn publish(ctx: &Context, obj: &Apply, type_: EventType, reason: &str, note: &str) {
    // kube's recorder folds events with the same reason and object into one series and keeps
    // the first note; naming the object's resourceVersion keeps each apply's change set.
    let mut reference = obj.object_ref(&());
    reference.resource_version = obj.metadata.resource_version.clone();
    events::publish(&ctx.recorder, &reference, type_, reason, "Reconcile", note).await;
}

#[cfg(test)]
mod tests {
    use weir_api::inventory::InventoryEntry;
    use weir_ssa::{Action, ApplyOutcome, ChangeSet, ChangeSetEntry, ObjectRef};

    use super::*;

    fn configmap(name: &str) -> ObjectRef {
        ObjectRef {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    fn inventory(names: &[&str]) -> ResourceInventory {
        let mut entries: Vec<InventoryEntry> = names.iter().map(|n| configmap(n).entry()).collect();
        entries.sort();
        ResourceInventory { entries }
    }

    #[test]
    fn merged_inventory_keeps_old_entries_and_adds_new_ones() {
        let merged = merge_inventories(&inventory(&["a", "b"]), &inventory(&["b", "c"]));
        assert_eq!(merged, inventory(&["a", "b", "c"]));
        assert_eq!(
            merge_inventories(&inventory(&["a"]), &ResourceInventory::default()),
            inventory(&["a"])
        );
    }

    #[test]
    fn a_partial_apply_extends_the_inventory_and_keeps_the_underlying_reason() {
        let mut status = ApplyStatus {
            inventory: Some(inventory(&["old"])),
            last_applied_revision: Some("rev-1".into()),
            ..ApplyStatus::default()
        };
        let error = weir_ssa::Error::Partial {
            outcome: Box::new(ApplyOutcome {
                change_set: ChangeSet {
                    entries: vec![ChangeSetEntry {
                        object: configmap("new"),
                        action: Action::Created,
                    }],
                },
                inventory: inventory(&["new", "refused"]),
            }),
            error: Box::new(weir_ssa::Error::Forbidden {
                object: Box::new(configmap("refused")),
                message: "denied".into(),
            }),
        };
        let failure = partly_applied(&mut status, &error);
        assert_eq!(failure.reason, "Forbidden");
        assert!(
            failure
                .message
                .starts_with("ConfigMap ns/refused: forbidden: denied"),
            "{}",
            failure.message
        );
        assert!(
            failure.message.ends_with("(partly applied: 1 created)"),
            "{}",
            failure.message
        );
        assert_eq!(
            status.inventory,
            Some(inventory(&["new", "old", "refused"]))
        );
        assert_eq!(status.last_applied_revision.as_deref(), Some("rev-1"));
    }

    #[test]
    fn an_apply_rejected_before_any_write_keeps_the_inventory() {
        let mut status = ApplyStatus {
            inventory: Some(inventory(&["old"])),
            ..ApplyStatus::default()
        };
        let error = weir_ssa::Error::Rejected {
            errors: vec![weir_ssa::Error::UnknownKind {
                object: Box::new(configmap("x")),
            }],
        };
        let failure = partly_applied(&mut status, &error);
        assert_eq!(failure.reason, reasons::VALIDATION_FAILED);
        assert_eq!(status.inventory, Some(inventory(&["old"])));
    }
}
