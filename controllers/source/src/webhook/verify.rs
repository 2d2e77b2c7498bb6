//! Verification of one webhook call, per Receiver type, without Kubernetes: headers, body and
//! token in, a [`Verdict`] out. Every comparison with secret material is constant-time.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use subtle::ConstantTimeEq;
use weir_api::receiver::ReceiverType;

/// The generic-hmac signature header: `<algorithm>=<hex>`.
pub const X_SIGNATURE: &str = "x-signature";
/// GitHub's HMAC-SHA256 signature header.
pub const X_HUB_SIGNATURE_256: &str = "x-hub-signature-256";
/// GitHub's legacy HMAC-SHA1 signature header, used only when the SHA-256 one is absent.
pub const X_HUB_SIGNATURE: &str = "x-hub-signature";
/// GitHub's event name header.
pub const X_GITHUB_EVENT: &str = "x-github-event";
/// GitLab's secret token header.
pub const X_GITLAB_TOKEN: &str = "x-gitlab-token";
/// GitLab's event name header.
pub const X_GITLAB_EVENT: &str = "x-gitlab-event";

/// The outcome of verifying a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Authentic and wanted: request the reconciles.
    Accept,
    /// Authentic but nothing to do (a GitHub `ping`, an event not in `spec.events`): answer
    /// `200` with this message.
    Ignore(String),
    /// Not authentic: answer `401`. The message names the header and the check, never the
    /// token or the signature.
    Reject(String),
}

/// Verifies a call to a Receiver of type `kind` whose token is `token`; `events` is
/// `spec.events` (empty: every event).
pub fn verify(
    kind: ReceiverType,
    headers: &HeaderMap,
    body: &[u8],
    token: &[u8],
    events: &[String],
) -> Verdict {
    match kind {
        // The path is derived from the token: reaching this Receiver is the proof.
        ReceiverType::Generic => Verdict::Accept,
        ReceiverType::GenericHmac => match header(headers, X_SIGNATURE) {
            None => Verdict::Reject("missing X-Signature header".into()),
            Some(value) => match check_signature(value, body, token) {
                Ok(()) => Verdict::Accept,
                Err(why) => Verdict::Reject(format!("X-Signature {why}")),
            },
        },
        ReceiverType::GitHub => {
            let checked = match (
                header(headers, X_HUB_SIGNATURE_256),
                header(headers, X_HUB_SIGNATURE),
            ) {
                (Some(value), _) => check_signature(value, body, token)
                    .map_err(|why| format!("X-Hub-Signature-256 {why}")),
                (None, Some(value)) => check_signature(value, body, token)
                    .map_err(|why| format!("X-Hub-Signature {why}")),
                (None, None) => Err("missing X-Hub-Signature-256 header".into()),
            };
            if let Err(why) = checked {
                return Verdict::Reject(why);
            }
            let event = header(headers, X_GITHUB_EVENT).unwrap_or_default();
            if event == "ping" {
                return Verdict::Ignore("pong".into());
            }
            filter(event, events)
        }
        ReceiverType::GitLab => match header(headers, X_GITLAB_TOKEN) {
            None => Verdict::Reject("missing X-Gitlab-Token header".into()),
            Some(value) if bool::from(value.as_bytes().ct_eq(token)) => {
                filter(header(headers, X_GITLAB_EVENT).unwrap_or_default(), events)
            }
            Some(_) => Verdict::Reject("X-Gitlab-Token does not match the receiver token".into()),
        },
    }
}

/// A header as text; a non-UTF-8 or repeated header counts as the first valid value.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Accepts `event` when `events` is empty or lists it (case-insensitively).
fn filter(event: &str, events: &[String]) -> Verdict {
    if events.is_empty() || events.iter().any(|e| e.eq_ignore_ascii_case(event)) {
        return Verdict::Accept;
    }
    let shown: String = event
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect();
    Verdict::Ignore(format!("event '{shown}' is not in spec.events; ignored"))
}

/// Checks `<algorithm>=<hex>` (sha1, sha256 or sha512) against the HMAC of `body` keyed with
/// `token`. The error says what is wrong in a few words.
fn check_signature(value: &str, body: &[u8], token: &[u8]) -> Result<(), &'static str> {
    let (algorithm, hex) = value.trim().split_once('=').ok_or("is malformed")?;
    let expected = decode_hex(hex).ok_or("is malformed")?;
    let matches = match algorithm {
        "sha1" => mac_matches::<Hmac<sha1::Sha1>>(token, body, &expected),
        "sha256" => mac_matches::<Hmac<sha2::Sha256>>(token, body, &expected),
        "sha512" => mac_matches::<Hmac<sha2::Sha512>>(token, body, &expected),
        _ => return Err("uses an unsupported algorithm (want sha1, sha256 or sha512)"),
    };
    if matches {
        Ok(())
    } else {
        Err("does not match the body")
    }
}

