//! `configMapGenerator` / `secretGenerator` and the name suffix hash against kustomize itself.
//!
//! Every expected object (its hashed name included) was recorded by running `kubectl kustomize`
//! (kustomize v5.5.0) on a directory holding the same files and a kustomization with the same
//! generator. Objects are compared structurally: the YAML printer is tested elsewhere.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use tempfile::TempDir;
use weir_kustomize::generators::{content_hash, make_config_map, make_secret};
use weir_kustomize::kustomization::{GeneratorArgs, GeneratorOptions};
use weir_kustomize::resource::{Behavior, Origin};
use weir_kustomize::yaml::Value;
use weir_kustomize::{Error, Limits, LoadRestrictor, Loader, Resource};

/// A kustomization directory with these files (a `kustomization.yaml` is added unless given).
fn dir_with(files: &[(&str, &[u8])]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    let has_kustomization = files
        .iter()
        .any(|(p, _)| ["kustomization.yaml", "kustomization.yml", "Kustomization"].contains(p));
    if !has_kustomization {
        std::fs::write(dir.path().join("kustomization.yaml"), "{}\n").unwrap();
    }
    dir
}

fn loader(dir: &TempDir) -> Loader {
    Loader::new(
        dir.path(),
        None,
        LoadRestrictor::RootOnly,
        Limits::default(),
    )
    .unwrap()
}

fn args(v: serde_json::Value) -> GeneratorArgs {
    serde_json::from_value(v).unwrap()
}

fn options(v: serde_json::Value) -> GeneratorOptions {
    serde_json::from_value(v).unwrap()
}

/// Appends the hash as kustomize does at the end of a build, then compares with kubectl's object.
fn assert_generated(mut res: Resource, expected: serde_json::Value) {
    if res.needs_hash {
        let hashed = format!("{}-{}", res.name(), content_hash(&res.obj).unwrap());
        res.set_name(&hashed);
    }
    let expected = Value::from_json(&expected);
    assert_eq!(res.obj, expected);
}

fn config_map(files: &[(&str, &[u8])], a: serde_json::Value) -> Resource {
    let dir = dir_with(files);
    make_config_map(&loader(&dir), &args(a), None).unwrap()
}

fn secret(files: &[(&str, &[u8])], a: serde_json::Value) -> Resource {
    let dir = dir_with(files);
    make_secret(&loader(&dir), &args(a), None).unwrap()
}

#[test]
fn literals_quotes_equals_empty_and_multiline() {
    let res = config_map(
        &[],
        json!({
            "name": "literals",
            "literals": [
                "a=\"x y\"", "b='x y'", "c=\"x y'", "d=\"", "e=", "f=a=b=c", "g= spaced ",
                "TEST='", "h=\"\"", "1bad key!=v", "multi=line one\nline two\n",
            ],
        }),
    );
    assert!(res.needs_hash);
    assert_eq!(res.behavior, Behavior::Create);
    assert_generated(
        res,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "literals-29t5btdf94"},
            "data": {
                "1bad key!": "v",
                "TEST": "'",
                "a": "x y",
                "b": "x y",
                "c": "\"x y'",
                "d": "\"",
                "e": "",
                "f": "a=b=c",
                "g": " spaced ",
                "h": "",
                "multi": "line one\nline two\n",
            },
        }),
    );
}

#[test]
fn files_key_rename_binary_data_and_bom() {
    let big: Vec<u8> = (0..30).flat_map(|_| b"\xffhello".iter().copied()).collect();
    let res = config_map(
        &[
            ("sub/f.txt", b"hello\nworld\n"),
            ("bin.dat", b"\x00\x01\xff\xfe"),
            ("big.bin", &big),
            ("bom.txt", b"\xef\xbb\xbfbom text"),
        ],
        json!({
            "name": "files",
            "files": ["sub/f.txt", "renamed=sub/f.txt", "bin.dat", "big.bin", "bom.txt"],
        }),
    );
    assert_generated(
        res,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "files-hf2kf56gd9"},
            "binaryData": {
                "big.bin": "/2hlbGxv/2hlbGxv/2hlbGxv/2hlbGxv/2hlbGxv/2hlbGxv/2hlbGxv/2hlbGxv/2hlbG\n\
                            xv/2hlbGxv/2hlbGxv/2hlbGxv/2hlbGxv/2hlbGxv/2hlbGxv/2hlbGxv/2hlbGxv/2hl\n\
                            bGxv/2hlbGxv/2hlbGxv/2hlbGxv/2hlbGxv/2hlbGxv/2hlbGxv/2hlbGxv/2hlbGxv/2\n\
                            hlbGxv/2hlbGxv/2hlbGxv/2hlbGxv\n",
                "bin.dat": "AAH//g==",
            },
            "data": {
                "bom.txt": "\u{feff}bom text",
                "f.txt": "hello\nworld\n",
                "renamed": "hello\nworld\n",
            },
        }),
    );
}

