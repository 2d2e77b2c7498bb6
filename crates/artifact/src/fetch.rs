//! Downloading an artifact with a timeout, retries, a size limit and digest verification.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use sha2::{Digest, Sha256};

use crate::{digest::sha256_hex, error::FetchError};

/// Download settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchOptions {
    /// Largest artifact accepted, in bytes.
    pub max_bytes: u64,
    /// Upper bound of one attempt (connect, headers and body).
    pub timeout: Duration,
    /// Attempts for transient failures (connection errors, timeouts, 5xx), at least 1.
    pub attempts: u32,
    /// Delay before the second attempt; doubles after each further one.
    pub backoff: Duration,
}

impl Default for FetchOptions {
    /// 256 MiB, 60 s per attempt, 3 attempts, 500 ms first backoff.
    fn default() -> Self {
        FetchOptions {
            max_bytes: 256 << 20,
            timeout: Duration::from_secs(60),
            attempts: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// Downloads artifacts over `http://` (artifact servers are cluster-internal, as in Flux).
/// Cheap to clone; reuses connections.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: Client<HttpConnector, Empty<Bytes>>,
    options: FetchOptions,
}

impl Fetcher {
    /// A fetcher with `options`.
    pub fn new(options: FetchOptions) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Fetcher { client, options }
    }

    /// Downloads `url` and returns its bytes only if they hash to `expected_digest`
    /// (`sha256:<hex>`). A 404 is [`FetchError::NotFound`]: the producer is not ready yet.
    pub async fn fetch(&self, url: &str, expected_digest: &str) -> Result<Vec<u8>, FetchError> {
        if sha256_hex(expected_digest).is_none() {
            return Err(FetchError::InvalidDigest(expected_digest.to_owned()));
        }
        let uri: Uri = url.parse().map_err(|_| FetchError::InvalidUrl {
            url: url.to_owned(),
            reason: "not a URL",
        })?;
        if uri.scheme_str() != Some("http") {
            return Err(FetchError::InvalidUrl {
                url: url.to_owned(),
                reason: "only http:// artifact URLs are supported",
            });
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(FetchError::InvalidUrl {
                url: url.to_owned(),
                reason: "no host",
            });
        }
        let mut delay = self.options.backoff;
        let mut attempt = 1;
        loop {
            let result =
                match tokio::time::timeout(self.options.timeout, self.attempt(url, &uri)).await {
                    Ok(r) => r,
                    Err(_) => Err(FetchError::Timeout {
                        url: url.to_owned(),
                        seconds: self.options.timeout.as_secs(),
                    }),
                };
            let retry = match &result {
                Err(FetchError::Transport { .. } | FetchError::Timeout { .. }) => true,
                Err(FetchError::Status { status, .. }) => *status >= 500,
                _ => false,
            };
            if !retry || attempt >= self.options.attempts.max(1) {
                let bytes = result?;
                let actual = format!("sha256:{:x}", Sha256::digest(&bytes));
                if actual != expected_digest {
                    return Err(FetchError::DigestMismatch {
                        url: url.to_owned(),
                        expected: expected_digest.to_owned(),
                        actual,
                    });
                }
                return Ok(bytes);
            }
            tracing::debug!(url, attempt, "artifact download failed, retrying");
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }

    async fn attempt(&self, url: &str, uri: &Uri) -> Result<Vec<u8>, FetchError> {
        let transport = |e: &dyn std::fmt::Display| FetchError::Transport {
            url: url.to_owned(),
            message: e.to_string(),
        };
        let request = Request::get(uri.clone())
            .body(Empty::new())
            .map_err(|e| transport(&e))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| transport(&e))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                return Err(FetchError::NotFound {
                    url: url.to_owned(),
                });
            }
            status => {
                return Err(FetchError::Status {
                    url: url.to_owned(),
                    status: status.as_u16(),
                });
            }
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_owned(),
            limit: self.options.max_bytes,
        };
        let declared = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.options.max_bytes) {
            return Err(too_large());
        }
        let capacity = declared.unwrap_or(0).min(self.options.max_bytes) as usize;
        let mut bytes = Vec::with_capacity(capacity);
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| transport(&e))?;
            if let Some(data) = frame.data_ref() {
                if bytes.len() as u64 + data.len() as u64 > self.options.max_bytes {
                    return Err(too_large());
                }
                bytes.extend_from_slice(data);
            }
        }
        Ok(bytes)
    }
}
