//! Strategic merge as kustomize v5.5 does it: kyaml's `merge2` visitor driven by its `walk`
//! walker, with the patch's list items prepended (`ListIncreaseDirection: Prepend`, what
//! `api/filters/patchstrategicmerge` asks for) — not apimachinery's `strategicpatch`.
//!
//! kyaml works on shared `yaml.Node` pointers and several of its observable behaviours come from
//! that sharing (a patch subtree that lands where the target had nothing is walked against
//! itself; list elements are matched, replaced and deleted in place). To reproduce them the
//! walk runs over an arena of nodes addressed by index, one node per kyaml node, and follows
//! kyaml's control flow step by step. Directives kyaml does not know (`$setElementOrder/…`,
//! `$retainKeys`, `$deleteFromPrimitiveList/…`) are ordinary fields to it, and so here.

use std::collections::BTreeSet;

use super::schema::{Node as SchemaNode, Schema};
use crate::error::{Error, Result};
use crate::yaml::{Map, Value, resolve_plain};

/// Index of a node in the arena.
type Id = usize;

/// kyaml's `*RNode`: `None` is a nil node.
type RNode = Option<Id>;

/// The text kyaml sees for a null scalar. Our value model does not keep whether the source said
/// `null`, `~` or nothing; `null` (the common, and kept, spelling) is assumed.
const NULL_TEXT: &str = "null";

/// The `$patch` directive key.
const DIRECTIVE: &str = "$patch";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scalar,
    Seq,
    Map,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Scalar => "ScalarNode",
            Kind::Seq => "SequenceNode",
            Kind::Map => "MappingNode",
        }
    }
}

#[derive(Debug)]
enum Data {
    Scalar {
        /// Tagged `!!null`.
        null: bool,
        /// The scalar as written (kyaml compares keys by this text).
        text: String,
        /// The decoded value.
        value: Value,
    },
    Seq(Vec<Id>),
    Map(Vec<(String, Id)>),
}

#[derive(Debug)]
struct YNode {
    data: Data,
    /// kyaml's `ShouldKeep`: a null the merge must keep.
    keep: bool,
}

/// A `$patch` directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Directive {
    Unknown,
    Replace,
    Delete,
    Merge,
}

/// The walk: the arena plus the schema.
pub(crate) struct Walker<'s> {
    nodes: Vec<YNode>,
    schema: &'s Schema,
}

/// The result of [`merge`].
pub(crate) enum Merged {
    /// The target was merged in place.
    Kept,
    /// The walk returned another node than the target (a top-level `$patch: replace`); kustomize
    /// keeps the target as it was.
    Untouched,
    /// `$patch: delete` at the top level.
    Deleted,
}

/// Merges `patch` into `target` (of type `api_version`/`kind`), as kustomize's
/// `patchstrategicmerge` filter does.
pub(crate) fn merge(
    target: &mut Value,
    patch: &Value,
    api_version: &str,
    kind: &str,
    schema: &Schema,
) -> Result<Merged> {
    let mut w = Walker {
        nodes: Vec::new(),
        schema,
    };
    let dest = w.add(target);
    let origin = w.add(patch);
    let top = schema.for_kind(api_version, kind);
    let mut path = Vec::new();
    match w.walk([Some(dest), Some(origin)], top, &mut path)? {
        None => Ok(Merged::Deleted),
        Some(id) if id == dest => {
            *target = w.value(dest);
            Ok(Merged::Kept)
        }
        Some(_) => Ok(Merged::Untouched),
    }
}

/// kyaml's `InvalidNodeKindError`, with the field path instead of the node's contents.
fn kind_error(expected: Kind, got: Kind, path: &[String]) -> Error {
    let at = if path.is_empty() {
        String::new()
    } else {
        format!(" (field {})", path.join("."))
    };
    Error::msg(format!(
        "wrong node kind: expected {} but got {}{at}",
        expected.name(),
        got.name()
    ))
}

impl<'s> Walker<'s> {
    // ---- the arena ------------------------------------------------------------------------

    fn push(&mut self, data: Data) -> Id {
        self.nodes.push(YNode { data, keep: false });
        self.nodes.len() - 1
    }

    fn add(&mut self, v: &Value) -> Id {
        let data = match v {
            Value::Seq(items) => Data::Seq(items.iter().map(|i| self.add(i)).collect()),
            Value::Map(map) => {
                Data::Map(map.iter().map(|(k, v)| (k.clone(), self.add(v))).collect())
            }
            Value::Null => Data::Scalar {
                null: true,
                text: NULL_TEXT.into(),
                value: Value::Null,
            },
            scalar => Data::Scalar {
                null: false,
                text: scalar.scalar_string().unwrap_or_default(),
                value: scalar.clone(),
            },
        };
        self.push(data)
    }

