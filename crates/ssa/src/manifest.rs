//! Reading a manifest set and the per-object vocabulary: identity, owner labels, annotations.

use std::{collections::BTreeMap, fmt};

use kube::api::DynamicObject;
use serde::Deserialize;
use weir_api::inventory::{InventoryEntry, ObjectId};

use crate::error::{Error, Result};

/// Owner label naming the Apply object (GUIDE §5).
pub const OWNER_NAME_LABEL: &str = "apply.weir.dev/name";
/// Owner label naming the Apply object's namespace (GUIDE §5).
pub const OWNER_NAMESPACE_LABEL: &str = "apply.weir.dev/namespace";
/// Annotation choosing how an object is applied: `IfNotPresent`, `Ignore` or `Merge`.
pub const SSA_ANNOTATION: &str = "apply.weir.dev/ssa";
/// Annotation `disabled` keeps an object from ever being pruned.
pub const PRUNE_ANNOTATION: &str = "apply.weir.dev/prune";
/// Annotation `disabled` stops the engine from writing an object (it stays in the inventory).
pub const RECONCILE_ANNOTATION: &str = "apply.weir.dev/reconcile";
/// The value that switches [`PRUNE_ANNOTATION`] and [`RECONCILE_ANNOTATION`] off.
pub const DISABLED: &str = "disabled";

/// The Apply object on whose behalf objects are applied; its name and namespace become the
/// owner labels of every applied object and decide what may be pruned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The Apply object's name.
    pub name: String,
    /// The Apply object's namespace.
    pub namespace: String,
}

impl Owner {
    /// An owner named `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Owner {
            name: name.into(),
            namespace: namespace.into(),
        }
    }

    /// The owner labels as key/value pairs.
    pub fn labels(&self) -> [(&'static str, &str); 2] {
        [
            (OWNER_NAME_LABEL, self.name.as_str()),
            (OWNER_NAMESPACE_LABEL, self.namespace.as_str()),
        ]
    }

    /// Whether `labels` carry exactly this owner.
    pub fn owns(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels()
            .iter()
            .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
    }
}

/// How one object is applied, from its `apply.weir.dev/ssa` and `apply.weir.dev/reconcile`
/// annotations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyPolicy {
    /// Server-side apply; conflicts with `Update` managers (`kubectl edit`, scripts) are drift and
    /// are overridden, conflicts with other apply managers need `force`.
    Default,
    /// Create the object when it is absent, never touch an existing one.
    IfNotPresent,
    /// Never write the object (`ssa: Ignore` or `reconcile: disabled`).
    Ignore,
    /// Server-side apply without ever forcing ownership: any conflict is an error.
    Merge,
}

impl ApplyPolicy {
    /// Reads the policy from an object's annotations; unknown values fall back to `Default`.
    pub fn of(annotations: &BTreeMap<String, String>) -> Self {
        if annotations.get(RECONCILE_ANNOTATION).map(String::as_str) == Some(DISABLED) {
            return ApplyPolicy::Ignore;
        }
        match annotations.get(SSA_ANNOTATION).map(String::as_str) {
            Some(v) if v.eq_ignore_ascii_case("IfNotPresent") => ApplyPolicy::IfNotPresent,
            Some(v) if v.eq_ignore_ascii_case("Ignore") => ApplyPolicy::Ignore,
            Some(v) if v.eq_ignore_ascii_case("Merge") => ApplyPolicy::Merge,
            _ => ApplyPolicy::Default,
        }
    }
}

/// Whether an object's annotations opt it out of pruning.
pub fn prune_disabled(annotations: &BTreeMap<String, String>) -> bool {
    annotations.get(PRUNE_ANNOTATION).map(String::as_str) == Some(DISABLED)
}

/// Names one object: group, version, kind, namespace (empty when cluster-scoped) and name.
/// Displays as `Kind.group namespace/name` (`Deployment.apps default/web`, `Namespace apps`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// API group, empty for the core group.
    pub group: String,
    /// API version without the group.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace, empty for cluster-scoped objects (or not known yet).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// The reference of a parsed object (its namespace as written, possibly empty).
    pub fn of(object: &DynamicObject) -> Self {
        let (group, version) = match &object.types {
            Some(t) => split_api_version(&t.api_version),
            None => (String::new(), String::new()),
        };
        ObjectRef {
            group,
            version,
            kind: object
                .types
                .as_ref()
                .map(|t| t.kind.clone())
                .unwrap_or_default(),
            namespace: object.metadata.namespace.clone().unwrap_or_default(),
            name: object.metadata.name.clone().unwrap_or_default(),
        }
    }

    /// The reference of an inventory entry, if its id is well formed.
    pub fn from_entry(entry: &InventoryEntry) -> Option<Self> {
        let id = entry.object()?;
        Some(ObjectRef {
            group: id.group,
            version: entry.v.clone(),
            kind: id.kind,
            namespace: id.namespace,
            name: id.name,
        })
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The inventory identity (version-independent).
    pub fn id(&self) -> ObjectId {
        ObjectId {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            group: self.group.clone(),
            kind: self.kind.clone(),
        }
    }

    /// The inventory entry of this object.
    pub fn entry(&self) -> InventoryEntry {
        InventoryEntry::new(&self.id(), &self.version)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        if self.namespace.is_empty() {
            write!(f, " {}", self.name)
        } else {
            write!(f, " {}/{}", self.namespace, self.name)
        }
    }
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub fn split_api_version(api_version: &str) -> (String, String) {
    match api_version.rsplit_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), api_version.to_owned()),
    }
}

