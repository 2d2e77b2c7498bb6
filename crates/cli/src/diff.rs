//! `weir diff`: what the apply-controller would change, from a server-side dry-run.
//!
//! The objects get what the controller gives them (owner labels, the Apply's `targetNamespace`
//! as default namespace, the per-object `apply.weir.dev/ssa` policy) and are dry-run with the
//! controller's field manager (`weir-apply`). As in the engine, fields held only by `Update`
//! managers are drift (the dry-run is forced); fields another apply manager holds are a conflict
//! unless the Apply sets `force`. Drift is judged by [`weir_ssa::drift::has_drifted`], the
//! controller's own comparison. Secrets' values are masked.

use std::{collections::BTreeSet, io::Write};

use kube::{
    Api, Client,
    api::{DynamicObject, Patch, PatchParams},
};
use serde_json::Value;
use similar::TextDiff;
use weir_api::Apply;
use weir_ssa::{ApplyPolicy, Kinds, ObjectRef, Owner, drift::has_drifted};

use crate::{
    client::Cluster,
    error::{Error, Result},
    output::Palette,
    write_out,
};

/// What applying would do to one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The object does not exist yet.
    Create {
        /// The object.
        object: ObjectRef,
        /// The dry-run result.
        after: Value,
    },
    /// The live object differs from what applying would make of it.
    Update {
        /// The object.
        object: ObjectRef,
        /// The live object.
        before: Value,
        /// The dry-run result.
        after: Value,
    },
    /// In the inventory, no longer in the set: prune deletes it.
    Prune {
        /// The object.
        object: ObjectRef,
    },
}

/// Computes the changes of applying `objects` as Apply `apply` would.
pub async fn changes(
    client: &Client,
    apply: &Apply,
    objects: Vec<DynamicObject>,
) -> Result<Vec<Change>> {
    let apply_ns = apply.metadata.namespace.clone().unwrap_or_default();
    let apply_name = apply.metadata.name.clone().unwrap_or_default();
    let owner = Owner::new(apply_ns.clone(), apply_name.clone());
    let kinds = Kinds::new();
    kinds
        .ensure(client)
        .await
        .map_err(|e| Error::Api(format!("discovery: {e}")))?;
    let mut refreshed = false;
    let mut changes = Vec::new();
    let mut in_set = BTreeSet::new();
    for mut object in objects {
        let mut reference = ObjectRef::of(&object);
        let mut kind = kinds
            .lookup(&reference.group, &reference.version, &reference.kind)
            .await;
        if kind.is_none() && !refreshed {
            refreshed = true;
            kinds
                .refresh(client)
                .await
                .map_err(|e| Error::Api(format!("discovery: {e}")))?;
            kind = kinds
                .lookup(&reference.group, &reference.version, &reference.kind)
                .await;
        }
        let kind = kind.ok_or_else(|| {
            Error::Failed(format!("{reference}: the cluster does not serve this kind"))
        })?;
        if kind.namespaced {
            let ns = object
                .metadata
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .or_else(|| apply.spec.target_namespace.clone())
                .ok_or_else(|| {
                    Error::Failed(format!(
                        "{reference}: namespaced object without a namespace and the Apply has no targetNamespace"
                    ))
                })?;
            object.metadata.namespace = Some(ns.clone());
            reference.namespace = ns;
        } else {
            object.metadata.namespace = None;
            reference.namespace.clear();
        }
        in_set.insert(reference.id().to_id());
        let labels = object.metadata.labels.get_or_insert_with(Default::default);
        for (k, v) in owner.labels() {
            labels.insert(k.to_owned(), v.to_owned());
        }
        let policy = ApplyPolicy::of(&object.metadata.annotations.clone().unwrap_or_default());
        let api: Api<DynamicObject> = if kind.namespaced {
            Api::namespaced_with(client.clone(), &reference.namespace, &kind.resource)
        } else {
            Api::all_with(client.clone(), &kind.resource)
        };
        let live = api
            .get_opt(&reference.name)
            .await
            .map_err(|e| Error::kube(e, &reference.to_string()))?;
        let skip = match policy {
            ApplyPolicy::Ignore => true,
            ApplyPolicy::IfNotPresent => live.is_some(),
            ApplyPolicy::Default | ApplyPolicy::Merge => false,
        };
        if skip {
            continue;
        }
        let may_force = policy != ApplyPolicy::Merge;
        let after = dry_run(
            &api,
            &object,
            &reference,
            apply.spec.force && may_force,
            live.as_ref(),
            may_force,
        )
        .await?;
        let after = serde_json::to_value(&after).unwrap_or(Value::Null);
        match live {
            None => changes.push(Change::Create {
                object: reference,
                after,
            }),
            Some(live) => {
                let before = serde_json::to_value(&live).unwrap_or(Value::Null);
                if has_drifted(&before, &after) {
                    changes.push(Change::Update {
                        object: reference,
                        before,
                        after,
                    });
                }
            }
        }
    }
    if apply.spec.prune {
        let entries = apply
            .status
            .as_ref()
            .and_then(|s| s.inventory.as_ref())
            .map(|i| i.entries.clone())
            .unwrap_or_default();
        for entry in entries {
            if in_set.contains(&entry.id) {
                continue;
            }
            if let Some(object) = ObjectRef::from_entry(&entry) {
                changes.push(Change::Prune { object });
            }
        }
    }
    Ok(changes)
}

