//! Real Git repositories and servers: repositories built with the git CLI, served over
//! `file://` and over smart HTTP by `git http-backend` behind a small Python server (basic and
//! bearer auth). For tests and the demo; every helper panics on failure, as a test should.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Runs git with a fixed identity and dates, failing the test on error; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "weir")
        .env("GIT_AUTHOR_EMAIL", "weir@example.invalid")
        .env("GIT_COMMITTER_NAME", "weir")
        .env("GIT_COMMITTER_EMAIL", "weir@example.invalid")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A working repository and a bare clone that servers serve.
pub struct Repo {
    /// Holds everything; removed on drop.
    pub dir: tempfile::TempDir,
    /// The working repository.
    pub work: PathBuf,
    /// The bare repository servers serve.
    pub bare: PathBuf,
}

impl Repo {
    /// A repository whose default branch is `main`, with one commit holding `files`.
    pub fn new(files: &[(&str, &str)]) -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        let repo = Repo {
            bare: dir.path().join("srv/repo.git"),
            work,
            dir,
        };
        repo.commit(files, "initial");
        std::fs::create_dir_all(repo.bare.parent().unwrap()).unwrap();
        git(
            repo.dir.path(),
            &[
                "clone",
                "-q",
                "--bare",
                repo.work.to_str().unwrap(),
                repo.bare.to_str().unwrap(),
            ],
        );
        repo
    }

    /// Writes `files`, commits (even when nothing changed), pushes to the bare repository if it
    /// exists, and returns the commit id.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            let p = self.work.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
        }
        git(&self.work, &["add", "-A"]);
        git(
            &self.work,
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        self.push();
        self.head()
    }

    /// Pushes all branches and tags to the bare repository.
    pub fn push(&self) {
        if self.bare.exists() {
            git(
                &self.work,
                &[
                    "push",
                    "-q",
                    "--force",
                    "--all",
                    self.bare.to_str().unwrap(),
                ],
            );
            git(
                &self.work,
                &[
                    "push",
                    "-q",
                    "--force",
                    "--tags",
                    self.bare.to_str().unwrap(),
                ],
            );
        }
    }

    /// The working repository's HEAD commit.
    pub fn head(&self) -> String {
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// `file://` URL of the bare repository.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.bare.display())
    }
}

/// The smart-HTTP server script (CGI wrapper around `git http-backend`).
const SERVER_SCRIPT: &str = include_str!("../assets/git_http_server.py");

/// `git http-backend` behind the test server, on a random loopback port.
pub struct HttpServer {
    child: Child,
    /// The loopback port.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl HttpServer {
    /// Serves every repository under `root`; `extra` are server flags (`--user u:p`, `--bearer t`).
    pub fn start(root: &Path, extra: &[&str]) -> HttpServer {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let script = dir.path().join("git_http_server.py");
        std::fs::write(&script, SERVER_SCRIPT).unwrap();
        let child = Command::new("python3")
            .arg(script)
            .arg("--root")
            .arg(root)
            .arg("--port-file")
            .arg(&port_file)
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let start = Instant::now();
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                break text.trim().parse().unwrap();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "git http server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        HttpServer {
            child,
            port,
            _dir: dir,
        }
    }

    /// URL of repository `repo` (relative to the served root).
    pub fn url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
