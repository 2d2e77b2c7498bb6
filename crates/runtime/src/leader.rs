//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics, so that of
//! several replicas of a controller exactly one reconciles while the others stand by.
//!
//! The protocol is client-go's `leaderelection` package:
//!
//! - The Lease records `holderIdentity`, `leaseDurationSeconds`, `acquireTime`, `renewTime` and
//!   `leaseTransitions`.
//! - A candidate reads the Lease every retry period. It takes the Lease only when nobody holds it
//!   or the holder has not changed the record for a whole lease duration. "For a whole lease
//!   duration" is measured with the candidate's own monotonic clock from the moment it last saw
//!   the record change, never by comparing `renewTime` with its wall clock, so clock skew between
//!   nodes does not matter.
//! - Every write carries the `resourceVersion` that was read: of two candidates writing at once
//!   the apiserver accepts one and answers the other `409 Conflict` (someone else won).
//! - The leader renews every retry period. A leader that has not renewed for the renew deadline
//!   (shorter than the lease duration) steps down before any candidate may consider the Lease
//!   expired; a leader that finds another holder in the Lease steps down at once.
//! - Taking the Lease over from another holder increments `leaseTransitions`.
//! - On shutdown the leader releases the Lease (empty holder, one-second duration), so a standby
//!   takes over at its next retry instead of waiting for the lease to expire.
//!
//! Embed it with [`LeaderElector::acquire`] and the [`Leadership`] it returns, or let
//! [`run_while_leader`] run one "term" of a controller per leadership:
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), weir_runtime::leader::ElectionError> {
//! use weir_runtime::leader::{LeaderConfig, LeaderElector, run_while_leader};
//!
//! let elector = LeaderElector::new(client, LeaderConfig::new("weir-system", "my-controller"))?;
//! let (stop, stop_rx) = tokio::sync::watch::channel(false);
//! let controller = tokio::spawn(run_while_leader(Some(elector), stop_rx, |term_over| async move {
//!     // Build and run the reconcile loop here; end it gracefully once `term_over` turns true.
//!     let mut term_over = term_over;
//!     let _ = term_over.wait_for(|over| *over).await;
//! }));
//! // … on SIGTERM: stop reconciling and release the Lease.
//! let _ = stop.send(true);
//! let _ = controller.await;
//! # Ok(()) }
//! ```

use std::{
    future::Future,
    hash::{BuildHasher, Hasher},
    pin::pin,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use tokio::{sync::watch, task::JoinHandle, time::Instant};

/// Default `leaseDurationSeconds`: how long a candidate waits after the record last changed.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// Default renew deadline: how long a leader keeps trying to renew before it steps down.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// Default retry period: how often a leader renews and a candidate tries to acquire.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
/// Namespace of the Lease when neither a flag nor `POD_NAMESPACE` names one.
pub const DEFAULT_NAMESPACE: &str = "weir-system";

/// Factor by which a candidate's retry period is stretched at random (client-go's `JitterFactor`),
/// so candidates started together do not hit the apiserver in lockstep.
const JITTER: f64 = 1.2;

/// Errors of leader election.
#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    /// The configuration cannot work (an empty name, durations in the wrong order).
    #[error("leader election: {0}")]
    InvalidConfig(String),
    /// Reading or writing the Lease failed.
    #[error("leader election: lease {namespace}/{name}: {source}")]
    Kube {
        /// Namespace of the Lease.
        namespace: String,
        /// Name of the Lease.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The apiserver did not answer in time.
    #[error("leader election: lease {namespace}/{name}: no answer within {after:?}")]
    Timeout {
        /// Namespace of the Lease.
        namespace: String,
        /// Name of the Lease.
        name: String,
        /// How long we waited.
        after: Duration,
    },
}

/// One Lease and how to compete for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease (one per controller, e.g. `weir-render-controller`).
    pub name: String,
    /// Who we are in `holderIdentity`; unique per process ([`default_identity`]).
    pub identity: String,
    /// `leaseDurationSeconds` written to the Lease (whole seconds, rounded up).
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it steps down; shorter than the lease
    /// duration, so it steps down before anyone else may take over.
    pub renew_deadline: Duration,
    /// How often the leader renews and candidates retry.
    pub retry_period: Duration,
}

impl LeaderConfig {
    /// The Lease `namespace/name` with the default durations and a fresh [`default_identity`].
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> LeaderConfig {
        LeaderConfig {
            namespace: namespace.into(),
            name: name.into(),
            identity: default_identity(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
        }
    }

    /// Checks client-go's constraints: names set, `lease_duration > renew_deadline >
    /// 1.2 × retry_period > 0`.
    pub fn validate(&self) -> Result<(), ElectionError> {
        let invalid = |m: String| Err(ElectionError::InvalidConfig(m));
        if self.name.is_empty() {
            return invalid("the lease name is empty".into());
        }
        if self.namespace.is_empty() {
            return invalid("the lease namespace is empty".into());
        }
        if self.identity.is_empty() {
            return invalid("the identity is empty".into());
        }
        if self.retry_period.is_zero() {
            return invalid("the retry period must be positive".into());
        }
        if self.lease_duration <= self.renew_deadline {
            return invalid(format!(
                "the lease duration ({:?}) must be longer than the renew deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline.as_secs_f64() <= JITTER * self.retry_period.as_secs_f64() {
            return invalid(format!(
                "the renew deadline ({:?}) must be longer than {JITTER} × the retry period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        if self.lease_duration_seconds().is_none() {
            return invalid(format!(
                "the lease duration ({:?}) is too long",
                self.lease_duration
            ));
        }
        Ok(())
    }

    /// The lease duration in whole seconds, rounded up.
    fn lease_duration_seconds(&self) -> Option<i32> {
        let secs =
            self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(secs.max(1)).ok()
    }
}

/// `POD_NAMESPACE` when set (the downward API), else [`DEFAULT_NAMESPACE`].
pub fn default_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
}

/// `<pod or host name>_<16 random hex digits>`: the pod name (`POD_NAME`, else `HOSTNAME`, else
/// the kernel's hostname) tells a person which replica leads, the random part keeps two processes
/// with one name (a restarted container, two in-process instances in a test) apart.
pub fn default_identity() -> String {
    let host = ["POD_NAME", "HOSTNAME"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .chain(std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "weir".to_owned());
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        .take(63)
        .collect();
    format!("{host}_{:016x}", random_u64())
}

/// 64 random bits without a dependency: std's `RandomState` is seeded from the operating
/// system's random source; the time and process id make two states in one thread differ too.
fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_i128(Timestamp::now().as_nanosecond());
    hasher.finish()
}

/// The retry period stretched by up to [`JITTER`] at random.
fn jittered(period: Duration) -> Duration {
    let fraction = (random_u64() % 1_000) as f64 / 1_000.0;
    period.mul_f64(1.0 + (JITTER - 1.0) * fraction)
}

/// What one read-and-write of the Lease found.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    /// We hold the Lease (acquired or renewed).
    Held,
    /// Another identity holds an unexpired Lease.
    HeldBy(String),
    /// Another writer changed the Lease between our read and our write.
    Conflict,
}

/// The Lease record as last seen, and when (local monotonic clock).
struct Observed {
    spec: LeaseSpec,
    at: Instant,
}

/// Competes for one Lease. Cheap to clone; clones share what they observed.
#[derive(Clone)]
pub struct LeaderElector {
    inner: Arc<Inner>,
}

struct Inner {
    api: Api<Lease>,
    config: LeaderConfig,
    observed: Mutex<Option<Observed>>,
}

impl LeaderElector {
    /// An elector for `config` (validated) talking to the apiserver through `client`.
    pub fn new(client: Client, config: LeaderConfig) -> Result<LeaderElector, ElectionError> {
        config.validate()?;
        Ok(LeaderElector {
            inner: Arc::new(Inner {
                api: Api::namespaced(client, &config.namespace),
                config,
                observed: Mutex::new(None),
            }),
        })
    }

    /// Our `holderIdentity`.
    pub fn identity(&self) -> &str {
        &self.inner.config.identity
    }

    /// The configuration.
    pub fn config(&self) -> &LeaderConfig {
        &self.inner.config
    }

    fn observed(&self) -> MutexGuard<'_, Option<Observed>> {
        // Every update replaces the whole value, so a poisoned lock still holds a consistent one.
        self.inner
            .observed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records `spec` as seen now if it differs from what we saw last; returns when it last
    /// changed.
    fn observe(&self, spec: &LeaseSpec) -> Instant {
        let mut observed = self.observed();
        match &*observed {
            Some(seen) if seen.spec == *spec => seen.at,
            _ => {
                let at = Instant::now();
                *observed = Some(Observed {
                    spec: spec.clone(),
                    at,
                });
                at
            }
        }
    }

    fn kube_error(&self, source: kube::Error) -> ElectionError {
        ElectionError::Kube {
            namespace: self.inner.config.namespace.clone(),
            name: self.inner.config.name.clone(),
            source,
        }
    }

    /// One round of client-go's `tryAcquireOrRenew`, bounded by `limit`.
    async fn try_acquire_or_renew(&self, limit: Duration) -> Result<Attempt, ElectionError> {
        match tokio::time::timeout(limit, self.try_acquire_or_renew_unbounded()).await {
            Ok(result) => result,
            Err(_) => Err(ElectionError::Timeout {
                namespace: self.inner.config.namespace.clone(),
                name: self.inner.config.name.clone(),
                after: limit,
            }),
        }
    }

    async fn try_acquire_or_renew_unbounded(&self) -> Result<Attempt, ElectionError> {
        let config = &self.inner.config;
        let api = &self.inner.api;
        let now = MicroTime(Timestamp::now());
        let duration = config.lease_duration_seconds();
        let Some(mut lease) = api
            .get_opt(&config.name)
            .await
            .map_err(|e| self.kube_error(e))?
        else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.name.clone()),
                    namespace: Some(config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(config.identity.clone()),
                    lease_duration_seconds: duration,
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(&created.spec.unwrap_or_default());
                    Ok(Attempt::Held)
                }
                // AlreadyExists: another candidate created it first.
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Conflict),
                Err(e) => Err(self.kube_error(e)),
            };
        };
        let old = lease.spec.clone().unwrap_or_default();
        let changed_at = self.observe(&old);
        let holder = old.holder_identity.clone().unwrap_or_default();
        let held_for = Duration::from_secs(
            u64::try_from(old.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        );
        if !holder.is_empty() && holder != config.identity && Instant::now() < changed_at + held_for
        {
            return Ok(Attempt::HeldBy(holder));
        }
        let mut spec = old.clone();
        spec.holder_identity = Some(config.identity.clone());
        spec.lease_duration_seconds = duration;
        spec.renew_time = Some(now.clone());
        if holder != config.identity || spec.acquire_time.is_none() {
            spec.acquire_time = Some(now);
        }
        if holder != config.identity {
            spec.lease_transitions = Some(old.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        lease.spec = Some(spec);
        // `replace` sends the resourceVersion we read: a concurrent writer makes this a 409.
        match api
            .replace(&config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                self.observe(&updated.spec.unwrap_or_default());
                Ok(Attempt::Held)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Conflict),
            Err(e) => Err(self.kube_error(e)),
        }
    }

    /// Campaigns until this process holds the Lease, retrying every (jittered) retry period;
    /// `None` once `stop` turns true (or its sender is gone) first. Errors are logged and
    /// retried, as client-go does: an unreachable apiserver only delays leadership.
    pub async fn acquire(&self, mut stop: watch::Receiver<bool>) -> Option<Leadership> {
        let config = &self.inner.config;
        let mut last_holder = String::new();
        tracing::info!(lease = %format!("{}/{}", config.namespace, config.name), identity = %config.identity, "campaigning for leadership");
        loop {
            let started = Instant::now();
            let attempt = tokio::select! {
                attempt = self.try_acquire_or_renew(config.renew_deadline) => attempt,
                _ = stop.wait_for(|stop| *stop) => return None,
            };
            match attempt {
                Ok(Attempt::Held) => {
                    tracing::info!(lease = %format!("{}/{}", config.namespace, config.name), identity = %config.identity, "became leader");
                    return Some(Leadership::start(self.clone(), started));
                }
                Ok(Attempt::HeldBy(holder)) => {
                    if holder != last_holder {
                        tracing::info!(lease = %format!("{}/{}", config.namespace, config.name), leader = %holder, "standing by: another replica leads");
                        last_holder = holder;
                    }
                }
                Ok(Attempt::Conflict) => {
                    tracing::debug!(lease = %config.name, "lease changed while acquiring; retrying");
                }
                Err(e) => tracing::warn!(error = %e, "acquiring the lease failed; retrying"),
            }
            tokio::select! {
                () = tokio::time::sleep(jittered(config.retry_period)) => {}
                _ = stop.wait_for(|stop| *stop) => return None,
            }
        }
    }

    /// Gives the Lease up if we still hold it: empty holder and a one-second duration, so a
    /// standby takes over at its next retry. `leaseTransitions` is kept.
    async fn release_lease(&self) -> Result<(), ElectionError> {
        let config = &self.inner.config;
        let api = &self.inner.api;
        let Some(mut lease) = api
            .get_opt(&config.name)
            .await
            .map_err(|e| self.kube_error(e))?
        else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
            return Ok(());
        }
        let now = MicroTime(Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.acquire_time = Some(now.clone());
        spec.renew_time = Some(now);
        lease.spec = Some(spec);
        match api
            .replace(&config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                self.observe(&updated.spec.unwrap_or_default());
                Ok(())
            }
            // Someone else wrote the Lease since our read: it is no longer ours to release.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(e) => Err(self.kube_error(e)),
        }
    }
}

/// Holding the Lease. A background task renews it every retry period; [`Leadership::watch`]
/// turns false when leadership is lost (renew deadline missed, or another holder found), and
/// never turns true again: campaign anew with [`LeaderElector::acquire`].
///
/// Dropping a `Leadership` stops renewing without releasing (as a crashed process would: the
/// others take over once the lease expires); call [`Leadership::release`] to hand over at once.
pub struct Leadership {
    elector: LeaderElector,
    leading: watch::Sender<bool>,
    renewer: JoinHandle<()>,
}

impl Leadership {
    /// Leading since the attempt that began at `acquired` (its renew deadline counts from then).
    fn start(elector: LeaderElector, acquired: Instant) -> Leadership {
        let (leading, _) = watch::channel(true);
        let renewer = tokio::spawn(renew(elector.clone(), leading.clone(), acquired));
        Leadership {
            elector,
            leading,
            renewer,
        }
    }

    /// Whether we still lead.
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// `true` while we lead; turns `false` once when leadership is lost or given up.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Completes when leadership is lost.
    pub async fn lost(&self) {
        let mut leading = self.leading.subscribe();
        let _ = leading.wait_for(|leading| !*leading).await;
    }

    /// Our `holderIdentity`.
    pub fn identity(&self) -> &str {
        self.elector.identity()
    }

    /// Stops renewing and gives the Lease up (if it is still ours), so a standby takes over at
    /// its next retry. Bounded by the renew deadline.
    pub async fn release(mut self) -> Result<(), ElectionError> {
        self.renewer.abort();
        let _ = (&mut self.renewer).await;
        let was_leading = self.leading.send_replace(false);
        if !was_leading {
            return Ok(());
        }
        let config = self.elector.config();
        let limit = config.renew_deadline;
        let result = match tokio::time::timeout(limit, self.elector.release_lease()).await {
            Ok(result) => result,
            Err(_) => Err(ElectionError::Timeout {
                namespace: config.namespace.clone(),
                name: config.name.clone(),
                after: limit,
            }),
        };
        if result.is_ok() {
            tracing::info!(lease = %format!("{}/{}", config.namespace, config.name), identity = %config.identity, "released leadership");
        }
        result
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.renewer.abort();
        self.leading.send_replace(false);
    }
}

/// Renews every retry period until a renewal fails for the renew deadline or the Lease shows
/// another holder; then reports the loss through `leading`.
async fn renew(elector: LeaderElector, leading: watch::Sender<bool>, acquired: Instant) {
    let config = elector.config().clone();
    let lease = format!("{}/{}", config.namespace, config.name);
    // Start of the last attempt that renewed: the apiserver recorded the renewal after it, so
    // candidates count the lease duration from a later moment than we count the deadline.
    let mut renewed = acquired;
    loop {
        tokio::time::sleep(config.retry_period).await;
        let started = Instant::now();
        let deadline = renewed + config.renew_deadline;
        let taken = match elector
            .try_acquire_or_renew(deadline.saturating_duration_since(started))
            .await
        {
            Ok(Attempt::Held) => {
                renewed = started;
                continue;
            }
            Ok(Attempt::HeldBy(holder)) => {
                tracing::warn!(lease = %lease, leader = %holder, "another replica holds the lease");
                true
            }
            Ok(Attempt::Conflict) => false,
            Err(e) => {
                tracing::warn!(lease = %lease, error = %e, "renewing the lease failed");
                false
            }
        };
        if taken || Instant::now() >= deadline {
            tracing::warn!(lease = %lease, identity = %config.identity, "lost leadership");
            leading.send_replace(false);
            return;
        }
    }
}

/// Runs `term` while this process leads, as many times as it becomes leader; without an
/// elector, runs it once until `stop`.
///
/// `term` builds the part of a controller that must run on one replica only (the reconcile loop
/// and the watches that feed it) and returns a future that ends gracefully once the receiver it
/// was given turns true. That happens when `stop` turns true or leadership is lost. After a
/// loss the process campaigns again (its servers keep running meanwhile; a standby serves
/// artifacts and answers probes). After `stop`, the Lease is released once the term has ended,
/// so a standby takes over without waiting for the lease to expire. Returns after `stop`.
///
/// Losing leadership ends the term gracefully: in-flight reconciles finish (each bounded by its
/// object's timeout) while new ones are no longer started. controller-runtime exits the process
/// instead; we keep it running because its artifact server must keep serving. After a missed
/// renew deadline, finishing reconciles have `lease_duration - renew_deadline` (5 s by default)
/// before another replica may lead; after finding another holder in the Lease, they may overlap
/// with the new leader's first reconciles (server-side apply and status writes are idempotent).
pub async fn run_while_leader<F, Fut>(
    elector: Option<LeaderElector>,
    stop: watch::Receiver<bool>,
    mut term: F,
) where
    F: FnMut(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(elector) = elector else {
        term(stop).await;
        return;
    };
    let stopped = |stop: &watch::Receiver<bool>| *stop.borrow() || stop.has_changed().is_err();
    loop {
        let Some(leadership) = elector.acquire(stop.clone()).await else {
            return;
        };
        let (over, over_rx) = watch::channel(false);
        let end_term = {
            let mut stop = stop.clone();
            let mut leading = leadership.watch();
            async move {
                tokio::select! {
                    _ = stop.wait_for(|stop| *stop) => {}
                    _ = leading.wait_for(|leading| !*leading) => {}
                }
                let _ = over.send(true);
            }
        };
        let mut running = pin!(term(over_rx));
        tokio::select! {
            () = &mut running => {}
            () = end_term => running.await,
        }
        if stopped(&stop) || leadership.is_leader() {
            // Shutting down (or the term ended on its own): hand the Lease over at once.
            if let Err(e) = leadership.release().await {
                tracing::warn!(error = %e, "releasing the lease failed; a standby takes over when it expires");
            }
            return;
        }
        tracing::info!("reconciling stopped after losing leadership; campaigning again");
    }
}

/// Drives the stream of a kube `Controller::run` until it ends, logging reconcile errors at
/// debug. Build the controller with `graceful_shutdown_on` the same `over` signal and pass its
/// [`store`](kube::runtime::Controller::store).
///
/// Why not just drain the stream: kube's controller holds its workers until its cache has
/// listed once, and a graceful shutdown stops that list, so a term told to end before its
/// first list completed (leadership lost right after it was won, SIGTERM right after start)
/// would wait forever. Before the first list no reconcile has started, so in that case this
/// returns at once instead; afterwards the shutdown is graceful (in-flight reconciles finish).
pub async fn drive_controller<K, S, T, E>(
    store: kube::runtime::reflector::Store<K>,
    results: S,
    mut over: watch::Receiver<bool>,
) where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
    S: futures::Stream<Item = Result<T, E>>,
    E: std::fmt::Display,
{
    use futures::{FutureExt, StreamExt};
    let mut results = pin!(results);
    let mut over_before_sync = pin!(async move {
        let _ = over.wait_for(|over| *over).await;
        if matches!(store.wait_until_ready().now_or_never(), Some(Ok(()))) {
            // Synced: the graceful shutdown ends the stream.
            std::future::pending::<()>().await;
        }
    });
    loop {
        tokio::select! {
            next = results.next() => match next {
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::debug!(error = %e, "reconcile error"),
                None => return,
            },
            () = &mut over_before_sync => {
                tracing::debug!("stopped before the controller's cache was synced");
                return;
            }
        }
    }
}

/// The leader-election settings a controller takes on its command line (GUIDE §7, Flux's flag
/// names): `--leader-elect`, `--leader-election-namespace`, `--leader-election-id`,
/// `--leader-election-lease-duration`, `--leader-election-renew-deadline`,
/// `--leader-election-retry-period`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionOptions {
    /// `--leader-elect`: campaign for the Lease and reconcile only while leading (default off:
    /// the process reconciles at once, as a single replica should).
    pub enabled: bool,
    /// `--leader-election-namespace`: namespace of the Lease ([`default_namespace`]).
    pub namespace: String,
    /// `--leader-election-id`: name of the Lease, one per controller.
    pub id: String,
    /// `--leader-election-lease-duration` (default 15s).
    pub lease_duration: Duration,
    /// `--leader-election-renew-deadline` (default 10s).
    pub renew_deadline: Duration,
    /// `--leader-election-retry-period` (default 2s).
    pub retry_period: Duration,
}

