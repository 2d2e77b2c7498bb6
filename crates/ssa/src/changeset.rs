//! What an apply or a prune did, per object.

use std::fmt;

use crate::manifest::ObjectRef;

/// What happened to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// The object did not exist and was created.
    Created,
    /// The object existed and differed (an edit of the set, or drift); it was applied.
    Configured,
    /// The object matched the set; nothing was written.
    Unchanged,
    /// An immutable field changed and `force` was set: the object was deleted and created again.
    Recreated,
    /// The object was pruned.
    Deleted,
    /// The object was left alone on purpose (`ssa: IfNotPresent` on an existing object,
    /// `ssa: Ignore`, `reconcile: disabled`, or a prune candidate that is not ours or has
    /// `prune: disabled`).
    Skipped,
}

impl Action {
    /// The lowercase name used in summaries (`created`, `configured`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Configured => "configured",
            Action::Unchanged => "unchanged",
            Action::Recreated => "recreated",
            Action::Deleted => "deleted",
            Action::Skipped => "skipped",
        }
    }

    /// Whether the action wrote to the cluster.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Action::Created | Action::Configured | Action::Recreated | Action::Deleted
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeSetEntry {
    /// The object.
    pub object: ObjectRef,
    /// What happened.
    pub action: Action,
}

/// The outcome of an apply or a prune, in the order the objects were handled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// One entry per object.
    pub entries: Vec<ChangeSetEntry>,
}

impl ChangeSet {
    /// The action recorded for `object` (matched by kind, group, namespace and name).
    pub fn action(&self, object: &ObjectRef) -> Option<Action> {
        let id = object.id();
        self.entries
            .iter()
            .find(|e| e.object.id() == id)
            .map(|e| e.action)
    }

    /// Whether any entry wrote to the cluster.
    pub fn has_writes(&self) -> bool {
        self.entries.iter().any(|e| e.action.is_write())
    }

    /// Appends another change set's entries.
    pub fn extend(&mut self, other: ChangeSet) {
        self.entries.extend(other.entries);
    }

    /// A one-line summary for Events and logs, e.g. `2 created, 5 unchanged`, listing counts in
    /// a fixed order and omitting zeros (`no objects` when empty).
    pub fn summary(&self) -> String {
        let order = [
            Action::Created,
            Action::Configured,
            Action::Recreated,
            Action::Deleted,
            Action::Skipped,
            Action::Unchanged,
        ];
        let parts: Vec<String> = order
            .iter()
            .filter_map(|a| {
                let n = self.entries.iter().filter(|e| e.action == *a).count();
                (n > 0).then(|| format!("{n} {a}"))
            })
            .collect();
        if parts.is_empty() {
            "no objects".into()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_in_fixed_order() {
        let o = |name: &str| ObjectRef {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: "ns".into(),
            name: name.into(),
        };
        let cs = ChangeSet {
            entries: vec![
                ChangeSetEntry {
                    object: o("a"),
                    action: Action::Unchanged,
                },
                ChangeSetEntry {
                    object: o("b"),
                    action: Action::Created,
                },
                ChangeSetEntry {
                    object: o("c"),
                    action: Action::Unchanged,
                },
            ],
        };
        assert_eq!(cs.summary(), "1 created, 2 unchanged");
        assert!(cs.has_writes());
        assert_eq!(cs.action(&o("c")), Some(Action::Unchanged));
        assert_eq!(ChangeSet::default().summary(), "no objects");
    }
}
