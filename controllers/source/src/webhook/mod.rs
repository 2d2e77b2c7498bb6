//! The webhook server: `POST /hook/<digest>` requests a reconcile of a Receiver's resources.
//!
//! # Handling a call
//! 1. Only `POST` (`405` otherwise); the path must be `/hook/` + 64 lowercase hex digits and
//!    equal the `status.webhookPath` of a Receiver in the cache (`404` otherwise).
//! 2. A suspended Receiver, or one that is not Ready, answers `503`.
//! 3. The body is read with a hard limit ([`Limits::max_body_bytes`], `413` beyond it).
//! 4. The token is read from the Secret and must still hash to the requested path (a rotated
//!    token retires the old path at once: `404`).
//! 5. The call is verified per `spec.type` ([`verify`]). A failure answers `401` and records a
//!    Warning Event `InvalidSignature` on the Receiver (at most one per Receiver every
//!    [`Limits::event_interval`]); neither carries the token nor the signature.
//! 6. Authentic calls that need no reconcile (a GitHub `ping`, an event not in `spec.events`)
//!    answer `200` with a short message and change nothing. Flux answers `400` for unlisted
//!    events; weir answers `200` so senders do not retry or flag deliveries that were
//!    deliberately ignored.
//! 7. Otherwise every listed object gets `reconcile.weir.dev/requestedAt` = the current time in
//!    RFC 3339 with nanoseconds (two calls never share a value), through a merge patch on the
//!    dynamic API; `200`, or `500` naming the objects that could not be annotated.
//!
//! Replaying a call does the same again: every request is independent and idempotent apart from
//! the new timestamp.
//!
//! # Limits
//! At most [`Limits::max_connections`] connections are served at once (further ones wait in the
//! accept queue), request headers must arrive within [`Limits::header_read_timeout`] and a whole
//! request within [`Limits::request_timeout`] (`408`), headers are capped at 64 KiB, and every
//! connection closes after one response (no keep-alive).

pub mod trigger;
pub mod verify;

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    pin::pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use k8s_openapi::jiff::Timestamp;
use kube::{
    Client, Resource,
    runtime::{
        events::{EventType, Recorder},
        reflector::Store,
    },
};
use tokio::{net::TcpListener, sync::Semaphore, task::JoinSet};
use weir_api::{
    Receiver,
    conditions::{self, types},
    receiver::WEBHOOK_PATH_PREFIX,
};

use crate::receiver::{read_token, webhook_path};
use verify::Verdict;

/// The Event reason of a refused call.
pub const INVALID_SIGNATURE: &str = "InvalidSignature";

/// Bounds of the webhook server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body; larger ones are answered `413`. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Time allowed to receive the request headers. Default 10 s.
    pub header_read_timeout: Duration,
    /// Time allowed for a whole request, body included. Default 30 s.
    pub request_timeout: Duration,
    /// Connections served at once. Default 256.
    pub max_connections: usize,
    /// Least time between two `InvalidSignature` Events for one Receiver. Default 10 s.
    pub event_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 256,
            event_interval: Duration::from_secs(10),
        }
    }
}

/// Everything a webhook call needs.
pub struct Webhook {
    /// Kubernetes client (reads Secrets, patches the triggered objects).
    pub client: Client,
    /// The Receivers, kept current by a reflector that runs whether or not this replica leads.
    pub receivers: Store<Receiver>,
    /// Event recorder.
    pub recorder: Recorder,
    /// `--no-cross-namespace-refs`.
    pub no_cross_namespace_refs: bool,
    /// Bounds.
    pub limits: Limits,
    kinds: trigger::Kinds,
    /// When each Receiver last got an `InvalidSignature` Event.
    last_event: Mutex<HashMap<String, Instant>>,
}

impl Webhook {
    /// A webhook over `receivers`.
    pub fn new(
        client: Client,
        receivers: Store<Receiver>,
        recorder: Recorder,
        no_cross_namespace_refs: bool,
        limits: Limits,
    ) -> Self {
        Webhook {
            client,
            receivers,
            recorder,
            no_cross_namespace_refs,
            limits,
            kinds: trigger::Kinds::default(),
            last_event: Mutex::default(),
        }
    }
}

/// Serves `webhook` on `listener` until `stop` turns true; then finishes the requests in flight
/// (up to 10 s) and returns.
pub async fn serve(
    listener: TcpListener,
    webhook: Arc<Webhook>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(webhook.limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        // Reap finished connections so the set stays bounded by the permits.
        while connections.try_join_next().is_some() {}
        let (webhook, mut stop) = (webhook.clone(), stop.clone());
        let header_read_timeout = webhook.limits.header_read_timeout;
        connections.spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let webhook = webhook.clone();
                async move {
                    let timeout = webhook.limits.request_timeout;
                    let response = tokio::time::timeout(timeout, handle(&webhook, req, peer))
                        .await
                        .unwrap_or_else(|_| text(StatusCode::REQUEST_TIMEOUT, "request timed out"));
                    Ok::<_, Infallible>(response)
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .max_buf_size(64 * 1024)
                // Webhook calls are one-shot: idle keep-alive connections would only hold slots.
                .keep_alive(false);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "webhook connection ended with an error");
                    }
                }
                () = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        connections.abort_all();
    }
}

