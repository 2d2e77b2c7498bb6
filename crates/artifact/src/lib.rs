//! The artifact contract shared by every weir controller (GUIDE §4).
//!
//! A producer packs files into a reproducible tar.gz ([`ArchiveBuilder`]), stores it under a
//! content-addressed name ([`Storage`]), serves the storage root over HTTP ([`server::serve`]) and
//! publishes URL, revision and digest in `status.artifact`. A consumer downloads it with a size
//! limit and checks the digest before use ([`Fetcher`]), then extracts it into a fresh directory,
//! refusing anything that could escape it ([`untar`]).
//!
//! ```
//! use weir_artifact::{ArchiveBuilder, untar, UntarLimits};
//! let mut archive = ArchiveBuilder::new();
//! archive.add_file("deploy/app.yaml", b"kind: ConfigMap\n".to_vec(), false)?;
//! let packed = archive.finish()?;
//! assert!(packed.digest.starts_with("sha256:"));
//! let dir = tempfile::tempdir()?;
//! untar(&packed.bytes, dir.path(), &UntarLimits::default())?;
//! assert_eq!(std::fs::read(dir.path().join("deploy/app.yaml"))?, b"kind: ConfigMap\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod digest;
mod error;
mod fetch;
mod pack;
pub mod server;
mod storage;
mod untar;

pub use digest::{Sha256Writer, sha256_digest};
pub use error::{Error, FetchError, Result};
pub use fetch::{FetchOptions, Fetcher};
pub use pack::{ArchiveBuilder, PackedArtifact};
pub use storage::{ArtifactKey, Retention, Storage, StoredArtifact};
pub use untar::{UntarLimits, UntarStats, untar, untar_under};
