//! The install manifests in `config/` and the `Dockerfile`.
//!
//! Every install directory builds with weir's engine exactly as `kubectl kustomize` builds it,
//! holds what an install needs (hardened Deployments, probes, resources, Services, RBAC), passes
//! a server-side dry-run and Pod Security admission on the real apiserver, and — applied for
//! real — gives each controller enough RBAC to work: the controllers run in-process with the
//! arguments of their Deployments, as their own ServiceAccounts (impersonated), and take a
//! GitRepository → Render → Apply chain to Ready.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use kube::{
    Api, Client, ResourceExt,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    discovery,
};
use serde_json::{Value, json};
use weir_api::{Apply, GitRepository, Receiver, Render, conditions};
use weir_kustomize::BuildOptions;
use weir_testenv::{TestCluster, git::Repo};

const NAMESPACE: &str = "weir-system";
const CONTROLLERS: [&str; 3] = ["source", "render", "apply"];
const DIRS: [&str; 5] = ["source", "render", "apply", "default", "multi-tenant"];
const FIELD_MANAGER: &str = "weir-install-test";
const SHARD_LABEL: &str = "weir.dev/test-shard";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn config_dir(dir: &str) -> PathBuf {
    repo_root().join("config").join(dir)
}

/// The objects `config/<dir>` renders to, with weir's engine.
fn build(dir: &str) -> Vec<Value> {
    let resmap = weir_kustomize::build(&config_dir(dir), &BuildOptions::default(), None)
        .unwrap_or_else(|e| panic!("config/{dir}: {e}"));
    resmap.resources().iter().map(|r| r.obj.to_json()).collect()
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
}

fn kind(v: &Value) -> &str {
    s(v, "/kind")
}

fn name(v: &Value) -> &str {
    s(v, "/metadata/name")
}

fn namespace(v: &Value) -> &str {
    v.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `apiVersion/kind namespace/name`.
fn id(v: &Value) -> String {
    format!(
        "{}/{} {}/{}",
        s(v, "/apiVersion"),
        kind(v),
        namespace(v),
        name(v)
    )
}

fn find<'a>(objects: &'a [Value], kind_: &str, name_: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| kind(o) == kind_ && name(o) == name_)
        .unwrap_or_else(|| panic!("no {kind_} {name_}"))
}

fn of_kind<'a>(objects: &'a [Value], kind_: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    objects.iter().filter(move |o| kind(o) == kind_)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The one container of a controller's Deployment.
fn container(deployment: &Value) -> &Value {
    let containers = deployment
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .unwrap();
    assert_eq!(containers.len(), 1, "{}", name(deployment));
    &containers[0]
}

/// The value of `--flag=value` in a container's args.
fn flag(container: &Value, flag: &str) -> Option<String> {
    strings(container.get("args"))
        .into_iter()
        .find_map(|a| a.strip_prefix(&format!("{flag}=")).map(str::to_owned))
}

/// The container port a probe or Service names (by name or number).
fn resolve_port(container: &Value, port: &Value) -> u64 {
    if let Some(n) = port.as_u64() {
        return n;
    }
    let wanted = port.as_str().unwrap();
    container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == wanted)
        .unwrap_or_else(|| panic!("no container port named {wanted}"))["containerPort"]
        .as_u64()
        .unwrap()
}

/// The port of a `:PORT` listen address.
fn listen_port(addr: &str) -> u64 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// Bytes in a Kubernetes memory quantity of the forms the manifests use (`Mi`, `Gi`).
fn memory_bytes(q: &str) -> u64 {
    let (n, unit) = q.split_at(q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len()));
    let n: u64 = n.parse().unwrap();
    n * match unit {
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "" => 1,
        other => panic!("unexpected memory unit {other}"),
    }
}

/// Millicores in a CPU quantity (`50m`, `1`).
fn cpu_millis(q: &str) -> u64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse().unwrap(),
        None => q.parse::<u64>().unwrap() * 1000,
    }
}

/// A container's args with `$(VAR)` expanded from its literal and downward-API env, as the
/// kubelet does (the pod's namespace is `namespace`).
fn expanded_args(container: &Value, namespace: &str) -> Vec<String> {
    let mut env = BTreeMap::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let value = if let Some(v) = e["value"].as_str() {
            v.to_owned()
        } else if e.pointer("/valueFrom/fieldRef/fieldPath") == Some(&json!("metadata.namespace")) {
            namespace.to_owned()
        } else {
            continue;
        };
        env.insert(e["name"].as_str().unwrap().to_owned(), value);
    }
    strings(container.get("args"))
        .into_iter()
        .map(|mut a| {
            for (k, v) in &env {
                a = a.replace(&format!("$({k})"), v);
            }
            assert!(!a.contains("$("), "unexpanded variable in {a}");
            a
        })
        .collect()
}

