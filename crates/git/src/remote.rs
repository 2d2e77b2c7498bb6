//! Talking to a remote: ref advertisement and shallow fetch.

use std::{
    any::Any,
    num::NonZeroU32,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use base64::Engine;
use gix::{
    protocol::{handshake::Ref, transport::client::blocking_io::http},
    remote::{
        Direction,
        fetch::{Shallow, Tags},
        ref_map,
    },
};

use crate::{
    error::{Error, Result},
    refs::{Advertisement, RemoteRef, Selection},
};

/// Credentials from a GitRepository's Secret.
#[derive(Clone, Default)]
pub struct Credentials {
    /// HTTP basic auth.
    pub basic: Option<(String, String)>,
    /// HTTP bearer token.
    pub bearer: Option<String>,
    /// SSH private key (OpenSSH or PEM format).
    pub ssh_identity: Option<Vec<u8>>,
    /// SSH known_hosts content; with it, an unknown or changed host key fails the operation.
    pub ssh_known_hosts: Option<Vec<u8>>,
    /// Extra CA certificates (PEM) to trust for https.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for Credentials {
    /// Never prints secret material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field(
                "basic",
                &self.basic.as_ref().map(|(u, _)| (u, "<redacted>")),
            )
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .field(
                "ssh_identity",
                &self.ssh_identity.as_ref().map(|_| "<redacted>"),
            )
            .field("ssh_known_hosts", &self.ssh_known_hosts.is_some())
            .field("ca_pem", &self.ca_pem.is_some())
            .finish()
    }
}

/// Where ssh's stderr goes, inside the temporary directory.
const SSH_STDERR: &str = "ssh.stderr";

/// The local name the fetched ref is stored under in the temporary repository.
const FETCHED_REF: &str = "refs/weir/fetched";

/// A remote plus a temporary bare repository to talk to it through.
pub struct GitRemote {
    url: String,
    repo: gix::ThreadSafeRepository,
    ca_pem: Option<Vec<u8>>,
    basic: Option<(String, String)>,
    timeout: Duration,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for GitRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitRemote")
            .field("url", &redact_url(&self.url))
            .finish_non_exhaustive()
    }
}

impl GitRemote {
    /// Prepares to talk to `url` (`https://`, `http://`, `ssh://` or `file://`) with
    /// `credentials`; every network operation is bounded by `timeout`.
    pub fn new(url: &str, credentials: &Credentials, timeout: Duration) -> Result<Self> {
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or_default();
        if !["https", "http", "ssh", "file"].contains(&scheme) {
            return Err(Error::InvalidSpec(format!(
                "unsupported URL {}: use https://, http://, ssh:// or file://",
                redact_url(url)
            )));
        }
        let dir = tempfile::Builder::new()
            .prefix("weir-git-")
            .tempdir()
            .map_err(|e| Error::Git(format!("creating a temporary repository: {e}")))?;
        // Protocol v2: with v1 gix asks for relative deepening and the server sends full history.
        let mut overrides = vec![
            "protocol.version=2".to_owned(),
            "ssh.variant=ssh".to_owned(),
        ];
        let is_http = scheme == "http" || scheme == "https";
        if is_http {
            if let Some(token) = &credentials.bearer {
                overrides.push(format!("http.extraHeader=Authorization: Bearer {token}"));
            } else if let Some((user, pass)) = &credentials.basic {
                // gix refuses to answer a 401 with credentials over plain http; a preemptive
                // header works on both http and https.
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                overrides.push(format!("http.extraHeader=Authorization: Basic {encoded}"));
            }
        }
        if scheme == "ssh" {
            overrides.push(format!(
                "core.sshCommand={}",
                ssh_command(dir.path(), credentials, timeout)?
            ));
        }
        let repo = gix::ThreadSafeRepository::init_opts(
            dir.path().join("repo.git"),
            gix::create::Kind::Bare,
            gix::create::Options::default(),
            gix::open::Options::isolated().config_overrides(overrides),
        )
        .map_err(|e| Error::Git(format!("creating a temporary repository: {e}")))?;
        Ok(GitRemote {
            url: url.to_owned(),
            repo,
            ca_pem: credentials.ca_pem.clone().filter(|_| is_http),
            basic: credentials.basic.clone().filter(|_| is_http),
            timeout,
            dir,
        })
    }

