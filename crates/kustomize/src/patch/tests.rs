//! The patch engine against outputs recorded from `kubectl kustomize` (kustomize v5.5.0).
//!
//! Each file in `testdata/` holds a target object, a patch (a strategic merge patch, or a list
//! of JSON 6902 operations), the output kustomize printed for a kustomization with that target
//! under `resources:` and the patch under `patches:` (or `error: <message>` /
//! `deleted: true`), and for `# schema:` cases the custom OpenAPI document. The recordings can
//! be re-checked against the installed tool with `cargo test -p weir-kustomize -- --ignored
//! patch::tests::recordings_match_live_kubectl`.

use std::path::{Path, PathBuf};

use super::{MergeOutcome, Schema, json6902, strategic_merge};
use crate::resid::Gvk;
use crate::yaml::{Value, parse_documents, parse_one};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/patch/testdata")
}

/// One recorded case.
struct Case {
    name: String,
    schema_mode: Option<String>,
    target: Value,
    patch: Value,
    expected: Value,
    openapi: Option<Value>,
}

fn load_cases() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata())
        .expect("testdata")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() > 50, "testdata went missing");
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read");
            let schema_mode = text
                .lines()
                .find_map(|l| l.strip_prefix("# schema: "))
                .map(str::to_string);
            let mut docs = parse_documents(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .into_iter();
            let mut next = || {
                docs.next()
                    .unwrap_or_else(|| panic!("{}: documents", path.display()))
            };
            let (target, patch, expected) = (next(), next(), next());
            let openapi = schema_mode.as_ref().map(|_| next());
            Case {
                name: path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                schema_mode,
                target,
                patch,
                expected,
                openapi,
            }
        })
        .collect()
}

fn schema_for(case: &Case) -> Schema {
    let builtin = Schema::builtin();
    let Some(doc) = &case.openapi else {
        return builtin;
    };
    match case.schema_mode.as_deref() {
        Some("custom-only") => Schema::from_openapi(doc).expect("schema"),
        Some("custom-over-builtin") => builtin.with_custom(doc).expect("schema"),
        Some("builtin-over-custom") => {
            builtin.with_fallback(&Schema::from_openapi(doc).expect("schema"))
        }
        other => panic!("{}: unknown schema mode {other:?}", case.name),
    }
}

/// Applies the case's patch as kustomize's patch transformer does around the merge: the patch
/// gets the target's apiVersion; kind and name are restored afterwards. `Ok(None)`: deleted.
fn apply(case: &Case) -> Result<Option<Value>, String> {
    let mut target = case.target.clone();
    if case.patch.as_seq().is_some() {
        return json6902(&mut target, &case.patch)
            .map(|()| Some(target))
            .map_err(|e| e.to_string());
    }
    let api_version = target
        .str_at(&["apiVersion"])
        .unwrap_or_default()
        .to_string();
    let kind = target.str_at(&["kind"]).unwrap_or_default().to_string();
    let name = target.str_at(&["metadata", "name"]).map(str::to_string);
    let mut patch = case.patch.clone();
    if let Some(map) = patch.as_map_mut() {
        map.insert("apiVersion".into(), Value::String(api_version.clone()));
    }
    let gvk = Gvk::from_api_version(&api_version, &kind);
    match strategic_merge(&mut target, &patch, &gvk, &schema_for(case)) {
        Err(e) => Err(e.to_string()),
        Ok(MergeOutcome::Deleted) => Ok(None),
        Ok(MergeOutcome::Kept) => {
            if let Some(map) = target.as_map_mut() {
                map.insert("kind".into(), Value::String(kind));
            }
            if let (Some(name), Some(meta)) = (name, target.ensure_map_path(&["metadata"])) {
                meta.insert("name".into(), Value::String(name));
            }
            Ok(Some(target))
        }
    }
}

