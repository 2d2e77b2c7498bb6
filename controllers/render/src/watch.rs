//! Watching the sources Renders use, of whatever kind, so a new source artifact triggers exactly
//! the Renders that read it.
//!
//! Every reconcile records which source its Render reads and the source artifact (revision and
//! digest) it saw ([`SourceWatches::track`], [`SourceWatches::saw`]). The first Render to name a
//! kind starts one cluster-wide watch of that kind (discovered at run time, so any producer kind
//! works). When a watched source shows an artifact that a Render reading it has not seen, that
//! Render is sent to the controller's trigger stream. Suppressing events whose artifact the
//! Render already saw keeps status-only churn on sources (conditions, progress) from causing
//! renders.
//!
//! Deleted Renders are forgotten through [`SourceWatches::untrack`]; a watch, once started, runs
//! until shutdown (kinds are few).

use weir_api::Render;

pub use weir_runtime::sources::ConsumerKey as RenderKey;

/// The source index and its watches, for Renders (see [`weir_runtime::sources`]).
pub type SourceWatches = weir_runtime::sources::SourceWatches<Render>;
