//! Go-style duration strings (`30s`, `5m`, `1h30m`, `1.5h`, `250ms`) as used by `spec.interval`
//! and `spec.timeout`, validated by the apiserver through the CRD schema and parsed here.

use std::{fmt, time::Duration};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The regular expression the CRD schema enforces (RE2 syntax, also valid in Rust's `regex`).
pub const PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// A duration written the Go way, e.g. `1m30s`. Serialized as the string the user wrote.
///
/// ```
/// use std::time::Duration;
/// use weir_api::GoDuration;
/// assert_eq!(GoDuration::from("1m30s").to_std().unwrap(), Duration::from_secs(90));
/// assert!(GoDuration::from("5 minutes").to_std().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GoDuration(pub String);

/// Why a string is not a Go-style duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {problem} (expected e.g. 30s, 5m, 1h30m; units ms, s, m, h)")]
pub struct DurationError {
    /// The rejected input.
    pub input: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl GoDuration {
    /// Parses the string into a [`Duration`].
    pub fn to_std(&self) -> Result<Duration, DurationError> {
        parse(&self.0)
    }

    /// The string as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for GoDuration {
    fn from(value: &str) -> Self {
        GoDuration(value.to_owned())
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for GoDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GoDuration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "maxLength": 64,
            "x-kubernetes-validations": [{
                "rule": format!("self.matches('{}')", PATTERN.replace('\\', "\\\\")),
                "message": "must be a duration such as 30s, 5m or 1h30m (units: ms, s, m, h)",
            }],
        })
    }
}

/// Parses a Go-style duration. Accepts a sequence of `<number><unit>` with units `ms`, `s`, `m`,
/// `h` and decimal fractions; rejects empty input, signs, other units and overflow.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let err = |problem| DurationError {
        input: input.to_owned(),
        problem,
    };
    if input.is_empty() {
        return Err(err("empty"));
    }
    let mut rest = input;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err("missing unit"))?;
        let (number, tail) = rest.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty()
            || (number.contains('.') && fraction.is_empty())
            || fraction.contains('.')
        {
            return Err(err("malformed number"));
        }
        let (unit_nanos, unit_len): (u128, usize) = if tail.starts_with("ms") {
            (1_000_000, 2)
        } else if tail.starts_with('s') {
            (1_000_000_000, 1)
        } else if tail.starts_with('m') {
            (60_000_000_000, 1)
        } else if tail.starts_with('h') {
            (3_600_000_000_000, 1)
        } else {
            return Err(err("unknown unit"));
        };
        let whole: u128 = whole.parse().map_err(|_| err("number too large"))?;
        let mut nanos = whole
            .checked_mul(unit_nanos)
            .ok_or_else(|| err("overflow"))?;
        let mut scale = unit_nanos;
        for digit in fraction.bytes().take(18) {
            scale /= 10;
            nanos += u128::from(digit - b'0') * scale;
        }
        let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| err("overflow"))?;
        let part = Duration::new(secs, (nanos % 1_000_000_000) as u32);
        total = total.checked_add(part).ok_or_else(|| err("overflow"))?;
        rest = &tail[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        for (s, d) in [
            ("0s", Duration::ZERO),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h30m", Duration::from_secs(5400)),
            ("1.5h", Duration::from_secs(5400)),
            ("250ms", Duration::from_millis(250)),
            ("1m0.5s", Duration::from_millis(60_500)),
            ("2h45m10s", Duration::from_secs(2 * 3600 + 45 * 60 + 10)),
        ] {
            assert_eq!(parse(s).unwrap(), d, "{s}");
        }
    }

    #[test]
    fn rejects_non_durations() {
        for s in [
            "",
            "5",
            "m",
            "5 m",
            "-5m",
            "5d",
            "1.m",
            ".5s",
            "1..5s",
            "5minutes",
            "99999999999999999999999h",
        ] {
            assert!(parse(s).is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn error_names_input_and_examples() {
        let e = parse("5 minutes").unwrap_err().to_string();
        assert!(e.contains("\"5 minutes\"") && e.contains("1h30m"), "{e}");
    }
}
