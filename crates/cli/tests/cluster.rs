//! The real `weir` binary against the real control plane, with the real source-, render- and
//! apply-controllers running in-process: tables, the pipeline view, reconcile, suspend/resume,
//! events, tree, check and every documented exit code.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::BTreeMap,
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use kube::{
    Api, Client,
    api::PostParams,
    config::{KubeConfigOptions, Kubeconfig},
};
use tokio::io::{AsyncBufReadExt, BufReader};
use weir_api::{Apply, GitRepository, Render};
use weir_testenv::{TestCluster, git::Repo};

const SHARD_LABEL: &str = "weir.dev/test-shard";

const KUSTOMIZATION: &str = "resources: [settings.yaml, creds.yaml]\n";
const SETTINGS: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: blue\n";
const CREDS: &str =
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: hunter2\n";

/// What one run of the binary produced.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn assert_error(&self, code: i32, wanted: &str) {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        let err = self.stderr.trim_end();
        assert_eq!(err.lines().count(), 1, "stderr: {err:?}");
        assert!(err.starts_with("error: "), "stderr: {err:?}");
        assert!(err.contains(wanted), "stderr {err:?} lacks {wanted:?}");
    }
}

struct Harness {
    _cluster: TestCluster,
    client: Client,
    ns: String,
    kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
    controllers: Option<(
        weir_source_controller::Running,
        weir_render_controller::Running,
        weir_apply_controller::Running,
    )>,
}

impl Harness {
    async fn new() -> Harness {
        let cluster = TestCluster::shared().await.unwrap();
        cluster.install_crds(&weir_api::crds::all()).await.unwrap();
        let ns = cluster.namespace("cli").await.unwrap();
        let client = cluster.client();
        let dir = tempfile::tempdir().unwrap();
        Harness {
            kubeconfig: cluster.kubeconfig_path().to_owned(),
            _cluster: cluster,
            client,
            ns,
            _dir: dir,
            controllers: None,
        }
    }

    /// Starts the three controllers, watching only this test's objects.
    async fn start_controllers(&mut self) {
        let selector = format!("{SHARD_LABEL}={}", self.ns);
        let dir = self._dir.path();
        let source = weir_source_controller::start(
            self.client.clone(),
            weir_source_controller::Config {
                storage_path: dir.join("source"),
                storage_addr: "127.0.0.1:0".into(),
                metrics_addr: "127.0.0.1:0".into(),
                health_addr: "127.0.0.1:0".into(),
                watch_label_selector: Some(selector.clone()),
                default_timeout: Duration::from_secs(20),
                webhook_addr: None,
                ..weir_source_controller::Config::default()
            },
        )
        .await
        .unwrap();
        let render = weir_render_controller::start(
            self.client.clone(),
            weir_render_controller::Config {
                storage_path: dir.join("render"),
                storage_addr: "127.0.0.1:0".into(),
                metrics_addr: "127.0.0.1:0".into(),
                health_addr: "127.0.0.1:0".into(),
                watch_label_selector: Some(selector.clone()),
                ..weir_render_controller::Config::default()
            },
        )
        .await
        .unwrap();
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .unwrap();
        let apply = weir_apply_controller::start(
            config,
            weir_apply_controller::Config {
                metrics_addr: "127.0.0.1:0".into(),
                health_addr: "127.0.0.1:0".into(),
                watch_label_selector: Some(selector),
                ..weir_apply_controller::Config::default()
            },
        )
        .await
        .unwrap();
        self.controllers = Some((source, render, apply));
    }

    async fn stop(&mut self) {
        if let Some((s, r, a)) = self.controllers.take() {
            a.stop().await;
            r.stop().await;
            s.stop().await;
        }
    }

    fn labels(&self, sharded: bool) -> Option<BTreeMap<String, String>> {
        sharded.then(|| BTreeMap::from([(SHARD_LABEL.to_owned(), self.ns.clone())]))
    }

    /// Creates GitRepository `repo`, Render `web` of its `app/` and Apply `web` of the Render.
    async fn pipeline(&self, repo: &Repo) {
        self.pipeline_with(repo, serde_json::json!({})).await;
    }