#[test]
fn env_files_comments_blank_lines_bom_crlf_and_singular_env() {
    let res = config_map(
        &[
            (
                "a.env",
                b"\xef\xbb\xbfFIRST=1\n# comment\n   # indented comment\n\n  LEAD=x  \nQ=\"quoted\"\n\
                  NOEQ\nWIN=crlf\r\n=empty\nE=\n\tTAB=t\nLAST=nonl",
            ),
            ("b.env", b"SINGULAR=yes\n"),
        ],
        json!({
            "name": "envs",
            "envs": ["a.env"],
            "env": "b.env",
            "literals": ["lit=eral"],
        }),
    );
    assert_generated(
        res,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "envs-d7dkhhh7bd"},
            "data": {
                "E": "",
                "FIRST": "1",
                "LAST": "nonl",
                "LEAD": "x  ",
                "NOEQ": "",
                "Q": "\"quoted\"",
                "SINGULAR": "yes",
                "TAB": "t",
                "WIN": "crlf",
                "lit": "eral",
            },
        }),
    );
}

#[test]
fn secret_with_type_namespace_immutable_and_wrapped_base64() {
    let res = secret(
        &[("long.txt", &[b'x'; 52]), ("bin.dat", b"\x00\x01\xff\xfe")],
        json!({
            "name": "tls",
            "namespace": "prod",
            "type": "kubernetes.io/tls",
            "options": {"immutable": true},
            "literals": ["tls.crt=CERT", "tls.key=KEY"],
            "files": ["long.txt", "bin.dat"],
        }),
    );
    assert_generated(
        res,
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "tls-bfg2bb5kkc", "namespace": "prod"},
            "type": "kubernetes.io/tls",
            "immutable": true,
            "data": {
                "bin.dat": "AAH//g==",
                "long.txt": "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eA\n==\n",
                "tls.crt": "Q0VSVA==",
                "tls.key": "S0VZ",
            },
        }),
    );
}

#[test]
fn secret_from_env_defaults_to_opaque_and_unknown_behavior_is_create() {
    let res = secret(
        &[("creds.env", b"USER=admin\nPASS=s3cr3t\n")],
        json!({"name": "creds", "behavior": "bogus", "envs": ["creds.env"]}),
    );
    // kustomize v5.5 maps an unknown behavior to "unspecified", which acts as "create".
    assert_eq!(res.behavior, Behavior::Create);
    assert_generated(
        res,
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds-h224c8cmk2"},
            "type": "Opaque",
            "data": {"PASS": "czNjcjN0", "USER": "YWRtaW4="},
        }),
    );
}

#[test]
fn behaviors() {
    for (b, want) in [
        ("", Behavior::Create),
        ("create", Behavior::Create),
        ("merge", Behavior::Merge),
        ("replace", Behavior::Replace),
        // Case matters to kustomize: "Merge" is unknown, hence create (recorded: `x-4h2mbtbbt6`).
        ("Merge", Behavior::Create),
    ] {
        let res = config_map(
            &[],
            json!({"name": "x", "behavior": b, "literals": ["a=b"]}),
        );
        assert_eq!(res.behavior, want, "{b:?}");
        assert_eq!(content_hash(&res.obj).unwrap(), "4h2mbtbbt6");
    }
}