#[test]
fn every_install_directory_builds_with_weir_as_with_kubectl_kustomize() {
    for dir in DIRS {
        let path = config_dir(dir);
        let ours = weir_kustomize::build_yaml(&path, &BuildOptions::default(), None)
            .unwrap_or_else(|e| panic!("config/{dir}: {e}"));
        let out = std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(&path)
            .output()
            .expect("kubectl (with kustomize v5.5) must be installed");
        assert!(
            out.status.success(),
            "kubectl kustomize config/{dir}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            ours,
            String::from_utf8(out.stdout).unwrap(),
            "config/{dir}: weir and kubectl kustomize differ"
        );
    }
}

#[test]
fn each_controller_installs_alone_and_default_installs_them_all_once() {
    let all_crds: BTreeSet<String> = of_kind(&build("crd"), "CustomResourceDefinition")
        .map(|c| name(c).to_owned())
        .collect();
    assert!(all_crds.len() >= 3, "{all_crds:?}");
    let default = build("default");
    let default_ids: BTreeSet<String> = default.iter().map(id).collect();
    assert_eq!(default_ids.len(), default.len(), "duplicate objects");
    let mut union = BTreeSet::new();
    let mut crds_seen = BTreeSet::new();
    for c in CONTROLLERS {
        let objects = build(c);
        // Alone: the namespace it runs in, the CRDs of its own group and nothing of the others.
        let namespaces: Vec<&str> = of_kind(&objects, "Namespace").map(name).collect();
        assert_eq!(namespaces, [NAMESPACE], "config/{c}");
        let crds: BTreeSet<String> = of_kind(&objects, "CustomResourceDefinition")
            .map(|c| name(c).to_owned())
            .collect();
        let own: BTreeSet<String> = all_crds
            .iter()
            .filter(|n| n.ends_with(&format!(".{c}.weir.dev")))
            .cloned()
            .collect();
        assert!(!own.is_empty(), "config/{c}: no CRD of {c}.weir.dev");
        assert_eq!(crds, own, "config/{c} must install exactly its own CRDs");
        crds_seen.extend(crds);
        for o in &objects {
            if !namespace(o).is_empty() {
                assert_eq!(namespace(o), NAMESPACE, "{}", id(o));
            }
            let labels = o.pointer("/metadata/labels").cloned().unwrap_or_default();
            assert_eq!(labels["app.kubernetes.io/part-of"], "weir", "{}", id(o));
            if !matches!(kind(o), "Namespace" | "CustomResourceDefinition") {
                assert_eq!(
                    labels["app.kubernetes.io/name"],
                    format!("{c}-controller"),
                    "{}",
                    id(o)
                );
                assert_eq!(labels["app.kubernetes.io/component"], c, "{}", id(o));
            }
            // The same object, byte for byte, as config/default installs.
            let same = default.iter().find(|d| id(d) == id(o));
            assert_eq!(
                same,
                Some(o),
                "config/{c} and config/default differ on {}",
                id(o)
            );
            union.insert(id(o));
        }
    }
    assert_eq!(
        crds_seen, all_crds,
        "every CRD belongs to exactly one controller"
    );
    assert_eq!(
        union, default_ids,
        "config/default is the union of the three"
    );
}

