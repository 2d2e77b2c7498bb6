//! Command-line configuration, with Flux's flag names.

use weir_runtime::{
    flags::{Common, Flags},
    leader::ElectionOptions,
};

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
    /// `--leader-elect` and `--leader-election-*`: reconcile only while holding the Lease
    /// (default off; Lease `weir-apply-controller` in `POD_NAMESPACE` or `weir-system`).
    pub leader_election: ElectionOptions,
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
            leader_election: ElectionOptions::new(LEASE_NAME),
        }
    }
}

/// Default name of the leader-election Lease.
pub const LEASE_NAME: &str = "weir-apply-controller";

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
  --leader-elect                    reconcile only while holding the Lease (default off)
  --leader-election-namespace NS    namespace of the Lease (default $POD_NAMESPACE or weir-system)
  --leader-election-id NAME         name of the Lease (default weir-apply-controller)
  --leader-election-lease-duration DURATION  (default 15s)
  --leader-election-renew-deadline DURATION  (default 10s)
  --leader-election-retry-period DURATION    (default 2s)
";

impl Config {
    /// Parses `--flag value` and `--flag=value` arguments; the error is one readable line.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
        let mut config = Config::default();
        let mut flags = Flags::new(args, USAGE);
        while let Some(flag) = flags.next_flag()? {
            let common = Common {
                concurrent: &mut config.concurrent,
                leader_election: &mut config.leader_election,
            };
            if flags.common(&flag, common)? {
                continue;
            }
            match flag.name() {
                "--metrics-addr" => config.metrics_addr = flags.value(&flag)?,
                "--health-addr" => config.health_addr = flags.value(&flag)?,
                "--watch-label-selector" => config.watch_label_selector = Some(flags.value(&flag)?),
                "--no-cross-namespace-refs" => config.no_cross_namespace_refs = flag.boolean()?,
                "--default-service-account" => {
                    let name = flags.value(&flag)?;
                    config.default_service_account = (!name.is_empty()).then_some(name);
                }
                "--log-level" => config.log_level = flags.value(&flag)?,
                "--log-format" => config.log_format = flags.value(&flag)?,
                "--max-artifact-size" => config.max_artifact_bytes = flags.number(&flag)?,
                "--max-unpacked-size" => config.max_unpacked_bytes = flags.number(&flag)?,
                _ => return Err(flag.unknown()),
            }
        }
        config
            .leader_election
            .validate()
            .map_err(|e| e.to_string())?;
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
    fn leader_election_flags() {
        let off = parse(&[]).unwrap().leader_election;
        assert!(!off.enabled);
        assert_eq!(off.id, "weir-apply-controller");
        let on = parse(&[
            "--leader-elect",
            "--leader-election-namespace",
            "ops",
            "--leader-election-id=apply-a",
            "--leader-election-lease-duration=30s",
            "--leader-election-renew-deadline=20s",
            "--leader-election-retry-period=5s",
        ])
        .unwrap()
        .leader_election;
        assert!(on.enabled);
        assert_eq!((on.namespace.as_str(), on.id.as_str()), ("ops", "apply-a"));
        assert_eq!(on.lease_duration, std::time::Duration::from_secs(30));
        assert_eq!(on.renew_deadline, std::time::Duration::from_secs(20));
        assert_eq!(on.retry_period, std::time::Duration::from_secs(5));
        assert!(
            !parse(&["--leader-elect=false"])
                .unwrap()
                .leader_election
                .enabled
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
            (
                &["--leader-elect=1"][..],
                "--leader-elect: \"1\" is not true or false",
            ),
            (
                &["--leader-elect", "--leader-election-retry-period=9s"][..],
                "leader election: the renew deadline (10s) must be longer than 1.2 × the retry period (9s)",
            ),
            (
                &["--leader-election-lease-duration=soon"][..],
                "--leader-election-lease-duration: ",
            ),
        ] {
            let e = parse(args).unwrap_err();
            assert!(e.starts_with(wanted) && !e.contains('\n'), "{e}");
        }
    }
}
