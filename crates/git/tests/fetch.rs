//! Fetching and packing against real repositories over file:// and smart HTTP.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{collections::BTreeMap, time::Duration};

use weir_api::source::GitRepositoryRef;
use weir_artifact::{ArchiveBuilder, UntarLimits, untar};
use weir_git::{Credentials, Error, GitRemote, PackLimits, pack_commit, refs};
use weir_testenv::git::{HttpServer, Repo, git};

const TIMEOUT: Duration = Duration::from_secs(30);

fn reference(json: serde_json::Value) -> GitRepositoryRef {
    serde_json::from_value(json).unwrap()
}

/// ls-remote, select, fetch, pack: what the controller does.
fn fetch(
    url: &str,
    creds: &Credentials,
    r: Option<GitRepositoryRef>,
) -> Result<
    (
        refs::Selection,
        weir_artifact::PackedArtifact,
        weir_git::PackReport,
    ),
    Error,
> {
    let remote = GitRemote::new(url, creds, TIMEOUT)?;
    let adv = remote.advertisement()?;
    let selection = refs::select(r.as_ref(), &adv)?;
    let commit = remote.fetch_commit(&selection)?;
    assert_eq!(commit.to_string(), selection.commit);
    let (packed, report) = pack_commit(&remote.repository(), commit, None, &PackLimits::default())?;
    Ok((selection, packed, report))
}

fn files(packed: &weir_artifact::PackedArtifact) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    untar(&packed.bytes, dir.path(), &UntarLimits::default()).unwrap();
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.path().to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir.path()).unwrap().display().to_string();
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn default_branch_over_file_is_packed_like_git_archive() {
    let repo = Repo::new(&[
        ("deploy/app.yaml", "kind: ConfigMap\n"),
        ("README.md", "hello\n"),
        (".github/workflows/ci.yaml", "on: push\n"),
        ("logo.png", "PNG"),
        ("bin/run.sh", "#!/bin/sh\n"),
    ]);
    std::os::unix::fs::symlink("/etc/passwd", repo.work.join("deploy/passwd")).unwrap();
    git(&repo.work, &["update-index", "--chmod=+x", "bin/run.sh"]);
    let head = repo.commit(&[], "link and exec bit");

    let (selection, packed, report) =
        fetch(&repo.file_url(), &Credentials::default(), None).unwrap();
    assert_eq!(selection.revision, format!("main@sha1:{head}"));
    assert_eq!(report.symlinks_skipped, ["deploy/passwd"]);
    let got = files(&packed);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        ["README.md", "bin/run.sh", "deploy/app.yaml"],
        "defaults exclude CI and images; links never packed"
    );

    // Independent oracle: `git archive` of the same commit, packed from disk with the same rules.
    let extracted = tempfile::tempdir().unwrap();
    let archive = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "git -C {} archive {head} | tar -x -C {}",
            repo.work.display(),
            extracted.path().display()
        ))
        .status()
        .unwrap();
    assert!(archive.success());
    let rules = weir_git::ignore::IgnoreRules::new(None, []).unwrap();
    let mut oracle = ArchiveBuilder::new();
    oracle
        .add_dir(extracted.path(), &|p, dir| !rules.is_excluded(p, dir))
        .unwrap();
    assert_eq!(
        oracle.finish().unwrap().digest,
        packed.digest,
        "same tree, same digest"
    );

    // Reproducible: a second fetch gives the same bytes.
    let (_, again, _) = fetch(&repo.file_url(), &Credentials::default(), None).unwrap();
    assert_eq!(again.digest, packed.digest);
}

#[test]
fn every_kind_of_ref() {
    let weir_testenv::git::RefsFixture {
        repo,
        first,
        second,
        dev,
    } = Repo::with_refs();

    let url = repo.file_url();
    let none = Credentials::default();
    let cases = [
        (
            serde_json::json!({"branch": "dev"}),
            format!("dev@sha1:{dev}"),
            "dev",
        ),
        (
            serde_json::json!({"tag": "v6.9.4"}),
            format!("v6.9.4@sha1:{first}"),
            "1",
        ),
        (
            serde_json::json!({"semver": ">=6.0.0 <7.0.0"}),
            format!("6.10.0@sha1:{second}"),
            "2",
        ),
        (
            serde_json::json!({"semver": "~6.9"}),
            format!("v6.9.4@sha1:{first}"),
            "1",
        ),
        (
            serde_json::json!({"commit": first}),
            format!("sha1:{first}"),
            "1",
        ),
        (
            serde_json::json!({"commit": first, "branch": "main"}),
            format!("main@sha1:{first}"),
            "1",
        ),
        (
            serde_json::json!({"name": "refs/pull/1/head"}),
            format!("refs/pull/1/head@sha1:{first}"),
            "1",
        ),
    ];
    for (r, revision, content) in cases {
        let (sel, packed, _) =
            fetch(&url, &none, Some(reference(r.clone()))).unwrap_or_else(|e| panic!("{r}: {e}"));
        assert_eq!(sel.revision, revision, "{r}");
        assert_eq!(files(&packed)["v.txt"], content, "{r}");
    }
}