    fn value(&self, id: Id) -> Value {
        match &self.nodes[id].data {
            Data::Scalar { value, .. } => value.clone(),
            Data::Seq(items) => Value::Seq(items.iter().map(|&i| self.value(i)).collect()),
            Data::Map(entries) => {
                let mut map = Map::with_capacity(entries.len());
                for (k, v) in entries {
                    map.insert(k.clone(), self.value(*v));
                }
                Value::Map(map)
            }
        }
    }

    fn kind(&self, id: Id) -> Kind {
        match self.nodes[id].data {
            Data::Scalar { .. } => Kind::Scalar,
            Data::Seq(_) => Kind::Seq,
            Data::Map(_) => Kind::Map,
        }
    }

    fn is_null(&self, id: Id) -> bool {
        matches!(self.nodes[id].data, Data::Scalar { null: true, .. })
    }

    /// `yaml.IsMissingOrNull`.
    fn missing_or_null(&self, n: RNode) -> bool {
        n.is_none_or(|id| self.is_null(id))
    }

    /// `yaml.IsEmptyMap`.
    fn empty_map(&self, n: RNode) -> bool {
        self.missing_or_null(n)
            || n.is_some_and(|id| matches!(&self.nodes[id].data, Data::Map(e) if e.is_empty()))
    }

    /// `IsNilOrEmpty`: null, or an empty mapping or sequence.
    fn nil_or_empty(&self, id: Id) -> bool {
        match &self.nodes[id].data {
            Data::Scalar { null, .. } => *null,
            Data::Seq(items) => items.is_empty(),
            Data::Map(entries) => entries.is_empty(),
        }
    }

    /// `YNode().Value`: a scalar's text, `""` for collections.
    fn text(&self, id: Id) -> &str {
        match &self.nodes[id].data {
            Data::Scalar { text, .. } => text,
            _ => "",
        }
    }

    /// Sequence content (`Content()`); empty for anything else.
    fn items(&self, id: Id) -> Vec<Id> {
        match &self.nodes[id].data {
            Data::Seq(items) => items.clone(),
            _ => Vec::new(),
        }
    }

    fn set_items(&mut self, id: Id, new: Vec<Id>) {
        if let Data::Seq(items) = &mut self.nodes[id].data {
            *items = new;
        }
    }

    /// `RNode.Field(name).Value`: the first field of that name of a mapping.
    fn field(&self, id: Id, name: &str) -> Option<Id> {
        match &self.nodes[id].data {
            Data::Map(entries) => entries.iter().find(|(k, _)| k == name).map(|(_, v)| *v),
            _ => None,
        }
    }

    fn map_len(&self, id: Id) -> usize {
        match &self.nodes[id].data {
            Data::Map(entries) => entries.len(),
            _ => 0,
        }
    }

    /// `yaml.Clear(name)`: removes the first field of that name.
    fn clear_field(&mut self, id: Id, name: &str) {
        if let Data::Map(entries) = &mut self.nodes[id].data
            && let Some(i) = entries.iter().position(|(k, _)| k == name)
        {
            entries.remove(i);
        }
    }

    /// kyaml's `FieldSetter{Name, Value}` on a mapping.
    fn set_field(&mut self, id: Id, name: &str, val: RNode, path: &[String]) -> Result<()> {
        let val = match val {
            Some(v) if !self.is_null(v) || self.nodes[v].keep => v,
            _ => {
                self.clear_field(id, name);
                return Ok(());
            }
        };
        if self.is_null(id) {
            return Ok(());
        }
        match &mut self.nodes[id].data {
            Data::Map(entries) => {
                match entries.iter_mut().find(|(k, _)| k == name) {
                    Some(entry) => entry.1 = val,
                    None => entries.push((name.to_string(), val)),
                }
                Ok(())
            }
            Data::Seq(_) => Err(kind_error(Kind::Map, Kind::Seq, path)),
            Data::Scalar { .. } => Err(kind_error(Kind::Map, Kind::Scalar, path)),
        }
    }

