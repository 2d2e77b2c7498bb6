//! The artifact contract between producers and consumers (GUIDE §4, Flux-compatible).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A tar.gz published by a controller in `status.artifact`.
///
/// Consumers download `url`, check that the sha256 of the bytes equals `digest` before using
/// them, and treat a 404 as "producer not ready yet".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// HTTP URL of the tar.gz.
    pub url: String,
    /// Human-readable origin: `main@sha1:<commit>`, `6.9.0@sha1:<commit>`, `sha1:<commit>`.
    /// A Render's artifact carries its source's revision.
    pub revision: String,
    /// `sha256:<64 hex>` of the tar.gz bytes.
    pub digest: String,
    /// Size of the tar.gz in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// When this artifact was produced.
    pub last_update_time: Time,
    /// Optional producer-specific metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

impl Artifact {
    /// The hex part of `digest` when it is a well-formed `sha256:<64 lowercase hex>`.
    pub fn sha256_hex(&self) -> Option<&str> {
        let hex = self.digest.strip_prefix("sha256:")?;
        (hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then_some(hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn artifact(digest: &str) -> Artifact {
        Artifact {
            url: "http://x/a.tar.gz".into(),
            revision: "main@sha1:0000000000000000000000000000000000000000".into(),
            digest: digest.into(),
            size: Some(1),
            last_update_time: Time(Timestamp::UNIX_EPOCH),
            metadata: None,
        }
    }

    #[test]
    fn sha256_hex_accepts_only_well_formed_digests() {
        let good = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(artifact(&good).sha256_hex(), Some(&good[7..]));
        for bad in [
            "",
            "sha256:",
            "sha1:abcd",
            &format!("sha256:{}", "AB".repeat(32)),
            &format!("sha256:{}", "a".repeat(63)),
        ] {
            assert_eq!(artifact(bad).sha256_hex(), None, "{bad}");
        }
    }

    #[test]
    fn serializes_camel_case_and_omits_empty() {
        let v = serde_json::to_value(artifact("sha256:x")).unwrap();
        assert_eq!(v["lastUpdateTime"], "1970-01-01T00:00:00Z");
        assert!(v.get("metadata").is_none());
    }
}
