//! The GitRepository reconciler.
//!
//! # Flow
//! 1. Ensure the finalizer (kube-runtime's `finalizer`); on deletion remove the object's stored
//!    artifacts and let it go.
//! 2. Suspended: do nothing until the spec changes.
//! 3. Read credentials, ask the remote for its refs (no objects), select the commit.
//! 4. If the stored artifact already has that revision (and the ignore settings it was built with
//!    are unchanged) and its file is in storage, the reconcile is done: no fetch.
//! 5. Otherwise fetch that commit (depth 1), pack its tree, store the tar.gz, collect garbage.
//! 6. Always write one summarised status, skipped when nothing but timestamps changed.
//!
//! # Guarantees
//! A failure never removes `status.artifact` nor its file: the last good artifact stays served.
//! A bad object becomes conditions (Ready=False with a stable reason, FetchFailed, Stalled when
//! only a spec change helps) and a Warning event, never a panic or a crash.

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
    Artifact, GitRepository, GitRepositoryStatus,
    conditions::{self, ConditionStatus, reasons, types},
    reconcile::unhandled_request,
};
use weir_artifact::{ArtifactKey, Storage};
use weir_git::{GitRemote, PackLimits, Submodules, pack_commit, pack_commit_recursive, refs};
use weir_runtime::{events, metrics::Metrics, requeue::jittered, status::apply_status};

use crate::{
    credentials,
    error::{Error, Failure},
};

/// The finalizer that removes stored artifacts.
pub const FINALIZER: &str = "source.weir.dev/finalizer";
/// Field manager for status writes.
pub const FIELD_MANAGER: &str = "weir-source-controller";
const KIND: &str = "GitRepository";
/// How deep submodules of submodules are followed.
const MAX_SUBMODULE_DEPTH: usize = 5;
/// Retry delay after a failure that may go away (capped by the interval).
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
    /// Packing limits.
    pub limits: PackLimits,
    /// Git timeout when `spec.timeout` is unset.
    pub default_timeout: Duration,
}

/// Reconciles one GitRepository.
pub async fn reconcile(obj: Arc<GitRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let namespace = obj.namespace().ok_or(Error::Unnamed)?;
    let api: Api<GitRepository> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            FinalizerEvent::Apply(obj) => apply(&obj, &ctx, &api).await,
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
        Ok(_) => "success",
        Err(e) => e.category(),
    };
    ctx.metrics.reconciled(KIND, category, started.elapsed());
    result
}

/// Requeue after an error that aborted the reconcile (API failures).
pub fn error_policy(_obj: Arc<GitRepository>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "reconcile failed");
    Action::requeue(jittered(RETRY, 0.2))
}

fn key(obj: &GitRepository) -> Result<ArtifactKey, Error> {
    ArtifactKey::new(
        KIND,
        obj.namespace().as_deref().unwrap_or_default(),
        &obj.name_any(),
    )
    .map_err(|_| Error::Unnamed)
}

async fn cleanup(obj: &GitRepository, ctx: &Context) -> Result<Action, Error> {
    let key = key(obj)?;
    if let Err(e) = ctx.storage.remove_all(&key) {
        // Keep the finalizer and retry: leaving files behind would leak storage.
        return Err(Error::Finalizer(format!("removing stored artifacts: {e}")));
    }
    ctx.metrics.ready_status(KIND, &key.dir(), None);
    Ok(Action::await_change())
}

