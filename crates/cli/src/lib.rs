//! The `weir` command line.
//!
//! Commands (see `weir --help`):
//!
//! - `weir get sources|renders|applies|all [<name>] [-A] [-o table|yaml|json] [--watch]` — tables
//!   of name, ready, status message, revision, suspended, age; `all` adds the pipeline view
//!   (source → render → apply chains).
//! - `weir reconcile <kind> <name> [--with-source] [--timeout 5m]` — sets
//!   `reconcile.weir.dev/requestedAt`, waits until the controller handled it and prints the
//!   outcome (revision, change set).
//! - `weir suspend|resume <kind> <name>`.
//! - `weir build <dir>` — renders a kustomization directory (or a plain directory of YAML) with
//!   weir's engine exactly as `kustomize build`; the render-controller uses the same engine with
//!   the same settings.
//! - `weir build render <name>` — what the cluster renders for a Render: the render-controller's
//!   library on the source artifact its status names (downloaded, digest-checked).
//! - `weir diff apply <name>` / `weir diff <dir> --apply <name>` — a server-side dry-run as the
//!   apply-controller does it; a unified diff per changed object, objects to be pruned listed,
//!   Secret values masked; exit 0 no differences, 1 differences, > 1 error.
//! - `weir tree apply <name>`, `weir events [<kind> <name>]`, `weir check`, `weir version`.
//! - `weir install [--components source,render,apply] [--export]` — the `config/` manifests,
//!   embedded at build time, built with weir's engine and server-side applied (field manager
//!   `weir-install`), or printed.
//!
//! Cluster flags as kubectl: `--kubeconfig`, `--context`, `-n/--namespace`; colour only when
//! stdout is a terminal and `NO_COLOR` is unset.
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | ok (`diff`: no differences) |
//! | 1 | the thing asked failed: build error, reconcile ended `Ready=False`, check failed; `diff`: differences found |
//! | 2 | usage error: unknown command, flag or kind, bad value |
//! | 3 | not found: the object, or its kind (CRDs not installed) |
//! | 4 | cluster unreachable, bad kubeconfig, credentials refused |
//! | 5 | timeout (`--timeout` ran out) |
//! | 6 | `diff` could not be computed (render, artifact download or dry-run failed) |
//!
//! Every error is one line on stderr starting with `error: ` ([`Error::one_line`]).
//!
//! ```
//! let mut out = Vec::new();
//! weir_cli::run(["--version".to_owned()], &mut out)?;
//! assert!(String::from_utf8(out)?.starts_with("weir "));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::{io::Write, path::Path};

use clap::Parser;
use weir_kustomize::{BuildOptions, LoadRestrictor};

pub mod args;
pub mod artifact;
pub mod build_render;
pub mod check;
pub mod client;
pub mod diff;
pub mod error;
pub mod events;
pub mod get;
pub mod install;
pub mod kinds;
pub mod output;
pub mod reconcile;
pub mod tree;

pub use error::{Error, Result, exit};

use args::{Cli, Command};
use client::ClusterOptions;
use kinds::WeirKind;

/// Runs the command line `args` (without the program name), writing results to `out`.
pub fn run(args: impl IntoIterator<Item = String>, out: &mut dyn Write) -> Result<()> {
    let argv = std::iter::once("weir".to_owned()).chain(args);
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    write_out(out, &e.to_string())
                }
                _ => Err(Error::Usage(clap_message(&e))),
            };
        }
    };
    let Some(command) = cli.command else {
        return Err(Error::Usage("no command given".into()));
    };
    // Commands that need no cluster run without a runtime.
    match &command {
        Command::Build(b) if !is_build_render(&b.target) => {
            let dir = match b.target.as_slice() {
                [] => ".",
                [dir] => dir.as_str(),
                [_, extra, ..] => {
                    return Err(Error::Usage(format!(
                        "build takes one directory, got another: '{extra}'"
                    )));
                }
            };
            return write_out(out, &build(Path::new(dir), b.load_restrictor)?);
        }
        Command::Version(v) if v.client => return write_out(out, &client_version()),
        Command::Install(a) if a.export => {
            return write_out(out, &install::manifests(&a.components)?);
        }
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Failed(format!("starting the async runtime: {e}")))?;
    let options = ClusterOptions {
        kubeconfig: cli.global.kubeconfig,
        context: cli.global.context,
        namespace: cli.global.namespace,
    };
    runtime.block_on(run_cluster(command, options, out))
}