    /// The repository objects were fetched into (a handle for the calling thread).
    pub fn repository(&self) -> gix::Repository {
        self.repo.to_thread_local()
    }

    fn connect<'a, 'repo>(
        &self,
        repo: &'repo gix::Repository,
        remote: &'a gix::Remote<'repo>,
    ) -> Result<
        gix::remote::Connection<
            'a,
            'static,
            'repo,
            Box<dyn gix::protocol::transport::client::blocking_io::Transport + Send>,
        >,
    > {
        let mut connection = remote
            .connect(Direction::Fetch)
            .map_err(|e| self.classify(&e))?;
        // Never consult credential helpers or prompt: only what the Secret says counts.
        connection.set_credentials(|_| Ok(None));
        if let Some(options) = self.http_options(repo)? {
            connection.set_transport_options(options);
        }
        Ok(connection)
    }

    fn http_options(&self, repo: &gix::Repository) -> Result<Option<Box<dyn Any>>> {
        let mut options = match repo.transport_options(self.url.as_str(), None) {
            Ok(Some(options)) => options,
            Ok(None) => return Ok(None),
            Err(e) => return Err(Error::Git(format!("transport options: {e}"))),
        };
        let Some(http_options) = options.downcast_mut::<http::Options>() else {
            return Ok(None);
        };
        let ca = match &self.ca_pem {
            Some(pem) => Some(reqwest::Certificate::from_pem(pem).map_err(|e| {
                Error::AuthenticationFailed(format!("ca.crt is not a PEM certificate: {e}"))
            })?),
            None => None,
        };
        let timeout = self.timeout;
        http_options.backend = Some(Arc::new(Mutex::new(http::reqwest::Options {
            configure_client: Some(Box::new(move |mut builder| {
                builder = builder
                    .timeout(timeout)
                    .connect_timeout(timeout.min(Duration::from_secs(30)));
                if let Some(cert) = &ca {
                    builder = builder.add_root_certificate(cert.clone());
                }
                Ok(builder)
            })),
            configure_request: None,
        })));
        Ok(Some(options))
    }

    /// Lists the remote's refs (and where HEAD points) without fetching any object.
    pub fn advertisement(&self) -> Result<Advertisement> {
        self.bounded(|repo, _interrupt| {
            let remote = repo
                .remote_at(self.url.as_str())
                .map_err(|e| self.classify(&e))?
                .with_fetch_tags(Tags::None);
            let connection = self.connect(&repo, &remote)?;
            let (ref_map, _handshake) = connection
                .ref_map(
                    gix::progress::Discard,
                    ref_map::Options {
                        prefix_from_spec_as_filter_on_remote: false,
                        ..Default::default()
                    },
                )
                .map_err(|e| self.classify(&e))?;
            let mut adv = Advertisement::default();
            for r in &ref_map.remote_refs {
                match r {
                    Ref::Direct {
                        full_ref_name,
                        object,
                    } => adv.refs.push(RemoteRef {
                        name: full_ref_name.to_string(),
                        target: object.to_string(),
                        peeled: None,
                    }),
                    Ref::Peeled {
                        full_ref_name,
                        tag,
                        object,
                    } => adv.refs.push(RemoteRef {
                        name: full_ref_name.to_string(),
                        target: tag.to_string(),
                        peeled: Some(object.to_string()),
                    }),
                    Ref::Symbolic {
                        full_ref_name,
                        target,
                        tag,
                        object,
                    } => {
                        if full_ref_name == "HEAD" {
                            adv.head_symref = Some(target.to_string());
                        }
                        adv.refs.push(RemoteRef {
                            name: full_ref_name.to_string(),
                            target: tag
                                .map(|t| t.to_string())
                                .unwrap_or_else(|| object.to_string()),
                            peeled: tag.map(|_| object.to_string()),
                        });
                    }
                    Ref::Unborn {
                        full_ref_name,
                        target,
                    } => {
                        if full_ref_name == "HEAD" {
                            adv.head_symref = Some(target.to_string());
                        }
                    }
                }
            }
            Ok(adv)
        })
    }

