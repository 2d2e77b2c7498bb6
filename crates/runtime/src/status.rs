//! Status updates through server-side apply.

use kube::{
    Api, Resource,
    api::{Patch, PatchParams},
};
use serde::{Serialize, de::DeserializeOwned};
use weir_api::conditions::{self, Condition};

use crate::Result;

/// A status type whose conditions can be compared ignoring timestamps.
pub trait ConditionedStatus: Serialize + Clone {
    /// The status's conditions.
    fn conditions(&self) -> &[Condition];
}

macro_rules! conditioned {
    ($($t:ty),*) => {$(
        impl ConditionedStatus for $t {
            fn conditions(&self) -> &[Condition] {
                &self.conditions
            }
        }
    )*};
}
conditioned!(
    weir_api::GitRepositoryStatus,
    weir_api::RenderStatus,
    weir_api::ApplyStatus,
    weir_api::ReceiverStatus
);

/// Whether `new` says anything `old` does not, ignoring condition timestamps.
pub fn status_changed<S: ConditionedStatus>(old: Option<&S>, new: &S) -> bool {
    let Some(old) = old else {
        return true;
    };
    if !conditions::equal_ignoring_time(old.conditions(), new.conditions()) {
        return true;
    }
    let strip = |s: &S| {
        let mut v = serde_json::to_value(s).unwrap_or_default();
        if let Some(map) = v.as_object_mut() {
            map.remove("conditions");
        }
        v
    };
    strip(old) != strip(new)
}

/// Writes `new` as the status of `obj` with server-side apply under `field_manager`, unless it
/// equals `old` but for timestamps. Returns whether a patch was sent.
pub async fn apply_status<K, S>(
    api: &Api<K>,
    obj: &K,
    field_manager: &str,
    old: Option<&S>,
    new: &S,
) -> Result<bool>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: ConditionedStatus,
{
    if !status_changed(old, new) {
        return Ok(false);
    }
    let name = obj.meta().name.clone().unwrap_or_default();
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": new,
    });
    api.patch_status(
        &name,
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
    use weir_api::{
        GitRepositoryStatus,
        conditions::{ConditionStatus, reasons, types},
    };

    fn status(message: &str, at: i64) -> GitRepositoryStatus {
        let mut s = GitRepositoryStatus {
            observed_generation: Some(1),
            ..Default::default()
        };
        conditions::set(
            &mut s.conditions,
            types::READY,
            ConditionStatus::True,
            reasons::SUCCEEDED,
            message,
            Some(1),
            Time(Timestamp::from_second(at).unwrap()),
        );
        s
    }

    #[test]
    fn timestamps_alone_are_no_change() {
        assert!(!status_changed(Some(&status("ok", 1)), &status("ok", 2)));
        assert!(status_changed(Some(&status("ok", 1)), &status("new", 1)));
        assert!(status_changed(None, &status("ok", 1)));
        let mut other = status("ok", 1);
        other.last_handled_reconcile_at = Some("x".into());
        assert!(status_changed(Some(&status("ok", 1)), &other));
    }
}
