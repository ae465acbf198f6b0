//! Noticing that certificate files changed, so they can be reloaded without a restart.
//!
//! Polling (not inotify) on purpose: Kubernetes swaps a secret volume's `..data` symlink, and
//! cert-manager or an operator may replace files by rename or in place; comparing the
//! followed file's (mtime, size, inode) catches all of these and needs no extra crate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::blob::FileStamp;

/// What identifies one version of a file (`None`: unreadable).
type Stamp = Option<FileStamp>;

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path).ok().map(|m| FileStamp::of(&m))
}

/// A set of files and the stamps they had when last loaded.
#[derive(Debug, Clone)]
pub struct Watched {
    files: Vec<(PathBuf, Stamp)>,
}

impl Watched {
    /// Records the current stamps of `paths`.
    pub fn new(paths: &[&Path]) -> Watched {
        Watched {
            files: paths.iter().map(|p| (p.to_path_buf(), stamp(p))).collect(),
        }
    }

    /// True (and the new stamps recorded) if any file changed since the last call.
    pub fn changed(&mut self) -> bool {
        let mut changed = false;
        for (path, old) in &mut self.files {
            let now = stamp(path);
            if now != *old {
                *old = now;
                changed = true;
            }
        }
        changed
    }
}

/// Calls `reload` every `interval` after any of `paths` changed, until `shutdown`. A change
/// seen while a writer is halfway through (say the key replaced, the certificate not yet) makes
/// `reload` fail; the files are then tried again on the next tick even without a new change.
pub fn spawn(
    name: &'static str,
    paths: Vec<PathBuf>,
    interval: Duration,
    shutdown: CancellationToken,
    reload: impl Fn() -> Result<(), super::TlsError> + Send + 'static,
) {
    tokio::spawn(async move {
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let mut watched = Watched::new(&refs);
        let mut retry = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            if !watched.changed() && !retry {
                continue;
            }
            match reload() {
                Ok(()) => {
                    retry = false;
                    metrics::counter!(super::metrics::RELOADS_TOTAL, "listener" => name, "outcome" => "ok").increment(1);
                    tracing::info!(listener = name, "tls: certificates reloaded");
                }
                Err(e) => {
                    retry = true;
                    metrics::counter!(super::metrics::RELOADS_TOTAL, "listener" => name, "outcome" => "error").increment(1);
                    tracing::warn!(listener = name, error = %e, "tls: changed certificates are not usable yet; still serving the previous ones");
                }
            }
        }
    });
}