fn is_build_render(target: &[String]) -> bool {
    matches!(target, [first, _] if first == "render")
}

async fn run_cluster(command: Command, options: ClusterOptions, out: &mut dyn Write) -> Result<()> {
    // Usage errors come before any connection attempt.
    let target_kind = |kind: &str| WeirKind::parse(kind);
    match command {
        Command::Get(a) => {
            if !a.what.eq_ignore_ascii_case("all") {
                WeirKind::parse(&a.what)?;
            }
            get::run(&options.connect().await?, &a, out).await
        }
        Command::Reconcile(a) => {
            let kind = target_kind(&a.target.kind)?;
            if kind == &kinds::RECEIVER {
                // A Receiver reports no handled request to wait for.
                return Err(Error::Usage(
                    "receivers are not reconciled on request: reconcile the objects they list"
                        .into(),
                ));
            }
            let cluster = options.connect().await?;
            reconcile::reconcile(
                &cluster,
                kind,
                &a.target.name,
                a.with_source,
                a.timeout,
                out,
            )
            .await
        }
        Command::Suspend(a) => {
            let kind = target_kind(&a.kind)?;
            reconcile::set_suspend(&options.connect().await?, kind, &a.name, true, out).await
        }
        Command::Resume(a) => {
            let kind = target_kind(&a.kind)?;
            reconcile::set_suspend(&options.connect().await?, kind, &a.name, false, out).await
        }
        Command::Events(a) => {
            let target = match (&a.kind, &a.name) {
                (Some(k), Some(n)) => Some((target_kind(k)?, n.as_str())),
                (None, None) => None,
                (Some(_), None) | (None, Some(_)) => {
                    return Err(Error::Usage(
                        "events takes a kind and a name, or neither".into(),
                    ));
                }
            };
            events::run(&options.connect().await?, target, a.all_namespaces, out).await
        }
        Command::Tree(a) => {
            let kind = target_kind(&a.kind)?;
            if kind.kind != "Apply" {
                return Err(Error::Usage(format!(
                    "tree shows an Apply's inventory; {} has none (use weir tree apply <name>)",
                    kind.kind
                )));
            }
            tree::run(&options.connect().await?, &a.name, out).await
        }
        Command::Check => check::run(&options.connect().await?, out).await,
        Command::Version(_) => {
            write_out(out, &client_version())?;
            let cluster = options.connect().await?;
            let info = cluster
                .client
                .apiserver_version()
                .await
                .map_err(|e| Error::kube(e, "version"))?;
            write_out(out, &format!("kubernetes {}\n", info.git_version))
        }
        Command::Build(b) => {
            // Only `build render <name>` gets here.
            let name = b.target.get(1).cloned().unwrap_or_default();
            build_render::run(&options.connect().await?, &name, b.timeout, out).await
        }
        Command::Diff(d) => run_diff(d, options, out).await.map_err(|e| match e {
            Error::Failed(m) | Error::Api(m) => Error::DiffFailed(m),
            e @ (Error::Input { .. } | Error::Build(_)) => Error::DiffFailed(e.to_string()),
            other => other,
        }),
        Command::Install(a) => {
            let yaml = install::manifests(&a.components)?;
            install::apply(&options.connect().await?, &yaml, a.timeout, out).await
        }
    }
}

