//! Writing a commit's tree as a reproducible artifact, straight from the object database.

use std::time::Duration;

use gix::objs::tree::EntryKind;
use weir_artifact::{ArchiveBuilder, PackedArtifact};

use crate::{
    Credentials, GitRemote,
    error::{Error, Result},
    ignore::{IgnoreRules, SOURCEIGNORE},
    refs::Selection,
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

/// How to fetch submodules when packing with [`pack_commit_recursive`].
pub struct Submodules<'a> {
    /// The superproject's URL; relative submodule URLs resolve against it.
    pub parent_url: &'a str,
    /// Used for every submodule remote too.
    pub credentials: &'a Credentials,
    /// Bound of each submodule fetch.
    pub timeout: Duration,
    /// Nesting depth allowed (a submodule's submodules count one level deeper).
    pub max_depth: usize,
}

/// Packs the tree of `commit` in `repo`, minus what `spec_ignore` (or the default exclusions)
/// and `.sourceignore` files exclude. Submodules are skipped (listed in the report).
pub fn pack_commit(
    repo: &gix::Repository,
    commit: gix::ObjectId,
    spec_ignore: Option<&str>,
    limits: &PackLimits,
) -> Result<(PackedArtifact, PackReport)> {
    pack(repo, commit, spec_ignore, limits, None)
}

/// Like [`pack_commit`], but fetches each submodule at the commit the tree records (depth 1,
/// same credentials) and packs its files under the submodule's path.
pub fn pack_commit_recursive(
    repo: &gix::Repository,
    commit: gix::ObjectId,
    spec_ignore: Option<&str>,
    limits: &PackLimits,
    submodules: &Submodules<'_>,
) -> Result<(PackedArtifact, PackReport)> {
    pack(repo, commit, spec_ignore, limits, Some(submodules))
}

/// A file found while walking, not read yet.
struct Found {
    path: String,
    executable: bool,
    oid: gix::ObjectId,
    /// Index into the repositories being packed (0: the superproject).
    repo: usize,
}

fn pack(
    repo: &gix::Repository,
    commit: gix::ObjectId,
    spec_ignore: Option<&str>,
    limits: &PackLimits,
    submodules: Option<&Submodules<'_>>,
) -> Result<(PackedArtifact, PackReport)> {
    let mut report = PackReport::default();
    let mut remotes: Vec<GitRemote> = Vec::new();
    let mut repos = vec![repo.clone()];
    let mut found = Vec::new();
    let mut sourceignores = Vec::new();
    let parent_url = submodules
        .map(|s| s.parent_url.to_owned())
        .unwrap_or_default();
    walk(
        &mut repos,
        &mut remotes,
        0,
        commit,
        "",
        &parent_url,
        0,
        submodules,
        &mut found,
        &mut sourceignores,
        &mut report,
    )?;

    let rules = IgnoreRules::new(
        spec_ignore,
        sourceignores.iter().map(|(d, c)| (d.as_str(), c.as_str())),
    )?;
    let mut archive = ArchiveBuilder::new();
    let mut total = 0u64;
    for file in found {
        if rules.is_excluded(&file.path, false) {
            report.ignored += 1;
            continue;
        }
        let repo = &repos[file.repo];
        let size = repo
            .find_header(file.oid)
            .map_err(|e| Error::Git(format!("{}: {e}", file.path)))?
            .size();
        if size > limits.max_file_bytes {
            return Err(Error::TooLarge(format!(
                "file {} is {size} bytes, over the limit of {} bytes per file",
                file.path, limits.max_file_bytes
            )));
        }
        total += size;
        if total > limits.max_total_bytes {
            return Err(Error::TooLarge(format!(
                "the files exceed the limit of {} bytes in all (at {})",
                limits.max_total_bytes, file.path
            )));
        }
        let blob = repo
            .find_blob(file.oid)
            .map_err(|e| Error::Git(format!("{}: {e}", file.path)))?;
        archive.add_file(&file.path, blob.data.clone(), file.executable)?;
        report.files += 1;
    }
    drop(remotes);
    Ok((archive.finish()?, report))
}

