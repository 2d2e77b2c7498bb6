//! The metric families of GUIDE §7. Labels are bounded: kind, result category, condition type and
//! status; never an object name.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    kind: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    kind: String,
    #[prometheus(flatten)]
    condition: ConditionPair,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionPair {
    r#type: String,
    status: String,
}

/// A controller's metrics and their registry. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    duration: Family<KindLabels, Histogram>,
    total: Family<ResultLabels, Counter>,
    condition: Family<ConditionLabels, Gauge>,
    /// Last Ready status per (kind, namespace/name), to keep the condition gauge a count.
    ready: Arc<Mutex<HashMap<(String, String), String>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers the families in a new registry.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("weir");
        let duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ])
        });
        let total = Family::<ResultLabels, Counter>::default();
        let condition = Family::<ConditionLabels, Gauge>::default();
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile",
            duration.clone(),
        );
        registry.register("reconcile", "Reconciles by outcome category", total.clone());
        registry.register(
            "condition",
            "Objects by condition type and status",
            condition.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            duration,
            total,
            condition,
            ready: Arc::default(),
        }
    }

    /// Records one reconcile of `kind` that took `elapsed` and ended in `result` (`success` or
    /// an error category).
    pub fn reconciled(&self, kind: &str, result: &str, elapsed: Duration) {
        self.duration
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
        self.total
            .get_or_create(&ResultLabels {
                kind: kind.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Records the Ready status of one object (`None` when it was deleted).
    pub fn ready_status(&self, kind: &str, key: &str, status: Option<&str>) {
        let Ok(mut ready) = self.ready.lock() else {
            return;
        };
        let gauge = |status: &str| {
            self.condition.get_or_create(&ConditionLabels {
                kind: kind.to_owned(),
                condition: ConditionPair {
                    r#type: "Ready".into(),
                    status: status.to_owned(),
                },
            })
        };
        let id = (kind.to_owned(), key.to_owned());
        let previous = match status {
            Some(s) => ready.insert(id, s.to_owned()),
            None => ready.remove(&id),
        };
        if previous.as_deref() == status {
            return;
        }
        if let Some(old) = previous {
            gauge(&old).dec();
        }
        if let Some(new) = status {
            gauge(new).inc();
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_guide_families_with_bounded_labels() {
        let m = Metrics::new();
        m.reconciled("GitRepository", "success", Duration::from_millis(20));
        m.reconciled(
            "GitRepository",
            "AuthenticationFailed",
            Duration::from_millis(5),
        );
        m.ready_status("GitRepository", "ns/a", Some("True"));
        m.ready_status("GitRepository", "ns/b", Some("True"));
        m.ready_status("GitRepository", "ns/b", Some("False"));
        m.ready_status("GitRepository", "ns/a", None);
        let text = m.encode();
        assert!(
            text.contains(r#"weir_reconcile_total{kind="GitRepository",result="success"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"weir_reconcile_total{kind="GitRepository",result="AuthenticationFailed"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"weir_reconcile_duration_seconds_count{kind="GitRepository"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"weir_condition{kind="GitRepository",type="Ready",status="True"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"weir_condition{kind="GitRepository",type="Ready",status="False"} 1"#),
            "{text}"
        );
        assert!(
            !text.contains("ns/"),
            "object names must not be labels: {text}"
        );
    }
}
