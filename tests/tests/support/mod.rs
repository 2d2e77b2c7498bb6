//! The end-to-end harness: one namespace, one Git repository served by `git http-backend`, and
//! the three controllers as real processes (sharded to the namespace by a label selector), all
//! against the run's real control plane.

#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    future::Future,
    time::{Duration, Instant},
};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client, Resource,
    api::{ListParams, Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde::de::DeserializeOwned;
use weir_api::{
    Apply, Condition, GitRepository, Render,
    conditions::{self, types},
};
use weir_testenv::{
    TestCluster,
    git::{HttpServer, Repo},
    process::{Controller, Pipeline, ProcessOptions},
};

/// Label that shards objects to one test's controllers.
pub const SHARD_LABEL: &str = "weir.dev/e2e-shard";

/// How long any one expectation may take.
pub const WAIT: Duration = Duration::from_secs(120);

/// One test's world.
pub struct Env {
    pub cluster: TestCluster,
    pub client: Client,
    pub ns: String,
    pub repo: Repo,
    pub git: HttpServer,
    pub pipeline: Pipeline,
    pub repos: Api<GitRepository>,
    pub renders: Api<Render>,
    pub applies: Api<Apply>,
    started: Instant,
}

impl Env {
    /// A namespace, a repository holding `files` served over smart HTTP, and the three
    /// controllers.
    pub async fn new(prefix: &str, files: &[(String, String)]) -> Env {
        Env::with_options(prefix, files, |_, o| o).await
    }

    /// [`Env::new`] with per-controller options.
    pub async fn with_options(
        prefix: &str,
        files: &[(String, String)],
        tweak: impl Fn(Controller, ProcessOptions) -> ProcessOptions,
    ) -> Env {
        let started = Instant::now();
        let cluster = TestCluster::shared().await.unwrap();
        cluster.install_crds(&weir_api::crds::all()).await.unwrap();
        let ns = cluster.namespace(prefix).await.unwrap();
        let client = cluster.client();
        let repo = Repo::new(&borrow(files));
        let git = HttpServer::start(repo.bare.parent().unwrap(), &[]);
        let base = ProcessOptions::new(cluster.kubeconfig_path())
            .watch_label_selector(format!("{SHARD_LABEL}={ns}"));
        let pipeline = Pipeline::start_with(|c| tweak(c, base.clone()))
            .await
            .unwrap();
        eprintln!(
            "[{ns}] control plane, repository and controllers ready in {:.1?}",
            started.elapsed()
        );
        Env {
            repos: Api::namespaced(client.clone(), &ns),
            renders: Api::namespaced(client.clone(), &ns),
            applies: Api::namespaced(client.clone(), &ns),
            cluster,
            client,
            ns,
            repo,
            git,
            pipeline,
            started,
        }
    }

    pub fn labels(&self) -> Option<BTreeMap<String, String>> {
        Some(BTreeMap::from([(SHARD_LABEL.to_owned(), self.ns.clone())]))
    }

    /// Prints how long the test took (the suite's runtime is reported per scenario).
    pub fn done(&self, what: &str) {
        eprintln!(
            "[{}] {what}: passed in {:.1?}",
            self.ns,
            self.started.elapsed()
        );
    }

    /// The repository's URL on the smart-HTTP server.
    pub fn git_url(&self) -> String {
        self.git.url("repo.git")
    }

    /// Commits `files` (written over the working tree) and pushes; returns the revision the
    /// source-controller will report (`main@sha1:<commit>`).
    pub fn commit(&self, files: &[(String, String)], message: &str) -> String {
        revision(&self.repo.commit(&borrow(files), message))
    }

    /// Deletes `paths` from the working tree, commits and pushes; returns the revision.
    pub fn remove(&self, paths: &[&str], message: &str) -> String {
        for path in paths {
            std::fs::remove_file(self.repo.work.join(path)).unwrap();
        }
        revision(&self.repo.commit(&[], message))
    }

    /// `git revert` of `commit` (a revision or a commit id), pushed; returns the new revision.
    pub fn revert(&self, commit: &str) -> String {
        let id = commit.rsplit(':').next().unwrap();
        weir_testenv::git::git(&self.repo.work, &["revert", "--no-edit", id]);
        self.repo.push();
        revision(&self.repo.head())
    }

    /// GitRepository `name` over smart HTTP, polling every `interval`.
    pub async fn git_repository(&self, name: &str, interval: &str) {
        let spec =
            serde_json::json!({ "url": self.git_url(), "interval": interval, "timeout": "30s" });
        let mut obj = GitRepository::new(name, serde_json::from_value(spec).unwrap());
        obj.metadata.labels = self.labels();
        self.repos
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }

    /// Render `name` of GitRepository `repo` at `path`.
    pub async fn render(&self, name: &str, repo: &str, path: &str, interval: &str) {
        let spec = serde_json::json!({
            "sourceRef": { "kind": "GitRepository", "name": repo },
            "path": path, "interval": interval, "timeout": "60s",
        });
        let mut obj = Render::new(name, serde_json::from_value(spec).unwrap());
        obj.metadata.labels = self.labels();
        self.renders
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }

    /// Apply `name` of Render `render` into this namespace, prune on, with extra `spec` fields.
    pub async fn apply(&self, name: &str, render: &str, interval: &str, spec: serde_json::Value) {
        let mut full = serde_json::json!({
            "sourceRef": { "kind": "Render", "name": render },
            "interval": interval,
            "retryInterval": "2s",
            "timeout": "60s",
            "prune": true,
            "targetNamespace": self.ns,
        });
        full.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        let mut obj = Apply::new(name, serde_json::from_value(full).unwrap());
        obj.metadata.labels = self.labels();
        self.applies
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }

    /// GitRepository, Render and Apply, all named `app`: the source polls every 2 s, the
    /// Render reads `app/`, the Apply re-applies every `apply_interval`.
    pub async fn app(&self, apply_interval: &str) {
        self.app_with("10m", apply_interval).await;
    }

    /// [`Env::app`] with the Render's interval too.
    pub async fn app_with(&self, render_interval: &str, apply_interval: &str) {
        self.git_repository("app", "2s").await;
        self.render("app", "app", "app", render_interval).await;
        self.apply("app", "app", apply_interval, serde_json::json!({}))
            .await;
    }

    pub async fn patch_apply(&self, name: &str, patch: serde_json::Value) {
        self.applies
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    }

    /// Polls `check` every 200 ms until it returns `Ok`; after [`WAIT`] fails with what was
    /// expected, the last thing seen and the tails of the controllers' logs.
    pub async fn until<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let start = Instant::now();
        loop {
            let seen = match check().await {
                Ok(v) => return v,
                Err(seen) => seen,
            };
            if start.elapsed() > WAIT {
                panic!(
                    "[{}] timed out after {WAIT:?} waiting for {what}\nlast seen: {seen}\n{}",
                    self.ns,
                    self.pipeline.log_tails(15)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until Apply `name` is Ready for its generation with `revision` applied.
    pub async fn apply_ready_at(&self, name: &str, revision: &str) -> Apply {
        self.until(&format!("Apply {name} Ready at {revision}"), || async {
            let obj = self.applies.get(name).await.map_err(|e| e.to_string())?;
            let s = obj.status.clone().unwrap_or_default();
            let ok = conditions::is_true(&s.conditions, types::READY)
                && s.last_applied_revision.as_deref() == Some(revision)
                && s.observed_generation == obj.metadata.generation;
            if ok {
                Ok(obj)
            } else {
                Err(describe(
                    &s.conditions,
                    &format!("lastAppliedRevision {:?}", s.last_applied_revision),
                ))
            }
        })
        .await
    }

    /// Waits until Render `name` is Ready with an artifact at `revision`.
    pub async fn render_ready_at(&self, name: &str, revision: &str) -> Render {
        self.until(&format!("Render {name} Ready at {revision}"), || async {
            let obj = self.renders.get(name).await.map_err(|e| e.to_string())?;
            let s = obj.status.clone().unwrap_or_default();
            let at = s.artifact.as_ref().map(|a| a.revision.clone());
            if conditions::is_true(&s.conditions, types::READY)
                && at.as_deref() == Some(revision)
                && s.observed_generation == obj.metadata.generation
            {
                Ok(obj)
            } else {
                Err(describe(
                    &s.conditions,
                    &format!("artifact revision {at:?}"),
                ))
            }
        })
        .await
    }

    /// Waits until GitRepository `name` is Ready with an artifact at `revision`.
    pub async fn source_ready_at(&self, name: &str, revision: &str) -> GitRepository {
        self.until(
            &format!("GitRepository {name} Ready at {revision}"),
            || async {
                let obj = self.repos.get(name).await.map_err(|e| e.to_string())?;
                let s = obj.status.clone().unwrap_or_default();
                let at = s.artifact.as_ref().map(|a| a.revision.clone());
                if conditions::is_true(&s.conditions, types::READY)
                    && at.as_deref() == Some(revision)
                {
                    Ok(obj)
                } else {
                    Err(describe(
                        &s.conditions,
                        &format!("artifact revision {at:?}"),
                    ))
                }
            },
        )
        .await
    }

    pub fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub async fn config_map(&self, name: &str) -> Option<ConfigMap> {
        self.config_maps().get_opt(name).await.unwrap()
    }

    /// The ConfigMaps carrying Apply `apply`'s owner labels, by name, with their data.
    pub async fn owned_config_maps(
        &self,
        apply: &str,
    ) -> BTreeMap<String, BTreeMap<String, String>> {
        let selector = format!(
            "apply.weir.dev/name={apply},apply.weir.dev/namespace={}",
            self.ns
        );
        self.config_maps()
            .list(&ListParams::default().labels(&selector))
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|c| {
                (
                    c.metadata.name.clone().unwrap_or_default(),
                    c.data.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// SIGKILLs `controller` the moment `object` reports it started work on `message`
    /// (Reconciling=True, reason Progressing, e.g. "applying revision 'main@sha1:…'"), seen
    /// through a watch. Returns how long after the call the kill happened.
    pub async fn kill_when_progressing<K>(
        &mut self,
        api: &Api<K>,
        object: &str,
        controller: Controller,
        message: &str,
        conditions_of: impl Fn(&K) -> Vec<Condition>,
    ) -> Duration
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    {
        let start = Instant::now();
        let config = watcher::Config::default().fields(&format!("metadata.name={object}"));
        let mut events = watcher(api.clone(), config).applied_objects().boxed();
        let found = tokio::time::timeout(WAIT, async {
            while let Some(obj) = events.try_next().await.unwrap() {
                if progressing(&conditions_of(&obj), message) {
                    return true;
                }
            }
            false
        })
        .await;
        if !matches!(found, Ok(true)) {
            panic!(
                "[{}] never saw {object} progressing with {message:?}\n{}",
                self.ns,
                self.pipeline.log_tails(15)
            );
        }
        self.pipeline.process(controller).kill().unwrap();
        start.elapsed()
    }

    /// SIGKILLs the apply-controller the moment the first ConfigMap of Apply `apply` reaches
    /// `generation` (seen through a watch): the kill lands between writes.
    pub async fn kill_apply_on_first_write(&mut self, apply: &str, generation: &str) -> Duration {
        let start = Instant::now();
        self.until_first_write(apply, generation).await;
        self.pipeline.apply.kill().unwrap();
        start.elapsed()
    }

    /// Returns as soon as a watch shows a ConfigMap of Apply `apply` at `generation`.
    pub async fn until_first_write(&self, apply: &str, generation: &str) {
        let selector = format!("apply.weir.dev/name={apply}");
        let config = watcher::Config::default().labels(&selector);
        let mut events = watcher(self.config_maps(), config)
            .applied_objects()
            .boxed();
        let found = tokio::time::timeout(WAIT, async {
            while let Some(cm) = events.try_next().await.unwrap() {
                let data = cm.data.unwrap_or_default();
                if data.get("generation").map(String::as_str) == Some(generation) {
                    return true;
                }
            }
            false
        })
        .await;
        if !matches!(found, Ok(true)) {
            panic!(
                "[{}] never saw a ConfigMap of {apply} at generation {generation}\n{}",
                self.ns,
                self.pipeline.log_tails(15)
            );
        }
    }

    /// Waits until `what`'s Ready condition (read by `ready_of`) is False with `reason`.
    pub async fn until_not_ready<K>(
        &self,
        api: &Api<K>,
        name: &str,
        reason: &str,
        conditions_of: impl Fn(&K) -> Vec<Condition>,
    ) -> K
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        self.until(&format!("{name} Ready=False with {reason}"), || async {
            let obj = api.get(name).await.map_err(|e| e.to_string())?;
            let conds = conditions_of(&obj);
            let c = conditions::get(&conds, types::READY);
            if c.is_some_and(|c| c.status == "False" && c.reason == reason) {
                Ok(obj)
            } else {
                Err(describe(&conds, ""))
            }
        })
        .await
    }

    /// Asserts that the work on `message` was cut short: `object` still says it is in progress
    /// (the process died before writing its result).
    pub async fn assert_still_progressing<K>(
        &self,
        api: &Api<K>,
        object: &str,
        message: &str,
        conditions_of: impl Fn(&K) -> Vec<Condition>,
    ) where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        let obj = api.get(object).await.unwrap();
        let conds = conditions_of(&obj);
        assert!(
            progressing(&conds, message),
            "[{}] the kill came too late: {object} already finished the work on {message:?}: {}",
            self.ns,
            describe(&conds, "")
        );
    }
}

/// Whether `conditions` say Reconciling=True with reason Progressing and `message`.
pub fn progressing(conditions: &[Condition], message: &str) -> bool {
    conditions::get(conditions, types::RECONCILING).is_some_and(|c| {
        c.status == "True" && c.reason == conditions::reasons::PROGRESSING && c.message == message
    })
}

/// A short description of conditions for failure messages.
pub fn describe(conditions: &[Condition], extra: &str) -> String {
    let conds: Vec<String> = conditions
        .iter()
        .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
        .collect();
    format!("[{}] {extra}", conds.join("; "))
}

/// The revision the source-controller reports for `commit` on main.
pub fn revision(commit: &str) -> String {
    format!("main@sha1:{commit}")
}

pub fn borrow(files: &[(String, String)]) -> Vec<(&str, &str)> {
    files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect()
}

/// The Ready condition of an object's conditions, as (status, reason, message).
pub fn ready(conditions: &[Condition]) -> (String, String, String) {
    let c = conditions::get(conditions, types::READY).unwrap();
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

pub fn apply_conditions(obj: &Apply) -> Vec<Condition> {
    obj.status.clone().unwrap_or_default().conditions
}

pub fn render_conditions(obj: &Render) -> Vec<Condition> {
    obj.status.clone().unwrap_or_default().conditions
}

pub fn source_conditions(obj: &GitRepository) -> Vec<Condition> {
    obj.status.clone().unwrap_or_default().conditions
}

/// The inventory ids of an Apply, in the recorded order.
pub fn inventory_ids(obj: &Apply) -> Vec<String> {
    obj.status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .map(|i| i.entries.iter().map(|e| e.id.clone()).collect())
        .unwrap_or_default()
}

/// GETs `url` (plain HTTP on loopback) and returns the status code and body (at most 64 MiB).
pub async fn http_get(url: &str) -> Result<(u16, Vec<u8>), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").ok_or("not an http URL")?;
    let (host, path) = rest.split_once('/').ok_or("no path")?;
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream
        .take(64 << 20)
        .read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no header end")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status code")?;
    Ok((code, answer[split + 4..].to_vec()))
}

/// Files of the small app: `app/` with a kustomization listing a ConfigMap (`color`), a
/// Deployment with 0 replicas and, when `service`, a Service.
pub fn app_files(color: &str, service: bool) -> Vec<(String, String)> {
    app_files_with(color, service, 0)
}

/// [`app_files`] with the Deployment's `replicas` (a negative count is refused by the
/// apiserver's validation).
pub fn app_files_with(color: &str, service: bool, replicas: i32) -> Vec<(String, String)> {
    let mut resources = vec!["configmap.yaml", "deployment.yaml"];
    if service {
        resources.push("service.yaml");
    }
    let mut files = vec![
        (
            "app/kustomization.yaml".to_owned(),
            format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{}",
                resources
                    .iter()
                    .map(|r| format!("- {r}\n"))
                    .collect::<String>()
            ),
        ),
        (
            "app/configmap.yaml".to_owned(),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  color: {color}\n"
            ),
        ),
        (
            "app/deployment.yaml".to_owned(),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: REPLICAS\n  selector:\n    matchLabels:\n      app: app\n  template:\n    metadata:\n      labels:\n        app: app\n    spec:\n      containers:\n      - name: app\n        image: registry.invalid/app:1.0\n".replace("REPLICAS", &replicas.to_string()),
        ),
    ];
    if service {
        files.push((
            "app/service.yaml".to_owned(),
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: app\nspec:\n  selector:\n    app: app\n  ports:\n  - port: 80\n    targetPort: 8080\n".to_owned(),
        ));
    }
    files
}

/// `app/` holding ConfigMaps `cm-<i>` for every `i` in `indices`, each with `generation` in its
/// data (and some padding, so applying them takes a moment).
pub fn many_config_maps(
    indices: impl IntoIterator<Item = usize>,
    generation: u32,
) -> Vec<(String, String)> {
    let mut docs = String::new();
    for i in indices {
        docs.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:04}\ndata:\n  generation: \"{generation}\"\n  index: \"{i}\"\n  padding: \"{}\"\n",
            "x".repeat(512)
        ));
    }
    vec![
        (
            "app/kustomization.yaml".to_owned(),
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\ncommonLabels:\n  app.kubernetes.io/part-of: e2e\nresources:\n- configmaps.yaml\n".to_owned(),
        ),
        ("app/configmaps.yaml".to_owned(), docs),
    ]
}

/// The inventory id of ConfigMap `name` in `ns`.
pub fn config_map_id(ns: &str, name: &str) -> String {
    format!("{ns}_{name}__ConfigMap")
}

/// POSTs `body` with `headers` to `http://<addr><path>` (HTTP/1.1, connection closed) and
/// returns the status code and body.
pub async fn http_post(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<(u16, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream
        .take(1 << 20)
        .read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` keyed with `token`, as GitHub signs deliveries.
pub fn github_signature(token: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// `len` bytes of hex digits from a fixed xorshift sequence: incompressible enough that
/// packing takes a while, reproducible.
pub fn pseudo_random_text(len: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push_str(&format!("{x:016x}"));
    }
    out.truncate(len);
    out
}
