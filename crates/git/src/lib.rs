//! Git sources for weir's source-controller, with [gix](https://docs.rs/gix).
//!
//! 1. [`GitRemote::advertisement`] lists the remote's refs without fetching objects, so an
//!    unchanged ref costs one round trip.
//! 2. [`refs::select`] picks the commit the spec asks for (name > commit > semver > tag >
//!    branch > remote HEAD).
//! 3. [`GitRemote::fetch_commit`] fetches exactly that commit, depth 1, into a temporary bare
//!    repository, and [`pack_commit`] writes its tree, minus ignored paths, as a reproducible
//!    tar.gz without checking anything out. Symbolic links are never followed nor packed.
//!
//! Everything here blocks; call it from `tokio::task::spawn_blocking`. Credentials live only in
//! memory and in files inside the temporary repository, and never appear in errors.

mod error;
pub mod ignore;
pub mod refs;
mod remote;
mod tree;

pub use error::{Error, Result};
pub use remote::{Credentials, GitRemote};
pub use tree::{PackLimits, PackReport, Submodules, pack_commit, pack_commit_recursive};