async fn run_diff(d: args::DiffArgs, options: ClusterOptions, out: &mut dyn Write) -> Result<()> {
    let palette = output::Palette::new(output::colour_enabled());
    match (d.target.as_slice(), d.apply) {
        ([kind, name], None) if WeirKind::parse(kind)?.kind == "Apply" => {
            let cluster = options.connect().await?;
            let (apply, objects) = build_render::apply_objects(&cluster, name, d.timeout).await?;
            diff::run(&cluster, &apply, objects, palette, out).await
        }
        ([dir], Some(name)) => {
            // Build first: a broken checkout fails before any request.
            let yaml = build(Path::new(dir), d.load_restrictor)?;
            let objects = weir_ssa::parse_manifests(&yaml)
                .map_err(|e| Error::Failed(format!("{dir}: {e}")))?;
            let cluster = options.connect().await?;
            let apply = build_render::apply_object(&cluster, &name).await?;
            diff::run(&cluster, &apply, objects, palette, out).await
        }
        _ => Err(Error::Usage(
            "diff takes `apply <name>`, or `<dir> --apply <name>`".into(),
        )),
    }
}

fn client_version() -> String {
    format!("weir {}\n", env!("CARGO_PKG_VERSION"))
}

/// clap's message on one line, without its `error: ` prefix and usage block.
fn clap_message(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let first = rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid command line");
    let first = first.strip_prefix("error: ").unwrap_or(first).trim();
    // clap quotes the invalid value's own explanation after "for '--flag <X>': ".
    first.to_owned()
}

/// Writes `text` to `out`; a closed pipe (`weir get all | head`) is not an error.
pub fn write_out(out: &mut dyn Write, text: &str) -> Result<()> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(Error::Output),
    }
}

/// Renders `dir` and returns the YAML stream.
pub fn build(dir: &Path, load_restrictor: LoadRestrictor) -> Result<String> {
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

    fn run_args(args: &[&str]) -> Result<String> {
        let mut out = Vec::new();
        run(args.iter().map(|s| s.to_string()), &mut out)?;
        Ok(String::from_utf8(out).unwrap_or_default())
    }

    #[test]
    fn usage_errors_exit_2_with_one_line() {
        for (args, wanted) in [
            (&[][..], "no command given"),
            (&["deploy"][..], "unrecognized subcommand 'deploy'"),
            (&["build", "--bogus"][..], "unexpected argument '--bogus'"),
            (&["build", "a", "b"][..], "build takes one directory"),
            (
                &["build", "a", "--load-restrictor"][..],
                "a value is required",
            ),
            (
                &["build", "a", "--load-restrictor", "sometimes"][..],
                "unknown load restrictor 'sometimes'",
            ),
            (&["get", "deployments"][..], "unknown kind 'deployments'"),
            (
                &["reconcile", "apply"][..],
                "required arguments were not provided",
            ),
            (
                &["reconcile", "apply", "x", "--timeout", "soon"][..],
                "invalid duration",
            ),
            (&["get", "all", "-o", "xml"][..], "invalid value 'xml'"),
            (
                &["reconcile", "rcv", "hook"][..],
                "receivers are not reconciled",
            ),
        ] {
            let e = run_args(args).unwrap_err();
            assert_eq!(e.exit_code(), exit::USAGE, "{args:?}: {e}");
            let line = e.one_line();
            assert!(
                line.contains(wanted)
                    && !line.contains('\n')
                    && line.ends_with("(see weir --help)"),
                "{args:?}: {line}"
            );
        }
    }

    #[test]
    fn help_lists_commands_and_exit_codes() {
        let help = run_args(&["--help"]).unwrap();
        for wanted in [
            "weir build <dir>",
            "weir get sources",
            "Exit codes:",
            "5  timeout",
        ] {
            assert!(help.contains(wanted), "{wanted}: {help}");
        }
        assert!(
            run_args(&["version", "--client"])
                .unwrap()
                .starts_with("weir 0.")
        );
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
