//! `cargo xtask bench source`: the source-controller's figures against the reference tools, in
//! the same run on the same data.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use weir_git::{Credentials, GitRemote, PackLimits, pack_commit, refs};

/// Files, directories and bytes per file of the generated "medium" repository.
const FILES: usize = 4000;
const DIRS: usize = 80;
const FILE_BYTES: usize = 3000;

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.invalid")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.invalid")
        .status()?;
    if !status.success() {
        bail!("git {args:?} failed");
    }
    Ok(())
}

/// A repository of `FILES` text files (~12 MB) with three commits of history.
fn medium_repo(root: &Path) -> Result<String> {
    let work = root.join("work");
    std::fs::create_dir_all(&work)?;
    git(&work, &["init", "-q", "-b", "main"])?;
    for round in 0..3 {
        for i in 0..FILES {
            let dir = work.join(format!("apps/app{:03}", i % DIRS));
            std::fs::create_dir_all(&dir)?;
            let line = format!("# round {round} file {i}\nkey{i}: value-{round}-{i}\n");
            let body: String = line.repeat(FILE_BYTES / line.len() + 1);
            std::fs::write(
                dir.join(format!("manifest{i:05}.yaml")),
                &body[..FILE_BYTES],
            )?;
        }
        git(&work, &["add", "-A"])?;
        git(&work, &["commit", "-q", "-m", &format!("round {round}")])?;
    }
    let bare = root.join("repo.git");
    git(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap_or_default(),
            bare.to_str().unwrap_or_default(),
        ],
    )?;
    Ok(format!("file://{}", bare.display()))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn timed(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<Duration> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed());
    }
    Ok(median(samples))
}

/// Runs the benchmark and prints its figures.
pub fn source() -> Result<()> {
    let dir = tempfile::tempdir()?;
    println!(
        "bench source: generating a repository of {FILES} files in {DIRS} directories, 3 commits…"
    );
    let url = medium_repo(dir.path())?;
    let creds = Credentials::default();
    let timeout = Duration::from_secs(300);
    let runs = 5;

    let noop = timed(20, || {
        let remote = GitRemote::new(&url, &creds, timeout)?;
        refs::select(None, &remote.advertisement()?)?;
        Ok(())
    })?;

    let mut digest = String::new();
    let weir = timed(runs, || {
        let remote = GitRemote::new(&url, &creds, timeout)?;
        let selection = refs::select(None, &remote.advertisement()?)?;
        let commit = remote.fetch_commit(&selection)?;
        let (packed, _) = pack_commit(&remote.repository(), commit, None, &PackLimits::default())?;
        digest = packed.digest;
        Ok(())
    })?;

    let mut n = 0;
    let reference = timed(runs, || {
        n += 1;
        let checkout = dir.path().join(format!("clone{n}"));
        git(
            dir.path(),
            &[
                "clone",
                "-q",
                "--depth",
                "1",
                "--branch",
                "main",
                &url,
                checkout.to_str().unwrap_or_default(),
            ],
        )?;
        let tarball = dir.path().join(format!("clone{n}.tar.gz"));
        let status = Command::new("tar")
            .arg("czf")
            .arg(&tarball)
            .arg("--exclude=.git")
            .arg("-C")
            .arg(&checkout)
            .arg(".")
            .status()
            .context("running tar")?;
        if !status.success() {
            bail!("tar failed");
        }
        Ok(())
    })?;

    println!(
        "bench source: no-op check (ref advertisement + selection, file://), median of 20: {:.1} ms",
        noop.as_secs_f64() * 1e3
    );
    println!(
        "bench source: weir shallow fetch + reproducible pack, median of {runs}: {:.0} ms (artifact {digest})",
        weir.as_secs_f64() * 1e3
    );
    println!(
        "bench source: git clone --depth 1 + tar czf, median of {runs}: {:.0} ms",
        reference.as_secs_f64() * 1e3
    );
    println!(
        "bench source: ratio reference/weir = {:.2}x ({})",
        reference.as_secs_f64() / weir.as_secs_f64(),
        if weir < reference {
            "weir is faster"
        } else {
            "weir is slower"
        }
    );
    Ok(())
}
