//! `weir build render <name>`: what the render-controller renders for a Render, computed here
//! with the controller's own library (same overlay, substitution and engine) from the source
//! artifact its status names (downloaded and digest-checked).

use std::{io::Write, time::Duration};

use weir_api::{Apply, Render};
use weir_artifact::{UntarLimits, untar};
use weir_render_controller::render::{MANIFESTS_FILE, RenderInputs};

use crate::{
    artifact,
    client::Cluster,
    error::{Error, Result},
    kinds::{APPLY, RENDER, WeirKind},
    write_out,
};

fn typed<T: serde::de::DeserializeOwned>(
    kind: &WeirKind,
    obj: &kube::api::DynamicObject,
) -> Result<T> {
    serde_json::to_value(obj)
        .and_then(serde_json::from_value)
        .map_err(|e| {
            Error::Failed(format!(
                "{}: unexpected object: {e}",
                kind.display(obj.metadata.name.as_deref().unwrap_or_default())
            ))
        })
}

/// Renders Render `name` as the render-controller would, returning the YAML stream.
pub async fn render(cluster: &Cluster, name: &str, timeout: Duration) -> Result<String> {
    let ns = &cluster.namespace;
    let obj = RENDER.get(&cluster.client, ns, name).await?;
    let spec: Render = typed(&RENDER, &obj)?;
    let source = artifact::of_consumer(cluster, &obj).await?;
    let bytes = artifact::download(&source, timeout).await?;
    let failed = |e: weir_render_controller::error::Failure| {
        Error::Failed(format!(
            "{}: {}: {}",
            RENDER.display(name),
            e.reason,
            e.message
        ))
    };
    let vars = weir_render_controller::variables::load(&cluster.client, ns, &spec.spec)
        .await
        .map_err(failed)?;
    let inputs = RenderInputs {
        path: spec.spec.path.clone(),
        overlay: weir_render_controller::overlay::overlay(&spec.spec),
        vars,
        untar_limits: UntarLimits::default(),
    };
    let rendered = weir_render_controller::render::render(&bytes, &inputs).map_err(failed)?;
    let scratch = tempfile::tempdir()
        .map_err(|e| Error::Failed(format!("creating a scratch directory: {e}")))?;
    untar(
        &rendered.packed.bytes,
        scratch.path(),
        &UntarLimits::default(),
    )
    .map_err(|e| Error::Failed(format!("unpacking the rendered artifact: {e}")))?;
    std::fs::read_to_string(scratch.path().join(MANIFESTS_FILE))
        .map_err(|e| Error::Failed(format!("reading the rendered manifests: {e}")))
}

/// Runs `weir build render <name>`.
pub async fn run(
    cluster: &Cluster,
    name: &str,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<()> {
    let text = render(cluster, name, timeout).await?;
    write_out(out, &text)
}

/// The Apply `name` and the objects its source's artifact holds below `spec.path`.
pub async fn apply_objects(
    cluster: &Cluster,
    name: &str,
    timeout: Duration,
) -> Result<(Apply, Vec<kube::api::DynamicObject>)> {
    let obj = APPLY.get(&cluster.client, &cluster.namespace, name).await?;
    let apply: Apply = typed(&APPLY, &obj)?;
    let source = artifact::of_consumer(cluster, &obj).await?;
    let bytes = artifact::download(&source, timeout).await?;
    let objects = weir_apply_controller::manifests::read(
        &bytes,
        apply.spec.path.as_deref(),
        &UntarLimits::default(),
    )
    .map_err(|e| {
        Error::Failed(format!(
            "{}: {}: {}",
            APPLY.display(name),
            e.reason,
            e.message
        ))
    })?;
    Ok((apply, objects))
}

/// The Apply `name` (for `weir diff <dir> --apply <name>`).
pub async fn apply_object(cluster: &Cluster, name: &str) -> Result<Apply> {
    let obj = APPLY.get(&cluster.client, &cluster.namespace, name).await?;
    typed(&APPLY, &obj)
}
