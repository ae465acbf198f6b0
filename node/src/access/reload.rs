//! Files re-read when they change, polled off the request path.

use std::io;
use std::path::{Path, PathBuf};

use crate::store::blob::FileStamp as Fingerprint;

/// What the last poll saw: a version of the file, or the kind of error that hid it (so a
/// missing file is reported once, not on every poll).
type Seen = Result<Fingerprint, io::ErrorKind>;

/// A file that is re-read when its mtime, ctime, length or inode changes (so both in-place rewrites
/// and rename-into-place rotations are seen).
#[derive(Debug)]
pub(crate) struct WatchedFile {
    path: PathBuf,
    // Only the reloader task touches this after startup; a tokio Mutex (rather than std) keeps
    // it poison-free and may be held across the read.
    seen: tokio::sync::Mutex<Option<Seen>>,
}

impl WatchedFile {
    /// Reads the file for the first time; failure is fatal at startup.
    pub(crate) async fn open(path: &Path) -> io::Result<(WatchedFile, String)> {
        let fp = fingerprint(path).await?;
        let text = tokio::fs::read_to_string(path).await?;
        let file = WatchedFile {
            path: path.to_path_buf(),
            seen: tokio::sync::Mutex::new(Some(Ok(fp))),
        };
        Ok((file, text))
    }

    /// The watched path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The new contents when the file changed since the last call, `Ok(None)` when it did not,
    /// and an error once per new kind of failure.
    pub(crate) async fn read_if_changed(&self) -> io::Result<Option<String>> {
        let mut seen = self.seen.lock().await;
        // Stat before reading: if the file changes in between, the next poll sees a new
        // fingerprint and reads it again, so no version is missed.
        let now = fingerprint(&self.path).await.map_err(|e| e.kind());
        if seen.as_ref() == Some(&now) {
            return Ok(None);
        }
        *seen = Some(now);
        match now {
            Ok(_) => tokio::fs::read_to_string(&self.path).await.map(Some),
            Err(kind) => Err(io::Error::from(kind)),
        }
    }
}

/// The blob store's stamp (inode, size, mtime, ctime): what identifies a file version here too.
async fn fingerprint(path: &Path) -> io::Result<Fingerprint> {
    Ok(Fingerprint::of(&tokio::fs::metadata(path).await?))
}
