//! The CRDs against a real kube-apiserver: installation, round trips through the status
//! subresource and the table API, and server-side validation of bad specs.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams},
};
use serde::{Serialize, de::DeserializeOwned};
use weir_api::{
    Apply, Artifact, GitRepository, Render,
    apply::ApplyStatus,
    conditions::{self, ConditionStatus, reasons, types},
    render::RenderStatus,
    source::GitRepositoryStatus,
};
use weir_testenv::TestCluster;

async fn setup(prefix: &str) -> (Client, String) {
    let cluster = TestCluster::shared().await.expect("control plane");
    let client = cluster.client();
    common::install_crds(&client).await;
    let ns = cluster.namespace(prefix).await.expect("namespace");
    (client, ns)
}

#[tokio::test]
async fn all_crds_install_and_become_established() {
    let cluster = TestCluster::shared().await.unwrap();
    let stored = common::install_crds(&cluster.client()).await;
    let mut kinds: Vec<String> = stored.iter().map(|c| c.spec.names.kind.clone()).collect();
    kinds.sort();
    assert_eq!(kinds, ["Apply", "GitRepository", "Receiver", "Render"]);
    for crd in &stored {
        assert_eq!(
            common::condition(crd, "NamesAccepted"),
            Some("True"),
            "{:?}",
            crd.metadata.name
        );
        assert_eq!(
            common::condition(crd, "Established"),
            Some("True"),
            "{:?}",
            crd.metadata.name
        );
        // The apiserver accepted our schema as structural (no NonStructuralSchema condition).
        assert_eq!(
            common::condition(crd, "NonStructuralSchema"),
            None,
            "{:?}",
            crd.metadata.name
        );
    }
}

fn ready_conditions(message: &str) -> Vec<weir_api::Condition> {
    let mut list = Vec::new();
    conditions::set(
        &mut list,
        types::READY,
        ConditionStatus::True,
        reasons::SUCCEEDED,
        message,
        Some(1),
        Time(Timestamp::from_second(1_800_000_000).unwrap()),
    );
    list
}

fn artifact(revision: &str) -> Artifact {
    Artifact {
        url:
            "http://source-controller.weir-system.svc.cluster.local./gitrepository/ns/x/abc.tar.gz"
                .into(),
        revision: revision.into(),
        digest: format!("sha256:{}", "0".repeat(64)),
        size: Some(1234),
        last_update_time: Time(Timestamp::from_second(1_800_000_000).unwrap()),
        metadata: None,
    }
}

/// Creates `obj`, reads it back, writes `status` through the status subresource with
/// server-side apply, reads it back, and returns the table row as (column name, cell) pairs.
async fn round_trip<K>(
    client: &Client,
    ns: &str,
    obj: K,
    status: serde_json::Value,
) -> Vec<(String, serde_json::Value)>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + Serialize
        + DeserializeOwned,
    K: HasSpecAndStatus,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let name = obj.name_any();
    let created = api.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(
        created.spec_json(),
        obj.spec_json(),
        "spec changed on create"
    );
    let fetched = api.get(&name).await.unwrap();
    assert_eq!(fetched.spec_json(), obj.spec_json(), "spec changed on get");
    assert!(
        fetched.status_json().is_none() || fetched.status_json() == Some(serde_json::json!({}))
    );

    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &name,
        &PatchParams::apply("weir-api-tests"),
        &Patch::Apply(&patch),
    )
    .await
    .unwrap();
    let updated = api.get(&name).await.unwrap();
    assert_eq!(
        updated.status_json(),
        Some(status.clone()),
        "status did not round-trip"
    );
    assert_eq!(
        updated.spec_json(),
        obj.spec_json(),
        "status update touched the spec"
    );

    // The table API renders our printer columns.
    let url = format!("{}/{}", api.resource_url(), name);
    let request = http::Request::get(url)
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .unwrap();
    let table: serde_json::Value =
        serde_json::from_str(&client.request_text(request).await.unwrap()).unwrap();
    assert_eq!(table["kind"], "Table", "{table}");
    let columns: Vec<String> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    let cells = table["rows"][0]["cells"].as_array().unwrap().clone();
    assert_eq!(columns.len(), cells.len());
    columns.into_iter().zip(cells).collect()
}

/// Spec and status of a custom resource as JSON, to compare what the apiserver stored.
trait HasSpecAndStatus {
    fn spec_json(&self) -> serde_json::Value;
    fn status_json(&self) -> Option<serde_json::Value>;
}

macro_rules! spec_and_status {
    ($($k:ty),*) => {$(
        impl HasSpecAndStatus for $k {
            fn spec_json(&self) -> serde_json::Value { serde_json::to_value(&self.spec).unwrap() }
            fn status_json(&self) -> Option<serde_json::Value> { self.status.as_ref().map(|s| serde_json::to_value(s).unwrap()) }
        }
    )*};
}
spec_and_status!(GitRepository, Render, Apply);

