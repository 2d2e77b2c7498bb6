//! Substitution variables from `spec.substitute` and `spec.substituteFrom` (Flux's `postBuild`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};
use weir_api::{
    RenderSpec,
    conditions::reasons,
    render::{SubstituteKind, SubstituteReference},
};

use crate::error::Failure;

/// Variables to substitute, or `None` when the spec asks for no substitution or every source of
/// variables turned out empty. As in Flux, nothing is substituted then: substitution is strict,
/// and a `${…}` in a build that defines no variables was not meant for it.
pub async fn load(
    client: &Client,
    namespace: &str,
    spec: &RenderSpec,
) -> Result<Option<BTreeMap<String, String>>, Failure> {
    if spec.substitute.is_empty() && spec.substitute_from.is_empty() {
        return Ok(None);
    }
    let mut sources = Vec::with_capacity(spec.substitute_from.len());
    for reference in &spec.substitute_from {
        sources.push((reference, read(client, namespace, reference).await?));
    }
    merge(&sources, &spec.substitute)
}

/// Reads one ConfigMap's `data` or one Secret's decoded `data`; `None` when it is missing.
async fn read(
    client: &Client,
    namespace: &str,
    reference: &SubstituteReference,
) -> Result<Option<BTreeMap<String, String>>, Failure> {
    let failed = |e: kube::Error| {
        Failure::transient(
            reasons::SUBSTITUTION_FAILED,
            format!("reading {:?} '{}': {e}", reference.kind, reference.name),
        )
    };
    match reference.kind {
        SubstituteKind::ConfigMap => {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
            let found = api.get_opt(&reference.name).await.map_err(failed)?;
            Ok(found.map(|cm| cm.data.unwrap_or_default()))
        }
        SubstituteKind::Secret => {
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            let Some(secret) = api.get_opt(&reference.name).await.map_err(failed)? else {
                return Ok(None);
            };
            let mut data = BTreeMap::new();
            for (key, value) in secret.data.unwrap_or_default() {
                let text = String::from_utf8(value.0).map_err(|_| {
                    Failure::transient(
                        reasons::SUBSTITUTION_FAILED,
                        format!("Secret '{}' key '{key}' is not UTF-8 text", reference.name),
                    )
                })?;
                data.insert(key, text);
            }
            Ok(Some(data))
        }
    }
}

/// Merges variables: `substituteFrom` entries in order (later wins), then `substitute` (wins over
/// all, as in Flux). A missing object that is not `optional` is a failure.
pub fn merge(
    sources: &[(&SubstituteReference, Option<BTreeMap<String, String>>)],
    inline: &BTreeMap<String, String>,
) -> Result<Option<BTreeMap<String, String>>, Failure> {
    let mut vars = BTreeMap::new();
    for (reference, data) in sources {
        match data {
            Some(data) => vars.extend(data.iter().map(|(k, v)| (k.clone(), v.clone()))),
            None if reference.optional => {}
            None => {
                return Err(Failure::transient(
                    reasons::SUBSTITUTION_FAILED,
                    format!(
                        "substituteFrom: {:?} '{}' not found (set optional: true to allow that)",
                        reference.kind, reference.name
                    ),
                ));
            }
        }
    }
    vars.extend(inline.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok((!vars.is_empty()).then_some(vars))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(kind: SubstituteKind, name: &str, optional: bool) -> SubstituteReference {
        SubstituteReference {
            kind,
            name: name.into(),
            optional,
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn later_sources_win_and_inline_wins_over_all() {
        let cm = reference(SubstituteKind::ConfigMap, "cm", false);
        let secret = reference(SubstituteKind::Secret, "s", false);
        let vars = merge(
            &[
                (&cm, Some(map(&[("A", "cm"), ("B", "cm"), ("C", "cm")]))),
                (&secret, Some(map(&[("B", "secret"), ("C", "secret")]))),
            ],
            &map(&[("C", "inline")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(vars, map(&[("A", "cm"), ("B", "secret"), ("C", "inline")]));
    }

    #[test]
    fn missing_objects_fail_unless_optional() {
        let optional = reference(SubstituteKind::ConfigMap, "maybe", true);
        assert_eq!(merge(&[(&optional, None)], &BTreeMap::new()).unwrap(), None);
        let required = reference(SubstituteKind::Secret, "needed", false);
        let e = merge(&[(&required, None)], &map(&[("A", "1")])).unwrap_err();
        assert_eq!(e.reason, reasons::SUBSTITUTION_FAILED);
        assert!(
            e.message.contains("Secret 'needed' not found"),
            "{}",
            e.message
        );
    }
}