#[test]
fn deployments_are_hardened_probed_sized_and_served() {
    let objects = build("default");
    let mut images = BTreeSet::new();
    for c in CONTROLLERS {
        let app = format!("{c}-controller");
        let d = find(&objects, "Deployment", &app);
        assert_eq!(namespace(d), NAMESPACE);
        assert_eq!(d.pointer("/spec/replicas"), Some(&json!(1)), "{app}");
        let pod = d.pointer("/spec/template/spec").unwrap();
        let account = pod["serviceAccountName"].as_str().unwrap();
        assert_eq!(
            namespace(find(&objects, "ServiceAccount", account)),
            NAMESPACE
        );

        // The selector picks the template's pods.
        let selector = d.pointer("/spec/selector/matchLabels").unwrap();
        let pod_labels = d.pointer("/spec/template/metadata/labels").unwrap();
        for (k, v) in selector.as_object().unwrap() {
            assert_eq!(&pod_labels[k], v, "{app}: selector {k}");
        }

        // Non-root, read-only root filesystem, no privilege, no capabilities, seccomp.
        let psc = &pod["securityContext"];
        assert_eq!(psc["runAsNonRoot"], true, "{app}");
        assert_eq!(psc["runAsUser"], 65532, "{app}");
        assert_eq!(
            psc.pointer("/seccompProfile/type"),
            Some(&json!("RuntimeDefault"))
        );
        let ct = container(d);
        let csc = &ct["securityContext"];
        assert_eq!(csc["allowPrivilegeEscalation"], false, "{app}");
        assert_eq!(csc["readOnlyRootFilesystem"], true, "{app}");
        assert_eq!(csc["runAsNonRoot"], true, "{app}");
        assert_eq!(
            csc.pointer("/capabilities/drop"),
            Some(&json!(["ALL"])),
            "{app}"
        );
        assert_eq!(
            csc.pointer("/seccompProfile/type"),
            Some(&json!("RuntimeDefault"))
        );
        // Everything the controller writes is on an emptyDir: temporary files and storage.
        let volumes = pod["volumes"].as_array().unwrap();
        let mounted_empty_dir = |path: &str| {
            ct["volumeMounts"].as_array().unwrap().iter().any(|m| {
                m["mountPath"] == path
                    && volumes
                        .iter()
                        .any(|v| v["name"] == m["name"] && v.get("emptyDir").is_some())
            })
        };
        assert!(mounted_empty_dir("/tmp"), "{app}: /tmp");

        // One image, the controller's own binary.
        images.insert(ct["image"].as_str().unwrap().to_owned());
        assert_eq!(
            strings(ct.get("command")),
            [format!("/usr/local/bin/weir-{app}")],
            "{app}"
        );

        // Probes on the health listener.
        let health = flag(ct, "--health-addr").expect("--health-addr");
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            let get = &ct[probe]["httpGet"];
            assert_eq!(get["path"], path, "{app} {probe}");
            assert_eq!(
                resolve_port(ct, &get["port"]),
                listen_port(&health),
                "{app}"
            );
        }
        // Metrics: a named container port on the metrics listener, announced for scraping.
        let metrics = listen_port(&flag(ct, "--metrics-addr").expect("--metrics-addr"));
        assert_eq!(resolve_port(ct, &json!("http-prom")), metrics, "{app}");
        assert_eq!(
            d.pointer("/spec/template/metadata/annotations/prometheus.io~1port"),
            Some(&json!(metrics.to_string()))
        );

        // Requests below limits, sized above the measured 20-35 MiB peak.
        let r = &ct["resources"];
        let (req_mem, lim_mem) = (
            memory_bytes(s(r, "/requests/memory")),
            memory_bytes(s(r, "/limits/memory")),
        );
        assert!(req_mem >= 48 << 20 && req_mem <= lim_mem, "{app}: {r}");
        assert!(cpu_millis(s(r, "/requests/cpu")) <= cpu_millis(s(r, "/limits/cpu")));

        // Leader election with the Lease in the pod's own namespace.
        assert_eq!(flag(ct, "--leader-elect").as_deref(), Some("true"), "{app}");
        let env = ct["env"].as_array().unwrap();
        assert!(
            env.iter().any(|e| e["name"] == "POD_NAMESPACE"
                && e.pointer("/valueFrom/fieldRef/fieldPath")
                    == Some(&json!("metadata.namespace"))),
            "{app}: POD_NAMESPACE from the downward API"
        );

        if c == "apply" {
            continue;
        }
        // Artifact producers: storage on an emptyDir, served through a Service on port 80 at
        // the address the controller advertises (GUIDE §4 URL shape).
        assert!(
            mounted_empty_dir(&flag(ct, "--storage-path").unwrap()),
            "{app}"
        );
        let svc = find(&objects, "Service", &app);
        let args = expanded_args(ct, NAMESPACE);
        assert!(
            args.contains(&format!(
                "--storage-adv-addr={app}.{NAMESPACE}.svc.cluster.local."
            )),
            "{app}: {args:?}"
        );
        let storage = listen_port(&flag(ct, "--storage-addr").unwrap());
        assert_service_reaches(svc, d, 80, storage);
    }
    assert_eq!(images.len(), 1, "one image for all controllers: {images:?}");

    // Receiver webhooks reach the source-controller's webhook listener.
    let d = find(&objects, "Deployment", "source-controller");
    let webhook = listen_port(&flag(container(d), "--webhook-addr").expect("--webhook-addr"));
    assert_service_reaches(
        find(&objects, "Service", "webhook-receiver"),
        d,
        80,
        webhook,
    );
}

#[test]
fn deployment_args_are_accepted_by_each_controller() {
    let objects = build("default");
    let args = |app: &str| expanded_args(container(find(&objects, "Deployment", app)), NAMESPACE);
    let source = weir_source_controller::Config::from_args(args("source-controller"))
        .unwrap_or_else(|e| panic!("source-controller: {e}"));
    assert_eq!(
        source.storage_adv_addr.as_deref(),
        Some("source-controller.weir-system.svc.cluster.local.")
    );
    assert_eq!(source.webhook_addr.as_deref(), Some(":9292"));
    assert!(source.leader_election.enabled);
    let render = weir_render_controller::Config::from_args(args("render-controller"))
        .unwrap_or_else(|e| panic!("render-controller: {e}"));
    assert!(render.leader_election.enabled);
    assert_eq!(render.storage_path, PathBuf::from("/data"));
    let apply = weir_apply_controller::Config::from_args(args("apply-controller"))
        .unwrap_or_else(|e| panic!("apply-controller: {e}"));
    assert!(apply.leader_election.enabled);
    assert_eq!(apply.default_service_account, None);
}