fn cell<'a>(row: &'a [(String, serde_json::Value)], column: &str) -> &'a serde_json::Value {
    &row.iter()
        .find(|(c, _)| c == column)
        .unwrap_or_else(|| panic!("no column {column} in {row:?}"))
        .1
}

#[tokio::test]
async fn git_repository_round_trips() {
    let (client, ns) = setup("gitrepo-round-trip").await;
    let status = GitRepositoryStatus {
        observed_generation: Some(1),
        conditions: ready_conditions("stored artifact for revision main@sha1:1b2c"),
        artifact: Some(artifact(
            "main@sha1:1b2c3d4e5f60718293a4b5c6d7e8f90112233445",
        )),
        last_handled_reconcile_at: Some("now".into()),
        observed_ignore: None,
        observed_recurse_submodules: Some(false),
    };
    let row = round_trip(
        &client,
        &ns,
        common::git_repository("podinfo"),
        serde_json::to_value(&status).unwrap(),
    )
    .await;
    assert_eq!(cell(&row, "Name"), "podinfo");
    assert_eq!(cell(&row, "URL"), "https://git.example/podinfo.git");
    assert_eq!(cell(&row, "Ready"), "True");
    assert_eq!(
        cell(&row, "Status"),
        "stored artifact for revision main@sha1:1b2c"
    );
    assert_eq!(
        cell(&row, "Revision"),
        "main@sha1:1b2c3d4e5f60718293a4b5c6d7e8f90112233445"
    );
    cell(&row, "Age");
}

#[tokio::test]
async fn render_round_trips() {
    let (client, ns) = setup("render-round-trip").await;
    let status = RenderStatus {
        observed_generation: Some(1),
        conditions: ready_conditions("rendered 12 objects"),
        artifact: Some(artifact("main@sha1:aa")),
        last_attempted_revision: Some("main@sha1:aa".into()),
        object_count: Some(12),
        last_handled_reconcile_at: None,
    };
    let row = round_trip(
        &client,
        &ns,
        common::render("app", "podinfo"),
        serde_json::to_value(&status).unwrap(),
    )
    .await;
    assert_eq!(cell(&row, "Ready"), "True");
    assert_eq!(cell(&row, "Status"), "rendered 12 objects");
    assert_eq!(cell(&row, "Revision"), "main@sha1:aa");
}

#[tokio::test]
async fn apply_round_trips() {
    let (client, ns) = setup("apply-round-trip").await;
    let status = ApplyStatus {
        observed_generation: Some(1),
        conditions: ready_conditions("applied revision main@sha1:bb"),
        inventory: Some(weir_api::ResourceInventory {
            entries: vec![weir_api::InventoryEntry {
                id: "default_podinfo__Service".into(),
                v: "v1".into(),
            }],
        }),
        last_applied_revision: Some("main@sha1:bb".into()),
        last_applied_digest: Some(format!("sha256:{}", "1".repeat(64))),
        last_attempted_revision: Some("main@sha1:bb".into()),
        history: vec![weir_api::apply::HistoryEntry {
            revision: "main@sha1:bb".into(),
            digest: format!("sha256:{}", "1".repeat(64)),
            result: "Succeeded".into(),
            time: Time(Timestamp::from_second(1_800_000_000).unwrap()),
        }],
        last_handled_reconcile_at: None,
    };
    let row = round_trip(
        &client,
        &ns,
        common::apply("app", "app"),
        serde_json::to_value(&status).unwrap(),
    )
    .await;
    assert_eq!(cell(&row, "Ready"), "True");
    assert_eq!(cell(&row, "Status"), "applied revision main@sha1:bb");
    assert_eq!(cell(&row, "Revision"), "main@sha1:bb");
}

#[tokio::test]
async fn short_names_and_category_are_served() {
    let (client, _ns) = setup("discovery").await;
    for (group, kind, short) in [
        ("source.weir.dev", "GitRepository", "gitrepo"),
        ("render.weir.dev", "Render", "rnd"),
        ("apply.weir.dev", "Apply", "apl"),
    ] {
        let request = http::Request::get(format!("/apis/{group}/v1alpha1"))
            .body(Vec::new())
            .unwrap();
        let list: serde_json::Value =
            serde_json::from_str(&client.request_text(request).await.unwrap()).unwrap();
        let resource = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == kind && !r["name"].as_str().unwrap().contains('/'))
            .unwrap_or_else(|| panic!("{kind} not served: {list}"));
        assert_eq!(resource["shortNames"], serde_json::json!([short]), "{kind}");
        assert_eq!(
            resource["categories"],
            serde_json::json!(["weir"]),
            "{kind}"
        );
    }
}

