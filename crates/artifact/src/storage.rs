//! Content-addressed artifact storage: `<root>/<kind>/<namespace>/<name>/<sha256 hex>.tar.gz`.
//!
//! Files are named after their digest, so any replica holding a file serves the right bytes, an
//! unchanged artifact is stored once, and a consumer can never read a half-written file (writes
//! go to a temporary file in the same directory, are synced, then renamed).

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use crate::{
    PackedArtifact,
    digest::{Sha256Writer, sha256_hex},
    error::{Error, Result, io},
};

const SUFFIX: &str = ".tar.gz";

/// Identifies one object's artifacts: kind (lowercase), namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArtifactKey {
    kind: String,
    namespace: String,
    name: String,
}

impl ArtifactKey {
    /// A key for `kind` (lowercased) / `namespace` / `name`. Every component must be a DNS-1123
    /// subdomain (what Kubernetes allows for kinds, namespaces and names), so no component can be
    /// `..`, contain `/`, or be empty.
    pub fn new(kind: &str, namespace: &str, name: &str) -> Result<Self> {
        let kind = kind.to_ascii_lowercase();
        for part in [kind.as_str(), namespace, name] {
            let ok = !part.is_empty()
                && part.len() <= 253
                && part.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                })
                && part
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric())
                && part
                    .bytes()
                    .last()
                    .is_some_and(|b| b.is_ascii_alphanumeric())
                && !part.contains("..");
            if !ok {
                return Err(Error::InvalidKey(part.to_owned()));
            }
        }
        Ok(ArtifactKey {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    /// `<kind>/<namespace>/<name>`.
    pub fn dir(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }

    /// `<kind>/<namespace>/<name>/<hex>.tar.gz` for a `sha256:<hex>` digest.
    pub fn file(&self, digest: &str) -> Result<String> {
        let hex = sha256_hex(digest).ok_or_else(|| Error::InvalidKey(digest.to_owned()))?;
        Ok(format!("{}/{hex}{SUFFIX}", self.dir()))
    }
}

/// How many superseded artifacts to keep, and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Superseded artifacts kept besides the current one.
    pub max_history: usize,
    /// Superseded artifacts older than this are removed.
    pub max_age: Duration,
}

impl Default for Retention {
    /// Two superseded artifacts for at most one hour: long enough for consumers that are a
    /// reconcile behind to finish their download.
    fn default() -> Self {
        Retention {
            max_history: 2,
            max_age: Duration::from_secs(3600),
        }
    }
}

/// A stored artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredArtifact {
    /// Path relative to the storage root (also the URL path).
    pub relative_path: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

/// The storage root of one controller.
#[derive(Clone, Debug)]
pub struct Storage {
    root: PathBuf,
    retention: Retention,
}

