//! `file://` upstreams: a directory laid out like a GOPROXY (`<dir>/<escaped module>/@v/list`,
//! `…/@v/<version>.info|.mod|.zip`, `…/@latest`), e.g. a copy of `$GOMODCACHE/cache/download`.
//! File names are case-encoded but not percent-encoded, as in the go command's module cache.
//!
//! A missing file is "not found" (like a 404); permission denied and other I/O errors are
//! failures (like a 403/5xx). Local reads are not retried and have no breaker: retrying a local
//! error does not help, and there is no remote to protect. They do take a concurrency slot, which
//! bounds open descriptors, and run under the transfer deadline (a hung network filesystem).

use std::io;
use std::path::{Path, PathBuf};

use super::error::UpstreamError;
use super::metrics::InflightGuard;
use super::proxy::Transport;
use super::sink::{CopyError, Sink, WriteError};

/// One `file://` entry of the chain.
pub(crate) struct FileSource {
    dir: PathBuf,
    display: String,
}

impl FileSource {
    /// A source serving the tree under `dir`; `display` is its `file://` URL.
    pub(crate) fn new(dir: PathBuf, display: String) -> FileSource {
        FileSource { dir, display }
    }

    /// The entry's `file://` URL.
    pub(crate) fn display(&self) -> &str {
        &self.display
    }

    /// Copies the file at `rel` (case-encoded relative path) into `sink`.
    pub(crate) async fn get(
        &self,
        rel: &str,
        transport: &Transport,
        sink: &mut Sink<'_>,
    ) -> Result<(), UpstreamError> {
        let path = self.path_for(rel)?;
        let _permit = transport
            .permits()
            .acquire()
            .await
            .map_err(|_| self.failed("upstream client is shutting down".to_owned()))?;
        let _inflight = InflightGuard::new();
        let deadline = transport.transfer_timeout();
        match tokio::time::timeout(deadline, self.copy(&path, rel, sink)).await {
            Ok(result) => result,
            Err(_) => Err(self.failed(format!(
                "reading {rel} took longer than {} s (transfer_timeout_secs)",
                deadline.as_secs()
            ))),
        }
    }

    /// `<dir>/<rel>`, refusing any component that could leave the tree. Module paths are validated
    /// before they get here; this is defence in depth.
    fn path_for(&self, rel: &str) -> Result<PathBuf, UpstreamError> {
        let mut path = self.dir.clone();
        for component in rel.split('/') {
            if component.is_empty() || component == "." || component == ".." {
                return Err(UpstreamError::InvalidRequest {
                    reason: format!("unsafe path {rel:?} for a file:// upstream"),
                });
            }
            path.push(component);
        }
        Ok(path)
    }

    async fn copy(&self, path: &Path, rel: &str, sink: &mut Sink<'_>) -> Result<(), UpstreamError> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| self.open_error(&e, rel))?;
        let meta = file
            .metadata()
            .await
            .map_err(|e| self.read_error(&e, rel))?;
        if meta.is_dir() {
            return Err(self.failed(format!("{rel} is a directory, not a file")));
        }
        sink.copy_from(&mut file, meta.len())
            .await
            .map_err(|e| match e {
                CopyError::Read(e) => self.read_error(&e, rel),
                CopyError::Write(e) => self.write_error(&e),
            })
    }

    fn open_error(&self, err: &io::Error, rel: &str) -> UpstreamError {
        match err.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
                tracing::debug!(source = %self.display, path = rel, "file upstream has no such file");
                UpstreamError::NotFound {
                    message: format!("not found: {rel}"),
                }
            }
            _ => self.read_error(err, rel),
        }
    }

    fn read_error(&self, err: &io::Error, rel: &str) -> UpstreamError {
        let reason = if err.kind() == io::ErrorKind::PermissionDenied {
            format!("permission denied reading {rel}; make the tree readable by the cairn user")
        } else {
            format!("cannot read {rel}: {err}")
        };
        self.failed(reason)
    }

    fn write_error(&self, err: &WriteError) -> UpstreamError {
        self.failed(err.to_string())
    }

    fn failed(&self, reason: String) -> UpstreamError {
        tracing::warn!(source = %self.display, error = %reason, "file upstream read failed");
        UpstreamError::Failed {
            source: self.display.clone(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> FileSource {
        FileSource::new(
            PathBuf::from("/srv/goproxy"),
            "file:///srv/goproxy".to_owned(),
        )
    }

    #[test]
    fn missing_files_are_not_found_and_permission_denied_is_a_failure() {
        let src = source();
        let missing = io::Error::from(io::ErrorKind::NotFound);
        assert!(src.open_error(&missing, "a.b/c/@v/list").is_not_found());
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let err = src.open_error(&denied, "a.b/c/@v/list");
        assert!(
            matches!(&err, UpstreamError::Failed { reason, .. } if reason.contains("permission denied")),
            "{err}"
        );
    }

    #[test]
    fn paths_cannot_leave_the_tree() {
        let src = source();
        assert_eq!(
            src.path_for("a.b/!c/@v/list").unwrap(),
            PathBuf::from("/srv/goproxy/a.b/!c/@v/list")
        );
        for rel in ["../etc/passwd", "a/./b", "a//b", "/abs"] {
            assert!(src.path_for(rel).is_err(), "{rel}");
        }
    }
}