/// Records the files of `commit` (in `repos[index]`) under `prefix`, fetching submodules when
/// asked.
#[allow(clippy::too_many_arguments)]
fn walk(
    repos: &mut Vec<gix::Repository>,
    remotes: &mut Vec<GitRemote>,
    index: usize,
    commit: gix::ObjectId,
    prefix: &str,
    url: &str,
    depth: usize,
    submodules: Option<&Submodules<'_>>,
    found: &mut Vec<Found>,
    sourceignores: &mut Vec<(String, String)>,
    report: &mut PackReport,
) -> Result<()> {
    let corrupt = |what: &str, e: &dyn std::fmt::Display| Error::Git(format!("{what}: {e}"));
    let repo = repos[index].clone();
    let tree = repo
        .find_commit(commit)
        .map_err(|e| corrupt("reading the commit", &e))?
        .tree()
        .map_err(|e| corrupt("reading the tree", &e))?;
    let mut recorder = gix::traverse::tree::Recorder::default();
    tree.traverse()
        .breadthfirst(&mut recorder)
        .map_err(|e| corrupt("walking the tree", &e))?;
    let mut gitmodules = None;
    for entry in &recorder.records {
        let rel = std::str::from_utf8(entry.filepath.as_ref())
            .map_err(|_| Error::Git(format!("path {:?} is not valid UTF-8", entry.filepath)))?;
        let path = if prefix.is_empty() {
            rel.to_owned()
        } else {
            format!("{prefix}/{rel}")
        };
        let executable = match entry.mode.kind() {
            EntryKind::Tree => continue,
            EntryKind::Link => {
                report.symlinks_skipped.push(path);
                continue;
            }
            EntryKind::Commit => {
                match submodules {
                    Some(subs) if depth < subs.max_depth => {
                        let gitmodules = match &gitmodules {
                            Some(g) => g,
                            None => gitmodules.insert(read_gitmodules(&repo, &recorder)?),
                        };
                        let sub_url = gitmodules
                            .iter()
                            .find(|(p, _)| p == rel)
                            .map(|(_, u)| resolve_url(url, u))
                            .ok_or_else(|| {
                                Error::Git(format!("submodule {path} has no url in .gitmodules"))
                            })??;
                        let remote = GitRemote::new(&sub_url, subs.credentials, subs.timeout)?;
                        let selection = Selection {
                            refname: None,
                            commit: entry.oid.to_string(),
                            revision: String::new(),
                        };
                        let sub_commit = remote.fetch_commit(&selection).map_err(|e| match e {
                            Error::RefNotFound(m) => {
                                Error::RefNotFound(format!("submodule {path}: {m}"))
                            }
                            other => other,
                        })?;
                        repos.push(remote.repository());
                        remotes.push(remote);
                        let sub_index = repos.len() - 1;
                        walk(
                            repos,
                            remotes,
                            sub_index,
                            sub_commit,
                            &path,
                            &sub_url,
                            depth + 1,
                            submodules,
                            found,
                            sourceignores,
                            report,
                        )?;
                    }
                    _ => report.submodules_skipped.push(path),
                }
                continue;
            }
            EntryKind::Blob => false,
            EntryKind::BlobExecutable => true,
        };
        let name_matches = path == SOURCEIGNORE || path.ends_with(&format!("/{SOURCEIGNORE}"));
        if name_matches {
            let blob = repo
                .find_blob(entry.oid)
                .map_err(|e| corrupt("reading .sourceignore", &e))?;
            let dir = path
                .rsplit_once('/')
                .map(|(d, _)| d.to_owned())
                .unwrap_or_default();
            sourceignores.push((dir, String::from_utf8_lossy(&blob.data).into_owned()));
        }
        found.push(Found {
            path,
            executable,
            oid: entry.oid,
            repo: index,
        });
    }
    Ok(())
}