    /// `FieldMatcher{Name, StringValue}` (an empty string value matches any value).
    fn match_field(&self, elem: Id, name: &str, value: &str, path: &[String]) -> Result<RNode> {
        if self.is_null(elem) {
            return Ok(None);
        }
        if name.is_empty() {
            if self.kind(elem) != Kind::Scalar {
                return Err(kind_error(Kind::Scalar, self.kind(elem), path));
            }
            return Ok((self.text(elem) == value).then_some(elem));
        }
        if self.kind(elem) != Kind::Map {
            return Err(kind_error(Kind::Map, self.kind(elem), path));
        }
        Ok(self
            .field(elem, name)
            .filter(|&f| value.is_empty() || self.text(f) == value))
    }

    /// kyaml's `ElementSetter`: replaces (or with `element: None`, deletes) the elements whose
    /// `keys` have `values`, appending `element` when none does. Drops null and empty-map
    /// elements on the way.
    fn element_setter(
        &mut self,
        list: Id,
        element: RNode,
        keys: &[String],
        values: &[String],
        path: &[String],
    ) -> Result<RNode> {
        let default_keys = [String::new()];
        let keys = if keys.is_empty() {
            &default_keys[..]
        } else {
            keys
        };
        match self.kind(list) {
            Kind::Seq => {}
            _ if self.is_null(list) => {}
            other => return Err(kind_error(Kind::Seq, other, path)),
        }
        let mapping_setter = !keys[0].is_empty() && values.first().is_some_and(|v| !v.is_empty());
        let mut new_items = Vec::new();
        let mut matched_any = false;
        for elem in self.items(list) {
            if self.empty_map(Some(elem)) {
                continue;
            }
            if self.kind(elem) != Kind::Map && mapping_setter {
                new_items.push(elem);
                continue;
            }
            let mut found = true;
            let mut val: RNode = None;
            for (j, key) in keys.iter().enumerate() {
                if let Some(value) = values.get(j) {
                    val = self.match_field(elem, key, value, path)?;
                }
                if val.is_none() {
                    found = false;
                    break;
                }
            }
            if !found {
                if !values.is_empty() {
                    new_items.push(elem);
                }
                continue;
            }
            matched_any = true;
            if let Some(e) = element {
                new_items.push(e);
            }
        }
        self.set_items(list, new_items);
        if self.missing_or_null(element) {
            return Ok(None);
        }
        if !matched_any && let (Some(e), Data::Seq(items)) = (element, &mut self.nodes[list].data) {
            items.push(e);
        }
        Ok(element)
    }

    /// `RNode.ElementList(keys, values)`: the first element whose fields `keys` have exactly
    /// `values` (for scalar lists, key `""`: the first element with that text).
    fn element_list(&self, list: Id, keys: &[String], values: &[String]) -> RNode {
        if self.kind(list) != Kind::Seq {
            return None;
        }
        let first_key = keys.first().map(String::as_str).unwrap_or("");
        let first_value = values.first().map(String::as_str).unwrap_or("");
        let items = self.items(list);
        if first_key.is_empty() {
            return items.into_iter().find(|&e| self.text(e) == first_value);
        }
        if keys.len() != values.len() {
            return None;
        }
        items.into_iter().find(|&elem| {
            self.kind(elem) == Kind::Map
                && keys
                    .iter()
                    .zip(values)
                    .all(|(k, v)| self.field(elem, k).is_some_and(|f| self.text(f) == v))
        })
    }

    // ---- walk.Walker ------------------------------------------------------------------------

    /// `Walker.Walk`.
    fn walk(
        &mut self,
        src: [RNode; 2],
        schema: Option<&'s SchemaNode>,
        path: &mut Vec<String>,
    ) -> Result<RNode> {
        let schema = self.get_schema(&src, schema);
        let kind = src
            .iter()
            .flatten()
            .find(|&&id| !self.is_null(id))
            .map(|&id| self.kind(id));
        let Some(kind) = kind else {
            return self.walk_map(src, schema, path);
        };
        for &id in src.iter().flatten() {
            if !self.is_null(id) && self.kind(id) != kind {
                return Err(kind_error(kind, self.kind(id), path));
            }
        }
        match kind {
            Kind::Map => self.walk_map(src, schema, path),
            Kind::Seq if schema.is_some_and(SchemaNode::merges) => {
                self.walk_associative(src, schema, path)
            }
            Kind::Seq => self.visit_list(src, false, path),
            Kind::Scalar => Ok(src[1].or(src[0])),
        }
    }