impl ElectionOptions {
    /// Off, with Lease `id` in [`default_namespace`] and the default durations.
    pub fn new(id: impl Into<String>) -> ElectionOptions {
        ElectionOptions {
            enabled: false,
            namespace: default_namespace(),
            id: id.into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
        }
    }

    /// The Lease configuration these options describe, with a fresh [`default_identity`].
    pub fn leader_config(&self) -> LeaderConfig {
        LeaderConfig {
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
            ..LeaderConfig::new(&self.namespace, &self.id)
        }
    }

    /// Checks the options (when enabled) as [`LeaderConfig::validate`] does.
    pub fn validate(&self) -> Result<(), ElectionError> {
        if self.enabled {
            self.leader_config().validate()?;
        }
        Ok(())
    }

    /// The elector these options ask for (`None` when disabled), with a fresh
    /// [`default_identity`]; an invalid combination is an error naming the problem.
    pub fn elector(&self, client: Client) -> Result<Option<LeaderElector>, ElectionError> {
        if !self.enabled {
            return Ok(None);
        }
        LeaderElector::new(client, self.leader_config()).map(Some)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn config_constraints_are_client_gos() {
        let ok = LeaderConfig::new("ns", "lease");
        assert!(ok.validate().is_ok());
        for (bad, wanted) in [
            (
                LeaderConfig {
                    name: String::new(),
                    ..ok.clone()
                },
                "lease name is empty",
            ),
            (
                LeaderConfig {
                    renew_deadline: Duration::from_secs(15),
                    ..ok.clone()
                },
                "must be longer than the renew deadline",
            ),
            (
                LeaderConfig {
                    retry_period: Duration::from_secs(9),
                    ..ok.clone()
                },
                "must be longer than 1.2 × the retry period",
            ),
            (
                LeaderConfig {
                    retry_period: Duration::ZERO,
                    ..ok.clone()
                },
                "retry period must be positive",
            ),
        ] {
            let e = bad.validate().unwrap_err().to_string();
            assert!(e.contains(wanted), "{e}");
        }
    }

    #[test]
    fn lease_duration_rounds_up_to_whole_seconds() {
        let mut c = LeaderConfig::new("ns", "lease");
        c.lease_duration = Duration::from_millis(2500);
        assert_eq!(c.lease_duration_seconds(), Some(3));
        c.lease_duration = Duration::from_secs(3);
        assert_eq!(c.lease_duration_seconds(), Some(3));
    }

    #[test]
    fn identities_differ_per_call_and_name_the_host() {
        let (a, b) = (default_identity(), default_identity());
        assert_ne!(a, b);
        let (host, suffix) = a.rsplit_once('_').unwrap();
        assert!(!host.is_empty());
        assert_eq!(suffix.len(), 16);
        assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn jitter_stays_within_client_gos_factor() {
        let period = Duration::from_secs(2);
        for _ in 0..100 {
            let j = jittered(period);
            assert!(j >= period && j <= period.mul_f64(JITTER), "{j:?}");
        }
    }
}