/// `svc` exposes `port` and sends it to `container_port` of `deployment`'s pods.
fn assert_service_reaches(svc: &Value, deployment: &Value, port: u64, container_port: u64) {
    let pod_labels = deployment
        .pointer("/spec/template/metadata/labels")
        .unwrap();
    for (k, v) in svc.pointer("/spec/selector").unwrap().as_object().unwrap() {
        assert_eq!(&pod_labels[k], v, "{}: selector {k}", name(svc));
    }
    let ports = svc.pointer("/spec/ports").unwrap().as_array().unwrap();
    let p = ports
        .iter()
        .find(|p| p["port"] == port)
        .unwrap_or_else(|| panic!("{} has no port {port}", name(svc)));
    assert_eq!(
        resolve_port(container(deployment), &p["targetPort"]),
        container_port,
        "{}",
        name(svc)
    );
}

/// The rules of the ClusterRoles bound to `system:serviceaccount:weir-system:<account>`, and
/// of the Roles bound to it in weir-system.
fn rules_of(objects: &[Value], account: &str) -> (Vec<Value>, Vec<Value>) {
    let bound = |binding: &&Value| {
        binding["subjects"].as_array().unwrap().iter().any(|s| {
            s["kind"] == "ServiceAccount" && s["name"] == account && s["namespace"] == NAMESPACE
        })
    };
    let collect = |binding_kind: &str, role_kind: &str| -> Vec<Value> {
        of_kind(objects, binding_kind)
            .filter(bound)
            .flat_map(|b| {
                let role = s(b, "/roleRef/name");
                assert_eq!(s(b, "/roleRef/kind"), role_kind, "{}", name(b));
                if role == "cluster-admin" {
                    return vec![json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]})];
                }
                find(objects, role_kind, role)["rules"]
                    .as_array()
                    .unwrap()
                    .clone()
            })
            .collect()
    };
    (
        collect("ClusterRoleBinding", "ClusterRole"),
        collect("RoleBinding", "Role"),
    )
}

fn allows(rules: &[Value], group: &str, resource: &str, verb: &str) -> bool {
    rules.iter().any(|r| {
        let has = |field: &str, v: &str| strings(r.get(field)).iter().any(|x| x == v || x == "*");
        has("apiGroups", group) && has("resources", resource) && has("verbs", verb)
    })
}

#[test]
fn rbac_is_least_privilege_except_what_apply_documents() {
    let objects = build("default");
    for c in CONTROLLERS {
        let account = format!("{c}-controller");
        let (cluster, local) = rules_of(&objects, &account);
        // Leader election: leases in weir-system only.
        for verb in ["get", "create", "update"] {
            assert!(
                allows(&local, "coordination.k8s.io", "leases", verb),
                "{c}: {verb}"
            );
        }
        for r in &local {
            assert_eq!(strings(r.get("resources")), ["leases"], "{c}: {r}");
        }
        // Every controller: its own kind (watch, finalizer patch, status), events.
        let group = format!("{c}.weir.dev");
        let plural = match c {
            "source" => "gitrepositories",
            "render" => "renders",
            _ => "applies",
        };
        for verb in ["get", "list", "watch", "patch"] {
            assert!(
                allows(&cluster, &group, plural, verb),
                "{c}: {verb} {plural}"
            );
        }
        assert!(allows(
            &cluster,
            &group,
            &format!("{plural}/status"),
            "patch"
        ));
        assert!(allows(&cluster, "events.k8s.io", "events", "create"), "{c}");
        if c == "apply" {
            // Documented: cluster-admin by default (arbitrary objects), impersonation for
            // tenants, and a lock-down that removes only the cluster-admin binding.
            assert!(allows(&cluster, "", "serviceaccounts", "impersonate"));
            let admin = find(
                &objects,
                "ClusterRoleBinding",
                "weir-apply-controller-cluster-admin",
            );
            assert_eq!(s(admin, "/roleRef/name"), "cluster-admin");
            continue;
        }
        // Source and render: no wildcards, no escalation, no deletes.
        for r in &cluster {
            for field in ["apiGroups", "resources", "verbs"] {
                assert!(
                    !strings(r.get(field)).iter().any(|x| x.contains('*')),
                    "{c}: wildcard in {r}"
                );
            }
            for verb in [
                "escalate",
                "bind",
                "impersonate",
                "delete",
                "deletecollection",
            ] {
                assert!(
                    !strings(r.get("verbs")).iter().any(|v| v == verb),
                    "{c}: {r}"
                );
            }
        }
        // Secrets are read, never written; the render-controller reads them only by name.
        assert!(allows(&cluster, "", "secrets", "get"), "{c}");
        for verb in ["create", "update", "patch"] {
            assert!(
                !allows(&cluster, "", "secrets", verb),
                "{c}: {verb} secrets"
            );
        }
        if c == "render" {
            assert!(
                !allows(&cluster, "", "secrets", "list"),
                "{c}: list secrets"
            );
        }
    }
    let (render, _) = rules_of(&objects, "render-controller");
    for verb in ["get", "list", "watch"] {
        assert!(allows(&render, "source.weir.dev", "gitrepositories", verb));
    }
    assert!(allows(&render, "", "configmaps", "get"));
    assert!(!allows(
        &render,
        "source.weir.dev",
        "gitrepositories",
        "patch"
    ));
}

