//! End to end: a Git server, the three controllers as real processes, the real control plane.
//! Every scenario works in its own namespace with its own repository and controllers, and
//! asserts on live cluster objects and on the conditions the controllers report.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service};
use kube::Api;
use weir_api::conditions::{self, reasons, types};

use support::*;

/// Commit → applied; change → updated; file removed → pruned; broken commit → Render
/// Ready=False with its reason while the applied objects stay untouched; revert → back; a
/// commit the apiserver refuses → Apply Ready=False, nothing written; revert of a change → back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_change_prune_break_and_revert() {
    let env = Env::new("e2e-lifecycle", &app_files("red", true)).await;
    let first = revision(&env.repo.head());
    env.app("1m").await;

    // Commit → applied.
    let applied = env.apply_ready_at("app", &first).await;
    let ns = env.ns.clone();
    let mut expected = vec![
        format!("{ns}_app-config__ConfigMap"),
        format!("{ns}_app_apps_Deployment"),
        format!("{ns}_app__Service"),
    ];
    expected.sort();
    let mut ids = inventory_ids(&applied);
    ids.sort();
    assert_eq!(ids, expected);
    let cm = env.config_map("app-config").await.unwrap();
    assert_eq!(cm.data.unwrap()["color"], "red");
    let labels = cm.metadata.labels.unwrap();
    assert_eq!(labels["apply.weir.dev/name"], "app");
    assert_eq!(labels["apply.weir.dev/namespace"], ns);
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(env.client.clone(), &ns);
    let deployment = deployments.get("app").await.unwrap();
    assert_eq!(deployment.spec.unwrap().replicas, Some(0));
    assert!(services.get_opt("app").await.unwrap().is_some());
    let render = env.renders.get("app").await.unwrap();
    assert_eq!(
        render.status.unwrap().artifact.unwrap().revision,
        first,
        "the Render's artifact carries the source revision"
    );

    // Change → updated.
    let blue = env.commit(&app_files("blue", true), "blue");
    env.apply_ready_at("app", &blue).await;
    assert_eq!(
        env.config_map("app-config").await.unwrap().data.unwrap()["color"],
        "blue"
    );

    // File removed → pruned.
    let mut files = app_files("blue", false);
    files.retain(|(p, _)| p == "app/kustomization.yaml");
    env.commit(&files, "drop the service from the kustomization");
    let pruned = env.remove(&["app/service.yaml"], "remove service.yaml");
    let applied = env.apply_ready_at("app", &pruned).await;
    env.until("Service app pruned", || async {
        match services.get_opt("app").await.unwrap() {
            None => Ok(()),
            Some(s) => Err(format!(
                "still there (deletionTimestamp {:?})",
                s.metadata.deletion_timestamp
            )),
        }
    })
    .await;
    let mut ids = inventory_ids(&applied);
    ids.sort();
    let mut expected: Vec<String> = expected
        .into_iter()
        .filter(|id| !id.ends_with("__Service"))
        .collect();
    expected.sort();
    assert_eq!(ids, expected, "inventory after prune");
    let before_cm = env.config_map("app-config").await.unwrap();
    let before_deploy = deployments.get("app").await.unwrap();
    let render_before = env.renders.get("app").await.unwrap().status.unwrap();

    // Broken commit → Render Ready=False with its reason, nothing on the cluster touched.
    let broken = env.commit(
        &[(
            "app/kustomization.yaml".to_owned(),
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- configmap.yaml\n- deployment.yaml\n- missing.yaml\n".to_owned(),
        )],
        "broken: a resource that does not exist",
    );
    let failed = env
        .until("Render app Ready=False at the broken revision", || async {
            let obj = env.renders.get("app").await.map_err(|e| e.to_string())?;
            let s = obj.status.clone().unwrap_or_default();
            let c = conditions::get(&s.conditions, types::READY);
            if c.is_some_and(|c| c.status == "False")
                && s.last_attempted_revision.as_deref() == Some(broken.as_str())
            {
                Ok(obj)
            } else {
                Err(describe(
                    &s.conditions,
                    &format!("lastAttemptedRevision {:?}", s.last_attempted_revision),
                ))
            }
        })
        .await;
    let status = failed.status.unwrap();
    let (_, reason, message) = ready(&status.conditions);
    assert_eq!(reason, reasons::BUILD_FAILED, "{message}");
    assert!(message.contains("missing.yaml"), "{message}");
    assert_eq!(
        status.artifact, render_before.artifact,
        "a failed render keeps the last artifact"
    );
    // The source did move on: the failure is the Render's, not the fetch's.
    env.source_ready_at("app", &broken).await;
    // Give the apply-controller time to (wrongly) react, then check nothing changed.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let apply = env.applies.get("app").await.unwrap();
    let s = apply.status.clone().unwrap();
    assert_eq!(s.last_applied_revision.as_deref(), Some(pruned.as_str()));
    assert!(conditions::is_true(&s.conditions, types::READY));
    let after_cm = env.config_map("app-config").await.unwrap();
    let after_deploy = deployments.get("app").await.unwrap();
    assert_eq!(
        after_cm.metadata.resource_version,
        before_cm.metadata.resource_version
    );
    assert_eq!(after_cm.data, before_cm.data);
    assert_eq!(
        after_deploy.metadata.resource_version,
        before_deploy.metadata.resource_version
    );

    // Revert the broken commit → Ready again, same objects (nothing rewritten).
    let fixed = env.revert(&broken);
    env.render_ready_at("app", &fixed).await;
    env.apply_ready_at("app", &fixed).await;
    let cm = env.config_map("app-config").await.unwrap();
    assert_eq!(
        cm.metadata.resource_version,
        before_cm.metadata.resource_version
    );

    // A commit with an object the apiserver refuses (and a colour change): the whole set is
    // refused before any write, so the ConfigMap keeps its colour; a revert recovers.
    let invalid = env.commit(&app_files_with("purple", false, -1), "negative replicas");
    let refused = env
        .until_not_ready(&env.applies, "app", "ValidationFailed", apply_conditions)
        .await;
    let s = refused.status.unwrap();
    assert_eq!(s.last_attempted_revision.as_deref(), Some(invalid.as_str()));
    assert_eq!(s.last_applied_revision.as_deref(), Some(fixed.as_str()));
    let (_, _, message) = ready(&s.conditions);
    assert!(message.contains("replicas"), "{message}");
    let cm = env.config_map("app-config").await.unwrap();
    assert_eq!(cm.data.as_ref().unwrap()["color"], "blue");
    assert_eq!(
        cm.metadata.resource_version,
        before_cm.metadata.resource_version
    );
    let recovered = env.revert(&invalid);
    env.apply_ready_at("app", &recovered).await;

    // Revert the colour change → back to red.
    let red = env.revert(&blue);
    env.apply_ready_at("app", &red).await;
    assert_eq!(
        env.config_map("app-config").await.unwrap().data.unwrap()["color"],
        "red"
    );
    assert!(services.get_opt("app").await.unwrap().is_none());
    env.done("commit → change → prune → break → revert");
}