/// Checks a result against a recorded expectation; `Err` says how it differs.
fn check(expected: &Value, got: Result<Option<Value>, String>) -> Result<(), String> {
    if let Some(message) = expected.str_at(&["error"]) {
        // kyaml prints the offending node where we print the field path.
        let message = message.trim_end_matches(": node contents:");
        return match got {
            Err(e) if e.contains(message) => Ok(()),
            Err(e) => Err(format!("error {e:?} does not contain {message:?}")),
            Ok(v) => Err(format!("expected error {message:?}, got {v:?}")),
        };
    }
    let want = if expected.get("deleted").is_some() {
        None
    } else {
        Some(expected.clone())
    };
    match got {
        // `==` compares lists in order, mappings regardless of key order (kustomize sorts keys).
        Ok(v) if v == want => Ok(()),
        Ok(v) => Err(format!(
            "\n   got: {}\n  want: {}",
            v.map(|v| v.to_json().to_string()).unwrap_or_default(),
            want.map(|v| v.to_json().to_string()).unwrap_or_default()
        )),
        Err(e) => Err(format!("unexpected error: {e}")),
    }
}

#[test]
fn recorded_kustomize_outputs() {
    let failures: Vec<String> = load_cases()
        .iter()
        .filter_map(|case| {
            check(&case.expected, apply(case))
                .err()
                .map(|e| format!("{}: {e}", case.name))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Re-records every case with the installed `kubectl kustomize` and compares with the stored
/// expectation (cases whose schema setup needs several kustomizations are skipped). Without
/// `kubectl` on the PATH only the recordings are checked (by `recorded_kustomize_outputs`).
#[test]
fn recordings_match_live_kubectl() {
    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("kubectl not found: live re-recording skipped");
        return;
    }
    let mut failures = Vec::new();
    for case in load_cases() {
        if case
            .schema_mode
            .as_deref()
            .is_some_and(|m| m != "custom-only")
        {
            continue;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, v: &Value| {
            let json = serde_json::to_string(&v.to_json()).expect("json");
            std::fs::write(dir.path().join(name), json).expect("write");
        };
        write("res.yaml", &case.target);
        let mut k = String::from("resources:\n- res.yaml\npatches:\n- path: patch.yaml\n");
        if case.patch.as_seq().is_some() {
            let kind = case.target.str_at(&["kind"]).unwrap_or_default();
            k.push_str(&format!("  target:\n    kind: {kind}\n"));
        }
        write("patch.yaml", &case.patch);
        if let Some(doc) = &case.openapi {
            write("openapi.yaml", doc);
            k.push_str("openapi:\n  path: openapi.yaml\n");
        }
        std::fs::write(dir.path().join("kustomization.yaml"), k).expect("write");
        let out = std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(dir.path())
            .output()
            .expect("kubectl");
        let got = if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            let doc = parse_one(&text).expect("output");
            Ok((!doc.is_null()).then_some(doc))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).replace("\\\"", "\""))
        };
        if let Err(e) = check(&case.expected, got) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn without_schema_lists_are_replaced() {
    let mut target = parse_one(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {template: {spec: {containers: [{name: a, image: a}]}}}\n",
    )
    .unwrap();
    let patch = parse_one(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {template: {spec: {containers: [{name: b}]}}}\n",
    )
    .unwrap();
    let gvk = Gvk::from_api_version("apps/v1", "Deployment");
    assert_eq!(
        strategic_merge(&mut target, &patch, &gvk, &Schema::default()).unwrap(),
        MergeOutcome::Kept
    );
    assert_eq!(
        target.get_path(&["spec", "template", "spec", "containers"]),
        Some(&parse_one("[{name: b}]").unwrap())
    );
}

#[test]
fn errors_leave_the_target_alone() {
    let original =
        parse_one("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n").unwrap();
    let mut target = original.clone();
    let patch = parse_one("metadata: {name: a}\ndata: [1]\n").unwrap();
    let gvk = Gvk::from_api_version("v1", "ConfigMap");
    assert!(strategic_merge(&mut target, &patch, &gvk, &Schema::builtin()).is_err());
    assert_eq!(target, original);
    let ops = parse_one("[{op: add, path: /data/k, value: w}, {op: remove, path: /nope}]").unwrap();
    assert!(json6902(&mut target, &ops).is_err());
    assert_eq!(target, original);
}

#[test]
fn json_patch_must_leave_an_object() {
    let mut target = parse_one("{a: 1}").unwrap();
    let ops = parse_one("[{op: replace, path: '', value: [1]}]").unwrap();
    let err = json6902(&mut target, &ops).unwrap_err().to_string();
    assert!(err.contains("cannot unmarshal array"), "{err}");
    assert!(json6902(&mut target, &parse_one("{op: add}").unwrap()).is_err());
}