#[test]
fn multi_tenant_install_drops_cluster_admin_and_impersonates_by_default() {
    let default = build("default");
    let locked = build("multi-tenant");
    let (cluster, _) = rules_of(&locked, "apply-controller");
    assert!(
        !allows(&cluster, "apps", "deployments", "create"),
        "{cluster:?}"
    );
    assert!(allows(&cluster, "", "serviceaccounts", "impersonate"));
    assert!(allows(&cluster, "apply.weir.dev", "applies", "watch"));
    let d = find(&locked, "Deployment", "apply-controller");
    assert_eq!(
        flag(container(d), "--default-service-account").as_deref(),
        Some("default")
    );
    // Everything else is config/default unchanged.
    let changed: Vec<String> = default
        .iter()
        .filter(|o| !locked.contains(o))
        .map(id)
        .collect();
    assert_eq!(
        changed,
        [
            "rbac.authorization.k8s.io/v1/ClusterRoleBinding /weir-apply-controller-cluster-admin",
            "apps/v1/Deployment weir-system/apply-controller"
        ]
    );
}

#[test]
fn dockerfile_builds_every_binary_the_deployments_run() {
    let root = repo_root();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    // Logical lines (continuations joined), comments dropped.
    let text = dockerfile.replace("\\\n", " ");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .copied()
        .collect();
    assert_eq!(
        froms.len(),
        2,
        "a builder stage and a runtime stage: {froms:?}"
    );
    // The builder's Rust is at least the workspace's rust-version.
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let rust_version = workspace
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap();
    let builder_tag = froms[0]
        .strip_prefix("FROM rust:")
        .and_then(|r| r.split_whitespace().next())
        .unwrap();
    let version = |v: &str| -> Vec<u32> {
        v.split(['.', '-'])
            .take(2)
            .map(|p| p.parse().unwrap())
            .collect()
    };
    assert!(
        version(builder_tag) >= version(rust_version),
        "{builder_tag} < {rust_version}"
    );

    // Every COPY source exists and is not excluded by .dockerignore; every workspace member is
    // copied (cargo loads the whole workspace).
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    let ignored: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(ignored.contains(&"target") && ignored.contains(&".git"));
    let mut copied = Vec::new();
    for l in lines.iter().filter(|l| l.starts_with("COPY ")) {
        let words: Vec<&str> = l.split_whitespace().skip(1).collect();
        if words[0].starts_with("--from=") {
            continue;
        }
        for src in &words[..words.len() - 1] {
            assert!(root.join(src).exists(), "COPY {src}: no such file");
            assert!(
                !ignored.contains(src),
                "COPY {src} is excluded by .dockerignore"
            );
            copied.push(src.trim_end_matches('/').to_owned());
        }
    }
    let members_start = workspace.find("members = [").unwrap();
    let members_end = members_start + workspace[members_start..].find(']').unwrap();
    for member in workspace[members_start..members_end]
        .split('"')
        .skip(1)
        .step_by(2)
    {
        assert!(
            copied
                .iter()
                .any(|c| member == c || member.starts_with(&format!("{c}/"))),
            "workspace member {member} is not copied into the build"
        );
    }
    assert!(copied.iter().any(|c| c == "Cargo.lock"));

    // The build is locked and release, builds every controller, and the runtime stage installs
    // each binary where the Deployments' commands expect it, as the user they run as.
    let build = lines
        .iter()
        .find(|l| l.contains("cargo build"))
        .expect("a cargo build step");
    assert!(
        build.contains("--locked") && build.contains("--release"),
        "{build}"
    );
    let objects = build_all_deployments();
    for (app, command, user) in &objects {
        let binary = command.strip_prefix("/usr/local/bin/").unwrap();
        assert!(
            build.contains(&format!("-p {binary}")),
            "{binary} is not built"
        );
        assert!(
            build.contains(&format!("target/release/{binary}")),
            "{binary} is not kept"
        );
        assert!(
            lines
                .iter()
                .any(|l| l == &"COPY --from=builder /out/ /usr/local/bin/"),
            "{app}: binaries are not installed in /usr/local/bin"
        );
        assert!(
            lines
                .iter()
                .any(|l| l == &format!("USER {user}:{user}").as_str()),
            "{app}: the image's user is not {user}"
        );
    }
}