    /// Fetches the selected commit with depth 1 and returns its id.
    pub fn fetch_commit(&self, selection: &Selection) -> Result<gix::ObjectId> {
        let result = self.fetch_selected(selection);
        // A server asked for an unknown commit may hang up before saying "not our ref". The
        // advertisement just succeeded, so the remote is reachable and accepts the credentials:
        // a plain Git failure here means the commit could not be had.
        match result {
            Err(Error::Git(detail)) if selection.refname.is_none() => {
                Err(Error::RefNotFound(format!(
                    "commit {} could not be fetched (does it exist?): {detail}",
                    selection.commit
                )))
            }
            other => other,
        }
    }

    fn fetch_selected(&self, selection: &Selection) -> Result<gix::ObjectId> {
        self.bounded(|repo, interrupt| {
            let source = selection.refname.as_deref().unwrap_or(&selection.commit);
            self.fetch_into_local_ref(&repo, source, interrupt)?;
            let commit = repo
                .find_reference(FETCHED_REF)
                .map_err(|e| Error::Git(format!("the fetched ref is missing: {e}")))?
                .peel_to_commit()
                .map_err(|e| Error::Git(format!("{source} does not point at a commit: {e}")))?
                .id;
            // With a commit and a branch, the commit must be on what was fetched; a branch tip
            // that moved on is fine only if the commit is reachable: fetch it by id instead.
            if selection.refname.is_some() && commit != selection.commit.as_str() {
                self.fetch_into_local_ref(&repo, &selection.commit, interrupt)?;
                let id = gix::ObjectId::from_hex(selection.commit.as_bytes())
                    .map_err(|e| Error::InvalidSpec(format!("commit {}: {e}", selection.commit)))?;
                repo.find_commit(id)
                    .map_err(|e| Error::RefNotFound(format!("commit {}: {e}", selection.commit)))?;
                return Ok(id);
            }
            Ok(commit)
        })
    }

    /// Fetches `source` (a full ref or a commit id) with depth 1 into [`FETCHED_REF`].
    fn fetch_into_local_ref(
        &self,
        repo: &gix::Repository,
        source: &str,
        interrupt: &AtomicBool,
    ) -> Result<()> {
        let spec = format!("+{source}:{FETCHED_REF}");
        let remote = repo
            .remote_at(self.url.as_str())
            .map_err(|e| self.classify(&e))?
            .with_fetch_tags(Tags::None)
            .with_refspecs([spec.as_str()], Direction::Fetch)
            .map_err(|e| Error::Git(format!("refspec {spec}: {e}")))?;
        self.connect(repo, &remote)?
            .prepare_fetch(gix::progress::Discard, ref_map::Options::default())
            .map_err(|e| self.classify(&e))?
            .with_shallow(Shallow::DepthAtRemote(NonZeroU32::MIN))
            .receive(gix::progress::Discard, interrupt)
            .map_err(|e| self.classify(&e))?;
        Ok(())
    }

    /// Runs `op` on a helper thread and gives up after the timeout, raising gix's interrupt
    /// flag so the operation stops at its next check.
    fn bounded<T: Send>(
        &self,
        op: impl FnOnce(gix::Repository, &AtomicBool) -> Result<T> + Send,
    ) -> Result<T> {
        let interrupt = AtomicBool::new(false);
        let deadline = Instant::now() + self.timeout;
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| op(self.repo.to_thread_local(), &interrupt));
            while !worker.is_finished() {
                if Instant::now() >= deadline {
                    interrupt.store(true, Ordering::Relaxed);
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let result = worker
                .join()
                .unwrap_or_else(|_| Err(Error::Git("the git operation panicked".into())));
            if interrupt.load(Ordering::Relaxed) {
                return Err(Error::Timeout(self.timeout));
            }
            result
        })
    }

    /// Maps a gix error to a category, from its message chain, with credentials redacted.
    fn classify(&self, error: &(dyn std::error::Error + 'static)) -> Error {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        if let Ok(stderr) = std::fs::read(self.dir.path().join(SSH_STDERR)) {
            let tail = String::from_utf8_lossy(&stderr[stderr.len().saturating_sub(2048)..])
                .trim()
                .to_owned();
            if !tail.is_empty() {
                text.push_str("; ssh: ");
                text.push_str(&tail);
            }
        }
        let text = self.redact(&text);
        let lower = text.to_lowercase();
        // Match whole phrases: bare numbers like "401" also occur in ports and object ids.
        let status = |code: u16| {
            lower.contains(&format!("http status {code}"))
                || lower.contains(&format!("status: {code}"))
        };
        if lower.contains("connection refused")
            || lower.contains("failed to lookup")
            || lower.contains("dns error")
        {
            Error::Git(format!("remote unreachable: {text}"))
        } else if lower.contains("host key verification failed")
            || lower.contains("remote host identification has changed")
        {
            Error::HostKeyMismatch(text)
        } else if status(401)
            || status(403)
            || lower.contains("not accepted")
            || lower.contains("unauthenticated")
            || lower.contains("permission denied")
            || lower.contains("no credentials")
        {
            Error::AuthenticationFailed(text)
        } else if lower.contains("matched any of the")
            || lower.contains("not our ref")
            || status(404)
        {
            Error::RefNotFound(text)
        } else if lower.contains("timed out") {
            Error::Timeout(self.timeout)
        } else {
            Error::Git(text)
        }
    }

    fn redact(&self, text: &str) -> String {
        let mut text = text.replace(&self.url, &redact_url(&self.url));
        if let Some((_, pass)) = &self.basic
            && !pass.is_empty()
        {
            text = text.replace(pass.as_str(), "<redacted>");
        }
        text
    }
}