#[test]
fn missing_refs_are_ref_not_found() {
    let repo = Repo::new(&[("a", "1")]);
    let none = Credentials::default();
    for r in [
        serde_json::json!({"branch": "nope"}),
        serde_json::json!({"tag": "nope"}),
        serde_json::json!({"semver": ">=99"}),
        serde_json::json!({"commit": "1111111111111111111111111111111111111111"}),
    ] {
        let err = fetch(&repo.file_url(), &none, Some(reference(r.clone()))).unwrap_err();
        assert_eq!(err.category(), "RefNotFound", "{r}: {err}");
    }
    let err = fetch(
        &repo.file_url(),
        &none,
        Some(reference(serde_json::json!({"semver": "not a range!"}))),
    )
    .unwrap_err();
    assert_eq!(err.category(), "InvalidSpec", "{err}");
}

#[test]
fn smart_http_with_basic_and_bearer_auth() {
    let repo = Repo::new(&[("app.yaml", "kind: Service\n")]);
    let root = repo.bare.parent().unwrap();
    let server = HttpServer::start(root, &["--user", "alice:s3cret", "--bearer", "tok123"]);
    let url = server.url("repo.git");

    let basic = Credentials {
        basic: Some(("alice".into(), "s3cret".into())),
        ..Default::default()
    };
    let (sel, packed, _) = fetch(&url, &basic, None).unwrap();
    assert_eq!(sel.revision, format!("main@sha1:{}", repo.head()));
    assert_eq!(files(&packed)["app.yaml"], "kind: Service\n");

    let bearer = Credentials {
        bearer: Some("tok123".into()),
        ..Default::default()
    };
    assert!(fetch(&url, &bearer, None).is_ok());

    for creds in [
        Credentials::default(),
        Credentials {
            basic: Some(("alice".into(), "wrong-password".into())),
            ..Default::default()
        },
        Credentials {
            bearer: Some("nope".into()),
            ..Default::default()
        },
    ] {
        let err = fetch(&url, &creds, None).unwrap_err();
        assert_eq!(err.category(), "AuthenticationFailed", "{creds:?}: {err}");
        assert!(
            !err.to_string().contains("wrong-password"),
            "password leaked: {err}"
        );
    }
}

#[test]
fn unreachable_and_silent_servers_fail_cleanly() {
    // Nothing listens here.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = fetch(
        &format!("http://127.0.0.1:{port}/x.git"),
        &Credentials::default(),
        None,
    )
    .unwrap_err();
    assert_eq!(err.category(), "GitOperationFailed", "{err}");

    // Accepts connections and never answers: the timeout must fire.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/x.git", silent.local_addr().unwrap());
    let started = std::time::Instant::now();
    let remote = GitRemote::new(&url, &Credentials::default(), Duration::from_secs(2)).unwrap();
    let err = remote.advertisement().unwrap_err();
    assert_eq!(err.category(), "Timeout", "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    drop(silent);
}

#[test]
fn size_limits_and_ignore_rules_apply() {
    let repo = Repo::new(&[
        ("small.yaml", "a: 1\n"),
        ("big.bin.yaml", &"x".repeat(10_000)),
        ("keep/.sourceignore", "*.tmp\n"),
        ("keep/x.tmp", "t"),
        ("keep/y.yaml", "y"),
    ]);
    let remote = GitRemote::new(&repo.file_url(), &Credentials::default(), TIMEOUT).unwrap();
    let sel = refs::select(None, &remote.advertisement().unwrap()).unwrap();
    let commit = remote.fetch_commit(&sel).unwrap();
    let r = remote.repository();

    let err = pack_commit(
        &r,
        commit,
        None,
        &PackLimits {
            max_file_bytes: 9_999,
            max_total_bytes: 1 << 20,
        },
    )
    .unwrap_err();
    assert_eq!(err.category(), "SizeLimitExceeded", "{err}");
    assert!(err.to_string().contains("big.bin.yaml"), "{err}");
    let err = pack_commit(
        &r,
        commit,
        None,
        &PackLimits {
            max_file_bytes: 1 << 20,
            max_total_bytes: 5_000,
        },
    )
    .unwrap_err();
    assert_eq!(err.category(), "SizeLimitExceeded", "{err}");

    let (packed, report) =
        pack_commit(&r, commit, Some("big.bin.yaml\n"), &PackLimits::default()).unwrap();
    assert_eq!(
        files(&packed).keys().collect::<Vec<_>>(),
        ["keep/.sourceignore", "keep/y.yaml", "small.yaml"]
    );
    assert_eq!(report.ignored, 2);
}