/// (Deployment name, command, runAsUser) of every Deployment in config/default.
fn build_all_deployments() -> Vec<(String, String, u64)> {
    let objects = build("default");
    let deployments: Vec<_> = of_kind(&objects, "Deployment")
        .map(|d| {
            let command = strings(container(d).get("command"));
            assert_eq!(command.len(), 1, "{}", name(d));
            let user = d
                .pointer("/spec/template/spec/securityContext/runAsUser")
                .and_then(Value::as_u64)
                .unwrap();
            (name(d).to_owned(), command[0].clone(), user)
        })
        .collect();
    assert_eq!(deployments.len(), 3);
    deployments
}

/// What discovery says `obj`'s kind is served as.
async fn resource_of(client: &Client, obj: &Value) -> ApiResource {
    let api_version = s(obj, "/apiVersion");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind(obj));
    discovery::pinned_kind(client, &gvk)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", id(obj)))
        .0
}

/// Server-side applies `objects` in order (forcing ownership), as a dry-run or for real;
/// returns one line per object the apiserver refused.
async fn server_side_apply(client: &Client, objects: &[Value], dry_run: bool) -> Vec<String> {
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = dry_run;
    let mut refused = Vec::new();
    for obj in objects {
        let resource = resource_of(client, obj).await;
        let api: Api<DynamicObject> = if namespace(obj).is_empty() {
            Api::all_with(client.clone(), &resource)
        } else {
            Api::namespaced_with(client.clone(), namespace(obj), &resource)
        };
        if let Err(e) = api.patch(name(obj), &params, &Patch::Apply(obj)).await {
            refused.push(format!("{}: {e}", id(obj)));
        }
    }
    refused
}

/// Applies config/<dir> for real: CRDs and the Namespace first (waiting until the CRDs are
/// Established), then the rest.
async fn install(cluster: &TestCluster, dir: &str) {
    let objects = build(dir);
    let (first, rest): (Vec<Value>, Vec<Value>) = objects
        .into_iter()
        .partition(|o| matches!(kind(o), "CustomResourceDefinition" | "Namespace"));
    let client = cluster.client();
    let refused = server_side_apply(&client, &first, false).await;
    assert!(refused.is_empty(), "config/{dir}: {refused:#?}");
    let crds: Vec<_> = first
        .iter()
        .filter(|o| kind(o) == "CustomResourceDefinition")
        .map(|o| serde_json::from_value(o.clone()).unwrap())
        .collect();
    cluster.install_crds(&crds).await.unwrap();
    let refused = server_side_apply(&client, &rest, false).await;
    assert!(refused.is_empty(), "config/{dir}: {refused:#?}");
}

#[tokio::test]
async fn default_install_passes_server_side_dry_run_and_pod_security() {
    let cluster = TestCluster::shared().await.unwrap();
    let client = cluster.client();
    // Namespaced objects can only be dry-run in an existing namespace, and custom resources
    // only once their CRDs are served: create both for real (idempotent), dry-run everything.
    let objects = build("default");
    let prerequisites: Vec<Value> = objects
        .iter()
        .filter(|o| matches!(kind(o), "CustomResourceDefinition" | "Namespace"))
        .cloned()
        .collect();
    assert!(
        server_side_apply(&client, &prerequisites, false)
            .await
            .is_empty()
    );
    let refused = server_side_apply(&client, &objects, true).await;
    assert!(refused.is_empty(), "dry-run refused: {refused:#?}");
    // What a user types: `kubectl apply -k config/<dir>` (client-side apply), server dry-run.
    for dir in DIRS {
        let out = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig_path())
            .args(["apply", "--dry-run=server", "-k"])
            .arg(config_dir(dir))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl apply -k config/{dir}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // weir-system enforces the restricted Pod Security Standard; each Deployment's pod passes
    // admission there (a dry-run create), and a pod without the hardening does not, so the
    // check is live.
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    for d in of_kind(&objects, "Deployment") {
        // The dry-run installed no ServiceAccount; admission of the pod's security settings
        // does not depend on it.
        let mut spec = d.pointer("/spec/template/spec").unwrap().clone();
        spec.as_object_mut().unwrap().remove("serviceAccountName");
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": format!("{}-psa-check", name(d)),
                          "labels": d.pointer("/spec/template/metadata/labels") },
            "spec": spec,
        });
        let pod = serde_json::from_value(pod).unwrap();
        if let Err(e) = pods.create(&dry, &pod).await {
            panic!("{}: pod refused in {NAMESPACE}: {e}", name(d));
        }
    }
    let bare = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "psa-bare" },
        "spec": { "containers": [{ "name": "c", "image": "busybox" }] },
    }))
    .unwrap();
    let err = pods.create(&dry, &bare).await.unwrap_err().to_string();
    assert!(err.contains("PodSecurity"), "{err}");
}

