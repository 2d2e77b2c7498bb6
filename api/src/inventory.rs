//! The inventory of objects an Apply manages (GUIDE §5).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The set of objects applied by the last successful apply.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceInventory {
    /// One entry per object, sorted by id.
    #[serde(default)]
    pub entries: Vec<InventoryEntry>,
}

/// One applied object: `id` is `<namespace>_<name>_<group>_<kind>` (empty namespace and group
/// stay empty, e.g. `default_podinfo__Service`) and `v` its API version.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub struct InventoryEntry {
    /// `<namespace>_<name>_<group>_<kind>`.
    pub id: String,
    /// API version without group, e.g. `v1`.
    pub v: String,
}

/// The identity of an object as encoded in an inventory id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// API group, empty for the core group.
    pub group: String,
    /// Kind.
    pub kind: String,
}

impl ObjectId {
    /// Encodes as an inventory id.
    pub fn to_id(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            self.namespace, self.name, self.group, self.kind
        )
    }

    /// Decodes an inventory id. Kubernetes names, namespaces, groups and kinds never contain `_`,
    /// so an id has exactly four fields; anything else is rejected.
    pub fn parse(id: &str) -> Option<ObjectId> {
        let mut parts = id.split('_');
        let (namespace, name, group, kind) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || name.is_empty() || kind.is_empty() {
            return None;
        }
        Some(ObjectId {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            group: group.to_owned(),
            kind: kind.to_owned(),
        })
    }
}

impl InventoryEntry {
    /// An entry for `object` at API version `version`.
    pub fn new(object: &ObjectId, version: &str) -> Self {
        InventoryEntry {
            id: object.to_id(),
            v: version.to_owned(),
        }
    }

    /// The object this entry names, if the id is well formed.
    pub fn object(&self) -> Option<ObjectId> {
        ObjectId::parse(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_keep_empty_fields() {
        let svc = ObjectId {
            namespace: "default".into(),
            name: "podinfo".into(),
            group: "".into(),
            kind: "Service".into(),
        };
        assert_eq!(svc.to_id(), "default_podinfo__Service");
        let ns = ObjectId {
            namespace: "".into(),
            name: "apps".into(),
            group: "".into(),
            kind: "Namespace".into(),
        };
        assert_eq!(ns.to_id(), "_apps__Namespace");
        for o in [svc, ns] {
            assert_eq!(InventoryEntry::new(&o, "v1").object(), Some(o));
        }
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for id in [
            "",
            "a_b_c",
            "a_b_c_d_e",
            "ns__apps_Deployment",
            "ns_name_apps_",
        ] {
            assert_eq!(ObjectId::parse(id), None, "{id}");
        }
    }
}
