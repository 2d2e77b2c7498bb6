//! Extracting an untrusted tar.gz into a directory without letting it escape.

use std::{
    fs,
    io::{Read, Write},
    os::unix::fs::PermissionsExt,
    path::Path,
};

use crate::{
    error::{Error, Result, io},
    pack::normalize,
};

/// Bounds on what an archive may unpack to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UntarLimits {
    /// Total bytes of file content.
    pub max_total_bytes: u64,
    /// Bytes of a single file.
    pub max_file_bytes: u64,
    /// Number of entries (files and directories).
    pub max_entries: u64,
}

impl Default for UntarLimits {
    /// 512 MiB in all, 64 MiB per file, 100,000 entries.
    fn default() -> Self {
        UntarLimits {
            max_total_bytes: 512 << 20,
            max_file_bytes: 64 << 20,
            max_entries: 100_000,
        }
    }
}

/// What an extraction wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UntarStats {
    /// Regular files written.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// Extracts the tar.gz `archive` into `dest`, which must exist and be empty.
///
/// Refuses, with an error and before writing the offending entry: absolute paths, `..`,
/// symbolic and hard links, devices, FIFOs, duplicate paths, and anything over `limits`
/// (counted on the bytes actually decompressed, not on what headers claim). Modes are reduced to
/// 0644/0755. On error the caller should discard `dest`: it may hold a partial tree.
pub fn untar(archive: &[u8], dest: &Path, limits: &UntarLimits) -> Result<UntarStats> {
    untar_under(archive, dest, limits, Path::new(""))
}