/// Suspend → a new commit changes nothing on the cluster until resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_holds_new_commits_until_resume() {
    let env = Env::new("e2e-suspend", &app_files("red", true)).await;
    let first = revision(&env.repo.head());
    env.app("3s").await;
    env.apply_ready_at("app", &first).await;
    let before = env.config_map("app-config").await.unwrap();

    env.patch_apply("app", serde_json::json!({ "spec": { "suspend": true } }))
        .await;
    let green = env.commit(&app_files("green", true), "green");
    // The change reaches the Render...
    env.render_ready_at("app", &green).await;
    // ...but not the cluster, through several apply intervals.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let held = env.config_map("app-config").await.unwrap();
    assert_eq!(held.data.unwrap()["color"], "red");
    assert_eq!(
        held.metadata.resource_version,
        before.metadata.resource_version
    );
    let status = env.applies.get("app").await.unwrap().status.unwrap();
    assert_eq!(
        status.last_applied_revision.as_deref(),
        Some(first.as_str())
    );

    env.patch_apply("app", serde_json::json!({ "spec": { "suspend": false } }))
        .await;
    env.apply_ready_at("app", &green).await;
    assert_eq!(
        env.config_map("app-config").await.unwrap().data.unwrap()["color"],
        "green"
    );
    env.done("suspend");
}

