//! Clients that act as an Apply's ServiceAccount.
//!
//! An Apply that names `spec.serviceAccountName` (or, without one, the controller's
//! `--default-service-account`) is applied, pruned, health-checked and deleted with the
//! permissions of `system:serviceaccount:<apply namespace>:<name>`: the controller's own
//! credentials plus the `Impersonate-User` header (kube's `auth_info.impersonate`). The
//! apiserver then enforces that account's RBAC, so an Apply can never do more than its account
//! may. Clients are built once per account and shared.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use kube::Client;

use crate::error::Error;

/// The username Kubernetes gives a ServiceAccount.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// The controller's own client and, built on demand, one impersonating client per account.
pub struct Clients {
    base: kube::Config,
    own: Client,
    default_service_account: Option<String>,
    impersonating: Mutex<HashMap<String, Client>>,
}

impl Clients {
    /// Clients derived from `base` (the controller's own configuration); Applies without a
    /// `serviceAccountName` impersonate `default_service_account` when it is set.
    pub fn new(base: kube::Config, default_service_account: Option<String>) -> Result<Self, Error> {
        let own = Client::try_from(base.clone()).map_err(|e| Error::Startup(e.to_string()))?;
        Ok(Clients {
            base,
            own,
            default_service_account,
            impersonating: Mutex::default(),
        })
    }

    /// The controller's own client.
    pub fn own(&self) -> Client {
        self.own.clone()
    }

    /// The account an Apply in `namespace` with `service_account_name` runs as, if any.
    pub fn account(&self, namespace: &str, service_account_name: Option<&str>) -> Option<String> {
        service_account_name
            .or(self.default_service_account.as_deref())
            .map(|name| service_account_user(namespace, name))
    }

    /// The client for an Apply in `namespace` with `service_account_name`.
    pub fn for_apply(
        &self,
        namespace: &str,
        service_account_name: Option<&str>,
    ) -> Result<Client, Error> {
        let Some(user) = self.account(namespace, service_account_name) else {
            return Ok(self.own.clone());
        };
        let mut cache = self
            .impersonating
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = cache.get(&user) {
            return Ok(client.clone());
        }
        let mut config = self.base.clone();
        config.auth_info.impersonate = Some(user.clone());
        config.auth_info.impersonate_groups = None;
        let client = Client::try_from(config).map_err(|e| Error::Impersonation(e.to_string()))?;
        cache.insert(user, client.clone());
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_usernames() {
        assert_eq!(
            service_account_user("team-a", "deployer"),
            "system:serviceaccount:team-a:deployer"
        );
    }
}
