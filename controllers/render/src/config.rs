//! Command-line configuration, with Flux's flag names.

use std::path::PathBuf;

use weir_artifact::Retention;
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
    /// `--concurrent`: renders in parallel.
    pub concurrent: u16,
    /// `--watch-label-selector`: only reconcile Renders with these labels (sources are watched
    /// whatever their labels, as in Flux).
    pub watch_label_selector: Option<String>,
    /// `--no-cross-namespace-refs`: refuse a `sourceRef` in another namespace (Flux's flag; off by
    /// default, so cross-namespace references are allowed unless a platform turns this on).
    pub no_cross_namespace_refs: bool,
    /// `--log-level`.
    pub log_level: String,
    /// `--log-format`: `json` or `text`.
    pub log_format: String,
    /// `--artifact-retention-records` and `--artifact-retention-ttl`.
    pub retention: Retention,
    /// `--max-source-size`: largest source artifact downloaded (bytes).
    pub max_source_bytes: u64,
    /// `--max-unpacked-size`: most bytes a source artifact may unpack to.
    pub max_unpacked_bytes: u64,
    /// `--leader-elect` and `--leader-election-*`: reconcile only while holding the Lease
    /// (default off; Lease `weir-render-controller` in `POD_NAMESPACE` or `weir-system`).
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
            no_cross_namespace_refs: false,
            log_level: "info".into(),
            log_format: "json".into(),
            retention: Retention::default(),
            max_source_bytes: 256 << 20,
            max_unpacked_bytes: 512 << 20,
            leader_election: ElectionOptions::new(LEASE_NAME),
        }
    }
}

/// Default name of the leader-election Lease.
pub const LEASE_NAME: &str = "weir-render-controller";

/// Usage text.
pub const USAGE: &str = "\
weir-render-controller [flags]
  --metrics-addr ADDR               /metrics listener (default :8080)
  --health-addr ADDR                /healthz and /readyz listener (default :9440)
  --storage-path DIR                artifact storage root (default /data)
  --storage-addr ADDR               artifact server listener (default :9090)
  --storage-adv-addr HOST[:PORT]    address consumers use to download artifacts
  --concurrent N                    parallel renders (default 4)
  --watch-label-selector SELECTOR   only reconcile matching Renders
  --no-cross-namespace-refs         refuse sourceRefs to other namespaces
  --log-level LEVEL                 e.g. info, debug (default info)
  --log-format json|text            (default json)
  --artifact-retention-records N    superseded artifacts kept (default 2)
  --artifact-retention-ttl DURATION how long superseded artifacts are kept (default 1h)
  --max-source-size BYTES           largest source artifact downloaded (default 256 MiB)
  --max-unpacked-size BYTES         most bytes a source artifact may unpack to (default 512 MiB)
  --leader-elect                    reconcile only while holding the Lease (default off)
  --leader-election-namespace NS    namespace of the Lease (default $POD_NAMESPACE or weir-system)
  --leader-election-id NAME         name of the Lease (default weir-render-controller)
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
                "--storage-path" => config.storage_path = PathBuf::from(flags.value(&flag)?),
                "--storage-addr" => config.storage_addr = flags.value(&flag)?,
                "--storage-adv-addr" => config.storage_adv_addr = Some(flags.value(&flag)?),
                "--watch-label-selector" => config.watch_label_selector = Some(flags.value(&flag)?),
                "--no-cross-namespace-refs" => config.no_cross_namespace_refs = flag.boolean()?,
                "--log-level" => config.log_level = flags.value(&flag)?,
                "--log-format" => config.log_format = flags.value(&flag)?,
                "--artifact-retention-records" => {
                    config.retention.max_history = flags.number(&flag)? as usize
                }
                "--artifact-retention-ttl" => config.retention.max_age = flags.duration(&flag)?,
                "--max-source-size" => config.max_source_bytes = flags.number(&flag)?,
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
    use std::time::Duration;

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
            "--no-cross-namespace-refs",
            "--max-source-size=1024",
        ])
        .unwrap();
        assert_eq!(c.storage_path, PathBuf::from("/tmp/s"));
        assert_eq!(c.concurrent, 8);
        assert_eq!(c.retention.max_age, Duration::from_secs(600));
        assert!(c.no_cross_namespace_refs);
        assert_eq!(c.max_source_bytes, 1024);
        assert!(!parse(&[]).unwrap().no_cross_namespace_refs);
        assert!(
            !parse(&["--no-cross-namespace-refs=false"])
                .unwrap()
                .no_cross_namespace_refs
        );
    }

    #[test]
    fn leader_election_flags() {
        let off = parse(&[]).unwrap().leader_election;
        assert!(!off.enabled);
        assert_eq!(off.id, "weir-render-controller");
        assert_eq!(off.lease_duration, Duration::from_secs(15));
        let on = parse(&[
            "--leader-elect",
            "--leader-election-namespace=ops",
            "--leader-election-id",
            "render-a",
            "--leader-election-lease-duration=30s",
            "--leader-election-renew-deadline=20s",
            "--leader-election-retry-period=5s",
        ])
        .unwrap()
        .leader_election;
        assert!(on.enabled);
        assert_eq!((on.namespace.as_str(), on.id.as_str()), ("ops", "render-a"));
        assert_eq!(on.lease_duration, Duration::from_secs(30));
        assert_eq!(on.renew_deadline, Duration::from_secs(20));
        assert_eq!(on.retry_period, Duration::from_secs(5));
        assert!(
            !parse(&["--leader-elect=false"])
                .unwrap()
                .leader_election
                .enabled
        );
        // Durations are only checked when electing.
        assert!(parse(&["--leader-election-renew-deadline=1h"]).is_ok());
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
            (&["--storage-path"][..], "flag --storage-path needs a value"),
            (
                &["--leader-elect=yes"][..],
                "--leader-elect: \"yes\" is not true or false",
            ),
            (
                &["--leader-elect", "--leader-election-renew-deadline=20s"][..],
                "leader election: the lease duration (15s) must be longer than the renew deadline (20s)",
            ),
            (
                &["--leader-elect", "--leader-election-id="][..],
                "leader election: the lease name is empty",
            ),
        ] {
            let e = parse(args).unwrap_err();
            assert!(e.starts_with(wanted) && !e.contains('\n'), "{e}");
        }
    }
}