/// The ConfigMaps of [`many_config_maps`] at `generation`, as the cluster should hold them.
fn expected_config_maps(
    indices: impl IntoIterator<Item = usize>,
    generation: u32,
) -> std::collections::BTreeMap<String, String> {
    indices
        .into_iter()
        .map(|i| (format!("cm-{i:04}"), generation.to_string()))
        .collect()
}

/// Asserts that the cluster holds exactly `expected` (name → generation) among the Apply's
/// ConfigMaps, and that its inventory lists each exactly once.
async fn assert_converged(
    env: &Env,
    apply: &weir_api::Apply,
    expected: &std::collections::BTreeMap<String, String>,
) {
    let live: std::collections::BTreeMap<String, String> = env
        .owned_config_maps("app")
        .await
        .into_iter()
        .map(|(name, data)| (name, data.get("generation").cloned().unwrap_or_default()))
        .collect();
    let missing: Vec<&String> = expected.keys().filter(|k| !live.contains_key(*k)).collect();
    let extra: Vec<&String> = live.keys().filter(|k| !expected.contains_key(*k)).collect();
    let stale: Vec<&String> = live
        .iter()
        .filter(|(k, v)| expected.get(*k).is_some_and(|e| e != *v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && stale.is_empty(),
        "cluster differs from the commit: missing {missing:?}, not pruned {extra:?}, stale {stale:?}"
    );
    let ids = inventory_ids(apply);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "duplicate inventory entries");
    let wanted: Vec<String> = expected
        .keys()
        .map(|name| config_map_id(&env.ns, name))
        .collect();
    assert_eq!(unique, wanted, "inventory differs from the commit");
}

/// SIGKILL the apply-controller while it applies a change to many objects (some updated, some
/// added, some removed), restart it: the cluster converges on the commit, the inventory lists
/// every object exactly once, nothing removed survives and nothing kept is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_controller_killed_mid_apply_converges() {
    let mut env = Env::new("e2e-kill-apply", &many_config_maps(0..200, 1)).await;
    let first = revision(&env.repo.head());
    env.app("10m").await;
    let applied = env.apply_ready_at("app", &first).await;
    assert_converged(&env, &applied, &expected_config_maps(0..200, 1)).await;

    // Update 150, remove 50, add 50.
    let second = env.commit(&many_config_maps(50..250, 2), "generation 2");
    let applies = env.applies.clone();
    let message = format!("applying revision '{second}'");
    // The kill lands between writes: some objects are at generation 2 while the status still
    // says the apply is in progress.
    let after = env.kill_apply_on_first_write("app", "2").await;
    env.assert_still_progressing(&applies, "app", &message, apply_conditions)
        .await;
    let partial = env.owned_config_maps("app").await;
    let updated = partial
        .values()
        .filter(|d| d.get("generation").map(String::as_str) == Some("2"))
        .count();
    eprintln!(
        "[{}] killed the apply-controller {after:.1?} after the push; {updated} of 200 objects at generation 2",
        env.ns
    );
    assert!(updated >= 1, "the kill came before any write");
    let status = env.applies.get("app").await.unwrap().status.unwrap();
    assert_eq!(
        status.last_applied_revision.as_deref(),
        Some(first.as_str())
    );

    env.pipeline.apply.restart().await.unwrap();
    let applied = env.apply_ready_at("app", &second).await;
    assert_converged(&env, &applied, &expected_config_maps(50..250, 2)).await;
    env.done("apply-controller SIGKILL mid-apply");
}

