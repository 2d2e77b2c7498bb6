//! Command-line configuration, with Flux's flag names.

use std::{path::PathBuf, time::Duration};

use weir_artifact::Retention;
use weir_git::PackLimits;
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
    /// `--storage-path`: the artifact storage root.
    pub storage_path: PathBuf,
    /// `--storage-addr`: where the artifact server listens.
    pub storage_addr: String,
    /// `--storage-adv-addr`: the `host[:port]` consumers reach the artifact server at; default
    /// the address the server is bound to.
    pub storage_adv_addr: Option<String>,
    /// `--concurrent`: reconciles in parallel.
    pub concurrent: u16,
    /// `--watch-label-selector`: only reconcile objects with these labels.
    pub watch_label_selector: Option<String>,
    /// `--log-level`.
    pub log_level: String,
    /// `--log-format`: `json` or `text`.
    pub log_format: String,
    /// `--artifact-retention-records` and `--artifact-retention-ttl`.
    pub retention: Retention,
    /// `--max-file-size` and `--max-artifact-size` (bytes).
    pub limits: PackLimits,
    /// `--default-timeout`: Git operation timeout when `spec.timeout` is unset.
    pub default_timeout: Duration,
    /// `--webhook-addr`: where the Receiver webhooks are served; `None` (flag value `0` or
    /// empty) disables the webhook server. The flag defaults to [`DEFAULT_WEBHOOK_ADDR`];
    /// [`Config::default`] leaves the server off, so embedders (tests) opt in with an address.
    pub webhook_addr: Option<String>,
    /// `--no-cross-namespace-refs`: a Receiver may only trigger objects in its own namespace.
    pub no_cross_namespace_refs: bool,
    /// `--leader-elect` and `--leader-election-*`: reconcile only while holding the Lease
    /// (default off; Lease [`LEASE_NAME`] in `POD_NAMESPACE` or `weir-system`).
    pub leader_election: ElectionOptions,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            metrics_addr: ":8080".into(),
            health_addr: ":9440".into(),
            storage_path: PathBuf::from("/data"),
            storage_addr: ":9090".into(),
            storage_adv_addr: None,
            concurrent: 4,
            watch_label_selector: None,
            log_level: "info".into(),
            log_format: "json".into(),
            retention: Retention::default(),
            limits: PackLimits::default(),
            default_timeout: Duration::from_secs(60),
            webhook_addr: None,
            no_cross_namespace_refs: false,
            leader_election: ElectionOptions::new(LEASE_NAME),
        }
    }
}

/// Default name of the leader-election Lease.
pub const LEASE_NAME: &str = "weir-source-controller";

/// The default of `--webhook-addr`.
pub const DEFAULT_WEBHOOK_ADDR: &str = ":9292";

/// Usage text.
pub const USAGE: &str = "\
weir-source-controller [flags]
  --metrics-addr ADDR               /metrics listener (default :8080)
  --health-addr ADDR                /healthz and /readyz listener (default :9440)
  --storage-path DIR                artifact storage root (default /data)
  --storage-addr ADDR               artifact server listener (default :9090)
  --storage-adv-addr HOST[:PORT]    address consumers use to download artifacts
  --concurrent N                    parallel reconciles (default 4)
  --watch-label-selector SELECTOR   only reconcile matching objects
  --log-level LEVEL                 e.g. info, debug (default info)
  --log-format json|text            (default json)
  --artifact-retention-records N    superseded artifacts kept (default 2)
  --artifact-retention-ttl DURATION how long superseded artifacts are kept (default 1h)
  --max-file-size BYTES             largest file packed (default 32 MiB)
  --max-artifact-size BYTES         largest total packed (default 256 MiB)
  --default-timeout DURATION        Git timeout when spec.timeout is unset (default 60s)
  --webhook-addr ADDR               Receiver webhook listener (default :9292; 0 or empty disables)
  --no-cross-namespace-refs         Receivers may only trigger objects in their own namespace
  --leader-elect                    reconcile only while holding the Lease (default off)
  --leader-election-namespace NS    namespace of the Lease (default $POD_NAMESPACE or weir-system)
  --leader-election-id NAME         name of the Lease (default weir-source-controller)
  --leader-election-lease-duration DURATION  (default 15s)
  --leader-election-renew-deadline DURATION  (default 10s)
  --leader-election-retry-period DURATION    (default 2s)
