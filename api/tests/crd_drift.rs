//! The committed CRD manifests must be exactly what the Rust types generate.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn committed_crds_match_the_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/crd");
    for (name, expected) in weir_api::crds::rendered().unwrap() {
        let committed = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        assert!(
            committed == expected,
            "config/crd/{name} is stale or missing: run `cargo xtask crds` and commit the result"
        );
    }
}
