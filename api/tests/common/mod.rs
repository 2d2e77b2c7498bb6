//! Helpers shared by the api integration tests: CRD installation and test-object builders.
#![allow(dead_code)]

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};
use weir_api::{
    Apply, ApplySpec, GitRepository, GitRepositorySpec, Render, RenderSpec, SourceReference,
};

/// The committed CRD manifests (what users install), parsed.
pub fn committed_crds() -> Vec<CustomResourceDefinition> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/crd");
    let mut crds = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() == "kustomization.yaml" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        crds.push(
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        );
    }
    assert_eq!(crds.len(), 4, "expected four CRDs in {}", dir.display());
    crds
}

/// Installs the committed CRDs through the test environment and returns them as stored.
pub async fn install_crds(client: &Client) -> Vec<CustomResourceDefinition> {
    let cluster = weir_testenv::TestCluster::shared().await.unwrap();
    let crds = committed_crds();
    cluster.install_crds(&crds).await.unwrap();
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut stored = Vec::new();
    for crd in crds {
        stored.push(
            api.get(crd.metadata.name.as_deref().unwrap())
                .await
                .unwrap(),
        );
    }
    stored
}

/// The status of condition `type_` on a CRD.
pub fn condition<'a>(crd: &'a CustomResourceDefinition, type_: &str) -> Option<&'a str> {
    crd.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

/// A valid GitRepository.
pub fn git_repository(name: &str) -> GitRepository {
    let mut spec: GitRepositorySpec = serde_json::from_value(serde_json::json!({
        "url": "https://git.example/podinfo.git",
        "interval": "1m",
        "ref": { "branch": "main" },
    }))
    .unwrap();
    spec.timeout = Some("30s".into());
    GitRepository::new(name, spec)
}

/// A valid Render of `source`.
pub fn render(name: &str, source: &str) -> Render {
    let spec: RenderSpec = serde_json::from_value(serde_json::json!({
        "sourceRef": { "kind": "GitRepository", "name": source },
        "path": "deploy/prod",
        "interval": "5m",
        "substitute": { "cluster_name": "dev" },
    }))
    .unwrap();
    Render::new(name, spec)
}

/// A valid Apply of `source`.
pub fn apply(name: &str, source: &str) -> Apply {
    let spec = ApplySpec {
        source_ref: SourceReference {
            api_version: Some("render.weir.dev/v1alpha1".into()),
            kind: "Render".into(),
            name: source.into(),
            namespace: None,
        },
        ..serde_json::from_value(serde_json::json!({
            "sourceRef": { "kind": "x", "name": "x" },
            "interval": "10m",
            "prune": true,
        }))
        .unwrap()
    };
    Apply::new(name, spec)
}
