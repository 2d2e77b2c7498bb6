//! `weir install`: the install manifests of `config/`, embedded in the binary at build time,
//! built with weir's kustomize engine and server-side applied with field manager
//! `weir-install` (CRDs and the Namespace first, CRDs awaited until Established), or printed
//! with `--export`.

use std::{
    io::Write,
    path::Path,
    time::{Duration, Instant},
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client,
    api::{DynamicObject, Patch, PatchParams},
};
use weir_kustomize::{BuildOptions, LoadRestrictor};
use weir_ssa::{Kinds, ObjectRef, order};

use crate::{
    client::Cluster,
    error::{Error, Result},
    write_out,
};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/config_files.rs"));
}

/// The field manager of `weir install`.
pub const FIELD_MANAGER: &str = "weir-install";

/// The controllers `--components` accepts.
pub const COMPONENTS: [&str; 3] = ["source", "render", "apply"];

/// The embedded files of `config/` (path relative to `config/`, content).
pub fn files() -> &'static [(&'static str, &'static str)] {
    embedded::FILES
}

/// Builds the manifests for `components` (a subset of [`COMPONENTS`]): `config/default` for all
/// three, otherwise the shared Namespace plus each component's CRDs and controller.
pub fn manifests(components: &[String]) -> Result<String> {
    let mut wanted: Vec<&str> = Vec::new();
    for c in components {
        let c = c.trim();
        let known = COMPONENTS.iter().find(|k| **k == c).ok_or_else(|| {
            Error::Usage(format!(
                "unknown component '{c}' (want a comma-separated list of source, render, apply)"
            ))
        })?;
        if !wanted.contains(known) {
            wanted.push(known);
        }
    }
    if wanted.is_empty() {
        return Err(Error::Usage("--components is empty".into()));
    }
    if files().is_empty() {
        return Err(Error::Failed(
            "this weir was built without the install manifests (config/)".into(),
        ));
    }
    let scratch = tempfile::tempdir()
        .map_err(|e| Error::Failed(format!("creating a scratch directory: {e}")))?;
    let root = scratch.path().join("config");
    for (relative, content) in files() {
        let path = root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Failed(format!("writing {relative}: {e}")))?;
        }
        std::fs::write(&path, content)
            .map_err(|e| Error::Failed(format!("writing {relative}: {e}")))?;
    }
    let dir = if wanted.len() == COMPONENTS.len() {
        root.join("default")
    } else {
        let dir = root.join("weir-install");
        let mut kustomization = String::from(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nlabels:\n  - pairs:\n      app.kubernetes.io/part-of: weir\nresources:\n  - ../namespace\n",
        );
        // In the order of COMPONENTS, whatever order was asked.
        for c in COMPONENTS.iter().filter(|c| wanted.contains(c)) {
            kustomization.push_str(&format!("  - ../{c}/crd\n  - ../{c}/controller\n"));
        }
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("kustomization.yaml"), kustomization))
            .map_err(|e| Error::Failed(format!("writing the install kustomization: {e}")))?;
        dir
    };
    build(&dir)
}

fn build(dir: &Path) -> Result<String> {
    let options = BuildOptions {
        load_restrictor: LoadRestrictor::RootOnly,
        ..BuildOptions::default()
    };
    Ok(weir_kustomize::build_yaml(dir, &options, None)?)
}

/// Server-side applies `yaml`: definitions (CRDs, Namespaces, cluster RBAC) first, CRDs awaited
/// until Established, then the rest; prints one line per object.
pub async fn apply(
    cluster: &Cluster,
    yaml: &str,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<()> {
    let client = &cluster.client;
    let mut objects = weir_ssa::parse_manifests(yaml)
        .map_err(|e| Error::Failed(format!("install manifests: {e}")))?;
    objects.sort_by_key(|o| {
        let r = ObjectRef::of(o);
        (order::rank(&r), r.kind, r.namespace, r.name)
    });
    let (definitions, rest): (Vec<_>, Vec<_>) = objects
        .into_iter()
        .partition(|o| order::is_definition(&ObjectRef::of(o)));
    let kinds = Kinds::new();
    let deadline = Instant::now() + timeout;
    apply_all(client, &kinds, &definitions, out).await?;
    let crds: Vec<String> = definitions
        .iter()
        .map(ObjectRef::of)
        .filter(order::is_crd)
        .map(|r| r.name)
        .collect();
    wait_established(client, &crds, deadline).await?;
    kinds
        .refresh(client)
        .await
        .map_err(|e| Error::Api(format!("discovery: {e}")))?;
    apply_all(client, &kinds, &rest, out).await?;
    write_out(out, "✔ weir installed\n")
}

async fn apply_all(
    client: &Client,
    kinds: &Kinds,
    objects: &[DynamicObject],
    out: &mut dyn Write,
) -> Result<()> {
    kinds
        .ensure(client)
        .await
        .map_err(|e| Error::Api(format!("discovery: {e}")))?;
    for object in objects {
        let r = ObjectRef::of(object);
        let kind = kinds
            .lookup(&r.group, &r.version, &r.kind)
            .await
            .ok_or_else(|| Error::Failed(format!("{r}: the cluster does not serve this kind")))?;
        let api: Api<DynamicObject> = if kind.namespaced {
            Api::namespaced_with(client.clone(), &r.namespace, &kind.resource)
        } else {
            Api::all_with(client.clone(), &kind.resource)
        };
        // The install manifests are ours: take over fields from earlier installs by other means.
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(&r.name, &params, &Patch::Apply(object))
            .await
            .map_err(|e| match e {
                kube::Error::Api(s) => Error::Failed(format!("{r}: {}", s.message)),
                other => Error::kube(other, &r.to_string()),
            })?;
        write_out(out, &format!("► {r} applied\n"))?;
    }
    Ok(())
}

async fn wait_established(client: &Client, names: &[String], deadline: Instant) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in names {
        loop {
            let crd = api.get(name).await.map_err(|e| Error::kube(e, name))?;
            let established = crd.status.and_then(|s| s.conditions).is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "CRD {name} did not become Established in time"
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}
