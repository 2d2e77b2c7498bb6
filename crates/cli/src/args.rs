//! The command line, parsed with clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use weir_kustomize::LoadRestrictor;

use crate::output::Format;

/// Printed after `weir --help`.
pub const AFTER_HELP: &str = "\
Commands at a glance:
  weir get sources|receivers|renders|applies|all [<name>] [-A] [-o table|yaml|json] [--watch]
  weir reconcile <kind> <name> [--with-source] [--timeout 5m]
  weir suspend|resume <kind> <name>
  weir build <dir> [--load-restrictor LoadRestrictionsRootOnly|LoadRestrictionsNone]
  weir build render <name>
  weir diff apply <name>   |   weir diff <dir> --apply <name>
  weir tree apply <name>
  weir events [<kind> <name>] [-A]
  weir check
  weir install [--components source,render,apply] [--export]
  weir version [--client]

Kinds: gitrepository (gitrepo, source), receiver (rcv), render (rnd), apply (apl).

Exit codes:
  0  ok (diff: no differences)
  1  the thing asked failed: build error, reconcile ended Ready=False, check failed;
     diff: differences found
  2  usage error: unknown command, flag or kind, bad value
  3  not found: the object, or its kind (CRDs not installed)
  4  cluster unreachable, bad kubeconfig, or credentials refused
  5  timeout (--timeout ran out)
  6  diff could not be computed (render, artifact download or dry-run failed)
Errors are one line on stderr starting with `error: `.";

/// weir — GitOps toolkit command line.
#[derive(Debug, Parser)]
#[command(
    name = "weir",
    version,
    about = "weir — GitOps toolkit command line",
    after_help = AFTER_HELP,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Cluster selection, valid before or after the command.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags every cluster command accepts.
#[derive(Debug, Args, Clone, Default)]
pub struct Global {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace (default: the context's, else `default`).
    #[arg(short = 'n', long, global = true, value_name = "NS")]
    pub namespace: Option<String>,
}

/// A weir command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List sources, renders, applies, or all of them with the pipeline they form.
    Get(GetArgs),
    /// Ask the controller to reconcile now and wait for the outcome.
    Reconcile(ReconcileArgs),
    /// Stop reconciling an object (spec.suspend=true).
    Suspend(TargetArgs),
    /// Resume reconciling an object (spec.suspend=false) and ask for a reconcile.
    Resume(TargetArgs),
    /// Render a directory like `kustomize build`, or what the cluster renders for a Render:
    /// `weir build <dir>` / `weir build render <name>`.
    Build(BuildArgs),
    /// Show what applying would change: `weir diff apply <name>` or `weir diff <dir> --apply <name>`.
    Diff(DiffArgs),
    /// Show an Apply's inventory as a tree with health: `weir tree apply <name>`.
    Tree(TreeArgs),
    /// List Kubernetes Events of weir objects, or of one object.
    Events(EventsArgs),
    /// Check the cluster: reachable, version, CRDs installed, controllers running and Ready.
    Check,
    /// Install weir (CRDs and controllers) or print the manifests with --export.
    Install(InstallArgs),
    /// Print the version of weir and of the cluster.
    Version(VersionArgs),
}

/// `weir get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// sources | receivers | renders | applies | all (or any kind name).
    pub what: String,
    /// Only this object.
    pub name: Option<String>,
    /// List across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: Format,
    /// After listing, print a row for every change until interrupted.
    #[arg(short = 'w', long)]
    pub watch: bool,
}

/// `<kind> <name>`.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// gitrepository (gitrepo), render (rnd) or apply (apl).
    pub kind: String,
    /// The object's name.
    pub name: String,
}

/// `weir reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The object.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Reconcile the source (sourceRef) first, and wait for it.
    #[arg(long)]
    pub with_source: bool,
    /// How long to wait for the controller (Go duration: 30s, 5m, 1h).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

/// `weir build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// `<dir>` (default `.`), or `render <name>`.
    #[arg(value_name = "dir")]
    pub target: Vec<String>,
    /// kustomize's load restrictor.
    #[arg(long, value_parser = parse_restrictor, default_value = "LoadRestrictionsRootOnly")]
    pub load_restrictor: LoadRestrictor,
    /// For `build render`: how long to wait for the artifact download.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

/// `weir diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// `apply <name>`, or a directory with `--apply <name>`.
    pub target: Vec<String>,
    /// The Apply whose objects the directory replaces.
    #[arg(long, value_name = "NAME")]
    pub apply: Option<String>,
    /// kustomize's load restrictor for `<dir>`.
    #[arg(long, value_parser = parse_restrictor, default_value = "LoadRestrictionsRootOnly")]
    pub load_restrictor: LoadRestrictor,
    /// How long to wait for the artifact download.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

/// `weir tree`.
#[derive(Debug, Args)]
pub struct TreeArgs {
    /// `apply`.
    pub kind: String,
    /// The Apply's name.
    pub name: String,
}

/// `weir events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events of this kind …
    pub kind: Option<String>,
    /// … and this object.
    pub name: Option<String>,
    /// Events in all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

/// `weir install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Which controllers (comma-separated): source, render, apply.
    #[arg(long, value_delimiter = ',', default_value = "source,render,apply")]
    pub components: Vec<String>,
    /// Print the manifests instead of applying them.
    #[arg(long)]
    pub export: bool,
    /// How long to wait for CRDs to become Established.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

/// `weir version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Only the CLI's version; do not contact the cluster.
    #[arg(long)]
    pub client: bool,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    weir_api::duration::parse(s).map_err(|e| e.to_string())
}

fn parse_restrictor(s: &str) -> Result<LoadRestrictor, String> {
    s.parse()
}