/// SIGKILL the render-controller while it renders a new revision, restart it: the Render
/// publishes the new revision and the cluster converges on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_controller_killed_mid_render_converges() {
    let mut env = Env::new("e2e-kill-render", &many_config_maps(0..100, 1)).await;
    let first = revision(&env.repo.head());
    env.app("10m").await;
    env.apply_ready_at("app", &first).await;

    // A large file beside the manifests: the render-controller downloads, verifies and
    // unpacks the whole source artifact, which keeps the render in progress long enough for
    // the kill to land inside it.
    let mut files = many_config_maps(20..120, 2);
    files.push(("data/blob.txt".to_owned(), pseudo_random_text(8 << 20)));
    let second = env.commit(&files, "generation 2 and a large file");
    let renders = env.renders.clone();
    let message = format!("rendering revision '{second}'");
    let after = env
        .kill_when_progressing(
            &renders,
            "app",
            weir_testenv::process::Controller::Render,
            &message,
            render_conditions,
        )
        .await;
    env.assert_still_progressing(&renders, "app", &message, render_conditions)
        .await;
    eprintln!(
        "[{}] killed the render-controller {after:.1?} after the push",
        env.ns
    );
    let held = env.applies.get("app").await.unwrap().status.unwrap();
    assert_eq!(held.last_applied_revision.as_deref(), Some(first.as_str()));

    env.pipeline.render.restart().await.unwrap();
    let render = env.render_ready_at("app", &second).await;
    let artifact = render.status.unwrap().artifact.unwrap();
    let (code, body) = http_get(&artifact.url).await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(body.len() as i64, artifact.size.unwrap_or_default());
    assert_storage_complete(
        env.pipeline.render.storage_dir().unwrap(),
        "render",
        &env.ns,
        &artifact,
    );
    let applied = env.apply_ready_at("app", &second).await;
    assert_converged(&env, &applied, &expected_config_maps(20..120, 2)).await;
    env.done("render-controller SIGKILL mid-render");
}

/// SIGKILL the source-controller while it fetches and packs a new revision (one that adds a
/// large file), restart it: the GitRepository publishes the revision, its storage holds only
/// complete artifacts, and the cluster converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_controller_killed_mid_fetch_converges() {
    let mut env = Env::new("e2e-kill-source", &many_config_maps(0..20, 1)).await;
    let first = revision(&env.repo.head());
    env.app("10m").await;
    env.apply_ready_at("app", &first).await;

    // Incompressible bytes, so fetching and packing take a moment.
    let mut files = many_config_maps(0..30, 2);
    files.push(("data/blob.txt".to_owned(), pseudo_random_text(24 << 20)));
    let second = env.commit(&files, "generation 2 and a large file");
    let repos = env.repos.clone();
    let message = format!("fetching revision '{second}'");
    let after = env
        .kill_when_progressing(
            &repos,
            "app",
            weir_testenv::process::Controller::Source,
            &message,
            source_conditions,
        )
        .await;
    env.assert_still_progressing(&repos, "app", &message, source_conditions)
        .await;
    eprintln!(
        "[{}] killed the source-controller {after:.1?} after the push",
        env.ns
    );

    env.pipeline.source.restart().await.unwrap();
    let repo = env.source_ready_at("app", &second).await;
    let applied = env.apply_ready_at("app", &second).await;
    assert_converged(&env, &applied, &expected_config_maps(0..30, 2)).await;

    // The artifact is served and complete; storage holds only finished artifacts.
    let artifact = repo.status.unwrap().artifact.unwrap();
    let (code, body) = http_get(&artifact.url).await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(body.len() as i64, artifact.size.unwrap_or_default());
    assert_storage_complete(
        env.pipeline.source.storage_dir().unwrap(),
        "gitrepository",
        &env.ns,
        &artifact,
    );
    env.done("source-controller SIGKILL mid-fetch");
}