/// A client that acts as `system:serviceaccount:weir-system:<account>` (the admin's
/// credentials plus impersonation), so the apiserver enforces the installed RBAC.
async fn config_as(cluster: &TestCluster, account: &str) -> kube::Config {
    let kubeconfig = Kubeconfig::read_from(cluster.kubeconfig_path()).unwrap();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
    config.read_timeout = Some(Duration::from_secs(120));
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{NAMESPACE}:{account}"));
    config
}

/// The args of `config/<dir>`'s Deployment `<app>`, as the pod would see them, with listeners
/// on loopback, storage in `storage` and no advertised address (artifacts are fetched from
/// this process), and only objects of this test's shard watched.
fn local_args(dir: &str, app: &str, storage: &Path, shard: &str) -> Vec<String> {
    let objects = build(dir);
    let d = find(&objects, "Deployment", app);
    let mut args = Vec::new();
    for a in expanded_args(container(d), NAMESPACE) {
        let (f, _) = a.split_once('=').unwrap_or((&a, ""));
        match f {
            "--metrics-addr" | "--health-addr" | "--storage-addr" | "--webhook-addr" => {
                args.push(format!("{f}=127.0.0.1:0"))
            }
            "--storage-path" => args.push(format!("{f}={}", storage.display())),
            "--storage-adv-addr" => {}
            _ => args.push(a),
        }
    }
    args.push(format!("--watch-label-selector={SHARD_LABEL}={shard}"));
    args
}

/// Lease `name` in weir-system is held by `identity`.
async fn assert_leading(admin: &Client, name_: &str, identity: Option<&String>) {
    let identity = identity.expect("leader election is on (--leader-elect=true)");
    let lease =
        Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(admin.clone(), NAMESPACE)
            .get(name_)
            .await
            .unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_ref(),
        Some(identity),
        "{name_}"
    );
}