/// Creates `body` as an object of kind `K` and returns the apiserver's rejection message.
async fn rejection<K: Resource<DynamicType = ()>>(
    client: &Client,
    ns: &str,
    name: &str,
    spec: serde_json::Value,
) -> String {
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    let obj: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": { "name": name },
        "spec": spec,
    }))
    .unwrap();
    match api.create(&PostParams::default(), &obj).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(
                status.code, 422,
                "{name}: expected 422 Invalid, got {status:?}"
            );
            status.message
        }
        other => panic!("{name}: expected the apiserver to reject the spec, got {other:?}"),
    }
}

#[tokio::test]
async fn apiserver_rejects_invalid_specs_with_readable_messages() {
    let (client, ns) = setup("validation").await;
    let url = "https://git.example/x.git";
    let source = serde_json::json!({ "kind": "GitRepository", "name": "x" });
    let render_src = serde_json::json!({ "kind": "Render", "name": "x" });
    let git = |extra: serde_json::Value| {
        let mut spec = serde_json::json!({ "url": url, "interval": "1m" });
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        spec
    };

    let cases: Vec<(&str, String, &[&str])> = vec![
        (
            "bad-interval",
            rejection::<GitRepository>(&client, &ns, "bad-interval", git(serde_json::json!({ "interval": "5 minutes" }))).await,
            &["spec.interval", "must be a duration such as 30s, 5m or 1h30m"],
        ),
        (
            "missing-url",
            rejection::<GitRepository>(&client, &ns, "missing-url", serde_json::json!({ "interval": "1m" })).await,
            &["spec.url", "Required value"],
        ),
        (
            "bad-scheme",
            rejection::<GitRepository>(&client, &ns, "bad-scheme", git(serde_json::json!({ "url": "ftp://git.example/x.git" }))).await,
            &["spec.url", "url must start with https://, http://, ssh:// or file://"],
        ),
        (
            "short-commit",
            rejection::<GitRepository>(&client, &ns, "short-commit", git(serde_json::json!({ "ref": { "commit": "abc123" } }))).await,
            &["spec.ref.commit", "commit must be a full lowercase hex SHA"],
        ),
        (
            "bare-ref-name",
            rejection::<GitRepository>(&client, &ns, "bare-ref-name", git(serde_json::json!({ "ref": { "name": "main" } }))).await,
            &["spec.ref.name", "must be a full ref starting with refs/"],
        ),
        (
            "path-escape",
            rejection::<Render>(&client, &ns, "path-escape", serde_json::json!({ "sourceRef": source, "interval": "1m", "path": "apps/../../etc" })).await,
            &["spec.path", "path must be relative and must not contain '..'"],
        ),
        (
            "bad-variable",
            rejection::<Render>(&client, &ns, "bad-variable", serde_json::json!({ "sourceRef": source, "interval": "1m", "substitute": { "1st": "x" } })).await,
            &["spec.substitute", "substitute keys must be variable names"],
        ),
        (
            "wait-and-health-checks",
            rejection::<Apply>(&client, &ns, "wait-and-health-checks", serde_json::json!({
                "sourceRef": render_src, "interval": "1m", "prune": true, "wait": true,
                "healthChecks": [{ "kind": "Deployment", "name": "web" }],
            })).await,
            &["spec", "spec.wait and spec.healthChecks are mutually exclusive"],
        ),
        (
            "bad-deletion-policy",
            rejection::<Apply>(&client, &ns, "bad-deletion-policy", serde_json::json!({
                "sourceRef": render_src, "interval": "1m", "prune": true, "deletionPolicy": "Keep",
            })).await,
            &["spec.deletionPolicy", "Unsupported value: \"Keep\"", "\"Delete\"", "\"Orphan\""],
        ),
        (
            "missing-prune",
            rejection::<Apply>(&client, &ns, "missing-prune", serde_json::json!({ "sourceRef": render_src, "interval": "1m" })).await,
            &["spec.prune", "Required value"],
        ),
    ];
    for (name, message, wanted) in cases {
        for w in wanted {
            assert!(
                message.contains(w),
                "{name}: rejection message lacks {w:?}: {message}"
            );
        }
    }
}

#[tokio::test]
async fn valid_edge_cases_are_accepted() {
    let (client, ns) = setup("validation-ok").await;
    let api: Api<GitRepository> = Api::namespaced(client.clone(), &ns);
    for (name, url, interval) in [
        ("ssh", "ssh://git@git.example:2222/org/repo.git", "1h30m"),
        ("file", "file:///srv/git/repo.git", "1.5h"),
        ("http", "http://127.0.0.1:8080/repo.git", "250ms"),
    ] {
        let mut obj = common::git_repository(name);
        obj.spec.url = url.into();
        obj.spec.interval = interval.into();
        obj.spec.reference = Some(weir_api::source::GitRepositoryRef {
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            name: Some("refs/pull/1/head".into()),
            ..Default::default()
        });
        api.create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
