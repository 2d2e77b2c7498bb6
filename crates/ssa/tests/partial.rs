//! An apply that fails after it began writing reports what it reached ([`Error::Partial`]),
//! against a real kube-apiserver.
//!
//! The mid-apply failure is deterministic and real: a `ValidatingAdmissionPolicy` bound to the
//! test's namespace refuses ConfigMaps named `refused*` only on real writes (`request.dryRun` is
//! false), so the engine's server-side dry-run passes and its write is refused.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{
    Api, Client,
    api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use weir_api::inventory::ResourceInventory;
use weir_ssa::{Action, ApplyOptions, Engine, Error, ObjectRef, Owner, parse_manifests};
use weir_testenv::TestCluster;

/// Installs a policy (and its binding) refusing real, non-dry-run writes of ConfigMaps named
/// `refused*` in `ns`, and waits until the apiserver enforces it. Returns the policy's name.
async fn refuse_real_writes(admin: &Client, ns: &str) -> String {
    let name = format!("weir-refuse-{ns}");
    let policy = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
    ));
    let binding = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
    ));
    let params = PatchParams::apply("weir-test");
    Api::<DynamicObject>::all_with(admin.clone(), &policy)
        .patch(
            &name,
            &params,
            &Patch::Apply(serde_json::json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": name},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {"resourceRules": [{
                        "apiGroups": [""], "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"],
                    }]},
                    "validations": [{
                        "expression": "request.dryRun == true || !object.metadata.name.startsWith('refused')",
                        "message": "refused on the real write",
                        "reason": "Forbidden",
                    }],
                },
            })),
        )
        .await
        .unwrap();
    Api::<DynamicObject>::all_with(admin.clone(), &binding)
        .patch(
            &name,
            &params,
            &Patch::Apply(serde_json::json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": name},
                "spec": {
                    "policyName": name,
                    "validationActions": ["Deny"],
                    "matchResources": {"namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": ns},
                    }},
                },
            })),
        )
        .await
        .unwrap();

    // Policies take effect asynchronously: probe with a real create until it is refused, and
    // check that a dry-run still passes.
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), ns);
    let probe = |name: &str| {
        serde_json::from_value::<ConfigMap>(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
        }))
        .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match cms
            .create(&PostParams::default(), &probe("refused-probe"))
            .await
        {
            Err(kube::Error::Api(s)) if s.is_forbidden() => break,
            Err(e) => panic!("unexpected error from the probe: {e}"),
            Ok(_) => {
                cms.delete("refused-probe", &DeleteParams::default())
                    .await
                    .unwrap();
            }
        }
        assert!(Instant::now() < deadline, "policy {name} never took effect");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    cms.create(&dry_run, &probe("refused-dry-run"))
        .await
        .expect("the policy must let dry-runs through");
    name
}

/// Deletes the policy and its binding and waits until real writes pass again.
async fn remove_policy(admin: &Client, ns: &str, name: &str) {
    for kind in [
        "ValidatingAdmissionPolicyBinding",
        "ValidatingAdmissionPolicy",
    ] {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
            "admissionregistration.k8s.io",
            "v1",
            kind,
        ));
        let _ = Api::<DynamicObject>::all_with(admin.clone(), &resource)
            .delete(name, &DeleteParams::default())
            .await;
    }
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), ns);
    let probe: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "refused-probe"},
    }))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while cms.create(&PostParams::default(), &probe).await.is_err() {
        assert!(Instant::now() < deadline, "policy {name} never went away");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cms.delete("refused-probe", &DeleteParams::default())
        .await
        .unwrap();
}

fn configmap(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{k: v}}\n---\n")
}

fn names(inventory: &ResourceInventory) -> Vec<String> {
    inventory.entries.iter().map(|e| e.id.clone()).collect()
}