/// POSTs an empty JSON body to `path` on `addr`; returns the raw HTTP response.
async fn post(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

async fn until<K, F>(api: &Api<K>, name_: &str, what: &str, done: F) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    F: Fn(&K) -> bool,
{
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let obj = api.get(name_).await.unwrap();
        if done(&obj) {
            return obj;
        }
        let status = serde_json::to_value(&obj).unwrap()["status"].clone();
        assert!(
            Instant::now() < deadline,
            "{name_} not {what} after 90s: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn installed_rbac_is_enough_for_each_controller() {
    let cluster = TestCluster::shared().await.unwrap();
    // Each directory installs on its own (they share the Namespace; applying twice is
    // idempotent).
    for c in CONTROLLERS {
        install(&cluster, c).await;
    }
    let ns = cluster.namespace("install").await.unwrap();
    let admin = cluster.client();
    let storage = tempfile::tempdir().unwrap();

    // The impersonated identity really is constrained: the source-controller may not read
    // ConfigMaps.
    let source_as = Client::try_from(config_as(&cluster, "source-controller").await).unwrap();
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(source_as.clone(), &ns);
    let denied = maps.list(&Default::default()).await.unwrap_err();
    assert!(
        matches!(&denied, kube::Error::Api(s) if s.code == 403),
        "{denied}"
    );

    let config = weir_source_controller::Config::from_args(local_args(
        "source",
        "source-controller",
        &storage.path().join("source"),
        &ns,
    ))
    .unwrap();
    let source = weir_source_controller::start(source_as, config)
        .await
        .unwrap();
    let render_as = Client::try_from(config_as(&cluster, "render-controller").await).unwrap();
    let config = weir_render_controller::Config::from_args(local_args(
        "render",
        "render-controller",
        &storage.path().join("render"),
        &ns,
    ))
    .unwrap();
    let render = weir_render_controller::start(render_as, config)
        .await
        .unwrap();
    let config = weir_apply_controller::Config::from_args(local_args(
        "apply",
        "apply-controller",
        &storage.path().join("apply"),
        &ns,
    ))
    .unwrap();
    let apply = weir_apply_controller::start(config_as(&cluster, "apply-controller").await, config)
        .await
        .unwrap();

    // GitRepository → Render (with a Secret for substitution) → Apply of a ConfigMap.
    let repo = Repo::new(&[
        ("app/kustomization.yaml", "resources:\n- cm.yaml\n"),
        (
            "app/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: installed\ndata:\n  greeting: ${greeting}\n",
        ),
    ]);
    let labels = json!({ SHARD_LABEL: ns });
    let create = |api_version: &str, kind_: &str, name_: &str, spec: Value| {
        json!({
            "apiVersion": api_version, "kind": kind_,
            "metadata": { "name": name_, "namespace": ns, "labels": labels },
            "spec": spec,
        })
    };
    let secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": "vars" }, "stringData": { "greeting": "hello" },
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let repos: Api<GitRepository> = Api::namespaced(admin.clone(), &ns);
    let renders: Api<Render> = Api::namespaced(admin.clone(), &ns);
    let applies: Api<Apply> = Api::namespaced(admin.clone(), &ns);
    let obj = create(
        "source.weir.dev/v1alpha1",
        "GitRepository",
        "repo",
        json!({ "url": repo.file_url(), "interval": "1h", "timeout": "20s" }),
    );
    repos
        .create(
            &PostParams::default(),
            &serde_json::from_value(obj).unwrap(),
        )
        .await
        .unwrap();
    let obj = create(
        "render.weir.dev/v1alpha1",
        "Render",
        "app",
        json!({
            "sourceRef": { "kind": "GitRepository", "name": "repo" },
            "path": "app", "interval": "1h", "timeout": "30s",
            "substituteFrom": [{ "kind": "Secret", "name": "vars" }],
        }),
    );
    renders
        .create(
            &PostParams::default(),
            &serde_json::from_value(obj).unwrap(),
        )
        .await
        .unwrap();
    let obj = create(
        "apply.weir.dev/v1alpha1",
        "Apply",
        "app",
        json!({
            "sourceRef": { "kind": "Render", "name": "app" },
            "interval": "1h", "timeout": "30s", "prune": true, "targetNamespace": ns,
        }),
    );
    applies
        .create(
            &PostParams::default(),
            &serde_json::from_value(obj).unwrap(),
        )
        .await
        .unwrap();

    let ready = |conds: Option<&Vec<weir_api::conditions::Condition>>| {
        conds.is_some_and(|c| conditions::is_true(c, conditions::types::READY))
    };
    let revision = format!("main@sha1:{}", repo.head());
    let r = until(&repos, "repo", "Ready", |r| {
        ready(r.status.as_ref().map(|s| &s.conditions))
    })
    .await;
    let artifact = r.status.unwrap().artifact.unwrap();
    assert_eq!(artifact.revision, revision);
    until(&renders, "app", "Ready", |r| {
        ready(r.status.as_ref().map(|s| &s.conditions))
    })
    .await;
    until(&applies, "app", "Ready", |a| {
        ready(a.status.as_ref().map(|s| &s.conditions))
    })
    .await;
    let cm = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(admin.clone(), &ns)
        .get("installed")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["greeting"], "hello");
    // Each controller holds its Lease in weir-system (taken with its leader-election Role).
    assert_leading(
        &admin,
        "weir-source-controller",
        source.leader_identity.as_ref(),
    )
    .await;
    assert_leading(
        &admin,
        "weir-render-controller",
        render.leader_identity.as_ref(),
    )
    .await;
    assert_leading(
        &admin,
        "weir-apply-controller",
        apply.leader_identity.as_ref(),
    )
    .await;
    // The finalizers were added by the controllers' own identities.
    assert!(
        repos.get("repo").await.unwrap().finalizers().len() == 1,
        "source-controller finalizer"
    );

    // A Receiver (its token Secret watched, its status written) and a webhook call that
    // requests reconciles of a GitRepository and a Render: the source-controller's RBAC covers
    // Receivers and the objects it triggers.
    let secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": "hook-token" }, "stringData": { "token": "install-test-token" },
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let receivers: Api<Receiver> = Api::namespaced(admin.clone(), &ns);
    let obj = create(
        "source.weir.dev/v1alpha1",
        "Receiver",
        "hook",
        json!({
            "type": "generic",
            "secretRef": { "name": "hook-token" },
            "resources": [{ "kind": "GitRepository", "name": "repo" }, { "kind": "Render", "name": "app" }],
        }),
    );
    receivers
        .create(
            &PostParams::default(),
            &serde_json::from_value(obj).unwrap(),
        )
        .await
        .unwrap();
    let receiver = until(&receivers, "hook", "Ready", |r| {
        ready(r.status.as_ref().map(|s| &s.conditions))
    })
    .await;
    let path = receiver.status.unwrap().webhook_path.unwrap();
    let webhook = source.webhook_addr.expect("the webhook server runs");
    let response = post(webhook, &path).await;
    assert!(response.starts_with("HTTP/1.1 2"), "{response}");
    let requested = |annotations: &BTreeMap<String, String>| {
        annotations.contains_key(weir_api::reconcile::REQUESTED_AT_ANNOTATION)
    };
    until(&repos, "repo", "triggered", |r| requested(r.annotations())).await;
    until(&renders, "app", "triggered", |r| requested(r.annotations())).await;

    apply.stop().await;
    render.stop().await;
    source.stop().await;
}
