//! Reproducible tar.gz archives: the same files give the same bytes on every machine.
//!
//! Entries are sorted by path; every directory on the way to a file gets its own entry; uid/gid
//! are 0 without user or group names; mtime is 0; modes are 0644 for files, 0755 for executable
//! files and directories; only regular files and directories exist (no links, no devices); the
//! gzip header has mtime 0, no file name and OS "unknown".

use std::{
    collections::BTreeMap,
    fs,
    io::Write,
    path::{Component, Path},
};

use flate2::{Compression, GzBuilder};

use crate::{
    digest::Sha256Writer,
    error::{Error, Result, io},
};

/// A packed artifact: the tar.gz bytes and their digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedArtifact {
    /// The tar.gz.
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    /// Number of regular files in the archive.
    pub files: usize,
}

/// Collects files, then writes them as a reproducible tar.gz.
#[derive(Debug, Default)]
pub struct ArchiveBuilder {
    files: BTreeMap<String, (bool, Vec<u8>)>,
    total: u64,
}

impl ArchiveBuilder {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a regular file at `path` (relative, `/`-separated). Adding a path twice, or a path
    /// that is also a directory of another file, is an error.
    pub fn add_file(&mut self, path: &str, data: Vec<u8>, executable: bool) -> Result<()> {
        let path = normalize(path)?;
        let conflict = self.files.contains_key(&path)
            || self
                .files
                .range(format!("{path}/")..)
                .next()
                .is_some_and(|(k, _)| k.starts_with(&format!("{path}/")))
            || parents(&path).any(|p| self.files.contains_key(p));
        if conflict {
            return Err(Error::DuplicateEntry(path));
        }
        self.total += data.len() as u64;
        self.files.insert(path, (executable, data));
        Ok(())
    }

    /// Adds every regular file below `root` for which `include(relative_path, is_dir)` is true
    /// (a directory for which it is false is not descended into). Symbolic links are never
    /// followed nor packed: the tree is read as it is, and a link is skipped.
    pub fn add_dir(&mut self, root: &Path, include: &dyn Fn(&str, bool) -> bool) -> Result<()> {
        self.add_dir_inner(root, root, include)
    }

    fn add_dir_inner(
        &mut self,
        root: &Path,
        dir: &Path,
        include: &dyn Fn(&str, bool) -> bool,
    ) -> Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .map_err(io("reading directory", dir))?
            .collect::<std::result::Result<_, _>>()
            .map_err(io("reading directory", dir))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(io("reading metadata of", &path))?;
            let rel = path
                .strip_prefix(root)
                .ok()
                .and_then(|p| p.to_str())
                .ok_or_else(|| Error::UnsafePath {
                    path: path.display().to_string(),
                    reason: "not valid UTF-8",
                })?
                .to_owned();
            if meta.is_dir() {
                if include(&rel, true) {
                    self.add_dir_inner(root, &path, include)?;
                }
            } else if meta.is_file() && include(&rel, false) {
                use std::os::unix::fs::PermissionsExt;
                let executable = meta.permissions().mode() & 0o111 != 0;
                let data = fs::read(&path).map_err(io("reading", &path))?;
                self.add_file(&rel, data, executable)?;
            }
        }
        Ok(())
    }

    /// Number of files added so far.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no file was added.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Total bytes of file content added so far.
    pub fn content_size(&self) -> u64 {
        self.total
    }

    /// Writes the archive.
    pub fn finish(self) -> Result<PackedArtifact> {
        let files = self.files.len();
        let gz = GzBuilder::new().mtime(0).operating_system(255).write(
            Sha256Writer::new(Vec::with_capacity(self.total as usize / 3 + 1024)),
            Compression::default(),
        );
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);

        // Directory entries, each once, in the same sorted order as the files.
        let mut entries: BTreeMap<String, Option<(bool, Vec<u8>)>> = BTreeMap::new();
        for (path, content) in self.files {
            for parent in parents(&path) {
                entries.entry(format!("{parent}/")).or_insert(None);
            }
            entries.insert(path, Some(content));
        }
        for (path, content) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            let corrupt =
                |e: std::io::Error| Error::Corrupt(format!("writing tar entry {path:?}: {e}"));
            match content {
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    tar.append_data(&mut header, &path, std::io::empty())
                        .map_err(corrupt)?;
                }
                Some((executable, data)) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(if executable { 0o755 } else { 0o644 });
                    header.set_size(data.len() as u64);
                    tar.append_data(&mut header, &path, data.as_slice())
                        .map_err(corrupt)?;
                }
            }
        }
        let finish = |e: std::io::Error| Error::Corrupt(format!("finishing archive: {e}"));
        let gz = tar.into_inner().map_err(finish)?;
        let mut hashing = gz.finish().map_err(finish)?;
        hashing.flush().map_err(finish)?;
        let (bytes, digest, _) = hashing.finish();
        Ok(PackedArtifact {
            bytes,
            digest,
            files,
        })
    }
}

