//! Reading files under load restrictions.
//!
//! Two boundaries apply. The *sandbox* (the artifact or repository root, when set) can never be
//! left, whatever the options. Inside it, kustomize's rule holds: with
//! [`LoadRestrictor::RootOnly`] (the default) a file a kustomization reads — a resource file, a
//! patch, a generator input — must lie in or below that kustomization's own directory; other
//! kustomization *directories* (`../base`) may be anywhere in the sandbox.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// kustomize's `--load-restrictor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadRestrictor {
    /// Files must be in or below the kustomization's directory.
    #[default]
    RootOnly,
    /// Files may be anywhere (still inside the sandbox).
    None,
}

impl std::str::FromStr for LoadRestrictor {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "LoadRestrictionsRootOnly" | "rootOnly" => Ok(LoadRestrictor::RootOnly),
            "LoadRestrictionsNone" | "none" => Ok(LoadRestrictor::None),
            other => Err(format!(
                "unknown load restrictor '{other}' (want LoadRestrictionsRootOnly or LoadRestrictionsNone)"
            )),
        }
    }
}

/// Size limits for one build.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest single file read.
    pub max_file_bytes: u64,
    /// Most bytes read over the whole build.
    pub max_total_bytes: u64,
    /// Most objects in the result.
    pub max_objects: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 16 << 20,
            max_total_bytes: 256 << 20,
            max_objects: 100_000,
        }
    }
}

/// Reads files for one kustomization directory.
#[derive(Debug, Clone)]
pub struct Loader {
    root: PathBuf,
    sandbox: Option<PathBuf>,
    display_base: PathBuf,
    restrictor: LoadRestrictor,
    limits: Limits,
    total: Arc<AtomicU64>,
}

/// Whether a reference names a remote location (URL, git address) rather than a local path.
pub fn is_remote(reference: &str) -> bool {
    let r = reference.trim();
    r.contains("://")
        || r.starts_with("git@")
        || r.starts_with("github.com/")
        || r.starts_with("gitlab.com/")
        || r.starts_with("bitbucket.org/")
        || r.contains("?ref=")
        || r.contains("?version=")
        || r.contains("?timeout=")
        || r.contains("?submodules=")
}