async fn apply(
    obj: &GitRepository,
    ctx: &Context,
    api: &Api<GitRepository>,
) -> Result<Action, Error> {
    if obj.spec.suspend {
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
    let outcome = sync(obj, ctx, api, &key, &status, &mut written).await;
    if let Some(request) =
        unhandled_request(&obj.metadata, status.last_handled_reconcile_at.as_deref())
    {
        status.last_handled_reconcile_at = Some(request.to_owned());
    }
    status.observed_generation = generation;
    let previous_ready = conditions::get(&status.conditions, types::READY).cloned();
    let requeue = match outcome {
        Ok(synced) => {
            match synced {
                Synced::Current => {}
                Synced::Relocated(artifact) => status.artifact = Some(artifact),
                Synced::New(artifact, files) => {
                    let plural = if files == 1 { "" } else { "s" };
                    let note = format!(
                        "stored artifact for revision '{}' ({files} file{plural})",
                        artifact.revision
                    );
                    status.artifact = Some(artifact);
                    status.observed_ignore = obj.spec.ignore.clone();
                    status.observed_recurse_submodules = Some(obj.spec.recurse_submodules);
                    publish(ctx, obj, EventType::Normal, "NewArtifact", &note).await;
                }
            }
            let revision = status
                .artifact
                .as_ref()
                .map(|a| a.revision.clone())
                .unwrap_or_default();
            let message = format!("stored artifact for revision '{revision}'");
            conditions::remove(&mut status.conditions, types::FETCH_FAILED);
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
            conditions::set(
                &mut status.conditions,
                types::FETCH_FAILED,
                ConditionStatus::True,
                failure.reason,
                &failure.message,
                generation,
                now(),
            );
            conditions::mark_ready(
                &mut status.conditions,
                false,
                failure.stalled,
                failure.reason,
                &failure.message,
                generation,
                now(),
            );
            let changed = previous_ready
                .is_none_or(|c| c.reason != failure.reason || c.message != failure.message);
            if changed {
                publish(
                    ctx,
                    obj,
                    EventType::Warning,
                    failure.reason,
                    &failure.message,
                )
                .await;
            }
            if failure.stalled {
                interval
            } else {
                jittered(RETRY.min(interval), 0.2)
            }
        }
    };
    let in_storage = status
        .artifact
        .as_ref()
        .is_some_and(|a| ctx.storage.contains(&key, &a.digest));
    if in_storage {
        let message = "stored artifact is available";
        conditions::set(
            &mut status.conditions,
            types::ARTIFACT_IN_STORAGE,
            ConditionStatus::True,
            reasons::SUCCEEDED,
            message,
            generation,
            now(),
        );
    } else {
        conditions::remove(&mut status.conditions, types::ARTIFACT_IN_STORAGE);
    }
    apply_status(api, obj, FIELD_MANAGER, written.as_ref(), &status).await?;
    let ready = conditions::get(&status.conditions, types::READY).map(|c| c.status.clone());
    ctx.metrics.ready_status(KIND, &key.dir(), ready.as_deref());
    Ok(Action::requeue(requeue))
}

/// Brings storage up to date with the remote.
async fn sync(
    obj: &GitRepository,
    ctx: &Context,
    api: &Api<GitRepository>,
    key: &ArtifactKey,
    status: &GitRepositoryStatus,
    written: &mut Option<GitRepositoryStatus>,
) -> Result<Synced, Failure> {
    let spec = &obj.spec;
    let namespace = obj.namespace().unwrap_or_default();
    let secret = spec.secret_ref.as_ref().map(|r| r.name.as_str());
    let creds = credentials::load(&ctx.client, &namespace, secret).await?;
    let timeout = match &spec.timeout {
        Some(t) => t
            .to_std()
            .map_err(|e| Failure::stalled(reasons::INVALID_SPEC, e.to_string()))?,
        None => ctx.default_timeout,
    };
    let (url, reference) = (spec.url.clone(), spec.reference.clone());
    let (submodule_url, submodule_creds) = (url.clone(), creds.clone());
    let (remote, selection) = blocking(move || {
        let remote = GitRemote::new(&url, &creds, timeout)?;
        let advertisement = remote.advertisement()?;
        let selection = refs::select(reference.as_ref(), &advertisement)?;
        Ok((remote, selection))
    })
    .await?;

    let current = status
        .artifact
        .as_ref()
        .filter(|a| a.revision == selection.revision && ctx.storage.contains(key, &a.digest));
    let settings_unchanged = status.observed_ignore == spec.ignore
        && status.observed_recurse_submodules.unwrap_or(false) == spec.recurse_submodules;
    if let Some(artifact) = current.filter(|_| settings_unchanged) {
        // The URL is derived like everything else, never trusted from the stored status: a
        // reconcile that started from a stale cached object, or a changed --storage-adv-addr,
        // must converge on the address this controller serves.
        let path = key
            .file(&artifact.digest)
            .map_err(|e| Failure::transient(reasons::STORAGE_OPERATION_FAILED, e.to_string()))?;
        let url = format!("{}/{path}", ctx.base_url.trim_end_matches('/'));
        if artifact.url == url {
            return Ok(Synced::Current);
        }
        return Ok(Synced::Relocated(Artifact {
            url,
            ..artifact.clone()
        }));
    }

    // A fetch is needed: show it (kstatus Reconciling, Ready Unknown) before the slow part.
    let mut progress = status.clone();
    conditions::mark_reconciling(
        &mut progress.conditions,
        reasons::PROGRESSING,
        &format!("fetching revision '{}'", selection.revision),
        obj.metadata.generation,
        Time(Timestamp::now()),
    );
    match apply_status(api, obj, FIELD_MANAGER, written.as_ref(), &progress).await {
        Ok(_) => *written = Some(progress),
        Err(e) => tracing::warn!(object = %key.dir(), error = %e, "writing progress failed"),
    }

    let (ignore, limits, recurse) = (
        spec.ignore.clone(),
        ctx.limits.clone(),
        spec.recurse_submodules,
    );
    let revision = selection.revision.clone();
    let (packed, report) = blocking(move || {
        let commit = remote.fetch_commit(&selection)?;
        if recurse {
            let submodules = Submodules {
                parent_url: &submodule_url,
                credentials: &submodule_creds,
                timeout,
                max_depth: MAX_SUBMODULE_DEPTH,
            };
            pack_commit_recursive(
                &remote.repository(),
                commit,
                ignore.as_deref(),
                &limits,
                &submodules,
            )
        } else {
            pack_commit(&remote.repository(), commit, ignore.as_deref(), &limits)
        }
    })
    .await?;
    if !report.symlinks_skipped.is_empty() {
        tracing::info!(object = %key.dir(), links = ?report.symlinks_skipped, "symbolic links are never packed");
    }
    let storage_failure = |e: weir_artifact::Error| {
        Failure::transient(reasons::STORAGE_OPERATION_FAILED, e.to_string())
    };
    let stored = ctx.storage.store(key, &packed).map_err(storage_failure)?;
    if let Err(e) = ctx.storage.collect_garbage(key, &stored.digest) {
        tracing::warn!(object = %key.dir(), error = %e, "artifact garbage collection failed");
    }
    let artifact = Artifact {
        url: Storage::url(&ctx.base_url, &stored),
        revision,
        digest: stored.digest,
        size: i64::try_from(stored.size).ok(),
        last_update_time: Time(Timestamp::now()),
        metadata: None,
    };
    Ok(Synced::New(artifact, report.files))
}

/// What [`sync`] found.
enum Synced {
    /// The stored artifact is current.
    Current,
    /// The stored artifact is current but is now served at another URL.
    Relocated(Artifact),
    /// A new artifact was stored, with its file count.
    New(Artifact, usize),
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> weir_git::Result<T> + Send + 'static,
) -> Result<T, Failure> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(Failure::from),
        Err(e) => Err(Failure::transient(
            reasons::GIT_OPERATION_FAILED,
            format!("git task failed: {e}"),
        )),
    }
}

async fn publish(ctx: &Context, obj: &GitRepository, type_: EventType, reason: &str, note: &str) {
    let reference = obj.object_ref(&());
    events::publish(&ctx.recorder, &reference, type_, reason, "Reconcile", note).await;
}
