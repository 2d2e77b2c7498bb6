//! Writing a commit's tree as a reproducible artifact, straight from the object database.

use gix::objs::tree::EntryKind;
use weir_artifact::{ArchiveBuilder, PackedArtifact};

use crate::{
    error::{Error, Result},
    ignore::{IgnoreRules, SOURCEIGNORE},
};

/// Size bounds on what a repository may put into an artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackLimits {
    /// Largest single file.
    pub max_file_bytes: u64,
    /// Largest total of file contents.
    pub max_total_bytes: u64,
}

impl Default for PackLimits {
    /// 32 MiB per file, 256 MiB in all.
    fn default() -> Self {
        PackLimits {
            max_file_bytes: 32 << 20,
            max_total_bytes: 256 << 20,
        }
    }
}

/// What packing left out, for logs and events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackReport {
    /// Files packed.
    pub files: usize,
    /// Symbolic links skipped (never followed, never packed).
    pub symlinks_skipped: Vec<String>,
    /// Submodules skipped.
    pub submodules_skipped: Vec<String>,
    /// Files excluded by ignore rules.
    pub ignored: usize,
}

/// Packs the tree of `commit` in `repo`, minus what `spec_ignore` (or the default exclusions)
/// and `.sourceignore` files exclude.
pub fn pack_commit(
    repo: &gix::Repository,
    commit: gix::ObjectId,
    spec_ignore: Option<&str>,
    limits: &PackLimits,
) -> Result<(PackedArtifact, PackReport)> {
    let corrupt = |what: &str, e: &dyn std::fmt::Display| Error::Git(format!("{what}: {e}"));
    let tree = repo
        .find_commit(commit)
        .map_err(|e| corrupt("reading the commit", &e))?
        .tree()
        .map_err(|e| corrupt("reading the tree", &e))?;
    let mut recorder = gix::traverse::tree::Recorder::default();
    tree.traverse()
        .breadthfirst(&mut recorder)
        .map_err(|e| corrupt("walking the tree", &e))?;

    // `.sourceignore` files first: they decide about everything else.
    let mut sourceignores = Vec::new();
    for entry in &recorder.records {
        let path = entry.filepath.to_string();
        let name_matches = path == SOURCEIGNORE || path.ends_with(&format!("/{SOURCEIGNORE}"));
        if name_matches
            && matches!(
                entry.mode.kind(),
                EntryKind::Blob | EntryKind::BlobExecutable
            )
        {
            let blob = repo
                .find_blob(entry.oid)
                .map_err(|e| corrupt("reading .sourceignore", &e))?;
            let dir = path
                .rsplit_once('/')
                .map(|(d, _)| d.to_owned())
                .unwrap_or_default();
            sourceignores.push((dir, String::from_utf8_lossy(&blob.data).into_owned()));
        }
    }
    let rules = IgnoreRules::new(
        spec_ignore,
        sourceignores.iter().map(|(d, c)| (d.as_str(), c.as_str())),
    )?;

    let mut report = PackReport::default();
    let mut archive = ArchiveBuilder::new();
    let mut total = 0u64;
    for entry in &recorder.records {
        let path = std::str::from_utf8(entry.filepath.as_ref())
            .map_err(|_| Error::Git(format!("path {:?} is not valid UTF-8", entry.filepath)))?;
        let executable = match entry.mode.kind() {
            EntryKind::Tree => continue,
            EntryKind::Link => {
                report.symlinks_skipped.push(path.to_owned());
                continue;
            }
            EntryKind::Commit => {
                report.submodules_skipped.push(path.to_owned());
                continue;
            }
            EntryKind::Blob => false,
            EntryKind::BlobExecutable => true,
        };
        if rules.is_excluded(path, false) {
            report.ignored += 1;
            continue;
        }
        let size = repo
            .find_header(entry.oid)
            .map_err(|e| corrupt(path, &e))?
            .size();
        if size > limits.max_file_bytes {
            return Err(Error::TooLarge(format!(
                "file {path} is {size} bytes, over the limit of {} bytes per file",
                limits.max_file_bytes
            )));
        }
        total += size;
        if total > limits.max_total_bytes {
            return Err(Error::TooLarge(format!(
                "the files exceed the limit of {} bytes in all (at {path})",
                limits.max_total_bytes
            )));
        }
        let blob = repo.find_blob(entry.oid).map_err(|e| corrupt(path, &e))?;
        archive.add_file(path, blob.data.clone(), executable)?;
        report.files += 1;
    }
    Ok((archive.finish()?, report))
}