/// The URL with any userinfo password replaced.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!(
                "{scheme}://{user}:<redacted>@{host}{}",
                &rest[authority_end..]
            )
        }
        _ => url.to_owned(),
    }
}

/// `ssh` with our key and known_hosts only: no agent, no user config, no prompts, strict host
/// key checking. Files are written 0600 into the temporary repository directory.
fn ssh_command(
    dir: &std::path::Path,
    credentials: &Credentials,
    timeout: Duration,
) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let write = |name: &str, content: &[u8]| -> Result<String> {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(|e| Error::Git(format!("writing {name}: {e}")))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::Git(format!("chmod {name}: {e}")))?;
        Ok(path.display().to_string())
    };
    // gix checks its interrupt flag only between reads, so ssh must bound itself: give up on
    // connecting after the timeout and on a peer that stops answering keep-alives.
    let connect = timeout.as_secs().clamp(1, 300);
    let mut cmd = format!(
        "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes \
         -o ConnectTimeout={connect} -o ServerAliveInterval=5 -o ServerAliveCountMax=3"
    );
    match &credentials.ssh_known_hosts {
        Some(known) => cmd.push_str(&format!(
            " -o UserKnownHostsFile={}",
            write("known_hosts", known)?
        )),
        // Without known_hosts nothing can be verified: refuse every host rather than trust any.
        None => cmd.push_str(" -o UserKnownHostsFile=/dev/null"),
    }
    if let Some(identity) = &credentials.ssh_identity {
        let mut key = identity.clone();
        if !key.ends_with(b"\n") {
            key.push(b'\n');
        }
        cmd.push_str(&format!(" -i {}", write("identity", &key)?));
    }
    // gix does not report ssh's own diagnostics ("Host key verification failed", "Permission
    // denied"); keep them where `classify` can read them. With "$@" present gix appends nothing.
    cmd.push_str(&format!(" \"$@\" 2>>{}", dir.join(SSH_STDERR).display()));
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("https://bob:s3cret@git.example/x.git"),
            "https://bob:<redacted>@git.example/x.git"
        );
        assert_eq!(redact_url("ssh://git@host:22/x"), "ssh://git@host:22/x");
        assert_eq!(redact_url("file:///srv/x"), "file:///srv/x");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials {
            basic: Some(("bob".into(), "s3cret".into())),
            bearer: Some("tok".into()),
            ssh_identity: Some(b"KEY".to_vec()),
            ..Default::default()
        };
        let text = format!("{c:?}");
        assert!(
            !text.contains("s3cret") && !text.contains("tok\"") && !text.contains("KEY"),
            "{text}"
        );
    }

    #[test]
    fn unsupported_schemes_are_refused() {
        for url in ["git@host:x.git", "ext::sh -c evil", "ftp://x/y"] {
            assert!(
                matches!(
                    GitRemote::new(url, &Credentials::default(), Duration::from_secs(1)),
                    Err(Error::InvalidSpec(_))
                ),
                "{url}"
            );
        }
    }
}
