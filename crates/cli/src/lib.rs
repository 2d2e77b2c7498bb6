//! The `weir` command line.
//!
//! `weir build <dir>` renders a kustomization directory (or a plain directory of YAML files)
//! with weir's engine and prints the objects as `kustomize build` does. The render-controller
//! uses the same engine with the same settings, so what `weir build` prints is what a Render
//! publishes for the same directory (before its overlay and substitution). Like a Render, and
//! unlike `kustomize build`, a directory without a kustomization file builds every YAML file
//! below it.
//!
//! Errors are one line on stderr starting with `error: `; a build error exits 1, a usage error 2.
//!
//! ```
//! let mut out = Vec::new();
//! weir_cli::run(["--version".to_owned()], &mut out)?;
//! assert!(String::from_utf8(out)?.starts_with("weir "));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use weir_kustomize::{BuildOptions, LoadRestrictor};

/// Usage text, printed by `weir --help`.
pub const USAGE: &str = "\
weir — GitOps toolkit command line

usage:
  weir build <dir> [--load-restrictor LoadRestrictionsRootOnly|LoadRestrictionsNone]
      print the objects the kustomization in <dir> renders to, as `kustomize build` does
  weir --help | --version
";

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line is wrong (exit code 2).
    #[error("{0} (see weir --help)")]
    Usage(String),
    /// The directory to build does not exist or is not a directory.
    #[error("{path}: {reason}")]
    Input {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The render failed.
    #[error(transparent)]
    Build(#[from] weir_kustomize::Error),
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[source] std::io::Error),
}

impl Error {
    /// The process exit code: 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }

    /// `error: <message>` on one line (inner line breaks become spaces).
    pub fn one_line(&self) -> String {
        let message = self.to_string();
        format!(
            "error: {}",
            message.split_whitespace().collect::<Vec<_>>().join(" ")
        )
    }
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `weir build <dir>`.
    Build {
        /// The directory to render.
        dir: PathBuf,
        /// `--load-restrictor`.
        load_restrictor: LoadRestrictor,
    },
    /// `weir --help`.
    Help,
    /// `weir --version`.
    Version,
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, Error> {
    let mut args = args.into_iter();
    let Some(first) = args.next() else {
        return Err(Error::Usage("no command given".into()));
    };
    match first.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "-V" | "--version" | "version" => Ok(Command::Version),
        "build" => parse_build(args),
        other => Err(Error::Usage(format!("unknown command '{other}'"))),
    }
}

fn parse_build(mut args: impl Iterator<Item = String>) -> Result<Command, Error> {
    let mut dir = None;
    let mut load_restrictor = LoadRestrictor::default();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        if let Some(flag) = arg.strip_prefix("--") {
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (flag, None),
            };
            match name {
                "load-restrictor" | "load_restrictor" => {
                    let value = inline
                        .or_else(|| args.next())
                        .ok_or_else(|| Error::Usage("--load-restrictor needs a value".into()))?;
                    load_restrictor = value.parse().map_err(Error::Usage)?;
                }
                _ => return Err(Error::Usage(format!("unknown flag '--{name}'"))),
            }
        } else if arg.starts_with('-') && arg != "-" {
            return Err(Error::Usage(format!("unknown flag '{arg}'")));
        } else if dir.is_some() {
            return Err(Error::Usage(format!(
                "build takes one directory, got another: '{arg}'"
            )));
        } else {
            dir = Some(PathBuf::from(arg));
        }
    }
    // `kustomize build` with no argument builds the current directory.
    Ok(Command::Build {
        dir: dir.unwrap_or_else(|| PathBuf::from(".")),
        load_restrictor,
    })
}

/// Runs the command line `args` (without the program name), writing results to `out`.
pub fn run(args: impl IntoIterator<Item = String>, out: &mut dyn Write) -> Result<(), Error> {
    let text = match parse(args)? {
        Command::Help => USAGE.to_owned(),
        Command::Version => format!("weir {}\n", env!("CARGO_PKG_VERSION")),
        Command::Build {
            dir,
            load_restrictor,
        } => build(&dir, load_restrictor)?,
    };
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // `weir build . | head` closing the pipe early is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(Error::Output),
    }
}

/// Renders `dir` and returns the YAML stream.
pub fn build(dir: &Path, load_restrictor: LoadRestrictor) -> Result<String, Error> {
    let input = |reason: String| Error::Input {
        path: dir.display().to_string(),
        reason,
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(input("not a directory".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(input("no such directory".into()));
        }
        Err(e) => return Err(input(e.to_string())),
    }
    let options = BuildOptions {
        load_restrictor,
        plain_directories: true,
        ..BuildOptions::default()
    };
    Ok(weir_kustomize::build_yaml(dir, &options, None)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Command, Error> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn build_arguments_in_every_form() {
        assert_eq!(
            parse_args(&["build", "app", "--load-restrictor", "LoadRestrictionsNone"]).unwrap(),
            Command::Build {
                dir: "app".into(),
                load_restrictor: LoadRestrictor::None
            }
        );
        assert_eq!(
            parse_args(&["build", "--load-restrictor=LoadRestrictionsRootOnly", "app"]).unwrap(),
            Command::Build {
                dir: "app".into(),
                load_restrictor: LoadRestrictor::RootOnly
            }
        );
        assert_eq!(
            parse_args(&["build"]).unwrap(),
            Command::Build {
                dir: ".".into(),
                load_restrictor: LoadRestrictor::RootOnly
            }
        );
        assert_eq!(parse_args(&["--help"]).unwrap(), Command::Help);
        assert_eq!(parse_args(&["build", "-h"]).unwrap(), Command::Help);
        assert_eq!(parse_args(&["--version"]).unwrap(), Command::Version);
    }

    #[test]
    fn usage_errors_exit_2_with_one_line() {
        for (args, wanted) in [
            (&[][..], "no command given"),
            (&["deploy"][..], "unknown command 'deploy'"),
            (&["build", "--bogus"][..], "unknown flag '--bogus'"),
            (&["build", "a", "b"][..], "build takes one directory"),
            (
                &["build", "a", "--load-restrictor"][..],
                "--load-restrictor needs a value",
            ),
            (
                &["build", "a", "--load-restrictor", "sometimes"][..],
                "unknown load restrictor 'sometimes'",
            ),
        ] {
            let e = parse_args(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            let line = e.one_line();
            assert!(
                line.starts_with(&format!("error: {wanted}")) && !line.contains('\n'),
                "{args:?}: {line}"
            );
        }
    }

    #[test]
    fn a_missing_directory_is_one_clear_line() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = build(&missing, LoadRestrictor::RootOnly).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            e.one_line(),
            format!("error: {}: no such directory", missing.display())
        );
        let file = dir.path().join("file.yaml");
        std::fs::write(&file, "").unwrap();
        assert!(
            build(&file, LoadRestrictor::RootOnly)
                .unwrap_err()
                .one_line()
                .ends_with("not a directory")
        );
    }
}
