//! Command-line configuration, with Flux's flag names.

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// `--metrics-addr`: where `/metrics` is served.
    pub metrics_addr: String,
    /// `--health-addr`: where `/healthz` and `/readyz` are served.
    pub health_addr: String,
    /// `--concurrent`: Applies reconciled in parallel.
    pub concurrent: u16,
    /// `--watch-label-selector`: only reconcile Applies with these labels (sources are watched
    /// whatever their labels, as in Flux).
    pub watch_label_selector: Option<String>,
    /// `--no-cross-namespace-refs`: refuse a `sourceRef` or `dependsOn` in another namespace.
    pub no_cross_namespace_refs: bool,
    /// `--default-service-account`: the ServiceAccount (in the Apply's namespace) impersonated
    /// when an Apply names none; without it such Applies write with the controller's own
    /// identity.
    pub default_service_account: Option<String>,
    /// `--log-level`.
    pub log_level: String,
    /// `--log-format`: `json` or `text`.
    pub log_format: String,
    /// `--max-artifact-size`: largest source artifact downloaded (bytes).
    pub max_artifact_bytes: u64,
    /// `--max-unpacked-size`: most bytes a source artifact may unpack to.
    pub max_unpacked_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            metrics_addr: ":8080".into(),
            health_addr: ":9440".into(),
            concurrent: 4,
            watch_label_selector: None,
            no_cross_namespace_refs: false,
            default_service_account: None,
            log_level: "info".into(),
            log_format: "json".into(),
            max_artifact_bytes: 256 << 20,
            max_unpacked_bytes: 512 << 20,
        }
    }
}

/// Usage text.
pub const USAGE: &str = "\
weir-apply-controller [flags]
  --metrics-addr ADDR               /metrics listener (default :8080)
  --health-addr ADDR                /healthz and /readyz listener (default :9440)
  --concurrent N                    parallel applies (default 4)
  --watch-label-selector SELECTOR   only reconcile matching Applies
  --no-cross-namespace-refs         refuse sourceRefs and dependsOn in other namespaces
  --default-service-account NAME    ServiceAccount impersonated when an Apply names none
  --log-level LEVEL                 e.g. info, debug (default info)
  --log-format json|text            (default json)
  --max-artifact-size BYTES         largest source artifact downloaded (default 256 MiB)
  --max-unpacked-size BYTES         most bytes a source artifact may unpack to (default 512 MiB)
";

impl Config {
    /// Parses `--flag value` and `--flag=value` arguments; the error is one readable line.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
        let mut config = Config::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            if flag == "--help" || flag == "-h" {
                return Err(USAGE.to_owned());
            }
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("flag {flag} needs a value"))
            };
            let number = |v: String| {
                v.parse::<u64>()
                    .map_err(|_| format!("{flag}: {v:?} is not a number"))
            };
            match flag.as_str() {
                "--metrics-addr" => config.metrics_addr = value()?,
                "--health-addr" => config.health_addr = value()?,
                "--concurrent" => {
                    config.concurrent = u16::try_from(number(value()?)?)
                        .map_err(|_| "--concurrent: too large".to_owned())?
                        .max(1)
                }
                "--watch-label-selector" => config.watch_label_selector = Some(value()?),
                "--no-cross-namespace-refs" => {
                    config.no_cross_namespace_refs = match inline.as_deref() {
                        None | Some("true") => true,
                        Some("false") => false,
                        Some(other) => {
                            return Err(format!("{flag}: {other:?} is not true or false"));
                        }
                    }
                }
                "--default-service-account" => {
                    let name = value()?;
                    config.default_service_account = (!name.is_empty()).then_some(name);
                }
                "--log-level" => config.log_level = value()?,
                "--log-format" => config.log_format = value()?,
                "--max-artifact-size" => config.max_artifact_bytes = number(value()?)?,
                "--max-unpacked-size" => config.max_unpacked_bytes = number(value()?)?,
                other => return Err(format!("unknown flag {other} (see --help)")),
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        Config::from_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_in_both_forms() {
        let c = parse(&[
            "--concurrent=8",
            "--default-service-account",
            "deployer",
            "--no-cross-namespace-refs",
            "--watch-label-selector=team=a",
            "--max-artifact-size=1024",
        ])
        .unwrap();
        assert_eq!(c.concurrent, 8);
        assert_eq!(c.default_service_account.as_deref(), Some("deployer"));
        assert!(c.no_cross_namespace_refs);
        assert_eq!(c.watch_label_selector.as_deref(), Some("team=a"));
        assert_eq!(c.max_artifact_bytes, 1024);
        let d = parse(&[]).unwrap();
        assert!(!d.no_cross_namespace_refs);
        assert_eq!(d.default_service_account, None);
        assert_eq!(
            parse(&["--default-service-account="])
                .unwrap()
                .default_service_account,
            None
        );
    }

    #[test]
    fn errors_are_one_readable_line() {
        for (args, wanted) in [
            (&["--bogus"][..], "unknown flag --bogus"),
            (
                &["--concurrent", "many"][..],
                "--concurrent: \"many\" is not a number",
            ),
            (
                &["--no-cross-namespace-refs=maybe"][..],
                "--no-cross-namespace-refs: \"maybe\" is not true or false",
            ),
            (
                &["--default-service-account"][..],
                "flag --default-service-account needs a value",
            ),
        ] {
            let e = parse(args).unwrap_err();
            assert!(e.starts_with(wanted) && !e.contains('\n'), "{e}");
        }
    }
}