/// `a/b/c` → `a`, `a/b`.
fn parents(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// Checks that `path` is a plain relative path and returns it `/`-joined without `.` segments.
pub(crate) fn normalize(path: &str) -> Result<String> {
    let unsafe_path = |reason| Error::UnsafePath {
        path: path.to_owned(),
        reason,
    };
    if path.contains('\0') {
        return Err(unsafe_path("contains NUL"));
    }
    if path.contains('\\') {
        return Err(unsafe_path("contains a backslash"));
    }
    let mut parts = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(
                part.to_str()
                    .ok_or_else(|| unsafe_path("not valid UTF-8"))?,
            ),
            Component::CurDir => {}
            Component::ParentDir => return Err(unsafe_path("contains '..'")),
            Component::RootDir | Component::Prefix(_) => return Err(unsafe_path("is absolute")),
        }
    }
    if parts.is_empty() {
        return Err(unsafe_path("is empty"));
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(order: &[(&str, &str, bool)]) -> PackedArtifact {
        let mut b = ArchiveBuilder::new();
        for (path, data, exec) in order {
            b.add_file(path, data.as_bytes().to_vec(), *exec).unwrap();
        }
        b.finish().unwrap()
    }

    #[test]
    fn insertion_order_does_not_change_the_bytes() {
        let files = [
            ("b/x.yaml", "x", false),
            ("a.yaml", "a", false),
            ("b/run.sh", "#!/bin/sh\n", true),
            ("b/c/d", "d", false),
        ];
        let forward = sample(&files);
        let mut reversed = files;
        reversed.reverse();
        assert_eq!(forward, sample(&reversed));
        assert_eq!(forward.files, 4);
        let mut changed = files;
        changed[1].1 = "A";
        assert_ne!(forward.digest, sample(&changed).digest);
    }

    #[test]
    fn headers_are_normalised() {
        let packed = sample(&[
            ("dir/run.sh", "#!/bin/sh\n", true),
            ("dir/a.txt", "a", false),
        ]);
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(packed.bytes.as_slice()));
        let got: Vec<(String, u32, u64, u64, u64, bool)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.username().unwrap().unwrap_or("").is_empty()
                        && h.groupname().unwrap().unwrap_or("").is_empty(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("dir/".into(), 0o755, 0, 0, 0, true),
                ("dir/a.txt".into(), 0o644, 0, 0, 0, true),
                ("dir/run.sh".into(), 0o755, 0, 0, 0, true),
            ]
        );
        // gzip header: magic, deflate, no flags, mtime 0, OS 255.
        assert_eq!(&packed.bytes[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&packed.bytes[4..8], &[0, 0, 0, 0]);
        assert_eq!(packed.bytes[9], 255);
    }

    #[test]
    fn system_tar_reads_the_archive() {
        let packed = sample(&[
            ("deep/er/file.yaml", "k: v\n", false),
            ("long/".repeat(40).trim_end_matches('/'), "x", false),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar.gz");
        std::fs::write(&path, &packed.bytes).unwrap();
        let out = std::process::Command::new("tar")
            .arg("-tzvf")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8(out.stdout).unwrap();
        assert!(listing.contains("deep/er/file.yaml"), "{listing}");
        assert!(
            listing.contains(&"long/".repeat(39)),
            "long names survive: {listing}"
        );
        assert!(
            listing
                .lines()
                .all(|l| l.contains("0/0") && l.contains("1970-01-01")),
            "{listing}"
        );
    }

    #[test]
    fn unsafe_and_conflicting_paths_are_refused() {
        let mut b = ArchiveBuilder::new();
        for bad in ["", ".", "/etc/passwd", "../x", "a/../../x", "a\\b", "a\0b"] {
            assert!(
                matches!(
                    b.add_file(bad, vec![], false),
                    Err(Error::UnsafePath { .. })
                ),
                "{bad:?}"
            );
        }
        b.add_file("./a/b", vec![], false).unwrap();
        assert!(matches!(
            b.add_file("a/b", vec![], false),
            Err(Error::DuplicateEntry(_))
        ));
        assert!(
            matches!(
                b.add_file("a", vec![], false),
                Err(Error::DuplicateEntry(_))
            ),
            "a is a directory"
        );
        assert!(
            matches!(
                b.add_file("a/b/c", vec![], false),
                Err(Error::DuplicateEntry(_))
            ),
            "a/b is a file"
        );
    }

    #[test]
    fn add_dir_skips_symlinks_and_honours_the_filter() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("keep/sub")).unwrap();
        std::fs::create_dir_all(root.join("skip")).unwrap();
        std::fs::write(root.join("keep/a.yaml"), "a").unwrap();
        std::fs::write(root.join("keep/sub/b.yaml"), "b").unwrap();
        std::fs::write(root.join("skip/c.yaml"), "c").unwrap();
        std::fs::write(root.join("keep/d.bin"), "d").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("keep/passwd")).unwrap();
        std::os::unix::fs::symlink("../skip", root.join("keep/link-dir")).unwrap();
        let mut b = ArchiveBuilder::new();
        b.add_dir(root, &|path, is_dir| {
            if is_dir {
                path != "skip"
            } else {
                !path.ends_with(".bin")
            }
        })
        .unwrap();
        let expected = sample(&[("keep/a.yaml", "a", false), ("keep/sub/b.yaml", "b", false)]);
        assert_eq!(b.finish().unwrap(), expected);
    }
}