/// Parses multi-document YAML into objects. Empty documents (and `null` ones) are skipped;
/// `kind: List` documents are flattened into their `items`. Every object must have
/// `apiVersion`, `kind` and `metadata.name`; a document that is not an object is an error naming
/// its position.
///
/// ```
/// let objects = weir_ssa::parse_manifests(
///     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n",
/// )?;
/// assert_eq!(objects.len(), 2);
/// # Ok::<(), weir_ssa::Error>(())
/// ```
pub fn parse_manifests(text: &str) -> Result<Vec<DynamicObject>> {
    let mut objects = Vec::new();
    for (i, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let document_no = i + 1;
        let invalid = |message: String| Error::InvalidManifest {
            document: document_no,
            message,
        };
        let value = serde_json::Value::deserialize(document).map_err(|e| invalid(e.to_string()))?;
        match value {
            serde_json::Value::Null => continue,
            serde_json::Value::Object(ref map)
                if map.get("kind").and_then(|k| k.as_str()) == Some("List")
                    && map.get("items").is_some_and(|i| i.is_array()) =>
            {
                let items = map
                    .get("items")
                    .and_then(|i| i.as_array())
                    .cloned()
                    .unwrap_or_default();
                for item in items {
                    objects.push(to_object(item).map_err(invalid)?);
                }
            }
            serde_json::Value::Object(_) => objects.push(to_object(value).map_err(invalid)?),
            other => return Err(invalid(format!("not an object: {other}"))),
        }
    }
    Ok(objects)
}

fn to_object(value: serde_json::Value) -> std::result::Result<DynamicObject, String> {
    let object: DynamicObject = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let Some(types) = &object.types else {
        return Err("missing apiVersion or kind".into());
    };
    if types.api_version.is_empty() || types.kind.is_empty() {
        return Err("missing apiVersion or kind".into());
    }
    if object
        .metadata
        .name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        return Err(format!(
            "{} {}: missing metadata.name (generateName is not supported)",
            types.api_version, types.kind
        ));
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documents_lists_and_skips_empty_ones() {
        let text = "---\n# comment only\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: ns\ndata: {k: v}\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: d}\n";
        let objects = parse_manifests(text).unwrap();
        let refs: Vec<String> = objects
            .iter()
            .map(|o| ObjectRef::of(o).to_string())
            .collect();
        assert_eq!(refs, ["ConfigMap ns/a", "Deployment.apps d"]);
        assert_eq!(objects[0].data["data"]["k"], "v");
    }

    #[test]
    fn bad_documents_are_named_by_position() {
        let e = parse_manifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: Secret\nmetadata: {name: b}\n")
            .unwrap_err();
        assert!(
            matches!(e, Error::InvalidManifest { document: 2, .. }),
            "{e}"
        );
        let e = parse_manifests("- a\n- b\n").unwrap_err();
        assert!(
            matches!(e, Error::InvalidManifest { document: 1, .. }),
            "{e}"
        );
        let e = parse_manifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: a-}\n")
            .unwrap_err();
        assert_eq!(e.category(), "InvalidManifest");
    }

    #[test]
    fn policies_and_ids() {
        let ann = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert_eq!(ApplyPolicy::of(&BTreeMap::new()), ApplyPolicy::Default);
        assert_eq!(
            ApplyPolicy::of(&ann(SSA_ANNOTATION, "IfNotPresent")),
            ApplyPolicy::IfNotPresent
        );
        assert_eq!(
            ApplyPolicy::of(&ann(SSA_ANNOTATION, "Ignore")),
            ApplyPolicy::Ignore
        );
        assert_eq!(
            ApplyPolicy::of(&ann(SSA_ANNOTATION, "Merge")),
            ApplyPolicy::Merge
        );
        assert_eq!(
            ApplyPolicy::of(&ann(RECONCILE_ANNOTATION, "disabled")),
            ApplyPolicy::Ignore
        );
        assert!(prune_disabled(&ann(PRUNE_ANNOTATION, "disabled")));
        let r = ObjectRef {
            group: String::new(),
            version: "v1".into(),
            kind: "Service".into(),
            namespace: "default".into(),
            name: "podinfo".into(),
        };
        assert_eq!(r.entry().id, "default_podinfo__Service");
        assert_eq!(ObjectRef::from_entry(&r.entry()), Some(r));
        let owner = Owner::new("flux-system", "app");
        let mut labels = BTreeMap::from([(OWNER_NAME_LABEL.to_owned(), "app".to_owned())]);
        assert!(!owner.owns(&labels));
        labels.insert(OWNER_NAMESPACE_LABEL.into(), "flux-system".into());
        assert!(owner.owns(&labels));
    }
}
