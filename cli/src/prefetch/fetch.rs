//! Fetching one planned version through a cairn node's GOPROXY port (or any GOPROXY): the
//! `.mod`, then the `.zip` streamed to a temporary file, each checked against the go.sum hash
//! the input gave. A node fills what it lacks on the way; its `Cache-Status` header says which.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cairn_node::module;
use cairn_node::modzip::{self, ZipLimits};
use futures_util::StreamExt;
use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;

use super::inputs::{Item, Want};

/// How one version went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fetched {
    /// Body bytes received.
    pub bytes: u64,
    /// The node fetched something from its upstream for this version (a fill).
    pub filled: bool,
    /// The node said every answer was already cached.
    pub cached: bool,
}

/// Why a version could not be prefetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The proxy answered with an error status.
    #[error("{url}: {status}: {body}")]
    Status {
        /// What was asked for.
        url: String,
        /// The status.
        status: StatusCode,
        /// The start of the body (cairn says there what went wrong).
        body: String,
    },
    /// The connection or the body failed.
    #[error("{url}: {reason}")]
    Transport {
        /// What was asked for.
        url: String,
        /// reqwest's error chain.
        reason: String,
    },
    /// The bytes do not hash to what the go.sum says.
    #[error("{what}: hash mismatch: got {got}, go.sum says {want}")]
    Mismatch {
        /// `module@version` or `module@version/go.mod`.
        what: String,
        /// What the bytes hash to.
        got: String,
        /// What the input said.
        want: String,
    },
    /// The zip is not a valid module zip.
    #[error("{what}: invalid module zip: {reason}")]
    BadZip {
        /// `module@version`.
        what: String,
        /// What the check found.
        reason: String,
    },
    /// The temporary file failed.
    #[error("temporary file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The module path or version cannot be escaped (the input check let it through).
    #[error("{0}")]
    Path(String),
}

impl FetchError {
    /// Whether trying again may help (the network, a 5xx, a 429).
    fn transient(&self) -> bool {
        match self {
            FetchError::Transport { .. } => true,
            FetchError::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }
}

/// Talks to one GOPROXY base URL.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    tmp: PathBuf,
    verify: bool,
    retries: u32,
}

impl Fetcher {
    /// A fetcher for `base` (`https://cairn.corp.example`), writing zips under `tmp`.
    pub fn new(
        client: reqwest::Client,
        base: &str,
        token: Option<String>,
        tmp: &Path,
        verify: bool,
        retries: u32,
    ) -> Fetcher {
        Fetcher {
            client,
            base: base.trim_end_matches('/').to_string(),
            token,
            tmp: tmp.to_path_buf(),
            verify,
            retries,
        }
    }

    /// Fetches what `item` wants, retrying transient failures with backoff.
    pub async fn fetch(&self, item: &Item, n: u64) -> Result<Fetched, FetchError> {
        let mut attempt = 0;
        loop {
            match self.fetch_once(item, n).await {
                Err(e) if e.transient() && attempt < self.retries => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(250 << attempt.min(5))).await;
                }
                other => return other,
            }
        }
    }

    async fn fetch_once(&self, item: &Item, n: u64) -> Result<Fetched, FetchError> {
        let escaped = module::escape_path(&item.module)
            .and_then(|m| Ok((m, module::escape_version(&item.version)?)))
            .map_err(|e| FetchError::Path(format!("{item}: {e}")))?;
        let prefix = format!("{}/{}/@v/{}", self.base, escaped.0, escaped.1);
        let mut out = Fetched::default();
        let gomod = self.get(&format!("{prefix}.mod")).await?;
        out.note(gomod.headers());
        let body = read_all(gomod, &prefix).await?;
        out.bytes += body.len() as u64;
        if let (true, Some(want)) = (self.verify, &item.mod_h1) {
            let got = modzip::hash_gomod(&body);
            if &got != want {
                return Err(FetchError::Mismatch {
                    what: format!("{item}/go.mod"),
                    got,
                    want: want.clone(),
                });
            }
        }
        if item.want == Want::Zip {
            let resp = self.get(&format!("{prefix}.zip")).await?;
            out.note(resp.headers());
            let path = self.tmp.join(format!("{n}.zip"));
            let result = self.receive_zip(resp, &path, item).await;
            let _ = tokio::fs::remove_file(&path).await;
            out.bytes += result?;
        }
        Ok(out)
    }

    /// Streams a zip to `path` and checks it; returns its size.
    async fn receive_zip(
        &self,
        resp: reqwest::Response,
        path: &Path,
        item: &Item,
    ) -> Result<u64, FetchError> {
        let url = resp.url().to_string();
        let io = |source| FetchError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = tokio::fs::File::create(path).await.map_err(io)?;
        let mut stream = resp.bytes_stream();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| transport(&url, &e))?;
            size += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        drop(file);
        let Some(want) = item.zip_h1.clone().filter(|_| self.verify) else {
            return Ok(size);
        };
        let (module, version, path) = (
            item.module.clone(),
            item.version.clone(),
            path.to_path_buf(),
        );
        let checked = tokio::task::spawn_blocking(move || {
            let f = std::fs::File::open(&path)?;
            Ok::<_, std::io::Error>(modzip::check_zip(
                std::io::BufReader::new(f),
                &module,
                &version,
                &ZipLimits::default(),
            ))
        })
        .await
        .map_err(|e| FetchError::Path(format!("zip check stopped: {e}")))?
        .map_err(io)?;
        let summary = checked.map_err(|e| FetchError::BadZip {
            what: item.to_string(),
            reason: e.to_string(),
        })?;
        if summary.h1 != want {
            return Err(FetchError::Mismatch {
                what: item.to_string(),
                got: summary.h1,
                want,
            });
        }
        Ok(size)
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, FetchError> {
        let mut req = self.client.get(url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| transport(url, &e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        Err(FetchError::Status {
            url: url.to_string(),
            status,
            body: first_line(&body),
        })
    }
}

impl Fetched {
    /// Reads the `Cache-Status` header (RFC 9211) cairn sets on module answers.
    fn note(&mut self, headers: &reqwest::header::HeaderMap) {
        let Some(v) = headers.get("cache-status").and_then(|v| v.to_str().ok()) else {
            return;
        };
        if v.contains("fwd=") {
            self.filled = true;
            self.cached = false;
        } else if v.contains("hit") && !self.filled {
            self.cached = true;
        }
    }
}

async fn read_all(resp: reqwest::Response, what: &str) -> Result<Vec<u8>, FetchError> {
    resp.bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| transport(what, &e))
}

fn transport(url: &str, e: &reqwest::Error) -> FetchError {
    FetchError::Transport {
        url: url.to_string(),
        reason: cairn_node::egress::error_chain(e),
    }
}

fn first_line(body: &str) -> String {
    let line = body.lines().next().unwrap_or("").trim();
    line.chars().take(300).collect()
}