/// `(path, url)` of each submodule declared in the tree's root `.gitmodules`.
fn read_gitmodules(
    repo: &gix::Repository,
    recorder: &gix::traverse::tree::Recorder,
) -> Result<Vec<(String, String)>> {
    let Some(entry) = recorder
        .records
        .iter()
        .find(|e| e.filepath == ".gitmodules")
    else {
        return Ok(Vec::new());
    };
    let blob = repo
        .find_blob(entry.oid)
        .map_err(|e| Error::Git(format!("reading .gitmodules: {e}")))?;
    Ok(parse_gitmodules(&String::from_utf8_lossy(&blob.data)))
}

/// Parses the `path` and `url` of each `[submodule "…"]` section.
fn parse_gitmodules(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let (mut path, mut url) = (None::<String>, None::<String>);
    let mut flush = |path: &mut Option<String>, url: &mut Option<String>| {
        if let (Some(p), Some(u)) = (path.take(), url.take()) {
            out.push((p, u));
        }
    };
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            flush(&mut path, &mut url);
        } else if let Some((key, value)) = line.split_once('=') {
            let value = value.trim().trim_matches('"').to_owned();
            match key.trim() {
                "path" => path = Some(value),
                "url" => url = Some(value),
                _ => {}
            }
        }
    }
    flush(&mut path, &mut url);
    out
}

/// Resolves a submodule URL against its superproject's, as git does: `../x.git` is a sibling
/// of the superproject. A remote superproject may not point at local `file://` paths.
fn resolve_url(parent: &str, url: &str) -> Result<String> {
    let resolved = if url.starts_with("./") || url.starts_with("../") {
        let mut base = parent.trim_end_matches('/').to_owned();
        let mut rest = url;
        loop {
            if let Some(r) = rest.strip_prefix("./") {
                rest = r;
            } else if let Some(r) = rest.strip_prefix("../") {
                let cut = base.rfind('/').filter(|i| !base[..*i].ends_with('/'));
                let cut = cut.ok_or_else(|| {
                    Error::InvalidSpec(format!("submodule url {url} climbs above {parent}"))
                })?;
                base.truncate(cut);
                rest = r;
            } else {
                break;
            }
        }
        format!("{base}/{rest}")
    } else {
        url.to_owned()
    };
    if resolved.starts_with("file://") && !parent.starts_with("file://") {
        return Err(Error::InvalidSpec(format!(
            "submodule url {resolved}: a remote repository may not name local files"
        )));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitmodules_and_relative_urls() {
        let text = "[submodule \"lib\"]\n\tpath = vendor/lib\n\turl = ../lib.git\n[submodule \"x\"]\n\turl = https://h/x.git\n\tpath = x\n";
        assert_eq!(
            parse_gitmodules(text),
            [
                ("vendor/lib".to_owned(), "../lib.git".to_owned()),
                ("x".to_owned(), "https://h/x.git".to_owned())
            ]
        );
        assert_eq!(
            resolve_url("https://h/org/app.git", "../lib.git").unwrap(),
            "https://h/org/lib.git"
        );
        assert_eq!(
            resolve_url("https://h/org/app.git", "../../other/lib.git").unwrap(),
            "https://h/other/lib.git"
        );
        assert_eq!(
            resolve_url("file:///srv/app.git", "./sub.git").unwrap(),
            "file:///srv/app.git/sub.git"
        );
        assert_eq!(
            resolve_url("https://h/a.git", "ssh://git@h/b.git").unwrap(),
            "ssh://git@h/b.git"
        );
        assert!(
            resolve_url("https://h/a.git", "file:///etc/secrets.git").is_err(),
            "remote may not read local files"
        );
        assert!(resolve_url("https://h/a.git", "../../../../x.git").is_err());
    }
}
