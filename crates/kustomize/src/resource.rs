//! One object in a build, with the bookkeeping kustomize keeps beside it (earlier ids, applied
//! prefixes and suffixes, generator options, origin).

use crate::resid::{Gvk, ResId};
use crate::yaml::{Map, Value};

/// How a generated object combines with an existing one of the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behavior {
    /// A new object; an existing one is a conflict.
    #[default]
    Create,
    /// Replace the existing object's data.
    Replace,
    /// Merge into the existing object's data.
    Merge,
}

impl Behavior {
    /// Parses `create|replace|merge` (empty means create).
    pub fn parse(s: &str) -> Option<Behavior> {
        match s {
            "" | "create" => Some(Behavior::Create),
            "replace" => Some(Behavior::Replace),
            "merge" => Some(Behavior::Merge),
            _ => None,
        }
    }
}

/// Where an object came from (for `buildMetadata: [originAnnotations]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// Path of the file, relative to the build root (or the generator's kustomization).
    pub path: String,
    /// The generator that made the object, as `apiVersion`/`kind`/`name` lines.
    pub config_ref: Option<(String, String, String)>,
    /// The namespace of the plugin configuration object in `config_ref` (`configuredBy.namespace`;
    /// empty for builtin generators and transformers configured by kustomization fields).
    pub config_namespace: String,
}

/// An object plus build bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The object itself.
    pub obj: Value,
    /// Earlier (kind, name, namespace) triples, oldest first (kustomize's previousKinds/Names/
    /// Namespaces build annotations).
    pub previous: Vec<(String, String, String)>,
    /// Name prefixes applied, innermost first.
    pub prefixes: Vec<String>,
    /// Name suffixes applied, innermost first.
    pub suffixes: Vec<String>,
    /// Whether a content hash is appended to the name at the end of the build.
    pub needs_hash: bool,
    /// Generator behavior (only for generated objects).
    pub behavior: Behavior,
    /// Where the object was loaded or generated.
    pub origin: Option<Origin>,
    /// Transformers that changed the object (for `buildMetadata: [transformerAnnotations]`).
    pub transformations: Vec<Origin>,
    /// Ids of objects that refer to this one by name (nameReference bookkeeping).
    pub ref_by: Vec<ResId>,
}

impl Resource {
    /// Wraps an object.
    pub fn new(obj: Value) -> Resource {
        Resource {
            obj,
            previous: Vec::new(),
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            needs_hash: false,
            behavior: Behavior::Create,
            origin: None,
            transformations: Vec::new(),
            ref_by: Vec::new(),
        }
    }

    /// `apiVersion`.
    pub fn api_version(&self) -> &str {
        self.obj.str_at(&["apiVersion"]).unwrap_or("")
    }

    /// `kind`.
    pub fn kind(&self) -> &str {
        self.obj.str_at(&["kind"]).unwrap_or("")
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.obj.str_at(&["metadata", "name"]).unwrap_or("")
    }

    /// `metadata.namespace`.
    pub fn namespace(&self) -> &str {
        self.obj.str_at(&["metadata", "namespace"]).unwrap_or("")
    }

    /// Group, version and kind.
    pub fn gvk(&self) -> Gvk {
        Gvk::from_api_version(self.api_version(), self.kind())
    }

    /// The current id.
    pub fn cur_id(&self) -> ResId {
        let gvk = self.gvk();
        let namespace = if gvk.is_cluster_scoped() {
            String::new()
        } else {
            self.namespace().to_string()
        };
        ResId {
            name: self.name().to_string(),
            namespace,
            gvk,
        }
    }

    /// Earlier ids, oldest first (current group and version, earlier kind/name/namespace).
    pub fn prev_ids(&self) -> Vec<ResId> {
        let gvk = self.gvk();
        self.previous
            .iter()
            .map(|(kind, name, ns)| {
                let gvk = Gvk {
                    kind: kind.clone(),
                    ..gvk.clone()
                };
                let namespace = if gvk.is_cluster_scoped() {
                    String::new()
                } else {
                    ns.clone()
                };
                ResId {
                    gvk,
                    name: name.clone(),
                    namespace,
                }
            })
            .collect()
    }

    /// The id the object had when it entered the build.
    pub fn org_id(&self) -> ResId {
        self.prev_ids()
            .into_iter()
            .next()
            .unwrap_or_else(|| self.cur_id())
    }

    /// Current id first, then every earlier one.
    pub fn all_ids(&self) -> Vec<ResId> {
        let mut ids = vec![self.cur_id()];
        ids.extend(self.prev_ids());
        ids
    }

    /// Records the current kind/name/namespace as an earlier id (before a rename).
    pub fn store_previous_id(&mut self) {
        let id = self.cur_id();
        let entry = (
            self.kind().to_string(),
            self.name().to_string(),
            id.effective_namespace().to_string(),
        );
        self.previous.push(entry);
    }

    /// Sets `metadata.name`.
    pub fn set_name(&mut self, name: &str) {
        if let Some(meta) = self.obj.ensure_map_path(&["metadata"]) {
            meta.insert("name".into(), Value::String(name.to_string()));
        }
    }

    /// Sets `metadata.namespace`.
    pub fn set_namespace(&mut self, ns: &str) {
        if let Some(meta) = self.obj.ensure_map_path(&["metadata"]) {
            meta.insert("namespace".into(), Value::String(ns.to_string()));
        }
    }

    /// `metadata.labels` as strings.
    pub fn labels(&self) -> Vec<(String, String)> {
        string_map(self.obj.get_path(&["metadata", "labels"]))
    }

    /// `metadata.annotations` as strings.
    pub fn annotations(&self) -> Vec<(String, String)> {
        string_map(self.obj.get_path(&["metadata", "annotations"]))
    }

    /// One annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.obj.str_at(&["metadata", "annotations", key])
    }

    /// Whether the object carries `config.kubernetes.io/local-config: "true"`.
    pub fn is_local_config(&self) -> bool {
        self.annotation("config.kubernetes.io/local-config") == Some("true")
    }

    /// The object's `metadata` mapping, created if absent.
    pub fn metadata_mut(&mut self) -> Option<&mut Map> {
        self.obj.ensure_map_path(&["metadata"])
    }
}

fn string_map(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_map)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.scalar_string().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}