    /// `Walker.GetSchema`: the given schema, else the schema of the first source that has an
    /// `apiVersion` and `kind` the schema knows.
    fn get_schema(
        &self,
        src: &[RNode; 2],
        schema: Option<&'s SchemaNode>,
    ) -> Option<&'s SchemaNode> {
        if schema.is_some() {
            return schema;
        }
        for &id in src.iter().flatten() {
            if self.is_null(id) {
                continue;
            }
            let meta = |name: &str| {
                self.field(id, name)
                    .filter(|&f| !self.nil_or_empty(f))
                    .map(|f| self.text(f))
                    .unwrap_or("")
            };
            let (api_version, kind) = (meta("apiVersion"), meta("kind"));
            if api_version.is_empty() || kind.is_empty() {
                continue;
            }
            if let Some(s) = self.schema.for_kind(api_version, kind) {
                return Some(s);
            }
        }
        None
    }

    /// `Walker.walkMap`.
    fn walk_map(
        &mut self,
        mut src: [RNode; 2],
        schema: Option<&'s SchemaNode>,
        path: &mut Vec<String>,
    ) -> Result<RNode> {
        let dest = self.visit_map(src, path)?;
        src[0] = dest;
        let Some(dest) = dest else {
            return Ok(None);
        };
        let mut names = BTreeSet::new();
        for &id in src.iter().flatten() {
            if let Data::Map(entries) = &self.nodes[id].data {
                names.extend(entries.iter().map(|(k, _)| k.clone()));
            }
        }
        for name in names {
            let field_schema = schema.and_then(|s| self.schema.field(s, &name));
            let values = src.map(|s| s.and_then(|id| self.field(id, &name)));
            path.push(name);
            let val = self.walk(values, field_schema, path)?;
            let name = path.pop().unwrap_or_default();
            self.set_field(dest, &name, val, path)?;
        }
        Ok(Some(dest))
    }

    /// `Walker.walkAssociativeSequence`.
    fn walk_associative(
        &mut self,
        mut src: [RNode; 2],
        schema: Option<&'s SchemaNode>,
        path: &[String],
    ) -> Result<RNode> {
        let dest = self.visit_list(src, true, path)?;
        src[0] = dest;
        let Some(dest) = dest else {
            return Ok(None);
        };
        // The walk only gets here with a schema whose strategy includes `merge`, so kyaml never
        // infers a key from the elements in a strategic merge.
        let keys = schema.map(|s| s.strategy_and_keys().1).unwrap_or_default();
        let values = self.element_values(&src, &keys);
        if !values.is_empty() || !keys.is_empty() {
            return self.set_associative_elements(values, &keys, dest, &src, schema, path);
        }
        let values = self.element_primitive_values(&src);
        self.set_associative_elements(values, &[String::new()], dest, &src, schema, path)
    }

    /// `Walker.elementValues`: the key values of every element, patch first, each once.
    fn element_values(&self, src: &[RNode; 2], keys: &[String]) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = Vec::new();
        for id in [src[1], src[0]].into_iter().flatten() {
            for elem in self.items(id) {
                let values: Vec<String> = keys
                    .iter()
                    .map(|k| match self.field(elem, k) {
                        Some(f) if !self.nil_or_empty(f) => self.text(f).to_string(),
                        _ => String::new(),
                    })
                    .collect();
                if values.is_empty() || out.contains(&values) {
                    continue;
                }
                out.push(values);
            }
        }
        out
    }

    /// `Walker.elementPrimitiveValues`: the distinct element texts, patch first.
    fn element_primitive_values(&self, src: &[RNode; 2]) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = Vec::new();
        for id in [src[1], src[0]].into_iter().flatten() {
            for item in self.items(id) {
                let text = self.text(item).to_string();
                if out.iter().any(|v| v[0] == text) {
                    continue;
                }
                out.push(vec![text]);
            }
        }
        out
    }

    /// `Walker.setAssociativeSequenceElements`.
    fn set_associative_elements(
        &mut self,
        mut values_list: Vec<Vec<String>>,
        keys: &[String],
        dest: Id,
        src: &[RNode; 2],
        schema: Option<&'s SchemaNode>,
        path: &[String],
    ) -> Result<RNode> {
        let items = self.push(Data::Seq(Vec::new()));
        let element_schema = schema.and_then(|s| self.schema.elements(s));
        if keys.len() > 1 {
            merge_values(&mut values_list);
        }
        let mut valid_keys: Vec<String> = Vec::new();
        let mut valid_values: Vec<String>;
        for values in &values_list {
            if values.is_empty() {
                continue;
            }
            (valid_keys, valid_values) = validate_keys(&values_list, values, keys);
            let (k, v) = validate_keys(
                std::slice::from_ref(&valid_values),
                &valid_values,
                &valid_keys,
            );
            let sources = src.map(|s| s.and_then(|id| self.element_list(id, &k, &v)));
            // kyaml walks list elements with a fresh walker (no field path).
            let mut element_path = Vec::new();
            let val = self.walk(sources, element_schema, &mut element_path)?;
            let mut deleted = false;
            for (i, key) in valid_keys.iter().enumerate() {
                if self.empty_map(val) {
                    self.element_setter(dest, None, &valid_keys, &valid_values, path)?;
                    deleted = true;
                } else if let Some(v) = val
                    && self.field(v, key).is_none()
                    && !valid_values[i].is_empty()
                {
                    self.set_key_field(v, key, &valid_values[i], path)?;
                }
            }
            if deleted {
                continue;
            }
            if let Some(v) = val {
                self.element_setter(items, Some(v), &valid_keys, &valid_values, path)?;
            }
        }
        let mut result = dest;
        if !values_list.is_empty() {
            result = self.append_list_node(items, dest, &valid_keys, path)?;
        }
        if self.is_null(result) {
            return Ok(None);
        }
        Ok(Some(result))
    }

    /// `val.Pipe(yaml.SetField(key, yaml.NewScalarRNode(text)))` on an element that lacks its
    /// key field.
    fn set_key_field(&mut self, elem: Id, key: &str, text: &str, path: &[String]) -> Result<()> {
        if key.is_empty() {
            // A scalar list: kyaml re-sets the scalar to the same text, keeping its style.
            return match self.kind(elem) {
                Kind::Scalar => Ok(()),
                other => Err(kind_error(Kind::Scalar, other, path)),
            };
        }
        let value = resolve_plain(text);
        let node = self.add(&value);
        self.set_field(elem, key, Some(node), path)
    }

    /// `appendListNode(dst, src, keys)`: puts the elements of `src` into `dst`, replacing the
    /// element with the same key values or appending.
    fn append_list_node(
        &mut self,
        dst: Id,
        src: Id,
        keys: &[String],
        path: &[String],
    ) -> Result<Id> {
        let Some(first_key) = keys.first() else {
            return Ok(dst);
        };
        for elem in self.items(src) {
            if first_key.is_empty() {
                let text = self.text(elem).to_string();
                self.element_setter(dst, Some(elem), &[String::new()], &[text], path)?;
                continue;
            }
            let mut values = Vec::new();
            for key in keys {
                match self.get_field(elem, key, path)? {
                    None => {
                        if let Data::Seq(items) = &mut self.nodes[dst].data {
                            items.push(elem);
                        }
                    }
                    Some(v) => values.push(self.text(v).to_string()),
                }
            }
            if keys.len() > 1 {
                self.element_setter(dst, None, keys, &values, path)?;
            }
            self.element_setter(dst, Some(elem), keys, &values, path)?;
        }
        Ok(dst)
    }

    /// `yaml.Get(name)` on a list element.
    fn get_field(&self, elem: Id, name: &str, path: &[String]) -> Result<RNode> {
        if self.is_null(elem) {
            return Ok(None);
        }
        if self.kind(elem) != Kind::Map {
            return Err(kind_error(Kind::Map, self.kind(elem), path));
        }
        Ok(self.field(elem, name))
    }

    // ---- merge2.Merger ------------------------------------------------------------------------

    /// `Merger.VisitMap`.
    fn visit_map(&mut self, src: [RNode; 2], path: &[String]) -> Result<RNode> {
        let [dest, origin] = src;
        if self.missing_or_null(dest) {
            let directive = self.directive(origin, path).unwrap_or(Directive::Unknown);
            if directive == Directive::Delete {
                return Ok(None);
            }
            // Keep an explicit null of the target the patch does not mention.
            if let (None, Some(d)) = (origin, dest)
                && !self.text(d).is_empty()
            {
                let text = self.text(d).to_string();
                let null = self.push(Data::Scalar {
                    null: true,
                    text,
                    value: Value::Null,
                });
                self.nodes[null].keep = true;
                return Ok(Some(null));
            }
            return Ok(origin);
        }
        if origin.is_some_and(|o| self.is_null(o)) {
            return Ok(None);
        }
        Ok(match self.directive(origin, path)? {
            Directive::Delete => None,
            Directive::Replace => origin,
            Directive::Merge | Directive::Unknown => dest,
        })
    }

    /// `Merger.VisitList`.
    fn visit_list(&mut self, src: [RNode; 2], associative: bool, path: &[String]) -> Result<RNode> {
        let [dest, origin] = src;
        if !associative {
            return Ok(origin.or(dest));
        }
        if self.missing_or_null(dest) {
            return Ok(origin);
        }
        if origin.is_some_and(|o| self.is_null(o)) {
            return Ok(None);
        }
        Ok(match self.directive(origin, path)? {
            Directive::Delete => None,
            Directive::Replace => origin,
            Directive::Merge | Directive::Unknown => dest,
        })
    }

    /// `determineSmpDirective`: reads and removes a `$patch` directive of the patch node.
    fn directive(&mut self, patch: RNode, path: &[String]) -> Result<Directive> {
        let Some(patch) = patch else {
            return Ok(Directive::Merge);
        };
        match self.kind(patch) {
            Kind::Map => {
                let Some(value) = self.field(patch, DIRECTIVE) else {
                    return Ok(Directive::Merge);
                };
                let directive = parse_directive(self.text(value))?;
                self.clear_field(patch, DIRECTIVE);
                Ok(directive)
            }
            Kind::Seq => {
                // The first mapping element with a `$patch` field; it is a directive for the
                // list only when it has nothing else.
                let holder = self
                    .items(patch)
                    .into_iter()
                    .find(|&e| self.kind(e) == Kind::Map && self.field(e, DIRECTIVE).is_some());
                let Some(holder) = holder else {
                    return Ok(Directive::Merge);
                };
                if self.map_len(holder) > 1 {
                    return Ok(Directive::Merge);
                }
                let text = self
                    .field(holder, DIRECTIVE)
                    .map(|v| self.text(v).to_string())
                    .unwrap_or_default();
                let directive = parse_directive(&text)?;
                self.element_setter(
                    patch,
                    None,
                    &[DIRECTIVE.to_string()],
                    std::slice::from_ref(&text),
                    path,
                )?;
                Ok(directive)
            }
            Kind::Scalar => Err(Error::msg(format!(
                "no implemented strategic merge patch strategy for '{}'",
                self.text(patch)
            ))),
        }
    }
}