async fn dry_run(
    api: &Api<DynamicObject>,
    object: &DynamicObject,
    reference: &ObjectRef,
    force: bool,
    live: Option<&DynamicObject>,
    may_force: bool,
) -> Result<DynamicObject> {
    let attempt = |force: bool| {
        let mut params = PatchParams::apply(weir_ssa::FIELD_MANAGER).dry_run();
        params.force = force;
        async move {
            api.patch(&reference.name, &params, &Patch::Apply(object))
                .await
        }
    };
    match attempt(force).await {
        Ok(result) => Ok(result),
        // Fields held only by Update managers are drift, which the controller overrides.
        Err(kube::Error::Api(s))
            if s.code == 409
                && may_force
                && !force
                && live.is_some_and(|l| !applied_by_others(l)) =>
        {
            attempt(true).await.map_err(|e| refused(e, reference))
        }
        Err(e) => Err(refused(e, reference)),
    }
}

/// Whether another server-side-apply manager holds fields of `live`.
fn applied_by_others(live: &DynamicObject) -> bool {
    live.metadata.managed_fields.iter().flatten().any(|e| {
        e.operation.as_deref() == Some("Apply")
            && e.manager.as_deref() != Some(weir_ssa::FIELD_MANAGER)
    })
}

fn refused(e: kube::Error, reference: &ObjectRef) -> Error {
    match e {
        kube::Error::Api(s) => Error::Failed(format!(
            "{reference}: the dry-run was refused: {}",
            s.message
        )),
        other => Error::kube(other, &reference.to_string()),
    }
}

/// The object as the diff shows it: no bookkeeping fields, no status, Secret values masked.
fn display_form(value: &Value) -> Value {
    let mut v = value.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "managedFields",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "uid",
            "selfLink",
        ] {
            meta.remove(key);
        }
    }
    if let Some(obj) = v.as_object_mut() {
        obj.remove("status");
    }
    v
}

/// The annotation `kubectl apply` (client-side) stores the applied object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn is_secret(value: &Value) -> bool {
    value.get("kind").and_then(Value::as_str) == Some("Secret")
        && value.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

/// Masks the values of a Secret's `data` and `stringData`: `***` when both sides agree (or only
/// one side has the key), `*** (before)` / `*** (after)` when the value changes.
pub fn mask_secrets(before: &mut Value, after: &mut Value) {
    for field in ["data", "stringData"] {
        let old = before.get(field).cloned();
        let new = after.get(field).cloned();
        let mask = |side: &mut Value, other: &Option<Value>, label: &str| {
            if let Some(map) = side.get_mut(field).and_then(Value::as_object_mut) {
                for (k, v) in map.iter_mut() {
                    let same = other.as_ref().and_then(|o| o.get(k)).is_none_or(|o| o == v);
                    *v = Value::String(if same {
                        "***".into()
                    } else {
                        format!("*** ({label})")
                    });
                }
            }
        };
        mask(before, &new, "before");
        mask(after, &old, "after");
    }
}

fn yaml(value: &Value) -> String {
    if value.is_null() {
        return String::new();
    }
    serde_yaml::to_string(value).unwrap_or_default()
}