#[tokio::test]
async fn a_write_refused_after_validation_reports_what_was_written() {
    let cluster = TestCluster::shared().await.unwrap();
    let ns = cluster.namespace("ssa-partial").await.unwrap();
    let admin = cluster.client();
    let policy = refuse_real_writes(&admin, &ns).await;

    let engine = Engine::new(admin.clone(), Owner::new(ns.clone(), "app"));
    let options = ApplyOptions {
        default_namespace: Some(ns.clone()),
        ..ApplyOptions::default()
    };
    // Definitions stage: a new Namespace; resources stage, in order: a-written, refused, z-after.
    let extra_ns = format!("{ns}-p");
    let yaml = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {extra_ns}}}\n---\n{}{}{}",
        configmap("z-after"),
        configmap("refused"),
        configmap("a-written"),
    );
    let result = engine
        .apply(parse_manifests(&yaml).unwrap(), &options)
        .await;
    remove_policy(&admin, &ns, &policy).await;
    let err = result.unwrap_err();

    // The error is the underlying refusal…
    assert_eq!(err.category(), "Forbidden", "{err}");
    assert!(
        err.to_string().contains("refused on the real write"),
        "{err}"
    );
    assert_eq!(err.object().map(|o| o.name.as_str()), Some("refused"));
    assert!(matches!(err.underlying(), Error::Forbidden { .. }), "{err}");

    // …and what the apply reached comes with it.
    let Error::Partial { outcome, .. } = &err else {
        panic!("expected a partial apply, got {err:?}");
    };
    let cm = |name: &str| ObjectRef {
        group: String::new(),
        version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: ns.clone(),
        name: name.into(),
    };
    let namespace = ObjectRef {
        group: String::new(),
        version: "v1".into(),
        kind: "Namespace".into(),
        namespace: String::new(),
        name: extra_ns.clone(),
    };
    let actions: Vec<(String, Action)> = outcome
        .change_set
        .entries
        .iter()
        .map(|e| (e.object.name.clone(), e.action))
        .collect();
    assert_eq!(
        actions,
        vec![
            (extra_ns.clone(), Action::Created),
            ("a-written".to_owned(), Action::Created),
        ]
    );
    let mut expected = vec![
        namespace.entry().id,
        cm("a-written").entry().id,
        cm("refused").entry().id,
    ];
    expected.sort();
    assert_eq!(names(&outcome.inventory), expected);
    assert_eq!(err.partial_outcome(), Some(outcome.as_ref()));

    // The cluster agrees: written up to the refusal, nothing after it.
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), &ns);
    assert!(cms.get_opt("a-written").await.unwrap().is_some());
    assert!(cms.get_opt("refused").await.unwrap().is_none());
    assert!(cms.get_opt("z-after").await.unwrap().is_none());
    let nss: Api<Namespace> = Api::all(admin.clone());
    assert!(nss.get_opt(&extra_ns).await.unwrap().is_some());

    // With the policy gone the same set applies; pruning against the partial inventory (as a
    // controller that kept it would) removes what left the set.
    let done = engine
        .apply(parse_manifests(&yaml).unwrap(), &options)
        .await
        .unwrap();
    assert_eq!(
        done.change_set.action(&cm("refused")),
        Some(Action::Created)
    );
    assert_eq!(
        done.change_set.action(&cm("a-written")),
        Some(Action::Unchanged)
    );
    let smaller = format!("{}{}", configmap("z-after"), configmap("refused"));
    let next = engine
        .apply(parse_manifests(&smaller).unwrap(), &options)
        .await
        .unwrap();
    let pruned = engine
        .prune(&outcome.inventory, &next.inventory)
        .await
        .unwrap();
    assert_eq!(pruned.action(&cm("a-written")), Some(Action::Deleted));
    assert_eq!(pruned.action(&namespace), Some(Action::Deleted));
}

#[tokio::test]
async fn a_set_rejected_before_any_write_is_not_partial() {
    let cluster = TestCluster::shared().await.unwrap();
    let ns = cluster.namespace("ssa-notpartial").await.unwrap();
    let engine = Engine::new(cluster.client(), Owner::new(ns.clone(), "app"));
    let options = ApplyOptions {
        default_namespace: Some(ns),
        ..ApplyOptions::default()
    };
    let yaml = format!(
        "{}apiVersion: example.invalid/v1\nkind: Frobnicator\nmetadata: {{name: f}}\n",
        configmap("cm")
    );
    let err = engine
        .apply(parse_manifests(&yaml).unwrap(), &options)
        .await
        .unwrap_err();
    assert_eq!(err.category(), "UnknownKind", "{err}");
    assert!(err.partial_outcome().is_none(), "{err:?}");
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
}