fn parse_directive(text: &str) -> Result<Directive> {
    match text {
        "delete" => Ok(Directive::Delete),
        "replace" => Ok(Directive::Replace),
        "merge" => Ok(Directive::Merge),
        other => Err(Error::msg(format!("unknown patch strategy '{other}'"))),
    }
}

/// kyaml's `validateKeys`: drops the keys no element has a value for (all keys when none has).
fn validate_keys(
    values_list: &[Vec<String>],
    values: &[String],
    keys: &[String],
) -> (Vec<String>, Vec<String>) {
    let mut valid: BTreeSet<&str> = BTreeSet::new();
    for vs in values_list {
        for (i, v) in vs.iter().enumerate() {
            if !v.is_empty()
                && let Some(k) = keys.get(i)
            {
                valid.insert(k);
            }
        }
    }
    if valid.is_empty() {
        return (keys.to_vec(), values.to_vec());
    }
    let valid_keys = keys
        .iter()
        .filter(|k| valid.contains(k.as_str()))
        .cloned()
        .collect();
    let valid_values = values
        .iter()
        .enumerate()
        .filter(|(i, v)| !v.is_empty() || keys.get(*i).is_some_and(|k| valid.contains(k.as_str())))
        .map(|(_, v)| v.clone())
        .collect();
    (valid_keys, valid_values)
}

/// kyaml's `mergeValues`: key tuples that agree where both have a value (`containerPort` 80
/// with and without `protocol`) become the same tuple.
fn merge_values(list: &mut [Vec<String>]) {
    for i in 0..list.len() {
        let first = list[i].clone();
        for j in 0..list.len() {
            if let Some(merged) = match_values(&first, &list[j]) {
                list[i] = merged.clone();
                list[j] = merged;
            }
        }
    }
}

/// kyaml's `match`: at least one equal value, and the others differ only by being empty.
fn match_values(a: &[String], b: &[String]) -> Option<Vec<String>> {
    if a.len() != b.len() {
        return None;
    }
    let mut common = false;
    let mut out = Vec::with_capacity(a.len());
    for (x, y) in a.iter().zip(b) {
        if x == y {
            common = true;
            out.push(x.clone());
        } else if !x.is_empty() && !y.is_empty() {
            return None;
        } else if !x.is_empty() {
            out.push(x.clone());
        } else {
            out.push(y.clone());
        }
    }
    common.then_some(out)
}
