//! The build: load a kustomization tree, accumulate, transform, sort, print.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::kustomization::Kustomization;
use crate::loader::{Limits, LoadRestrictor};
use crate::resmap::ResMap;

/// Options of one build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// kustomize's `--load-restrictor`.
    pub load_restrictor: LoadRestrictor,
    /// A directory nothing may escape (the artifact root in a controller); `None` for the CLI.
    pub sandbox: Option<PathBuf>,
    /// Size limits.
    pub limits: Limits,
}

/// Builds the kustomization at `dir` (a plain directory without a kustomization file builds
/// every `*.yaml`/`*.yml` file below it). `overlay`, when given, is applied on top as if it were
/// a kustomization in `dir` whose only resource is `dir`'s own result (the Render spec's fields).
pub fn build(dir: &Path, options: &BuildOptions, overlay: Option<&Kustomization>) -> Result<ResMap> {
    let _ = (dir, options, overlay);
    Err(Error::Unsupported("build".into()))
}

/// Builds and prints as `kustomize build` does.
pub fn build_yaml(
    dir: &Path,
    options: &BuildOptions,
    overlay: Option<&Kustomization>,
) -> Result<String> {
    let resmap = build(dir, options, overlay)?;
    Ok(to_yaml(&resmap))
}

/// Prints a result as `kustomize build` does (documents separated by `---`).
pub fn to_yaml(resmap: &ResMap) -> String {
    let docs: Vec<_> = resmap.resources().iter().map(|r| r.obj.clone()).collect();
    crate::yaml::to_yaml_stream(&docs)
}
