//! Kubernetes Events, written the same way by every controller: one line of note, bounded, and a
//! failure to publish logged rather than failing the reconcile.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};

/// The longest note an Event carries, in characters.
pub const MAX_NOTE_CHARS: usize = 1024;

/// Publishes an Event about `reference` (`action` e.g. `Reconcile`); the note is cut to
/// [`MAX_NOTE_CHARS`]. An Event is best effort: failing to write one only logs a warning.
pub async fn publish(
    recorder: &Recorder,
    reference: &ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note.chars().take(MAX_NOTE_CHARS).collect()),
        action: action.to_owned(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, reference).await {
        tracing::warn!(error = %e, "publishing event failed");
    }
}