/// Completes once `stop` turns true (or its sender is gone); holds no borrow afterwards.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{body}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Whether `path` has the shape of a webhook path (before any lookup).
fn well_formed(path: &str) -> bool {
    path.strip_prefix(WEBHOOK_PATH_PREFIX)
        .is_some_and(|digest| {
            digest.len() == 64
                && digest
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

async fn handle(
    webhook: &Webhook,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    if req.method() != Method::POST {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only POST is allowed");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let path = req.uri().path().to_owned();
    if !well_formed(&path) {
        return text(StatusCode::NOT_FOUND, "not found");
    }
    if tokio::time::timeout(Duration::from_secs(5), webhook.receivers.wait_until_ready())
        .await
        .is_err()
    {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "receivers are not loaded yet",
        );
    }
    let Some(receiver) = webhook
        .receivers
        .find(|r| r.status.as_ref().and_then(|s| s.webhook_path.as_deref()) == Some(&path))
    else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    let namespace = receiver.metadata.namespace.clone().unwrap_or_default();
    let name = receiver.metadata.name.clone().unwrap_or_default();
    let id = format!("{namespace}/{name}");
    let ready = receiver
        .status
        .as_ref()
        .is_some_and(|s| conditions::is_true(&s.conditions, types::READY));
    if receiver.spec.suspend || !ready {
        tracing::info!(receiver = %id, "webhook call to a suspended or not ready receiver");
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "receiver is suspended or not ready",
        );
    }

    let (parts, body) = req.into_parts();
    let max = webhook.limits.max_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    }
    let body = match Limited::new(body, max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
        }
        Err(_) => return text(StatusCode::BAD_REQUEST, "reading the body failed"),
    };

    let token = match read_token(&webhook.client, &namespace, &receiver.spec.secret_ref.name).await
    {
        Ok(token) => token,
        Err(failure) => {
            tracing::warn!(receiver = %id, reason = failure.reason, "webhook token unavailable");
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "receiver token is unavailable",
            );
        }
    };
    if webhook_path(&token, &name, &namespace) != path {
        // The token changed and the status has not caught up: the old path is retired.
        return text(StatusCode::NOT_FOUND, "not found");
    }

    match verify::verify(
        receiver.spec.type_,
        &parts.headers,
        &body,
        &token,
        &receiver.spec.events,
    ) {
        Verdict::Reject(why) => {
            tracing::info!(receiver = %id, %peer, reason = %why, "webhook call refused");
            let message = format!("{}: {why}", receiver.spec.type_.as_str());
            refused_event(webhook, &receiver, &id, &message).await;
            text(StatusCode::UNAUTHORIZED, "signature verification failed")
        }
        Verdict::Ignore(why) => {
            tracing::info!(receiver = %id, reason = %why, "webhook call ignored");
            text(StatusCode::OK, &why)
        }
        Verdict::Accept => {
            let value = format!("{:.9}", Timestamp::now());
            let done = trigger::request_reconciles(
                &webhook.client,
                &webhook.kinds,
                &receiver,
                &value,
                webhook.no_cross_namespace_refs,
            )
            .await;
            if done.failures.is_empty() {
                tracing::info!(receiver = %id, objects = done.patched, requested_at = %value, "reconcile requested");
                text(
                    StatusCode::OK,
                    &format!("requested a reconcile of {} object(s)", done.patched),
                )
            } else {
                tracing::warn!(receiver = %id, failures = ?done.failures, "requesting reconciles failed in part");
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!(
                        "requested a reconcile of {} object(s); failed: {}",
                        done.patched,
                        done.failures.join("; ")
                    ),
                )
            }
        }
    }
}

/// Records an `InvalidSignature` Warning on the Receiver, at most once per `event_interval`.
async fn refused_event(webhook: &Webhook, receiver: &Receiver, id: &str, message: &str) {
    let due = match webhook.last_event.lock() {
        Ok(mut last) => {
            let now = Instant::now();
            let due = last
                .get(id)
                .is_none_or(|t| now.duration_since(*t) >= webhook.limits.event_interval);
            if due {
                if last.len() >= 4096 {
                    last.clear();
                }
                last.insert(id.to_owned(), now);
            }
            due
        }
        Err(_) => false,
    };
    if !due {
        return;
    }
    let reference = receiver.object_ref(&());
    weir_runtime::events::publish(
        &webhook.recorder,
        &reference,
        EventType::Warning,
        INVALID_SIGNATURE,
        "Verify",
        message,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_digest_paths_are_routed() {
        let hex = "0123456789abcdef".repeat(4);
        assert!(well_formed(&format!("/hook/{hex}")));
        for bad in [
            format!("/hook/{}", hex.to_uppercase()),
            format!("/hook/{hex}/"),
            format!("/hook/{}", &hex[1..]),
            format!("/hook//{hex}"),
            format!("/hooks/{hex}"),
            "/hook/".to_owned(),
            "/".to_owned(),
        ] {
            assert!(!well_formed(&bad), "{bad}");
        }
    }
}
