//! `weir tree apply <name>`: an Apply's inventory as namespace → kind → name, with health.

use std::{collections::BTreeMap, io::Write};

use weir_ssa::{Engine, HealthStatus, HealthVerdict, ObjectRef, Owner};

use crate::{
    client::Cluster,
    error::Result,
    kinds::{self, APPLY},
    output::{self, Palette},
    write_out,
};

/// The label of cluster-scoped objects in the tree.
pub const CLUSTER_SCOPED: &str = "(cluster-scoped)";

/// Runs `weir tree apply <name>`.
pub async fn run(cluster: &Cluster, name: &str, out: &mut dyn Write) -> Result<()> {
    let ns = &cluster.namespace;
    let obj = APPLY.get(&cluster.client, ns, name).await?;
    let entries: Vec<weir_api::InventoryEntry> = obj
        .data
        .pointer("/status/inventory/entries")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let refs: Vec<ObjectRef> = entries.iter().filter_map(ObjectRef::from_entry).collect();
    let engine = Engine::new(cluster.client.clone(), Owner::new(ns.clone(), name));
    let verdicts = engine.check_health(&refs).await;
    let ready = kinds::condition(&obj, "Ready")
        .map(|c| format!("Ready={}", c.status))
        .unwrap_or_else(|| "Ready=Unknown".into());
    let root = format!("{} ({ready})", APPLY.display(name));
    write_out(
        out,
        &render(&root, &verdicts, Palette::new(output::colour_enabled())),
    )
}

fn status_text(v: &HealthVerdict, palette: Palette) -> String {
    let word = match v.status {
        HealthStatus::Current => palette.green("Current"),
        HealthStatus::InProgress => palette.yellow("InProgress"),
        HealthStatus::Failed => palette.red("Failed"),
        HealthStatus::Unknown => palette.yellow("Unknown"),
    };
    if v.message.is_empty() {
        word
    } else {
        format!("{word}: {}", output::truncate(&v.message, 100))
    }
}

/// The tree text: the root line, then namespaces (cluster-scoped first), kinds (`Kind.group`)
/// and names, each sorted, with box-drawing branches as `tree(1)` prints them.
pub fn render(root: &str, verdicts: &[(ObjectRef, HealthVerdict)], palette: Palette) -> String {
    let mut by_ns: BTreeMap<String, BTreeMap<String, Vec<(String, String)>>> = BTreeMap::new();
    for (r, v) in verdicts {
        let ns = if r.namespace.is_empty() {
            // Sorts before every namespace name (which start with a letter or digit).
            CLUSTER_SCOPED.to_owned()
        } else {
            r.namespace.clone()
        };
        let kind = if r.group.is_empty() {
            r.kind.clone()
        } else {
            format!("{}.{}", r.kind, r.group)
        };
        by_ns
            .entry(ns)
            .or_default()
            .entry(kind)
            .or_default()
            .push((r.name.clone(), status_text(v, palette)));
    }
    let mut text = format!("{root}\n");
    if by_ns.is_empty() {
        text.push_str("└── (empty inventory)\n");
        return text;
    }
    let ns_count = by_ns.len();
    for (i, (ns, kinds)) in by_ns.into_iter().enumerate() {
        let last_ns = i + 1 == ns_count;
        text.push_str(&format!("{}{ns}\n", branch(last_ns)));
        let ns_pad = pad(last_ns);
        let kind_count = kinds.len();
        for (j, (kind, mut names)) in kinds.into_iter().enumerate() {
            let last_kind = j + 1 == kind_count;
            text.push_str(&format!("{ns_pad}{}{kind}\n", branch(last_kind)));
            let kind_pad = format!("{ns_pad}{}", pad(last_kind));
            names.sort();
            let name_count = names.len();
            for (k, (name, status)) in names.into_iter().enumerate() {
                text.push_str(&format!(
                    "{kind_pad}{}{name}  {status}\n",
                    branch(k + 1 == name_count)
                ));
            }
        }
    }
    text
}

fn branch(last: bool) -> &'static str {
    if last { "└── " } else { "├── " }
}

fn pad(last: bool) -> &'static str {
    if last { "    " } else { "│   " }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(group: &str, kind: &str, ns: &str, name: &str) -> ObjectRef {
        ObjectRef {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn groups_by_namespace_then_kind() {
        let text = render(
            "apply/web (Ready=True)",
            &[
                (
                    r("apps", "Deployment", "web", "api"),
                    HealthVerdict::in_progress("Ready: 0/1"),
                ),
                (r("", "ConfigMap", "web", "b"), HealthVerdict::current("")),
                (r("", "ConfigMap", "web", "a"), HealthVerdict::current("")),
                (
                    r("", "Namespace", "", "web"),
                    HealthVerdict::current("Namespace is active"),
                ),
            ],
            Palette::new(false),
        );
        assert_eq!(
            text,
            "apply/web (Ready=True)\n\
             ├── (cluster-scoped)\n\
             │   └── Namespace\n\
             │       └── web  Current: Namespace is active\n\
             └── web\n    \
             ├── ConfigMap\n    \
             │   ├── a  Current\n    \
             │   └── b  Current\n    \
             └── Deployment.apps\n        \
             └── api  InProgress: Ready: 0/1\n"
        );
    }
}