fn title(o: &ObjectRef) -> String {
    if o.namespace.is_empty() {
        format!("{}/{}", o.kind, o.name)
    } else {
        format!("{}/{}/{}", o.kind, o.namespace, o.name)
    }
}

/// The report: per object a `►` line, then a unified diff (3 lines of context) of the YAML.
pub fn render(changes: &[Change], palette: Palette) -> String {
    let mut text = String::new();
    for change in changes {
        let (object, verb, before, after) = match change {
            Change::Create { object, after } => (object, "created", Value::Null, after.clone()),
            Change::Update {
                object,
                before,
                after,
            } => (object, "drifted", before.clone(), after.clone()),
            Change::Prune { object } => {
                text.push_str(&format!(
                    "► {} {}\n",
                    title(object),
                    palette.red("deleted (pruned)")
                ));
                continue;
            }
        };
        let (mut before, mut after) = (display_form(&before), display_form(&after));
        if is_secret(&after) || is_secret(&before) {
            mask_secrets(&mut before, &mut after);
            // kubectl's client-side apply keeps the whole Secret, values included, here.
            for side in [&mut before, &mut after] {
                if let Some(a) = side
                    .pointer_mut("/metadata/annotations")
                    .and_then(Value::as_object_mut)
                    && let Some(v) = a.get_mut(LAST_APPLIED)
                {
                    *v = Value::String("***".into());
                }
            }
        }
        let (old, new) = (yaml(&before), yaml(&after));
        text.push_str(&format!("► {} {}\n", title(object), palette.yellow(verb)));
        let diff = TextDiff::from_lines(&old, &new);
        let unified = diff
            .unified_diff()
            .context_radius(3)
            .header("live", "after apply")
            .to_string();
        for line in unified.lines() {
            let coloured = if line.starts_with("+++") || line.starts_with("---") {
                palette.bold(line)
            } else if line.starts_with("@@") {
                palette.cyan(line)
            } else if line.starts_with('+') {
                palette.green(line)
            } else if line.starts_with('-') {
                palette.red(line)
            } else {
                line.to_owned()
            };
            text.push_str(&coloured);
            text.push('\n');
        }
    }
    text
}

/// Prints the changes of `objects` for Apply `name`; [`Error::Differences`] when there are any.
pub async fn run(
    cluster: &Cluster,
    apply: &Apply,
    objects: Vec<DynamicObject>,
    palette: Palette,
    out: &mut dyn Write,
) -> Result<()> {
    let changes = changes(&cluster.client, apply, objects).await?;
    write_out(out, &render(&changes, palette))?;
    if changes.is_empty() {
        Ok(())
    } else {
        Err(Error::Differences)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_never_show() {
        let mut before = serde_json::json!({"kind": "Secret", "apiVersion": "v1", "data": {"a": "MQ==", "b": "Mg=="}});
        let mut after = serde_json::json!({"kind": "Secret", "apiVersion": "v1", "data": {"a": "MQ==", "b": "Mw==", "c": "NA=="}});
        mask_secrets(&mut before, &mut after);
        assert_eq!(
            before["data"],
            serde_json::json!({"a": "***", "b": "*** (before)"})
        );
        assert_eq!(
            after["data"],
            serde_json::json!({"a": "***", "b": "*** (after)", "c": "***"})
        );
    }

    #[test]
    fn a_secret_applied_by_kubectl_shows_no_values_in_its_annotation() {
        let secret = |v: &str| {
            serde_json::json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "s", "annotations": {LAST_APPLIED: format!("{{\"data\":{{\"p\":\"{v}\"}}}}")}},
                "data": {"p": v}})
        };
        let change = Change::Update {
            object: ObjectRef {
                group: String::new(),
                version: "v1".into(),
                kind: "Secret".into(),
                namespace: "a".into(),
                name: "s".into(),
            },
            before: secret("c2VjcmV0MQ=="),
            after: secret("c2VjcmV0Mg=="),
        };
        let text = render(&[change], Palette::new(false));
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert!(
            text.contains("*** (before)") && text.contains("*** (after)"),
            "{text}"
        );
    }

    #[test]
    fn a_prune_is_one_line() {
        let object = ObjectRef {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: "a".into(),
            name: "b".into(),
        };
        assert_eq!(
            render(&[Change::Prune { object }], Palette::new(false)),
            "► ConfigMap/a/b deleted (pruned)\n"
        );
    }
}