/// Like [`untar`], but writes only the entries at or below `prefix` (a relative path inside the
/// archive; empty for everything). Every entry is still checked — a link or device anywhere in
/// the archive is refused — but content outside `prefix` is skipped without being written or
/// counted against the size limits. Consumers that need one directory of a large artifact use
/// this instead of unpacking all of it.
pub fn untar_under(
    archive: &[u8],
    dest: &Path,
    limits: &UntarLimits,
    prefix: &Path,
) -> Result<UntarStats> {
    let not_empty = fs::read_dir(dest)
        .map_err(io("reading", dest))?
        .next()
        .is_some();
    if not_empty {
        return Err(Error::Io {
            action: "extracting into non-empty directory",
            path: dest.to_owned(),
            source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        });
    }
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let mut stats = UntarStats::default();
    let entries = tar.entries().map_err(|e| Error::Corrupt(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Corrupt(e.to_string()))?;
        if stats.files + stats.dirs >= limits.max_entries {
            return Err(Error::LimitExceeded {
                what: "entry count",
                limit: limits.max_entries,
            });
        }
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            return Err(Error::ForbiddenEntry {
                path: raw_path,
                kind: format!("{kind:?}"),
            });
        }
        let rel = match normalize(&raw_path) {
            Ok(rel) => rel,
            // A bare "./" directory entry is harmless.
            Err(_)
                if kind.is_dir()
                    && raw_path
                        .trim_end_matches('/')
                        .trim_start_matches("./")
                        .is_empty() =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        if !prefix.as_os_str().is_empty() && !Path::new(&rel).starts_with(prefix) {
            continue;
        }
        let target = dest.join(&rel);
        // Parents are created from the archive's own (checked) names only, and never through a
        // link: nothing in `dest` can be a link since only files and directories are written.
        if kind.is_dir() {
            if !target.is_dir() {
                // Parents may be missing when an ancestor lies outside `prefix`.
                fs::create_dir_all(&target).map_err(io("creating directory", &target))?;
                stats.dirs += 1;
            }
            continue;
        }
        if entry.header().size().unwrap_or(0) > limits.max_file_bytes {
            return Err(Error::LimitExceeded {
                what: "file size",
                limit: limits.max_file_bytes,
            });
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io("creating directory", parent))?;
        }
        let mut file = match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::DuplicateEntry(rel));
            }
            Err(e) => return Err(io("creating", &target)(e)),
        };
        let executable = entry.header().mode().unwrap_or(0) & 0o111 != 0;
        let budget = limits
            .max_file_bytes
            .min(limits.max_total_bytes - stats.bytes);
        let mut buf = [0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| Error::Corrupt(format!("reading {rel:?}: {e}")))?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > budget {
                let (what, limit) = if budget == limits.max_file_bytes {
                    ("file size", limits.max_file_bytes)
                } else {
                    ("total size", limits.max_total_bytes)
                };
                return Err(Error::LimitExceeded { what, limit });
            }
            file.write_all(&buf[..n]).map_err(io("writing", &target))?;
        }
        let mode = if executable { 0o755 } else { 0o644 };
        fs::set_permissions(&target, fs::Permissions::from_mode(mode))
            .map_err(io("setting mode of", &target))?;
        stats.files += 1;
        stats.bytes += written;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ArchiveBuilder;

    /// A tar.gz written entry by entry with raw headers, so it can hold what a well-behaved
    /// producer never writes.
    fn raw_archive(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            if let Some(link) = link {
                let l = &mut h.as_old_mut().linkname;
                l[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    fn extract(archive: &[u8], limits: &UntarLimits) -> (tempfile::TempDir, Result<UntarStats>) {
        let dir = tempfile::tempdir().unwrap();
        let r = untar(archive, dir.path(), limits);
        (dir, r)
    }

    #[test]
    fn untar_under_writes_only_the_prefix_but_checks_everything() {
        let mut b = ArchiveBuilder::new();
        b.add_file("apps/a/cm.yaml", b"a".to_vec(), false).unwrap();
        b.add_file("apps/ab/cm.yaml", b"ab".to_vec(), false)
            .unwrap();
        b.add_file("apps/b/cm.yaml", vec![b'x'; 100], false)
            .unwrap();
        let bytes = b.finish().unwrap().bytes;
        let dir = tempfile::tempdir().unwrap();
        let limits = UntarLimits {
            max_total_bytes: 10,
            ..UntarLimits::default()
        };
        let stats = untar_under(&bytes, dir.path(), &limits, Path::new("apps/a")).unwrap();
        assert_eq!(stats.files, 1);
        assert_eq!(fs::read(dir.path().join("apps/a/cm.yaml")).unwrap(), b"a");
        assert!(!dir.path().join("apps/ab").exists());
        assert!(!dir.path().join("apps/b").exists());
        // A link outside the prefix still makes the whole artifact unacceptable.
        let evil = raw_archive(&[
            ("apps/a/cm.yaml", tar::EntryType::Regular, b"a", None),
            ("other/l", tar::EntryType::Symlink, b"", Some("/etc/passwd")),
        ]);
        let dir = tempfile::tempdir().unwrap();
        assert!(untar_under(&evil, dir.path(), &limits, Path::new("apps/a")).is_err());
    }

    #[test]
    fn round_trips_a_packed_tree() {
        let mut b = ArchiveBuilder::new();
        b.add_file("a.yaml", b"a".to_vec(), false).unwrap();
        b.add_file("bin/run", b"#!/bin/sh".to_vec(), true).unwrap();
        let (dir, r) = extract(&b.finish().unwrap().bytes, &UntarLimits::default());
        assert_eq!(
            r.unwrap(),
            UntarStats {
                files: 2,
                dirs: 1,
                bytes: 10
            }
        );
        assert_eq!(fs::read(dir.path().join("a.yaml")).unwrap(), b"a");
        let mode = fs::metadata(dir.path().join("bin/run"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o755);
    }

    #[test]
    fn refuses_escapes_and_links() {
        use tar::EntryType::*;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "parent dir",
                raw_archive(&[("../evil", Regular, b"x", None)]),
            ),
            (
                "nested parent dir",
                raw_archive(&[("a/../../evil", Regular, b"x", None)]),
            ),
            (
                "absolute",
                raw_archive(&[("/tmp/evil", Regular, b"x", None)]),
            ),
            (
                "symlink",
                raw_archive(&[("link", Symlink, b"", Some("/etc/passwd"))]),
            ),
            (
                "hard link",
                raw_archive(&[("link", Link, b"", Some("/etc/passwd"))]),
            ),
            ("device", raw_archive(&[("dev", Char, b"", None)])),
            ("fifo", raw_archive(&[("fifo", Fifo, b"", None)])),
            (
                "duplicate",
                raw_archive(&[("a", Regular, b"1", None), ("a", Regular, b"2", None)]),
            ),
        ];
        for (name, archive) in cases {
            let (dir, r) = extract(&archive, &UntarLimits::default());
            assert!(r.is_err(), "{name}: accepted");
            assert!(
                !dir.path().parent().unwrap().join("evil").exists(),
                "{name}: escaped"
            );
            assert!(!dir.path().join("link").exists(), "{name}: wrote a link");
        }
    }

    #[test]
    fn enforces_limits_on_real_bytes() {
        let big = vec![7u8; 10_000];
        let archive = raw_archive(&[
            ("a", tar::EntryType::Regular, &big, None),
            ("b", tar::EntryType::Regular, &big, None),
        ]);
        let limits = |file, total, entries| UntarLimits {
            max_file_bytes: file,
            max_total_bytes: total,
            max_entries: entries,
        };
        assert!(matches!(
            extract(&archive, &limits(9_999, 1 << 20, 10)).1,
            Err(Error::LimitExceeded {
                what: "file size",
                ..
            })
        ));
        assert!(matches!(
            extract(&archive, &limits(1 << 20, 15_000, 10)).1,
            Err(Error::LimitExceeded {
                what: "total size",
                ..
            })
        ));
        assert!(matches!(
            extract(&archive, &limits(1 << 20, 1 << 20, 1)).1,
            Err(Error::LimitExceeded {
                what: "entry count",
                ..
            })
        ));
        assert_eq!(
            extract(&archive, &limits(10_000, 20_000, 2))
                .1
                .unwrap()
                .bytes,
            20_000
        );
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let mut b = ArchiveBuilder::new();
        b.add_file("a", vec![1; 5000], false).unwrap();
        let good = b.finish().unwrap().bytes;
        for bad in [
            b"not a gzip".to_vec(),
            good[..good.len() / 2].to_vec(),
            vec![],
        ] {
            let (_dir, r) = extract(&bad, &UntarLimits::default());
            assert!(r.is_err());
        }
    }

    #[test]
    fn refuses_a_non_empty_destination() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("x"), "").unwrap();
        assert!(
            untar(
                &ArchiveBuilder::new().finish().unwrap().bytes,
                dir.path(),
                &UntarLimits::default()
            )
            .is_err()
        );
    }
}