#[test]
fn global_and_local_options_merge() {
    let dir = dir_with(&[]);
    let global = options(json!({
        "labels": {"g": "global", "shared": "fromglobal"},
        "annotations": {"ga": "1"},
        "immutable": true,
    }));
    let local_wins = make_config_map(
        &loader(&dir),
        &args(json!({
            "name": "local-wins",
            "options": {
                "labels": {"shared": "fromlocal", "l": "local"},
                "annotations": {"la": "x"},
                "disableNameSuffixHash": true,
            },
            "literals": ["k=v"],
        })),
        Some(&global),
    )
    .unwrap();
    assert!(!local_wins.needs_hash);
    assert_generated(
        local_wins,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "local-wins",
                "labels": {"g": "global", "l": "local", "shared": "fromlocal"},
                "annotations": {"ga": "1", "la": "x"},
            },
            "immutable": true,
            "data": {"k": "v"},
        }),
    );
    // A local `immutable: false` cannot override a global `true`.
    let global_only = make_config_map(
        &loader(&dir),
        &args(json!({"name": "global-only", "options": {"immutable": false}, "literals": ["k=v"]})),
        Some(&global),
    )
    .unwrap();
    assert_generated(
        global_only,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "global-only-bdg947hgcc",
                "labels": {"g": "global", "shared": "fromglobal"},
                "annotations": {"ga": "1"},
            },
            "immutable": true,
            "data": {"k": "v"},
        }),
    );
}

#[test]
fn global_disable_name_suffix_hash_beats_local_false() {
    let dir = dir_with(&[]);
    let res = make_secret(
        &loader(&dir),
        &args(json!({
            "name": "global-disables",
            "options": {"disableNameSuffixHash": false},
            "literals": ["k=v"],
        })),
        Some(&options(json!({"disableNameSuffixHash": true}))),
    )
    .unwrap();
    assert!(!res.needs_hash);
    assert_generated(
        res,
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "global-disables"},
            "type": "Opaque",
            "data": {"k": "dg=="},
        }),
    );
}

#[test]
fn empty_config_map_and_secret() {
    assert_generated(
        config_map(&[], json!({"name": "empty"})),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "empty-6ct58987ht"}}),
    );
    assert_generated(
        secret(&[], json!({"name": "empty"})),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "empty-46f8b28mk5"},
            "type": "Opaque",
            "data": {},
        }),
    );
}

#[test]
fn unicode_control_characters_and_nel_folding() {
    let res = config_map(
        &[],
        json!({
            "name": "unicode",
            "literals": [
                "uni=héllo wörld ✓ <&> \u{2028} 日本語 🎉",
                "ctl=\t\u{1}\u{8}\u{c}\"\\ end",
                "nel1=a \u{85} b",
                "nel2=x\u{85} \u{85}y",
                "nel3=\u{85}",
                "tab=\t\u{85}\tz",
            ],
        }),
    );
    assert_generated(
        res,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "unicode-g5dgfdb7c9"},
            "data": {
                "ctl": "\t\u{1}\u{8}\u{c}\"\\ end",
                "nel1": "a b",
                "nel2": "x\ny",
                "nel3": " ",
                "tab": "\t \tz",
                "uni": "héllo wörld ✓ <&> \u{2028} 日本語 🎉",
            },
        }),
    );
}

#[test]
fn the_name_is_not_part_of_the_hash() {
    // kustomize looks the name up under a key literally named `metadata/name`.
    let a = config_map(&[], json!({"name": "a", "literals": ["a=b"]}));
    let b = config_map(&[], json!({"name": "b", "literals": ["a=b"]}));
    assert_eq!(content_hash(&a.obj).unwrap(), content_hash(&b.obj).unwrap());
}

#[test]
fn labels_and_annotations_are_not_part_of_the_hash() {
    // Recorded: a generator `x` with labels {a: b}, annotations {c: d} and literal a=b is
    // named `x-4h2mbtbbt6`, as without them.
    let cm = Value::from_json(&json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "labels": {"a": "b"}, "annotations": {"c": "d"}},
        "data": {"a": "b"},
    }));
    assert_eq!(content_hash(&cm).unwrap(), "4h2mbtbbt6");
    let deployment = Value::from_json(&json!({"apiVersion": "apps/v1", "kind": "Deployment"}));
    assert!(content_hash(&deployment).is_err());
}

#[test]
fn origin_names_the_builtin_generator_and_the_kustomization_file() {
    let dir = dir_with(&[("kustomization.yml", b"{}\n")]);
    let res = make_secret(&loader(&dir), &args(json!({"name": "s"})), None).unwrap();
    assert_eq!(
        res.origin,
        Some(Origin {
            path: "kustomization.yml".into(),
            config_ref: Some(("builtin".into(), "SecretGenerator".into(), String::new())),
            config_namespace: String::new(),
        })
    );
    let res = config_map(&[], json!({"name": "c"}));
    assert_eq!(
        res.origin.unwrap().config_ref.unwrap().1,
        "ConfigMapGenerator".to_string()
    );
}