impl Loader {
    /// A loader rooted at `dir` (which must be a directory). `sandbox`, when given, is a
    /// directory nothing may escape.
    pub fn new(
        dir: &Path,
        sandbox: Option<&Path>,
        restrictor: LoadRestrictor,
        limits: Limits,
    ) -> Result<Loader> {
        let root = canonical(dir, &dir.display().to_string())?;
        if !root.is_dir() {
            return Err(Error::Io {
                path: dir.display().to_string(),
                message: "must build at directory: not a directory".into(),
            });
        }
        let sandbox = match sandbox {
            Some(s) => Some(canonical(s, &s.display().to_string())?),
            None => None,
        };
        if let Some(sb) = &sandbox
            && !root.starts_with(sb)
        {
            return Err(Error::Escape {
                path: dir.display().to_string(),
                root: sb.display().to_string(),
            });
        }
        let display_base = match &sandbox {
            Some(sb) => sb.clone(),
            None => root.clone(),
        };
        Ok(Loader {
            root,
            sandbox,
            display_base,
            restrictor,
            limits,
            total: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The kustomization directory (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The load restrictor in force.
    pub fn restrictor(&self) -> LoadRestrictor {
        self.restrictor
    }

    /// A path for messages: relative to the sandbox (or the top build directory).
    pub fn display(&self, path: &Path) -> String {
        match path.strip_prefix(&self.display_base) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
            Ok(rel) => rel.display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }

    /// Resolves a reference to an existing path, checking the sandbox (not the root restriction).
    pub fn resolve(&self, reference: &str) -> Result<PathBuf> {
        if is_remote(reference) {
            return Err(Error::Remote(reference.to_string()));
        }
        let joined = self.root.join(reference);
        let shown = self.display(&lexical_clean(&joined));
        let path = canonical(&joined, &shown)?;
        if let Some(sb) = &self.sandbox
            && !path.starts_with(sb)
        {
            return Err(Error::Escape {
                path: reference.to_string(),
                root: ".".into(),
            });
        }
        Ok(path)
    }

    /// Resolves a file reference and applies the root restriction.
    pub fn resolve_file(&self, reference: &str) -> Result<PathBuf> {
        let path = self.resolve(reference)?;
        if self.restrictor == LoadRestrictor::RootOnly && !path.starts_with(&self.root) {
            return Err(Error::Restricted {
                path: self.display(&path),
                root: self.display(&self.root),
            });
        }
        Ok(path)
    }

    /// Reads a file (restricted, size-limited).
    pub fn read(&self, reference: &str) -> Result<Vec<u8>> {
        let path = self.resolve_file(reference)?;
        self.read_path(&path)
    }

    /// Reads a file as UTF-8 text.
    pub fn read_string(&self, reference: &str) -> Result<String> {
        let path = self.resolve_file(reference)?;
        let bytes = self.read_path(&path)?;
        String::from_utf8(bytes).map_err(|_| Error::Io {
            path: self.display(&path),
            message: "file is not valid UTF-8".into(),
        })
    }

    /// Reads an already-resolved path with the size limits.
    pub fn read_path(&self, path: &Path) -> Result<Vec<u8>> {
        let shown = self.display(path);
        let meta = std::fs::metadata(path).map_err(|e| io_error(&shown, &e))?;
        if meta.is_dir() {
            return Err(Error::Io {
                path: shown,
                message: "is a directory, not a file".into(),
            });
        }
        if meta.len() > self.limits.max_file_bytes {
            return Err(Error::Limit(format!(
                "{shown}: file is {} bytes, more than the limit of {}",
                meta.len(),
                self.limits.max_file_bytes
            )));
        }
        let total = self.total.fetch_add(meta.len(), Ordering::Relaxed) + meta.len();
        if total > self.limits.max_total_bytes {
            return Err(Error::Limit(format!(
                "the build read more than {} bytes (at {shown})",
                self.limits.max_total_bytes
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| io_error(&shown, &e))?;
        if bytes.len() as u64 > self.limits.max_file_bytes {
            return Err(Error::Limit(format!(
                "{shown}: file grew past the size limit"
            )));
        }
        Ok(bytes)
    }

    /// A loader for another kustomization directory (a base or component), sharing limits.
    pub fn child(&self, dir: &Path) -> Result<Loader> {
        Ok(Loader {
            root: dir.to_path_buf(),
            sandbox: self.sandbox.clone(),
            display_base: self.display_base.clone(),
            restrictor: self.restrictor,
            limits: self.limits,
            total: Arc::clone(&self.total),
        })
    }
}

fn io_error(shown: &str, e: &std::io::Error) -> Error {
    let message = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    Error::Io {
        path: shown.to_string(),
        message,
    }
}

fn canonical(path: &Path, shown: &str) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(|e| io_error(shown, &e))
}

/// Removes `.` and resolves `..` without touching the filesystem.
pub fn lexical_clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_only_refuses_files_above_the_kustomization() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app")).unwrap();
        std::fs::write(dir.path().join("secret.yaml"), "a: 1\n").unwrap();
        std::fs::write(dir.path().join("app/x.yaml"), "a: 1\n").unwrap();
        let l = Loader::new(
            &dir.path().join("app"),
            Some(dir.path()),
            LoadRestrictor::RootOnly,
            Limits::default(),
        )
        .unwrap();
        assert!(l.read("x.yaml").is_ok());
        assert!(matches!(
            l.read("../secret.yaml"),
            Err(Error::Restricted { .. })
        ));
        let none = Loader::new(
            &dir.path().join("app"),
            Some(dir.path()),
            LoadRestrictor::None,
            Limits::default(),
        )
        .unwrap();
        assert!(none.read("../secret.yaml").is_ok());
        assert!(matches!(
            none.read("../../etc/passwd"),
            Err(Error::Escape { .. }) | Err(Error::Io { .. })
        ));
        assert!(matches!(
            l.read("https://github.com/x/y"),
            Err(Error::Remote(_))
        ));
    }

    #[test]
    fn size_limits_apply() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big.yaml"), vec![b'a'; 100]).unwrap();
        let l = Loader::new(
            dir.path(),
            None,
            LoadRestrictor::RootOnly,
            Limits {
                max_file_bytes: 10,
                ..Limits::default()
            },
        )
        .unwrap();
        assert!(matches!(l.read("big.yaml"), Err(Error::Limit(_))));
    }
}
