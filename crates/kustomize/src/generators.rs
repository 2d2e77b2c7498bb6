//! `configMapGenerator` and `secretGenerator` (being written).

use crate::error::{Error, Result};
use crate::kustomization::{GeneratorArgs, GeneratorOptions};
use crate::loader::Loader;
use crate::resource::Resource;
use crate::yaml::Value;

/// Makes a ConfigMap from generator arguments. `global` is the kustomization's `generatorOptions`.
pub fn make_config_map(
    loader: &Loader,
    args: &GeneratorArgs,
    global: Option<&GeneratorOptions>,
) -> Result<Resource> {
    let _ = (loader, args, global);
    Err(Error::Unsupported("configMapGenerator".into()))
}

/// Makes a Secret from generator arguments. `global` is the kustomization's `generatorOptions`.
pub fn make_secret(
    loader: &Loader,
    args: &GeneratorArgs,
    global: Option<&GeneratorOptions>,
) -> Result<Resource> {
    let _ = (loader, args, global);
    Err(Error::Unsupported("secretGenerator".into()))
}

/// kustomize's content hash of a ConfigMap or Secret (the 10-character name suffix).
pub fn content_hash(obj: &Value) -> Result<String> {
    let _ = obj;
    Err(Error::Unsupported("name suffix hash".into()))
}