#[test]
fn ssh_with_identity_and_strict_host_keys() {
    let repo = Repo::new(&[("a.yaml", "over ssh\n")]);
    let server = weir_testenv::git::SshServer::start();
    let url = server.url(&repo.bare);
    let good = Credentials {
        ssh_identity: Some(server.client_key.clone().into_bytes()),
        ssh_known_hosts: Some(server.known_hosts().into_bytes()),
        ..Default::default()
    };
    let (sel, packed, _) = fetch(&url, &good, None).unwrap();
    assert_eq!(sel.revision, format!("main@sha1:{}", repo.head()));
    assert_eq!(files(&packed)["a.yaml"], "over ssh\n");

    // A known_hosts entry with another key for this host: the connection must be refused.
    let other = weir_testenv::git::SshServer::start();
    let mismatch = Credentials {
        ssh_known_hosts: Some(
            format!("[127.0.0.1]:{} {}\n", server.port, other.host_key).into_bytes(),
        ),
        ..good.clone()
    };
    let err = fetch(&url, &mismatch, None).unwrap_err();
    assert_eq!(err.category(), "HostKeyVerificationFailed", "{err}");

    // No key: the server refuses us.
    let no_key = Credentials {
        ssh_identity: None,
        ..good
    };
    let err = fetch(&url, &no_key, None).unwrap_err();
    assert_eq!(err.category(), "AuthenticationFailed", "{err}");
}

#[test]
fn corrupt_pack_on_the_server_is_an_error_not_a_panic() {
    let repo = Repo::new(&[(
        "a.yaml",
        &"content that compresses into a real pack\n".repeat(200),
    )]);
    git(&repo.bare, &["repack", "-a", "-d", "-q"]);
    let pack_dir = repo.bare.join("objects/pack");
    let pack = std::fs::read_dir(&pack_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .expect("a pack file");
    let mut bytes = std::fs::read(&pack).unwrap();
    let start = bytes.len() / 3;
    for b in &mut bytes[start..start + 64] {
        *b ^= 0xff;
    }
    let mut perms = std::fs::metadata(&pack).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&pack, perms).unwrap();
    std::fs::write(&pack, bytes).unwrap();

    let err = fetch(&repo.file_url(), &Credentials::default(), None).unwrap_err();
    assert_eq!(err.category(), "GitOperationFailed", "{err}");
}

#[test]
fn silent_ssh_server_times_out() {
    // Accepts TCP connections and never sends an SSH banner.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ssh://git@{}/repo.git", silent.local_addr().unwrap());
    let creds = Credentials {
        ssh_known_hosts: Some(b"# none\n".to_vec()),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let err = GitRemote::new(&url, &creds, Duration::from_secs(2))
        .unwrap()
        .advertisement()
        .unwrap_err();
    assert_eq!(err.category(), "Timeout", "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    drop(silent);
}

#[test]
fn submodules_are_fetched_with_the_same_credentials_when_asked() {
    let lib = Repo::new(&[
        ("lib.yaml", "from the submodule\n"),
        ("nested/x.yaml", "x\n"),
    ]);
    let app = Repo::new(&[("app.yaml", "app\n")]);
    git(
        &app.work,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            &lib.file_url(),
            "vendor/lib",
        ],
    );
    app.commit(&[], "add submodule");

    let remote = GitRemote::new(&app.file_url(), &Credentials::default(), TIMEOUT).unwrap();
    let selection = refs::select(None, &remote.advertisement().unwrap()).unwrap();
    let commit = remote.fetch_commit(&selection).unwrap();
    let repo = remote.repository();

    let (flat, report) = pack_commit(&repo, commit, None, &PackLimits::default()).unwrap();
    assert_eq!(report.submodules_skipped, ["vendor/lib"]);
    assert_eq!(
        files(&flat).keys().collect::<Vec<_>>(),
        ["app.yaml"],
        ".gitmodules is excluded by default"
    );

    let subs = weir_git::Submodules {
        parent_url: &app.file_url(),
        credentials: &Credentials::default(),
        timeout: TIMEOUT,
        max_depth: 3,
    };
    let (deep, report) =
        weir_git::pack_commit_recursive(&repo, commit, None, &PackLimits::default(), &subs)
            .unwrap();
    assert!(report.submodules_skipped.is_empty());
    let got = files(&deep);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        [
            "app.yaml",
            "vendor/lib/lib.yaml",
            "vendor/lib/nested/x.yaml"
        ]
    );
    assert_eq!(got["vendor/lib/lib.yaml"], "from the submodule\n");
}

#[test]
fn https_with_a_custom_ca() {
    let repo = Repo::new(&[("a.yaml", "over https\n")]);
    let server = HttpServer::start_tls(repo.bare.parent().unwrap(), &["--user", "alice:s3cret"]);
    let url = server.url("repo.git");
    assert!(url.starts_with("https://"));
    let basic = Some(("alice".to_owned(), "s3cret".to_owned()));
    let trusted = Credentials {
        basic: basic.clone(),
        ca_pem: server.ca_pem.clone().map(String::into_bytes),
        ..Default::default()
    };
    let (_, packed, _) = fetch(&url, &trusted, None).unwrap();
    assert_eq!(files(&packed)["a.yaml"], "over https\n");

    let untrusted = Credentials {
        basic,
        ..Default::default()
    };
    let err = fetch(&url, &untrusted, None).unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}