";

impl Config {
    /// Parses `--flag value` and `--flag=value` arguments; the error is one readable line.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
        let mut config = Config {
            webhook_addr: Some(DEFAULT_WEBHOOK_ADDR.to_owned()),
            ..Config::default()
        };
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
                "--storage-path" => config.storage_path = PathBuf::from(flags.value(&flag)?),
                "--storage-addr" => config.storage_addr = flags.value(&flag)?,
                "--storage-adv-addr" => config.storage_adv_addr = Some(flags.value(&flag)?),
                "--watch-label-selector" => config.watch_label_selector = Some(flags.value(&flag)?),
                "--log-level" => config.log_level = flags.value(&flag)?,
                "--log-format" => config.log_format = flags.value(&flag)?,
                "--artifact-retention-records" => {
                    config.retention.max_history = flags.number(&flag)? as usize
                }
                "--artifact-retention-ttl" => config.retention.max_age = flags.duration(&flag)?,
                "--max-file-size" => config.limits.max_file_bytes = flags.number(&flag)?,
                "--max-artifact-size" => config.limits.max_total_bytes = flags.number(&flag)?,
                "--default-timeout" => config.default_timeout = flags.duration(&flag)?,
                "--no-cross-namespace-refs" => config.no_cross_namespace_refs = flag.boolean()?,
                "--webhook-addr" => {
                    let addr = flags.value(&flag)?;
                    config.webhook_addr = (!addr.is_empty() && addr != "0").then_some(addr);
                }
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
            "--storage-path",
            "/tmp/s",
            "--concurrent=8",
            "--artifact-retention-ttl",
            "10m",
            "--storage-adv-addr=svc.ns",
        ])
        .unwrap();
        assert_eq!(c.storage_path, PathBuf::from("/tmp/s"));
        assert_eq!(c.concurrent, 8);
        assert_eq!(c.retention.max_age, Duration::from_secs(600));
        assert_eq!(c.storage_adv_addr.as_deref(), Some("svc.ns"));
    }

    #[test]
    fn leader_election_flags() {
        let off = parse(&[]).unwrap().leader_election;
        assert!(!off.enabled);
        assert_eq!(off.id, LEASE_NAME);
        let on = parse(&[
            "--leader-elect",
            "--leader-election-namespace=ops",
            "--leader-election-id",
            "src",
            "--leader-election-lease-duration=30s",
        ])
        .unwrap()
        .leader_election;
        assert!(on.enabled);
        assert_eq!((on.namespace.as_str(), on.id.as_str()), ("ops", "src"));
        assert_eq!(on.lease_duration, Duration::from_secs(30));
        assert!(
            !parse(&["--leader-elect=false"])
                .unwrap()
                .leader_election
                .enabled
        );
        let e = parse(&["--leader-elect", "--leader-election-renew-deadline=20s"]).unwrap_err();
        assert!(!e.contains('\n'), "{e}");
        assert!(parse(&["--leader-elect=maybe"]).is_err());
    }

    #[test]
    fn webhook_flags() {
        assert_eq!(parse(&[]).unwrap().webhook_addr.as_deref(), Some(":9292"));
        assert_eq!(Config::default().webhook_addr, None);
        assert_eq!(
            parse(&["--webhook-addr", "127.0.0.1:0"])
                .unwrap()
                .webhook_addr
                .as_deref(),
            Some("127.0.0.1:0")
        );
        for off in [&["--webhook-addr", "0"][..], &["--webhook-addr="][..]] {
            assert_eq!(parse(off).unwrap().webhook_addr, None, "{off:?}");
        }
        assert!(!parse(&[]).unwrap().no_cross_namespace_refs);
        assert!(
            parse(&["--no-cross-namespace-refs"])
                .unwrap()
                .no_cross_namespace_refs
        );
        assert!(
            !parse(&["--no-cross-namespace-refs=false"])
                .unwrap()
                .no_cross_namespace_refs
        );
        assert!(parse(&["--no-cross-namespace-refs=maybe"]).is_err());
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
                &["--default-timeout", "5 minutes"][..],
                "--default-timeout: invalid duration",
            ),
            (&["--storage-path"][..], "flag --storage-path needs a value"),
        ] {
            let e = parse(args).unwrap_err();
            assert!(e.starts_with(wanted) && !e.contains('\n'), "{e}");
        }
    }
}