    /// [`Harness::pipeline`] with extra Render `spec` fields.
    async fn pipeline_with(&self, repo: &Repo, render_spec: serde_json::Value) {
        let mut git = GitRepository::new(
            "repo",
            serde_json::from_value(serde_json::json!({
                "url": format!("file://{}", repo.bare.display()), "interval": "1h", "timeout": "20s",
            }))
            .unwrap(),
        );
        git.metadata.labels = self.labels(true);
        Api::<GitRepository>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &git)
            .await
            .unwrap();
        let mut spec = serde_json::json!({
            "sourceRef": { "kind": "GitRepository", "name": "repo" },
            "path": "app", "interval": "1h", "timeout": "30s",
        });
        spec.as_object_mut()
            .unwrap()
            .extend(render_spec.as_object().unwrap().clone());
        let mut render = Render::new("web", serde_json::from_value(spec).unwrap());
        render.metadata.labels = self.labels(true);
        Api::<Render>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &render)
            .await
            .unwrap();
        self.apply("web", "Render", "web", true).await;
    }

    async fn apply(&self, name: &str, source_kind: &str, source: &str, sharded: bool) {
        let mut apply = Apply::new(
            name,
            serde_json::from_value(serde_json::json!({
                "sourceRef": { "kind": source_kind, "name": source },
                "interval": "1h", "retryInterval": "2s", "timeout": "30s", "prune": true,
                "targetNamespace": self.ns,
            }))
            .unwrap(),
        );
        apply.metadata.labels = self.labels(sharded);
        Api::<Apply>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &apply)
            .await
            .unwrap();
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir"));
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["-n", &self.ns])
            .args(args)
            .env_remove("KUBECONFIG")
            .env("NO_COLOR", "1")
            .kill_on_drop(true);
        cmd
    }

    async fn weir(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().await.unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    async fn weir_ok(&self, args: &[&str]) -> String {
        let run = self.weir(args).await;
        assert_eq!(
            run.code, 0,
            "weir {args:?}\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        run.stdout
    }

    /// Waits until `weir get all` shows every object Ready (what the test asserts on comes after).
    async fn until_all_ready(&self) {
        let start = Instant::now();
        loop {
            let run = self.weir(&["get", "all"]).await;
            let rows: Vec<&str> = run
                .stdout
                .lines()
                .filter(|l| l.contains('/') && !l.contains('→'))
                .collect();
            if rows.len() == 3
                && rows
                    .iter()
                    .all(|r| r.split_whitespace().nth(1) == Some("True"))
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "not ready: {}{}",
                run.stdout,
                run.stderr
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Replaces what changes from run to run: the namespace, commits, ages; and lays columns out
    /// with three spaces (cell widths change with those values).
    fn normalise(&self, text: &str, commits: &[&str]) -> String {
        let mut text = text.to_owned();
        for c in commits {
            text = text.replace(c, "<commit>");
        }
        text.lines()
            .map(|line| {
                let cells: Vec<String> = split_cells(line)
                    .into_iter()
                    .map(|cell| {
                        if cell == self.ns {
                            "<ns>".to_owned()
                        } else if is_age(&cell) {
                            "<age>".to_owned()
                        } else {
                            cell.replace(&self.ns, "<ns>")
                        }
                    })
                    .collect();
                format!("{}\n", cells.join("   "))
            })
            .collect()
    }
}

/// Splits a table line at runs of two or more spaces (cells hold single spaces only).
fn split_cells(line: &str) -> Vec<String> {
    if !line.contains("   ") {
        // Not a table row (tree lines, pipeline): keep as is.
        return vec![line.to_owned()];
    }
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `5s`, `3m20s`, `2d`: kubectl's ages.
fn is_age(cell: &str) -> bool {
    !cell.is_empty()
        && cell.starts_with(|c: char| c.is_ascii_digit())
        && cell.ends_with(['s', 'm', 'h', 'd', 'y'])
        && cell
            .chars()
            .all(|c| c.is_ascii_digit() || "smhdy".contains(c))
}

fn snapshot(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn repo() -> Repo {
    Repo::new(&[
        ("app/kustomization.yaml", KUSTOMIZATION),
        ("app/settings.yaml", SETTINGS),
        ("app/creds.yaml", CREDS),
    ])
}

fn head(repo: &Repo) -> String {
    weir_testenv::git::git(&repo.work, &["rev-parse", "HEAD"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_reconcile_suspend_tree_events_against_real_controllers() {
    let mut h = Harness::new().await;
    let repo = repo();
    let first = head(&repo);
    h.pipeline(&repo).await;

    // Before any controller ran: a table with Unknown readiness, nothing fails.
    let out = h.weir_ok(&["get", "applies"]).await;
    assert!(out.contains("web") && out.contains("Unknown"), "{out}");

    h.start_controllers().await;
    h.until_all_ready().await;

    let all = h.weir_ok(&["get", "all"]).await;
    assert_eq!(
        h.normalise(&all, &[&first]),
        snapshot("get_all.txt"),
        "{all}"
    );

    // Colour only on a terminal (script(1) gives the binary a pty), and never with NO_COLOR.
    let on_tty = |no_color: bool| {
        let line = format!(
            "{} --kubeconfig {} -n {} get all",
            env!("CARGO_BIN_EXE_weir"),
            h.kubeconfig.display(),
            h.ns
        );
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"])
            .env_remove("NO_COLOR");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.output().expect("script(1) from util-linux");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(
        on_tty(false).contains("\x1b[32mTrue\x1b[0m"),
        "{:?}",
        on_tty(false)
    );
    assert!(!on_tty(true).contains('\x1b'));
    let mut piped = h.command(&["get", "all"]);
    piped.env_remove("NO_COLOR");
    let piped = piped.output().await.unwrap();
    assert!(!String::from_utf8(piped.stdout).unwrap().contains('\x1b'));

    let across = h.weir_ok(&["get", "applies", "-A"]).await;
    let ours: String = across
        .lines()
        .filter(|l| l.starts_with("NAMESPACE") || l.starts_with(&h.ns))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        h.normalise(&ours, &[&first]),
        snapshot("get_applies_all_namespaces.txt"),
        "{across}"
    );

    // Machine-readable output is the objects themselves.
    let json: serde_json::Value =
        serde_json::from_str(&h.weir_ok(&["get", "sources", "-o", "json"]).await).unwrap();
    assert_eq!(json["kind"], "List");
    assert_eq!(json["items"][0]["metadata"]["name"], "repo");
    assert_eq!(
        json["items"][0]["status"]["artifact"]["revision"],
        format!("main@sha1:{first}")
    );
    let yaml: serde_json::Value =
        serde_yaml::from_str(&h.weir_ok(&["get", "rnd", "web", "-o", "yaml"]).await).unwrap();
    assert_eq!(yaml["items"][0]["kind"], "Render");

    // A new commit, pulled through the whole chain by one command.
    let second = repo.commit(
        &[("app/settings.yaml", &SETTINGS.replace("blue", "green"))],
        "green",
    );
    let out = h
        .weir_ok(&[
            "reconcile",
            "apply",
            "web",
            "--with-source",
            "--timeout",
            "90s",
        ])
        .await;
    for wanted in [
        format!("✔ render/web reconciled: revision main@sha1:{second}"),
        format!("✔ gitrepository/repo reconciled: revision main@sha1:{second}"),
        format!("✔ apply/web reconciled: revision main@sha1:{second}"),
        // The settings ConfigMap changed, the Secret did not.
        format!("change set: revision 'main@sha1:{second}': 1 configured, 1 unchanged"),
    ] {
        assert!(out.contains(&wanted), "{wanted:?} not in:\n{out}");
    }
    // Sources first: the gitrepository line comes before the render's, the render's before the apply's.
    let pos = |s: &str| out.find(s).unwrap();
    assert!(
        pos("✔ gitrepository/repo") < pos("✔ render/web")
            && pos("✔ render/web") < pos("✔ apply/web"),
        "{out}"
    );

    // Tree: the inventory with health.
    let tree = h.weir_ok(&["tree", "apply", "web"]).await;
    assert_eq!(
        tree.replace(&h.ns, "<ns>"),
        snapshot("tree_apply.txt"),
        "{tree}"
    );

    // Events of one object, and of the namespace.
    let events = h.weir_ok(&["events", "apply", "web"]).await;
    assert!(events.starts_with("LAST SEEN"), "{events}");
    assert!(
        events.contains("ApplySucceeded") && events.contains("apply/web"),
        "{events}"
    );
    assert!(!events.contains("gitrepository/repo"), "{events}");
    let events = h.weir_ok(&["events"]).await;
    assert!(
        events.contains("NewArtifact") && events.contains("gitrepository/repo"),
        "{events}"
    );

    // --watch prints the table, then a row per change.
    let mut child = h
        .command(&["get", "applies", "--watch"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("watch printed nothing for 30 s")
            .unwrap()
            .unwrap()
    };
    assert!(next().await.starts_with("NAME"));
    assert!(next().await.contains("false"));

    // Suspend: the watch sees it, reconcile refuses it (exit 1), resume clears it.
    h.weir_ok(&["suspend", "apl", "web"]).await;
    let row = next().await;
    assert!(
        row.starts_with("web") && row.split_whitespace().any(|c| c == "true"),
        "{row}"
    );
    child.kill().await.unwrap();
    let applies = Api::<Apply>::namespaced(h.client.clone(), &h.ns);
    assert!(applies.get("web").await.unwrap().spec.suspend);
    h.weir(&["reconcile", "apply", "web"])
        .await
        .assert_error(1, "is suspended");
    let out = h.weir_ok(&["resume", "apply", "web"]).await;
    assert!(out.contains("resumed"), "{out}");
    assert!(!applies.get("web").await.unwrap().spec.suspend);

    // A reconcile that ends Ready=False exits 1 with the controller's reason.
    h.apply("broken", "Render", "absent", true).await;
    h.weir(&["reconcile", "apply", "broken", "--timeout", "60s"])
        .await
        .assert_error(1, "apply/broken");

    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_exit_code() {
    let h = Harness::new().await;
    // 2: an unknown kind, before any request.
    h.weir(&["get", "deployments"])
        .await
        .assert_error(2, "unknown kind 'deployments'");
    h.weir(&["reconcile", "pods", "x"])
        .await
        .assert_error(2, "unknown kind 'pods'");
    // 3: a missing object.
    h.weir(&["get", "apply", "nope"])
        .await
        .assert_error(3, &format!("apply/nope in namespace {} not found", h.ns));
    h.weir(&["reconcile", "gitrepo", "nope"])
        .await
        .assert_error(3, "gitrepository/nope");
    h.weir(&["suspend", "render", "nope"])
        .await
        .assert_error(3, "render/nope");
    h.weir(&["tree", "apply", "nope"])
        .await
        .assert_error(3, "apply/nope");
    // 5: nobody reconciles this Apply (no controller watches unlabelled objects in this test).
    h.apply("orphan", "GitRepository", "none", false).await;
    let run = h
        .weir(&["reconcile", "apply", "orphan", "--timeout", "2s"])
        .await;
    run.assert_error(5, "timed out after 2s waiting for apply/orphan");
    assert!(
        run.stdout.contains("◎ waiting for apply/orphan"),
        "{}",
        run.stdout
    );
    // An empty list is no error; stdout stays empty for scripts.
    let run = h.weir(&["get", "renders"]).await;
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{}", run.stderr);
    assert!(run.stderr.contains("No renders found"), "{}", run.stderr);
    let run = h.weir(&["get", "rcv"]).await;
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{}", run.stderr);
    assert!(run.stderr.contains("No receivers found"), "{}", run.stderr);

    // 4: no cluster — a kubeconfig pointing at a closed port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\nusers:\n- name: u\n  user: {{token: t}}\n"
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["get", "all", "--kubeconfig"])
        .arg(&kubeconfig)
        .output()
        .await
        .unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    run.assert_error(4, "cannot reach the cluster");
    // 4: the real apiserver refusing a token it does not know (401).
    let real = Kubeconfig::read_from(&h.kubeconfig).unwrap();
    let server = real.clusters[0]
        .cluster
        .as_ref()
        .unwrap()
        .server
        .clone()
        .unwrap();
    let bad_token = dir.path().join("bad-token");
    std::fs::write(
        &bad_token,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\nusers:\n- name: u\n  user: {{token: not-a-real-token}}\n"
        ),
    )
    .unwrap();
    h.weir(&[
        "get",
        "applies",
        "--kubeconfig",
        bad_token.to_str().unwrap(),
    ])
    .await
    .assert_error(4, "refused our credentials");
    // 4: a kubeconfig that does not exist, or names an unknown context.
    h.weir(&["get", "all", "--kubeconfig", "/nonexistent/kubeconfig"])
        .await
        .assert_error(4, "kubeconfig");
    h.weir(&["get", "all", "--context", "nope"])
        .await
        .assert_error(4, "nope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_export_apply_and_check() {
    let h = Harness::new().await;
    // The embedded manifests build exactly as `kubectl kustomize config/default`.
    let exported = h.weir_ok(&["install", "--export"]).await;
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default");
    let kubectl = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(&config)
        .output()
        .expect("kubectl (with kustomize v5.5) must be installed");
    assert!(
        kubectl.status.success(),
        "{}",
        String::from_utf8_lossy(&kubectl.stderr)
    );
    assert_eq!(exported, String::from_utf8(kubectl.stdout).unwrap());
    // One component: its controller and CRDs, the shared Namespace, nothing else.
    let render_only = h
        .weir_ok(&["install", "--components", "render", "--export"])
        .await;
    for wanted in [
        "name: render-controller",
        "name: renders.render.weir.dev",
        "name: weir-system",
    ] {
        assert!(render_only.contains(wanted), "{wanted}: {render_only}");
    }
    for unwanted in [
        "apply-controller",
        "source-controller",
        "gitrepositories.source.weir.dev",
    ] {
        assert!(!render_only.contains(unwanted), "{unwanted}: {render_only}");
    }
    h.weir(&["install", "--components", "source,helm", "--export"])
        .await
        .assert_error(2, "unknown component 'helm'");

    // check: reachable, version, CRDs.
    let run = h.weir(&["check"]).await;
    assert!(
        run.stdout.contains("✔ cluster reachable: Kubernetes v1."),
        "{}",
        run.stdout
    );
    for crd in [
        "gitrepositories.source.weir.dev",
        "renders.render.weir.dev",
        "applies.apply.weir.dev",
    ] {
        assert!(
            run.stdout
                .contains(&format!("✔ CRD {crd}: established, serves v1alpha1")),
            "{}",
            run.stdout
        );
    }
    // Before an install (unless an earlier one in this shared cluster made them), the
    // controllers are missing and check fails naming them.
    if run
        .stdout
        .contains("✗ source-controller: not installed in namespace weir-system")
    {
        run.assert_error(1, "check(s) failed");
    }

    // Install for real: server-side apply with our field manager.
    let out = h.weir_ok(&["install"]).await;
    for wanted in [
        "► CustomResourceDefinition.apiextensions.k8s.io applies.apply.weir.dev applied",
        "► Namespace weir-system applied",
        "► Deployment.apps weir-system/apply-controller applied",
        "✔ weir installed",
    ] {
        assert!(out.contains(wanted), "{wanted}: {out}");
    }
    // Definitions first.
    assert!(
        out.find("► Namespace weir-system").unwrap() < out.find("► Deployment.apps").unwrap(),
        "{out}"
    );
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(h.client.clone(), "weir-system");
    let d = deployments.get("source-controller").await.unwrap();
    assert!(
        d.metadata
            .managed_fields
            .unwrap()
            .iter()
            .any(|m| m.manager.as_deref() == Some("weir-install")
                && m.operation.as_deref() == Some("Apply")),
    );
    // Now check finds the Deployments (Ready or not: the test cluster may not run their Pods).
    let run = h.weir(&["check"]).await;
    for name in ["source-controller", "render-controller", "apply-controller"] {
        assert!(
            run.stdout.contains(&format!("{name}: "))
                && !run.stdout.contains(&format!("{name}: not installed")),
            "{}",
            run.stdout
        );
    }
    let version = h.weir_ok(&["version"]).await;
    assert!(
        version.starts_with("weir 0.") && version.contains("kubernetes v1."),
        "{version}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_and_build_render_against_real_controllers() {
    let mut h = Harness::new().await;
    let repo = Repo::new(&[
        ("app/kustomization.yaml", KUSTOMIZATION),
        ("app/settings.yaml", &SETTINGS.replace("blue", "${MODE}")),
        ("app/creds.yaml", CREDS),
    ]);
    h.pipeline_with(
        &repo,
        serde_json::json!({ "commonMetadata": { "labels": { "team": "a" } }, "substitute": { "MODE": "green" } }),
    )
    .await;
    h.start_controllers().await;
    h.until_all_ready().await;

    // What the cluster renders: the overlay and the substitution of the Render's spec.
    let rendered = h.weir_ok(&["build", "render", "web"]).await;
    assert_eq!(rendered, snapshot("build_render.txt"));

    // In sync: no output, exit 0.
    let run = h.weir(&["diff", "apply", "web"]).await;
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "", "")
    );

    // A checkout against the Apply: one object created, one changed, one pruned; exit 1.
    let dir = tempfile::tempdir().unwrap();
    for (file, text) in [
        (
            "kustomization.yaml",
            "resources: [settings.yaml, extra.yaml]\n",
        ),
        (
            "settings.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: {team: a}\ndata:\n  mode: purple\n",
        ),
        (
            "extra.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  size: small\n",
        ),
    ] {
        std::fs::write(dir.path().join(file), text).unwrap();
    }
    let run = h
        .weir(&["diff", dir.path().to_str().unwrap(), "--apply", "web"])
        .await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr, "");
    assert_eq!(
        run.stdout.replace(&h.ns, "<ns>"),
        snapshot("diff_dir.txt"),
        "{}",
        run.stdout
    );
    // A dry-run writes nothing.
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(h.client.clone(), &h.ns);
    assert!(config_maps.get_opt("extra").await.unwrap().is_none());
    assert_eq!(
        config_maps.get("settings").await.unwrap().data.unwrap()["mode"],
        "green"
    );

    // Drift made by someone else: shown against what the controller would restore; Secret
    // values masked.
    use kube::api::{Patch, PatchParams};
    config_maps
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "data": { "mode": "red" } })),
        )
        .await
        .unwrap();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(h.client.clone(), &h.ns);
    secrets
        .patch(
            "creds",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "stringData": { "password": "swordfish" } })),
        )
        .await
        .unwrap();
    let run = h.weir(&["diff", "apply", "web"]).await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout.replace(&h.ns, "<ns>"),
        snapshot("diff_drift.txt"),
        "{}",
        run.stdout
    );
    for secret in ["hunter2", "swordfish", "aHVudGVyMg", "c3dvcmRmaXNo"] {
        assert!(!run.stdout.contains(secret), "{}", run.stdout);
    }

    // Errors: a missing Apply (3), an unusable directory (6), bad usage (2).
    h.weir(&["diff", "apply", "nope"])
        .await
        .assert_error(3, "apply/nope");
    h.weir(&["build", "render", "nope"])
        .await
        .assert_error(3, "render/nope");
    h.weir(&["diff", "/nonexistent", "--apply", "web"])
        .await
        .assert_error(6, "no such directory");
    h.weir(&["diff", "apply"])
        .await
        .assert_error(2, "diff takes");

    // The artifact server gone (controllers stopped): one line pointing at weir build <dir>.
    h.stop().await;
    h.weir(&["build", "render", "web", "--timeout", "3s"])
        .await
        .assert_error(1, "weir build <dir>");
    h.weir(&["diff", "apply", "web", "--timeout", "3s"])
        .await
        .assert_error(6, "downloading the artifact of render/web");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_weir_is_not_found_until_installed() {
    // A control plane of its own: the shared one has the CRDs installed.
    let plane = weir_testenv::ControlPlane::start(weir_testenv::ControlPlaneOptions::default())
        .await
        .unwrap();
    let weir = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("--kubeconfig")
            .arg(plane.kubeconfig_path())
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    };
    for args in [
        &["get", "applies"][..],
        &["get", "all"][..],
        &["reconcile", "apply", "web"][..],
        &["tree", "apply", "web"][..],
    ] {
        weir(args).assert_error(3, "the weir CRDs are not installed (run weir install)");
    }
    let run = weir(&["check"]);
    assert!(
        run.stdout
            .contains("✗ CRD applies.apply.weir.dev: not installed (run weir install)"),
        "{}",
        run.stdout
    );
    run.assert_error(1, "check(s) failed");

    // Installing one controller brings its kinds (and only those).
    let run = weir(&["install", "--components", "source"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let run = weir(&["get", "sources"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("No gitrepositories found in namespace default"),
        "{}",
        run.stderr
    );
    weir(&["get", "renders"]).assert_error(3, "no Render kind");
}