fn config_map_err(files: &[(&str, &[u8])], a: serde_json::Value) -> Error {
    let dir = dir_with(files);
    make_config_map(&loader(&dir), &args(a), None).unwrap_err()
}

#[test]
fn duplicate_keys_are_an_error() {
    // kubectl: configmap dup illegally repeats the key `k`
    let e = config_map_err(
        &[("dup.env", b"k=from-env\n")],
        json!({"name": "dup", "envs": ["dup.env"], "literals": ["k=lit"]}),
    );
    assert!(
        e.to_string().contains("illegally repeats the key `k`"),
        "{e}"
    );
    let dir = dir_with(&[]);
    let e = make_secret(
        &loader(&dir),
        &args(json!({"name": "dup", "literals": ["k=1", "k=2"]})),
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("illegally repeats the key `k`"),
        "{e}"
    );
}

#[test]
fn invalid_arguments_are_errors() {
    // kubectl: a configmap must have a name
    let e = config_map_err(&[], json!({"literals": ["k=1"]}));
    assert!(e.to_string().contains("must have a name"), "{e}");
    // kubectl: invalid literal source =x=y, expected key=value
    for bad in ["=x=y", "novalue"] {
        let e = config_map_err(&[], json!({"name": "x", "literals": [bad]}));
        assert!(e.to_string().contains("expected key=value"), "{e}");
    }
    // kubectl: source "a=b=c" key name or file path contains '=' (and the two "missing" forms)
    for (bad, says) in [
        ("a=b=c", "contains '='"),
        ("=x", "missing key name"),
        ("x=", "missing file path"),
    ] {
        let e = config_map_err(&[], json!({"name": "x", "files": [bad]}));
        assert!(e.to_string().contains(says), "{e}");
    }
    // kubectl: invalid Kustomization: json: unknown field "type"
    let e = config_map_err(
        &[],
        json!({"name": "x", "type": "foo", "literals": ["a=b"]}),
    );
    assert!(e.to_string().contains("unknown field \"type\""), "{e}");
    // kubectl: builtin ConfigMapGenerator marshal: yaml: control characters are not allowed
    let e = config_map_err(&[], json!({"name": "x", "literals": ["ctl=\u{7f}"]}));
    assert!(e.to_string().contains("control characters"), "{e}");
    let e = config_map_err(
        &[],
        json!({"name": "x", "options": {"labels": {"x": "\u{80}"}}}),
    );
    assert!(e.to_string().contains("control characters"), "{e}");
}

#[test]
fn unreadable_files_are_errors() {
    // kubectl: evalsymlink failure on '.../missing.env' : ... no such file or directory
    let e = config_map_err(&[], json!({"name": "x", "envs": ["missing.env"]}));
    assert!(matches!(e.root_cause(), Error::Io { .. }), "{e}");
    assert!(e.to_string().contains("missing.env"), "{e}");
    // kubectl: '.../adir' must resolve to a file
    let e = config_map_err(&[("adir/f", b"x")], json!({"name": "x", "files": ["adir"]}));
    assert!(matches!(e.root_cause(), Error::Io { .. }), "{e}");
    // kubectl: security; file '.../outside.txt' is not in or below '...'
    let dir = dir_with(&[
        ("app/kustomization.yaml", b"{}\n"),
        ("outside.txt", b"hi\n"),
    ]);
    let ldr = Loader::new(
        &dir.path().join("app"),
        Some(dir.path()),
        LoadRestrictor::RootOnly,
        Limits::default(),
    )
    .unwrap();
    let e = make_config_map(
        &ldr,
        &args(json!({"name": "x", "files": ["../outside.txt"]})),
        None,
    )
    .unwrap_err();
    assert!(matches!(e.root_cause(), Error::Restricted { .. }), "{e}");
    // kubectl: line [65 61 255] has invalid utf8 bytes : A=\xff
    let e = config_map_err(
        &[("bad.env", b"A=\xff\n")],
        json!({"name": "x", "envs": ["bad.env"]}),
    );
    assert!(e.to_string().contains("invalid UTF-8"), "{e}");
}