/// Artifact servers restart: consumers that failed to download while a producer was down
/// recover, whether the producer comes back with its storage (same URLs) or with an empty one
/// (a rescheduled pod with an `emptyDir`: it fetches or renders again and republishes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifact_server_restarts_consumers_recover() {
    let mut env = Env::new("e2e-artifacts", &app_files("red", true)).await;
    let first = revision(&env.repo.head());
    // Render and Apply download their input again every 3 s, so an outage shows.
    env.app_with("3s", "3s").await;
    env.apply_ready_at("app", &first).await;
    let source_url = env
        .repos
        .get("app")
        .await
        .unwrap()
        .status
        .unwrap()
        .artifact
        .unwrap()
        .url;

    // 1. The source-controller goes away: the Render cannot download, and says so.
    env.pipeline.source.kill().unwrap();
    let renders = env.renders.clone();
    env.until_not_ready(
        &renders,
        "app",
        reasons::ARTIFACT_FETCH_FAILED,
        render_conditions,
    )
    .await;
    // Back with the same storage: the same URL serves again, the Render recovers, and a new
    // commit flows through.
    env.pipeline.source.restart().await.unwrap();
    let (code, _) = http_get(&source_url).await.unwrap();
    assert_eq!(
        code, 200,
        "{source_url} after a restart with the same storage"
    );
    let blue = env.commit(&app_files("blue", true), "blue");
    env.render_ready_at("app", &blue).await;
    env.apply_ready_at("app", &blue).await;
    assert_eq!(
        env.config_map("app-config").await.unwrap().data.unwrap()["color"],
        "blue"
    );

    // 2. The render-controller goes away: the Apply cannot download, and says so. It comes
    // back with an empty storage, renders again, and the Apply recovers.
    env.pipeline.render.kill().unwrap();
    let applies = env.applies.clone();
    env.until_not_ready(
        &applies,
        "app",
        reasons::ARTIFACT_FETCH_FAILED,
        apply_conditions,
    )
    .await;
    env.pipeline
        .render
        .restart_with_empty_storage()
        .await
        .unwrap();
    env.until("the Apply Ready again", || async {
        let obj = env.applies.get("app").await.map_err(|e| e.to_string())?;
        let conds = apply_conditions(&obj);
        if conditions::is_true(&conds, types::READY) {
            Ok(())
        } else {
            Err(describe(&conds, ""))
        }
    })
    .await;
    let render_url = env
        .renders
        .get("app")
        .await
        .unwrap()
        .status
        .unwrap()
        .artifact
        .unwrap()
        .url;
    let (code, _) = http_get(&render_url).await.unwrap();
    assert_eq!(code, 200, "{render_url} republished after an empty restart");
    let green = env.commit(&app_files("green", true), "green");
    env.apply_ready_at("app", &green).await;
    assert_eq!(
        env.config_map("app-config").await.unwrap().data.unwrap()["color"],
        "green"
    );

    // 3. The source-controller comes back with an empty storage: it fetches again and
    // republishes, and the consumers go on.
    env.pipeline.source.kill().unwrap();
    env.until_not_ready(
        &renders,
        "app",
        reasons::ARTIFACT_FETCH_FAILED,
        render_conditions,
    )
    .await;
    env.pipeline
        .source
        .restart_with_empty_storage()
        .await
        .unwrap();
    let repo = env.source_ready_at("app", &green).await;
    let url = repo.status.unwrap().artifact.unwrap().url;
    env.until("the source artifact served again", || async {
        match http_get(&url).await {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let yellow = env.commit(&app_files("yellow", true), "yellow");
    env.render_ready_at("app", &yellow).await;
    env.apply_ready_at("app", &yellow).await;
    assert_eq!(
        env.config_map("app-config").await.unwrap().data.unwrap()["color"],
        "yellow"
    );
    env.done("artifact servers restart");
}

/// Webhook → immediate: with a GitRepository polling only every hour, a signed GitHub push
/// delivery to a Receiver brings a new commit onto the cluster within seconds. A delivery with
/// a wrong signature is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_webhook_applies_a_push_at_once() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::PostParams;
    use weir_api::Receiver;
    use weir_testenv::process::WEBHOOK_ADDR_FLAG;

    let env = Env::new("e2e-webhook", &app_files("red", true)).await;
    let first = revision(&env.repo.head());
    env.git_repository("app", "1h").await;
    env.render("app", "app", "app", "1h").await;
    env.apply("app", "app", "1h", serde_json::json!({})).await;
    env.apply_ready_at("app", &first).await;

    let token = "e2e-webhook-token-0123456789";
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": "webhook-token" },
        "stringData": { "token": token },
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let receivers: Api<Receiver> = Api::namespaced(env.client.clone(), &env.ns);
    let mut receiver: Receiver = serde_json::from_value(serde_json::json!({
        "apiVersion": "source.weir.dev/v1alpha1", "kind": "Receiver",
        "metadata": { "name": "github" },
        "spec": {
            "type": "github",
            "events": ["push"],
            "resources": [{ "kind": "GitRepository", "name": "app" }],
            "secretRef": { "name": "webhook-token" },
        },
    }))
    .unwrap();
    receiver.metadata.labels = env.labels();
    receivers
        .create(&PostParams::default(), &receiver)
        .await
        .unwrap();
    let path = env
        .until("the Receiver's webhook path", || async {
            let r = receivers.get("github").await.map_err(|e| e.to_string())?;
            let s = r.status.clone().unwrap_or_default();
            match s.webhook_path {
                Some(p) if conditions::is_true(&s.conditions, types::READY) => Ok(p),
                _ => Err(describe(&s.conditions, "no webhookPath yet")),
            }
        })
        .await;
    let addr = env.pipeline.source.listener(WEBHOOK_ADDR_FLAG).unwrap();

    let blue = env.commit(&app_files("blue", true), "blue");
    let body = serde_json::to_vec(&serde_json::json!({
        "ref": "refs/heads/main",
        "after": blue.trim_start_matches("main@sha1:"),
        "repository": { "full_name": "example/app" },
    }))
    .unwrap();
    let headers = |signature: String| {
        vec![
            ("Content-Type", "application/json".to_owned()),
            ("X-GitHub-Event", "push".to_owned()),
            ("X-GitHub-Delivery", "e2e-1".to_owned()),
            ("X-Hub-Signature-256", signature),
        ]
    };

    // A forged delivery is refused and triggers nothing.
    let (code, answer) = http_post(
        addr,
        &path,
        &headers(github_signature("not-the-token", &body)),
        &body,
    )
    .await
    .unwrap();
    assert_eq!(code, 401, "{answer}");
    // Its effect would be a reconcile request on the GitRepository. (Checking the artifact
    // revision instead would be racy: any incidental reconcile, such as a watch re-list, fetches
    // the new commit.)
    tokio::time::sleep(Duration::from_secs(2)).await;
    let repo = env.repos.get("app").await.unwrap();
    assert_eq!(
        weir_api::reconcile::requested_at(&repo.metadata),
        None,
        "a refused delivery must not request a reconcile"
    );

    // The signed delivery brings the commit onto the cluster at once.
    let sent = std::time::Instant::now();
    let (code, answer) = http_post(addr, &path, &headers(github_signature(token, &body)), &body)
        .await
        .unwrap();
    assert_eq!(code, 200, "{answer}");
    env.apply_ready_at("app", &blue).await;
    let took = sent.elapsed();
    let repo = env.repos.get("app").await.unwrap();
    let requested = weir_api::reconcile::requested_at(&repo.metadata)
        .expect("the delivery requested a reconcile")
        .to_owned();
    assert_eq!(
        repo.status.unwrap().last_handled_reconcile_at.as_deref(),
        Some(requested.as_str()),
        "the source-controller handled the request"
    );
    assert_eq!(
        env.config_map("app-config").await.unwrap().data.unwrap()["color"],
        "blue"
    );
    eprintln!("[{}] webhook → applied in {took:.1?}", env.ns);
    assert!(
        took < Duration::from_secs(30),
        "the webhook took {took:?}: no faster than polling"
    );
    env.done("webhook");
}

/// SIGTERM while the apply-controller applies: it shuts down gracefully, finishing the apply in
/// flight (every object written, the status recorded) before it exits with success; started
/// again it has nothing left to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_controller_sigterm_finishes_the_apply_in_flight() {
    let mut env = Env::new("e2e-term-apply", &many_config_maps(0..200, 1)).await;
    let first = revision(&env.repo.head());
    env.app("10m").await;
    env.apply_ready_at("app", &first).await;

    let second = env.commit(&many_config_maps(0..200, 2), "generation 2");
    env.until_first_write("app", "2").await;
    let started = std::time::Instant::now();
    let exit = env.pipeline.apply.terminate().await.unwrap();
    let took = started.elapsed();
    eprintln!(
        "[{}] SIGTERM mid-apply: exited with {exit} after {took:.1?}",
        env.ns
    );
    assert!(
        exit.success(),
        "graceful shutdown should exit 0, got {exit}"
    );
    let obj = env.applies.get("app").await.unwrap();
    let status = obj.status.clone().unwrap();
    assert_eq!(
        status.last_applied_revision.as_deref(),
        Some(second.as_str()),
        "the apply in flight was finished and recorded before exit: {}",
        describe(&status.conditions, "")
    );
    assert_converged(&env, &obj, &expected_config_maps(0..200, 2)).await;

    env.pipeline.apply.restart().await.unwrap();
    let applied = env.apply_ready_at("app", &second).await;
    assert_converged(&env, &applied, &expected_config_maps(0..200, 2)).await;
    env.done("apply-controller SIGTERM mid-apply");
}

