//! `cargo xtask conformance <corpus-dir>`: runs the kustomize conformance corpus through
//! weir's render engine (in process) and prints `N passed, M failed` plus the failing cases.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use weir_kustomize::{BuildOptions, LoadRestrictor};

/// Outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Byte-identical output, or an error where one was expected.
    Pass,
    /// Same documents, different text or order (not a pass).
    Semantic,
    /// Anything else, with a short reason.
    Fail(String),
}

/// A corpus case.
pub struct Case {
    /// Directory name.
    pub name: String,
    /// `input/<build_dir>`.
    pub build_dir: PathBuf,
    /// Whether the build must fail.
    pub expect_error: bool,
    /// `--load-restrictor LoadRestrictionsNone` given.
    pub restrictions_none: bool,
    /// expected.yaml (success cases).
    pub expected: Option<String>,
}

/// Reads every case of a corpus directory (sorted by name).
pub fn load_cases(corpus: &Path) -> Result<Vec<Case>> {
    let cases_dir = corpus.join("cases");
    let mut names: Vec<String> = std::fs::read_dir(&cases_dir)
        .with_context(|| format!("reading {}", cases_dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    let mut cases = Vec::new();
    for name in names {
        let dir = cases_dir.join(&name);
        let meta: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join("case.json")).with_context(|| format!("{name}/case.json"))?,
        )
        .with_context(|| format!("{name}/case.json"))?;
        let build_dir = dir
            .join("input")
            .join(meta["build_dir"].as_str().unwrap_or("."));
        let expect_error = meta["expect_error"].as_bool().unwrap_or(false);
        let restrictions_none = meta["build_args"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some("LoadRestrictionsNone")));
        let expected = std::fs::read_to_string(dir.join("expected.yaml")).ok();
        cases.push(Case {
            name,
            build_dir,
            expect_error,
            restrictions_none,
            expected,
        });
    }
    Ok(cases)
}

/// Build options for a case.
pub fn options(case: &Case) -> BuildOptions {
    BuildOptions {
        load_restrictor: if case.restrictions_none {
            LoadRestrictor::None
        } else {
            LoadRestrictor::RootOnly
        },
        ..BuildOptions::default()
    }
}

/// Runs one case.
pub fn run_case(case: &Case) -> (Outcome, String) {
    let result = weir_kustomize::build_yaml(&case.build_dir, &options(case), None);
    match (case.expect_error, result) {
        (true, Err(e)) => (Outcome::Pass, e.to_string()),
        (true, Ok(_)) => (
            Outcome::Fail("built, but kustomize fails".into()),
            String::new(),
        ),
        (false, Err(e)) => (Outcome::Fail(format!("error: {e}")), e.to_string()),
        (false, Ok(out)) => {
            let expected = case.expected.clone().unwrap_or_default();
            if out == expected {
                (Outcome::Pass, out)
            } else if semantically_equal(&out, &expected) {
                (Outcome::Semantic, out)
            } else {
                (Outcome::Fail("different output".into()), out)
            }
        }
    }
}

fn semantically_equal(a: &str, b: &str) -> bool {
    let parse = |s: &str| {
        weir_kustomize::yaml::parse_documents(s).map(|mut d| {
            let mut keys: Vec<String> = d.iter().map(|v| format!("{:?}", v.to_json())).collect();
            keys.sort();
            d.clear();
            keys
        })
    };
    matches!((parse(a), parse(b)), (Ok(x), Ok(y)) if x == y)
}

/// The command.
pub fn conformance(args: &[&str]) -> Result<ExitCode> {
    let mut corpus = None;
    let mut verbose = false;
    let mut only = None;
    let mut min_rate: f64 = 0.0;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "-v" | "--verbose" => verbose = true,
            "--case" => only = it.next().map(|s| s.to_string()),
            "--min-pass-rate" => {
                min_rate = it
                    .next()
                    .context("--min-pass-rate takes a percentage")?
                    .parse()
                    .context("--min-pass-rate takes a percentage")?
            }
            other => corpus = Some(PathBuf::from(other)),
        }
    }
    let corpus = corpus.context(
        "usage: cargo xtask conformance <corpus-dir> [--case NAME] [-v] [--min-pass-rate PCT]",
    )?;
    let cases = load_cases(&corpus)?;
    let (mut passed, mut semantic, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for case in &cases {
        if only.as_deref().is_some_and(|o| !case.name.contains(o)) {
            continue;
        }
        let (outcome, output) = run_case(case);
        match outcome {
            Outcome::Pass => passed.push(case.name.clone()),
            Outcome::Semantic => semantic.push(case.name.clone()),
            Outcome::Fail(reason) => {
                if verbose {
                    println!("--- {}: {reason}", case.name);
                    if let Some(expected) = &case.expected {
                        print_diff(expected, &output);
                    }
                }
                failed.push((case.name.clone(), reason));
            }
        }
    }
    let total = passed.len() + semantic.len() + failed.len();
    if !semantic.is_empty() {
        println!("same documents but different text or order (counted as failed):");
        for name in &semantic {
            println!("  {name}");
        }
    }
    if !failed.is_empty() {
        println!("failing cases:");
        for (name, reason) in &failed {
            let reason: String = reason.chars().take(160).collect();
            println!("  {name}: {}", reason.replace('\n', " "));
        }
    }
    println!(
        "{} passed, {} failed",
        passed.len(),
        semantic.len() + failed.len()
    );
    let rate = if total == 0 {
        0.0
    } else {
        100.0 * passed.len() as f64 / total as f64
    };
    if rate + 1e-9 < min_rate {
        println!("pass rate {rate:.1}% is below the required {min_rate}%");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_diff(expected: &str, actual: &str) {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let mut shown = 0;
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (e.get(i).copied(), a.get(i).copied());
        if x != y {
            println!("  line {}: expected {:?}", i + 1, x.unwrap_or("<eof>"));
            println!("  line {}:   actual {:?}", i + 1, y.unwrap_or("<eof>"));
            shown += 1;
            if shown >= 6 {
                break;
            }
        }
    }
}
