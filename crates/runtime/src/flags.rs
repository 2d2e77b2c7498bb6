//! The command-line conventions every weir controller shares: `--flag value` and
//! `--flag=value`, boolean flags that take no separate value (`--flag`, `--flag=true|false`),
//! Go-style durations, `--help`, and errors that are one readable line.
//!
//! A controller's `Config::from_args` walks [`Flags`] and matches flag names; the flags that
//! mean the same in every controller (`--concurrent`, the `--leader-elect*` family) are parsed
//! here once.

use std::time::Duration;

use crate::leader::ElectionOptions;

/// The arguments of a command line, read one flag at a time.
pub struct Flags<I: Iterator<Item = String>> {
    args: I,
    usage: &'static str,
}

/// One flag: its name (`--storage-path`) and, for `--flag=value`, the inline value.
#[derive(Debug)]
pub struct Flag {
    name: String,
    inline: Option<String>,
}

impl<I: Iterator<Item = String>> Flags<I> {
    /// Reads `args`; `--help`/`-h` turns into an error carrying `usage`.
    pub fn new(args: impl IntoIterator<Item = String, IntoIter = I>, usage: &'static str) -> Self {
        Flags {
            args: args.into_iter(),
            usage,
        }
    }

    /// The next flag, `Ok(None)` at the end, or `Err(usage)` for `--help`.
    pub fn next_flag(&mut self) -> Result<Option<Flag>, String> {
        let Some(arg) = self.args.next() else {
            return Ok(None);
        };
        let (name, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        if name == "--help" || name == "-h" {
            return Err(self.usage.to_owned());
        }
        Ok(Some(Flag { name, inline }))
    }

    /// The flag's value: inline, or the next argument.
    pub fn value(&mut self, flag: &Flag) -> Result<String, String> {
        flag.inline
            .clone()
            .or_else(|| self.args.next())
            .ok_or_else(|| format!("flag {} needs a value", flag.name))
    }

    /// The flag's value as a non-negative number.
    pub fn number(&mut self, flag: &Flag) -> Result<u64, String> {
        let v = self.value(flag)?;
        v.parse::<u64>()
            .map_err(|_| format!("{}: {v:?} is not a number", flag.name))
    }

    /// The flag's value as a Go-style duration (`30s`, `1m30s`).
    pub fn duration(&mut self, flag: &Flag) -> Result<Duration, String> {
        let v = self.value(flag)?;
        weir_api::duration::parse(&v).map_err(|e| format!("{}: {e}", flag.name))
    }

    /// Parses the flags every controller shares into `common`; `Ok(false)` when `flag` is not
    /// one of them.
    pub fn common(&mut self, flag: &Flag, common: Common<'_>) -> Result<bool, String> {
        let election = common.leader_election;
        match flag.name() {
            "--concurrent" => {
                *common.concurrent = u16::try_from(self.number(flag)?)
                    .map_err(|_| "--concurrent: too large".to_owned())?
                    .max(1)
            }
            "--leader-elect" => election.enabled = flag.boolean()?,
            "--leader-election-namespace" => election.namespace = self.value(flag)?,
            "--leader-election-id" => election.id = self.value(flag)?,
            "--leader-election-lease-duration" => election.lease_duration = self.duration(flag)?,
            "--leader-election-renew-deadline" => election.renew_deadline = self.duration(flag)?,
            "--leader-election-retry-period" => election.retry_period = self.duration(flag)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The settings [`Flags::common`] fills in.
pub struct Common<'a> {
    /// `--concurrent` (at least 1).
    pub concurrent: &'a mut u16,
    /// `--leader-elect` and `--leader-election-*`.
    pub leader_election: &'a mut ElectionOptions,
}

impl Flag {
    /// The flag's name, e.g. `--storage-path`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A boolean flag: `--flag` or `--flag=true` is true, `--flag=false` false.
    pub fn boolean(&self) -> Result<bool, String> {
        match self.inline.as_deref() {
            None | Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(format!("{}: {other:?} is not true or false", self.name)),
        }
    }

    /// The error for a flag the controller does not know.
    pub fn unknown(&self) -> String {
        format!("unknown flag {} (see --help)", self.name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn flags(args: &[&str]) -> Flags<std::vec::IntoIter<String>> {
        Flags::new(
            args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "usage",
        )
    }

    #[test]
    fn values_inline_or_next_and_errors_are_one_line() {
        let mut f = flags(&["--a=1", "--b", "2", "--t", "1m30s", "--c"]);
        let a = f.next_flag().unwrap().unwrap();
        assert_eq!(f.number(&a).unwrap(), 1);
        let b = f.next_flag().unwrap().unwrap();
        assert_eq!(f.value(&b).unwrap(), "2");
        let t = f.next_flag().unwrap().unwrap();
        assert_eq!(f.duration(&t).unwrap(), Duration::from_secs(90));
        let c = f.next_flag().unwrap().unwrap();
        assert_eq!(f.value(&c).unwrap_err(), "flag --c needs a value");
        assert!(f.next_flag().unwrap().is_none());

        let mut f = flags(&["--n", "many", "--d=5 minutes", "--help"]);
        let n = f.next_flag().unwrap().unwrap();
        assert_eq!(f.number(&n).unwrap_err(), "--n: \"many\" is not a number");
        let d = f.next_flag().unwrap().unwrap();
        assert!(f.duration(&d).unwrap_err().starts_with("--d: "));
        assert_eq!(f.next_flag().unwrap_err(), "usage");
    }

    #[test]
    fn booleans_take_no_separate_value() {
        let mut f = flags(&["--x", "--y=false", "--z=maybe"]);
        assert!(f.next_flag().unwrap().unwrap().boolean().unwrap());
        assert!(!f.next_flag().unwrap().unwrap().boolean().unwrap());
        assert_eq!(
            f.next_flag().unwrap().unwrap().boolean().unwrap_err(),
            "--z: \"maybe\" is not true or false"
        );
    }

    #[test]
    fn common_flags() {
        let mut concurrent = 4;
        let mut election = ElectionOptions::new("lease");
        let mut f = flags(&[
            "--concurrent=0",
            "--leader-elect",
            "--leader-election-id",
            "other",
            "--leader-election-retry-period=1s",
            "--storage-path",
        ]);
        while let Some(flag) = f.next_flag().unwrap() {
            let known = f
                .common(
                    &flag,
                    Common {
                        concurrent: &mut concurrent,
                        leader_election: &mut election,
                    },
                )
                .unwrap();
            assert_eq!(known, flag.name() != "--storage-path", "{flag:?}");
        }
        assert_eq!(concurrent, 1, "at least one worker");
        assert!(election.enabled);
        assert_eq!(election.id, "other");
        assert_eq!(election.retry_period, Duration::from_secs(1));
        let mut f = flags(&["--concurrent=70000"]);
        let flag = f.next_flag().unwrap().unwrap();
        let common = Common {
            concurrent: &mut concurrent,
            leader_election: &mut election,
        };
        assert_eq!(
            f.common(&flag, common).unwrap_err(),
            "--concurrent: too large"
        );
    }
}
