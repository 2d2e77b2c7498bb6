//! Round-trips real `kustomize build` output through the parser and the emitter.
//!
//! Every `expected.yaml` in the shared conformance corpus was printed by kustomize v5.5, so
//! parsing it and printing it again must give back the same bytes. The corpus lives outside the
//! repository; when it is absent the test says so and passes.

use std::path::{Path, PathBuf};

use weir_kustomize::yaml::{parse_documents, to_yaml_stream};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/kustomize/cases")
}

/// The first differing line of two texts, for a readable failure message.
fn first_difference(expected: &str, actual: &str) -> String {
    for (n, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return format!("line {}: expected {e:?}, got {a:?}", n + 1);
        }
    }
    format!(
        "lengths differ: expected {} lines / {} bytes, got {} lines / {} bytes",
        expected.lines().count(),
        expected.len(),
        actual.lines().count(),
        actual.len()
    )
}

#[test]
fn corpus_expected_outputs_round_trip() {
    let dir = corpus_dir();
    if !dir.is_dir() {
        eprintln!("skipped: conformance corpus not found at {}", dir.display());
        return;
    }
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path().join("expected.yaml"))
        .filter(|path| path.is_file())
        .collect();
    cases.sort();
    assert!(
        !cases.is_empty(),
        "no expected.yaml under {}",
        dir.display()
    );

    let mut failures = Vec::new();
    for path in &cases {
        let name = path
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let expected = std::fs::read_to_string(path).unwrap();
        match parse_documents(&expected) {
            Ok(docs) => {
                let actual = to_yaml_stream(&docs);
                if actual != expected {
                    failures.push(format!("{name}: {}", first_difference(&expected, &actual)));
                }
            }
            Err(e) => failures.push(format!("{name}: parse error: {e}")),
        }
    }
    let passed = cases.len() - failures.len();
    eprintln!("round trip: {passed}/{} passed", cases.len());
    for failure in &failures {
        eprintln!("FAIL {failure}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus files did not round-trip:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