impl Storage {
    /// Opens (creating if needed) storage rooted at `root`.
    pub fn new(root: impl Into<PathBuf>, retention: Retention) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(io("creating storage root", &root))?;
        Ok(Storage { root, retention })
    }

    /// The storage root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stores `artifact` for `key`; storing the same bytes again only refreshes the file's
    /// modification time (which garbage collection reads as "last made current").
    pub fn store(&self, key: &ArtifactKey, artifact: &PackedArtifact) -> Result<StoredArtifact> {
        let relative_path = key.file(&artifact.digest)?;
        let path = self.root.join(&relative_path);
        let dir = self.root.join(key.dir());
        fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        if self.verify(key, &artifact.digest)? {
            let file = fs::File::options()
                .append(true)
                .open(&path)
                .map_err(io("opening", &path))?;
            file.set_modified(SystemTime::now())
                .map_err(io("touching", &path))?;
        } else {
            let mut tmp =
                tempfile::NamedTempFile::new_in(&dir).map_err(io("creating temp file in", &dir))?;
            tmp.write_all(&artifact.bytes)
                .map_err(io("writing", tmp.path().to_owned()))?;
            tmp.as_file()
                .sync_all()
                .map_err(io("syncing", tmp.path().to_owned()))?;
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
                .map_err(io("chmod", tmp.path().to_owned()))?;
            tmp.persist(&path)
                .map_err(|e| io("renaming into", &path)(e.error))?;
        }
        Ok(StoredArtifact {
            relative_path,
            digest: artifact.digest.clone(),
            size: artifact.bytes.len() as u64,
        })
    }

    /// Whether a file for `digest` exists (cheap: no hashing; see [`Storage::verify`]).
    pub fn contains(&self, key: &ArtifactKey, digest: &str) -> bool {
        key.file(digest)
            .is_ok_and(|rel| self.root.join(rel).is_file())
    }

    /// Whether the file for `digest` exists and its content still hashes to `digest`.
    pub fn verify(&self, key: &ArtifactKey, digest: &str) -> Result<bool> {
        let path = self.root.join(key.file(digest)?);
        let mut file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io("opening", &path)(e)),
        };
        let mut hasher = Sha256Writer::new(std::io::sink());
        std::io::copy(&mut file, &mut hasher).map_err(io("reading", &path))?;
        Ok(hasher.finish().1 == digest)
    }

    /// Removes superseded artifacts of `key` beyond the retention (count and age); `current` is
    /// never removed, nor are temporary files still being written. Returns the removed paths.
    pub fn collect_garbage(&self, key: &ArtifactKey, current: &str) -> Result<Vec<PathBuf>> {
        let keep = key.file(current)?;
        let keep_name = keep.rsplit('/').next().unwrap_or_default().to_owned();
        let dir = self.root.join(key.dir());
        let mut others: Vec<(SystemTime, PathBuf)> = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("reading", &dir)(e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == keep_name || !name.ends_with(SUFFIX) {
                continue;
            }
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            others.push((modified, entry.path()));
        }
        others.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
        let now = SystemTime::now();
        let mut removed = Vec::new();
        for (i, (modified, path)) in others.into_iter().enumerate() {
            let too_old = now.duration_since(modified).unwrap_or_default() > self.retention.max_age;
            if i >= self.retention.max_history || too_old {
                fs::remove_file(&path).map_err(io("removing", &path))?;
                removed.push(path);
            }
        }
        Ok(removed)
    }

    /// Removes every artifact of `key` (the object was deleted).
    pub fn remove_all(&self, key: &ArtifactKey) -> Result<()> {
        let dir = self.root.join(key.dir());
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("removing", &dir)(e)),
        }
    }

    /// The URL of a stored artifact given the advertised base, e.g. `http://source-controller.weir-system.svc.cluster.local.`.
    pub fn url(base: &str, stored: &StoredArtifact) -> String {
        format!("{}/{}", base.trim_end_matches('/'), stored.relative_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ArchiveBuilder;

    fn packed(content: &str) -> PackedArtifact {
        let mut b = ArchiveBuilder::new();
        b.add_file("f", content.as_bytes().to_vec(), false).unwrap();
        b.finish().unwrap()
    }

    fn key() -> ArtifactKey {
        ArtifactKey::new("GitRepository", "default", "podinfo").unwrap()
    }

    #[test]
    fn keys_accept_kubernetes_names_only() {
        assert_eq!(key().dir(), "gitrepository/default/podinfo");
        for (k, ns, n) in [
            ("x", "..", "a"),
            ("x", "a/b", "c"),
            ("x", "", "c"),
            ("x", "ns", "-a"),
            ("x", "ns", "a..b"),
            ("x", "NS", "a"),
        ] {
            assert!(ArtifactKey::new(k, ns, n).is_err(), "{k}/{ns}/{n}");
        }
        assert!(key().file("sha256:../../etc").is_err());
    }

    #[test]
    fn store_is_content_addressed_and_verifiable() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(dir.path(), Retention::default()).unwrap();
        let a = packed("a");
        let stored = storage.store(&key(), &a).unwrap();
        assert_eq!(
            stored.relative_path,
            format!("gitrepository/default/podinfo/{}.tar.gz", &a.digest[7..])
        );
        assert_eq!(
            fs::read(dir.path().join(&stored.relative_path)).unwrap(),
            a.bytes
        );
        assert!(storage.verify(&key(), &a.digest).unwrap());
        assert_eq!(
            storage.store(&key(), &a).unwrap(),
            stored,
            "storing again is idempotent"
        );
        // Tampering is detected.
        fs::write(dir.path().join(&stored.relative_path), b"tampered").unwrap();
        assert!(!storage.verify(&key(), &a.digest).unwrap());
        storage.store(&key(), &a).unwrap();
        assert!(
            storage.verify(&key(), &a.digest).unwrap(),
            "storing repairs a damaged file"
        );
        assert_eq!(
            Storage::url("http://svc./", &stored),
            format!("http://svc./{}", stored.relative_path)
        );
    }

    #[test]
    fn garbage_collection_keeps_current_and_bounded_history() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(
            dir.path(),
            Retention {
                max_history: 2,
                max_age: Duration::from_secs(3600),
            },
        )
        .unwrap();
        let versions: Vec<PackedArtifact> = (0..5).map(|i| packed(&i.to_string())).collect();
        for (i, v) in versions.iter().enumerate() {
            let s = storage.store(&key(), v).unwrap();
            // Distinct, increasing modification times.
            let f = fs::File::options()
                .append(true)
                .open(dir.path().join(&s.relative_path))
                .unwrap();
            f.set_modified(SystemTime::now() - Duration::from_secs(100 - i as u64))
                .unwrap();
        }
        // The oldest is current (e.g. a revert): it stays, and so do the two newest others.
        let removed = storage
            .collect_garbage(&key(), &versions[0].digest)
            .unwrap();
        assert_eq!(removed.len(), 2);
        for (i, v) in versions.iter().enumerate() {
            assert_eq!(
                storage.verify(&key(), &v.digest).unwrap(),
                [0, 3, 4].contains(&i),
                "version {i}"
            );
        }
        // Age: everything but current goes once older than max_age.
        let storage = Storage::new(
            dir.path(),
            Retention {
                max_history: 10,
                max_age: Duration::from_secs(10),
            },
        )
        .unwrap();
        storage
            .collect_garbage(&key(), &versions[4].digest)
            .unwrap();
        assert!(storage.verify(&key(), &versions[4].digest).unwrap());
        assert!(!storage.verify(&key(), &versions[3].digest).unwrap());
        assert!(!storage.verify(&key(), &versions[0].digest).unwrap());

        storage.remove_all(&key()).unwrap();
        assert!(!dir.path().join(key().dir()).exists());
        storage.remove_all(&key()).unwrap();
    }
}
