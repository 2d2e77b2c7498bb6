//! The Render spec's overlay fields as a kustomization applied on top of the source's own.

use weir_api::RenderSpec;
use weir_kustomize::kustomization::{self as k, Kustomization};

/// The kustomization the engine applies over the rendered directory, or `None` when the spec
/// sets no overlay field (the directory renders as it is).
///
/// `targetNamespace` → `namespace`; `namePrefix`/`nameSuffix` as they are; `commonMetadata`
/// labels → a `labels` entry that touches neither selectors nor templates, annotations →
/// `commonAnnotations` (Flux's mapping); `patches`, `images` and `components` as they are
/// (component paths are relative to `spec.path`).
pub fn overlay(spec: &RenderSpec) -> Option<Kustomization> {
    let mut kustomization = Kustomization {
        namespace: spec.target_namespace.clone(),
        name_prefix: spec.name_prefix.clone(),
        name_suffix: spec.name_suffix.clone(),
        components: spec.components.clone(),
        ..Kustomization::default()
    };
    if let Some(common) = &spec.common_metadata {
        if !common.labels.is_empty() {
            kustomization.labels.push(k::Label {
                pairs: common
                    .labels
                    .iter()
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect(),
                include_selectors: false,
                include_templates: false,
                fields: Vec::new(),
            });
        }
        kustomization.common_annotations = common
            .annotations
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
    }
    kustomization.patches = spec
        .patches
        .iter()
        .map(|p| k::Patch {
            path: None,
            patch: Some(p.patch.clone()),
            target: p.target.as_ref().map(|t| k::Selector {
                group: t.group.clone().unwrap_or_default(),
                version: t.version.clone().unwrap_or_default(),
                kind: t.kind.clone().unwrap_or_default(),
                name: t.name.clone().unwrap_or_default(),
                namespace: t.namespace.clone().unwrap_or_default(),
                label_selector: t.label_selector.clone().unwrap_or_default(),
                annotation_selector: t.annotation_selector.clone().unwrap_or_default(),
            }),
            options: None,
        })
        .collect();
    kustomization.images = spec
        .images
        .iter()
        .map(|i| k::Image {
            name: i.name.clone(),
            new_name: i.new_name.clone().unwrap_or_default(),
            new_tag: i.new_tag.clone().unwrap_or_default(),
            digest: i.digest.clone().unwrap_or_default(),
            tag_suffix: String::new(),
        })
        .collect();
    let empty = kustomization.namespace.is_none()
        && kustomization.name_prefix.is_none()
        && kustomization.name_suffix.is_none()
        && kustomization.labels.is_empty()
        && kustomization.common_annotations.is_empty()
        && kustomization.patches.is_empty()
        && kustomization.images.is_empty()
        && kustomization.components.is_empty();
    (!empty).then_some(kustomization)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(fields: serde_json::Value) -> RenderSpec {
        let mut full = serde_json::json!({
            "sourceRef": { "kind": "GitRepository", "name": "app" },
            "interval": "5m",
        });
        full.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        serde_json::from_value(full).unwrap()
    }

    #[test]
    fn no_overlay_fields_means_no_overlay() {
        assert!(overlay(&spec(serde_json::json!({ "path": "deploy" }))).is_none());
        assert!(overlay(&spec(serde_json::json!({ "substitute": { "A": "1" } }))).is_none());
    }

    #[test]
    fn every_field_maps_to_its_kustomize_counterpart() {
        let k = overlay(&spec(serde_json::json!({
            "targetNamespace": "prod",
            "namePrefix": "p-",
            "nameSuffix": "-s",
            "commonMetadata": { "labels": { "team": "a" }, "annotations": { "owner": "b" } },
            "patches": [
                { "patch": "- op: remove\n  path: /x", "target": { "kind": "Deployment", "labelSelector": "app=web" } },
                { "patch": "kind: ConfigMap\nmetadata: {name: c}" }
            ],
            "images": [{ "name": "nginx", "newTag": "1.27", "digest": "sha256:abc" }],
            "components": ["../components/tls"],
        })))
        .unwrap();
        assert_eq!(k.namespace.as_deref(), Some("prod"));
        assert_eq!(k.name_prefix.as_deref(), Some("p-"));
        assert_eq!(k.name_suffix.as_deref(), Some("-s"));
        assert_eq!(k.labels.len(), 1);
        assert_eq!(k.labels[0].pairs.get("team").map(String::as_str), Some("a"));
        assert!(!k.labels[0].include_selectors && !k.labels[0].include_templates);
        assert!(
            k.common_labels.is_empty(),
            "commonLabels would touch selectors"
        );
        assert_eq!(
            k.common_annotations.get("owner").map(String::as_str),
            Some("b")
        );
        assert_eq!(k.patches.len(), 2);
        let target = k.patches[0].target.as_ref().unwrap();
        assert_eq!(
            (target.kind.as_str(), target.label_selector.as_str()),
            ("Deployment", "app=web")
        );
        assert!(k.patches[1].target.is_none());
        assert_eq!(k.images[0].name, "nginx");
        assert_eq!(k.images[0].new_tag, "1.27");
        assert_eq!(k.images[0].digest, "sha256:abc");
        assert_eq!(k.components, vec!["../components/tls".to_owned()]);
    }
}