/// SIGTERM on an idle pipeline: every controller shuts down gracefully (exit 0) within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_controller_exits_cleanly_on_sigterm() {
    use weir_testenv::process::Controller;

    let mut env = Env::new("e2e-term", &app_files("red", true)).await;
    let first = revision(&env.repo.head());
    env.app("10m").await;
    env.apply_ready_at("app", &first).await;
    for controller in Controller::ALL {
        let started = std::time::Instant::now();
        let process = env.pipeline.process(controller);
        let exit = process.terminate().await.unwrap();
        let took = started.elapsed();
        assert!(
            exit.success(),
            "{} exited with {exit} on SIGTERM:\n{}",
            controller.binary_name(),
            process.log_tail(20)
        );
        assert!(
            took < Duration::from_secs(10),
            "{} took {took:?} to stop",
            controller.binary_name()
        );
        assert!(!process.is_running());
    }
    env.done("SIGTERM");
}

/// Asserts that the storage directory of object `app` of `kind` holds `artifact` and nothing but
/// complete artifacts (`<sha256>.tar.gz`): a kill mid-write leaves no partial file behind.
fn assert_storage_complete(
    storage: &std::path::Path,
    kind: &str,
    ns: &str,
    artifact: &weir_api::Artifact,
) {
    let dir = storage.join(kind).join(ns).join("app");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let digest = artifact.digest.trim_start_matches("sha256:");
    assert!(
        names.iter().any(|n| n == &format!("{digest}.tar.gz")),
        "{} lacks the current artifact: {names:?}",
        dir.display()
    );
    assert!(
        names
            .iter()
            .all(|n| n.len() == 64 + ".tar.gz".len() && n.ends_with(".tar.gz")),
        "{} holds something besides complete artifacts: {names:?}",
        dir.display()
    );
}