fn mac_matches<M: Mac + hmac::digest::KeyInit>(token: &[u8], body: &[u8], expected: &[u8]) -> bool {
    // HMAC takes keys of any length; the error branch is unreachable but never panics.
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(token) else {
        return false;
    };
    mac.update(body);
    // `verify_slice` compares in constant time and refuses a truncated tag.
    mac.verify_slice(expected).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || hex.len() > 256 {
        return None;
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    hex.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const TOKEN: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    // GitHub's documented test vector for validating webhook deliveries
    // (docs.github.com, "Validating webhook deliveries": secret "It's a Secret to Everybody",
    // payload "Hello, World!").
    const GITHUB_VECTOR: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn rejected(v: &Verdict) -> &str {
        match v {
            Verdict::Reject(m) => m,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn github_documented_vector_verifies() {
        let h = headers(&[
            (X_HUB_SIGNATURE_256, GITHUB_VECTOR),
            (X_GITHUB_EVENT, "push"),
        ]);
        assert_eq!(
            verify(ReceiverType::GitHub, &h, BODY, TOKEN, &[]),
            Verdict::Accept
        );
        // One changed byte of body, token or signature is refused.
        assert!(matches!(
            verify(ReceiverType::GitHub, &h, b"Hello, World?", TOKEN, &[]),
            Verdict::Reject(_)
        ));
        assert!(matches!(
            verify(ReceiverType::GitHub, &h, BODY, b"other", &[]),
            Verdict::Reject(_)
        ));
        let bad = GITHUB_VECTOR.replace("757", "758");
        let h = headers(&[(X_HUB_SIGNATURE_256, &bad)]);
        let why = verify(ReceiverType::GitHub, &h, BODY, TOKEN, &[]);
        assert_eq!(
            rejected(&why),
            "X-Hub-Signature-256 does not match the body"
        );
    }

    #[test]
    fn github_events_and_ping() {
        let with = |event: &str| {
            headers(&[
                (X_HUB_SIGNATURE_256, GITHUB_VECTOR),
                (X_GITHUB_EVENT, event),
            ])
        };
        let push = vec!["push".to_owned()];
        assert_eq!(
            verify(ReceiverType::GitHub, &with("ping"), BODY, TOKEN, &push),
            Verdict::Ignore("pong".into())
        );
        assert_eq!(
            verify(ReceiverType::GitHub, &with("Push"), BODY, TOKEN, &push),
            Verdict::Accept
        );
        assert!(matches!(
            verify(ReceiverType::GitHub, &with("issues"), BODY, TOKEN, &push),
            Verdict::Ignore(m) if m.contains("'issues'")
        ));
        // A ping with a bad signature is still refused.
        let h = headers(&[(X_HUB_SIGNATURE_256, "sha256=00"), (X_GITHUB_EVENT, "ping")]);
        assert!(matches!(
            verify(ReceiverType::GitHub, &h, BODY, TOKEN, &[]),
            Verdict::Reject(_)
        ));
        let why = verify(ReceiverType::GitHub, &HeaderMap::new(), BODY, TOKEN, &[]);
        assert_eq!(rejected(&why), "missing X-Hub-Signature-256 header");
        // The legacy SHA-1 header counts only when the SHA-256 one is absent.
        let sha1 = "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59";
        let h = headers(&[(X_HUB_SIGNATURE, sha1), (X_GITHUB_EVENT, "push")]);
        assert_eq!(
            verify(ReceiverType::GitHub, &h, BODY, TOKEN, &[]),
            Verdict::Accept
        );
        let h = headers(&[(X_HUB_SIGNATURE, sha1), (X_HUB_SIGNATURE_256, "sha256=00")]);
        assert!(matches!(
            verify(ReceiverType::GitHub, &h, BODY, TOKEN, &[]),
            Verdict::Reject(_)
        ));
    }

    #[test]
    fn generic_hmac_algorithms_and_malformed_values() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let (key, data) = (
            b"Jefe".as_slice(),
            b"what do ya want for nothing?".as_slice(),
        );
        for value in [
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            "sha512=164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
            // RFC 2202 test case 2 (HMAC-SHA1), same key and data.
            "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
        ] {
            let h = headers(&[(X_SIGNATURE, value)]);
            assert_eq!(
                verify(ReceiverType::GenericHmac, &h, data, key, &[]),
                Verdict::Accept,
                "{value}"
            );
        }
        for (value, why) in [
            ("sha256", "X-Signature is malformed"),
            ("sha256=zz", "X-Signature is malformed"),
            ("sha256=abc", "X-Signature is malformed"),
            ("md5=00", "X-Signature uses an unsupported algorithm"),
            ("sha256=5bdc", "X-Signature does not match the body"),
        ] {
            let h = headers(&[(X_SIGNATURE, value)]);
            let verdict = verify(ReceiverType::GenericHmac, &h, data, key, &[]);
            assert!(rejected(&verdict).starts_with(why), "{value}: {verdict:?}");
        }
        let why = verify(ReceiverType::GenericHmac, &HeaderMap::new(), data, key, &[]);
        assert_eq!(rejected(&why), "missing X-Signature header");
    }

    #[test]
    fn gitlab_token_and_events() {
        let h = headers(&[(X_GITLAB_TOKEN, "s3cret"), (X_GITLAB_EVENT, "Push Hook")]);
        let events = vec!["push hook".to_owned()];
        assert_eq!(
            verify(ReceiverType::GitLab, &h, b"", b"s3cret", &events),
            Verdict::Accept
        );
        assert!(matches!(
            verify(
                ReceiverType::GitLab,
                &h,
                b"",
                b"s3cret",
                &["Tag Push Hook".to_owned()]
            ),
            Verdict::Ignore(_)
        ));
        for token in [b"s3cre".as_slice(), b"s3cret2", b""] {
            let verdict = verify(ReceiverType::GitLab, &h, b"", token, &[]);
            let message = rejected(&verdict);
            assert!(!message.contains("s3cret"), "{message}");
        }
    }

    #[test]
    fn generic_accepts_anything_that_reached_it() {
        assert_eq!(
            verify(
                ReceiverType::Generic,
                &HeaderMap::new(),
                b"x",
                TOKEN,
                &["push".into()]
            ),
            Verdict::Accept
        );
    }
}
