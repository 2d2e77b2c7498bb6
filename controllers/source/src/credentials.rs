//! Credentials from the Secret named by `spec.secretRef`.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use weir_api::conditions::reasons;
use weir_git::Credentials;

use crate::error::Failure;

/// Reads `name` in `namespace` into [`Credentials`]. Keys: `username`+`password`,
/// `bearerToken`, `identity`+`known_hosts`, `ca.crt`.
pub async fn load(
    client: &Client,
    namespace: &str,
    name: Option<&str>,
) -> Result<Credentials, Failure> {
    let Some(name) = name else {
        return Ok(Credentials::default());
    };
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|e| {
            Failure::transient(
                reasons::SECRET_NOT_FOUND,
                format!("reading Secret {namespace}/{name}: {e}"),
            )
        })?
        .ok_or_else(|| {
            Failure::transient(
                reasons::SECRET_NOT_FOUND,
                format!("Secret {namespace}/{name} not found"),
            )
        })?;
    from_secret(name, &secret)
}

/// The credentials a Secret holds; a half-filled pair is an error naming the missing key.
pub fn from_secret(name: &str, secret: &Secret) -> Result<Credentials, Failure> {
    let data = secret.data.clone().unwrap_or_default();
    let text = |key: &str| -> Result<Option<String>, Failure> {
        match data.get(key) {
            None => Ok(None),
            Some(v) => String::from_utf8(v.0.clone())
                .map(|s| Some(s.trim_end_matches(['\r', '\n']).to_owned()))
                .map_err(|_| {
                    Failure::transient(
                        reasons::AUTHENTICATION_FAILED,
                        format!("Secret {name}: key {key} is not UTF-8"),
                    )
                }),
        }
    };
    let bytes = |key: &str| data.get(key).map(|v| v.0.clone());
    let missing = |have: &str, lacks: &str| {
        Failure::transient(
            reasons::AUTHENTICATION_FAILED,
            format!("Secret {name} has {have} but no {lacks}"),
        )
    };
    let basic = match (text("username")?, text("password")?) {
        (Some(u), Some(p)) => Some((u, p)),
        (Some(_), None) => return Err(missing("username", "password")),
        (None, Some(_)) => return Err(missing("password", "username")),
        (None, None) => None,
    };
    let ssh_identity = bytes("identity");
    let ssh_known_hosts = bytes("known_hosts");
    if ssh_identity.is_some() && ssh_known_hosts.is_none() {
        return Err(missing(
            "identity",
            "known_hosts (host keys must be verified)",
        ));
    }
    Ok(Credentials {
        basic,
        bearer: text("bearerToken")?,
        ssh_identity,
        ssh_known_hosts,
        ca_pem: bytes("ca.crt"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn reads_each_kind_of_credential() {
        let c = from_secret(
            "s",
            &secret(&[("username", "bob"), ("password", "pw\n"), ("ca.crt", "PEM")]),
        )
        .unwrap();
        assert_eq!(c.basic, Some(("bob".into(), "pw".into())));
        assert_eq!(c.ca_pem.as_deref(), Some(&b"PEM"[..]));
        let c = from_secret("s", &secret(&[("bearerToken", "t")])).unwrap();
        assert_eq!(c.bearer.as_deref(), Some("t"));
        let c = from_secret(
            "s",
            &secret(&[("identity", "KEY"), ("known_hosts", "host ssh-ed25519 AAA")]),
        )
        .unwrap();
        assert!(c.ssh_identity.is_some() && c.ssh_known_hosts.is_some());
    }

    #[test]
    fn half_pairs_are_refused_with_the_missing_key() {
        for (pairs, lacks) in [
            (&[("username", "bob")][..], "no password"),
            (&[("password", "pw")][..], "no username"),
            (&[("identity", "KEY")][..], "no known_hosts"),
        ] {
            let f = from_secret("s", &secret(pairs)).unwrap_err();
            assert_eq!(f.reason, reasons::AUTHENTICATION_FAILED);
            assert!(f.message.contains(lacks), "{}", f.message);
        }
    }
}
