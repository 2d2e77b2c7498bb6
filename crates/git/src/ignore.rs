//! Which files of a repository go into the artifact.
//!
//! `spec.ignore` (gitignore syntax) replaces [`DEFAULT_EXCLUSIONS`]; `.sourceignore` files in the
//! repository apply on top, each relative to its own directory, deeper files taking precedence
//! (as with `.gitignore`).

use std::collections::BTreeMap;

use ignore::{
    Match,
    gitignore::{Gitignore, GitignoreBuilder},
};

use crate::error::{Error, Result};

/// Excluded unless `spec.ignore` says otherwise: VCS metadata, CI configuration and common
/// binary and archive files.
pub const DEFAULT_EXCLUSIONS: &str = "\
.git/
.gitignore
.gitmodules
.gitattributes
*.jpg
*.jpeg
*.gif
*.png
*.wmv
*.flv
*.tar.gz
*.zip
.github/
.circleci/
.travis.yml
.gitlab-ci.yml
appveyor.yml
.drone.yml
cloudbuild.yaml
codeship-services.yml
codeship-steps.yml
**/.goreleaser.yml
**/.sops.yaml
**/.flux.yaml
";

/// The name of in-repository ignore files.
pub const SOURCEIGNORE: &str = ".sourceignore";

/// A virtual root so that every path handed to `ignore` is absolute and under its matcher.
const ROOT: &str = "/repo";

/// Decides inclusion for paths relative to the repository root.
#[derive(Debug)]
pub struct IgnoreRules {
    root: Gitignore,
    /// `.sourceignore` matchers by directory (`""` for the root), applied shallow to deep.
    nested: BTreeMap<String, Gitignore>,
}

impl IgnoreRules {
    /// Rules from `spec_ignore` (or the defaults) plus `.sourceignore` files given as
    /// `(directory, content)`.
    pub fn new<'a>(
        spec_ignore: Option<&str>,
        sourceignores: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self> {
        let root = build(
            ROOT.to_owned(),
            spec_ignore.unwrap_or(DEFAULT_EXCLUSIONS),
            "spec.ignore",
        )?;
        let mut nested = BTreeMap::new();
        for (dir, content) in sourceignores {
            let base = if dir.is_empty() {
                ROOT.to_owned()
            } else {
                format!("{ROOT}/{dir}")
            };
            let origin = if dir.is_empty() {
                SOURCEIGNORE.to_owned()
            } else {
                format!("{dir}/{SOURCEIGNORE}")
            };
            nested.insert(dir.to_owned(), build(base, content, &origin)?);
        }
        Ok(IgnoreRules { root, nested })
    }

    /// Whether `path` (relative, `/`-separated) is excluded.
    pub fn is_excluded(&self, path: &str, is_dir: bool) -> bool {
        let full = format!("{ROOT}/{path}");
        let mut excluded = matches!(
            self.root.matched_path_or_any_parents(&full, is_dir),
            Match::Ignore(_)
        );
        for (dir, matcher) in &self.nested {
            let applies = dir.is_empty() || path.starts_with(&format!("{dir}/"));
            if !applies {
                continue;
            }
            match matcher.matched_path_or_any_parents(&full, is_dir) {
                Match::Ignore(_) => excluded = true,
                Match::Whitelist(_) => excluded = false,
                Match::None => {}
            }
        }
        excluded
    }
}

fn build(base: String, content: &str, origin: &str) -> Result<Gitignore> {
    let mut builder = GitignoreBuilder::new(&base);
    for (n, line) in content.lines().enumerate() {
        builder
            .add_line(None, line)
            .map_err(|e| Error::InvalidSpec(format!("{origin} line {}: {e}", n + 1)))?;
    }
    builder
        .build()
        .map_err(|e| Error::InvalidSpec(format!("{origin}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_drop_ci_and_binaries_but_keep_manifests() {
        let rules = IgnoreRules::new(None, []).unwrap();
        for p in [
            ".github/workflows/ci.yaml",
            "logo.png",
            "dist/app.tar.gz",
            "a/b/.sops.yaml",
            ".gitignore",
            ".travis.yml",
        ] {
            assert!(rules.is_excluded(p, false), "{p}");
        }
        for p in [
            "deploy/app.yaml",
            "kustomization.yaml",
            "README.md",
            "charts/x/values.yaml",
        ] {
            assert!(!rules.is_excluded(p, false), "{p}");
        }
    }

    #[test]
    fn spec_ignore_replaces_defaults() {
        let rules = IgnoreRules::new(Some("/*\n!/deploy/\n"), []).unwrap();
        assert!(rules.is_excluded("README.md", false));
        assert!(rules.is_excluded("src/main.rs", false));
        assert!(!rules.is_excluded("deploy/app.yaml", false));
        assert!(
            !rules.is_excluded("deploy/logo.png", false),
            "defaults no longer apply"
        );
    }

    #[test]
    fn sourceignore_files_apply_to_their_directory_and_deeper_wins() {
        let rules = IgnoreRules::new(None, [("", "*.md\n"), ("apps", "!keep.md\ntmp/\n")]).unwrap();
        assert!(rules.is_excluded("README.md", false));
        assert!(rules.is_excluded("apps/notes.md", false));
        assert!(!rules.is_excluded("apps/keep.md", false));
        assert!(rules.is_excluded("apps/tmp/x.yaml", false));
        assert!(
            !rules.is_excluded("tmp/x.yaml", false),
            "apps/.sourceignore does not reach outside apps/"
        );
    }
}
