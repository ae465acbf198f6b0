//! Snapshot files: where a node keeps its current Raft snapshot and the ones it is building or
//! receiving, so that no snapshot ever sits in memory or in a sled value.
//!
//! `<meta-dir>/cairn-snapshots/` holds `<n>.snap` files (complete: synced, then renamed into
//! place) and `<n>.part` files (being built or received; a receive openraft abandons is removed
//! when its handle is dropped, and whatever is left is removed when the store opens). The
//! `raft_snapshot` tree names the current `.snap`; older ones are deleted once a newer one is
//! recorded (a sender still streaming an old one keeps reading it through its open handle).
//! `n` is a sled-generated id, never a name taken from a peer.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The name of the snapshot directory inside the metadata store's directory.
const DIR_NAME: &str = "cairn-snapshots";
/// Suffix of complete snapshot files.
const SNAP: &str = "snap";
/// Suffix of snapshot files being built or received.
const PART: &str = "part";

/// A snapshot's bytes on disk: what openraft reads chunks from when it sends a snapshot and
/// writes chunks to when it receives one (openraft's `SnapshotData`).
#[derive(Debug)]
pub struct SnapshotFile {
    file: tokio::fs::File,
    path: PathBuf,
    /// A received `.part` file until [`SnapshotFile::finish_writing`]: dropping the handle
    /// before that (openraft abandoned the transfer: a new leader, another snapshot) deletes
    /// it, so abandoned receives do not pile up until the next restart.
    unfinished: bool,
}

impl SnapshotFile {
    fn new(file: std::fs::File, path: PathBuf) -> SnapshotFile {
        SnapshotFile {
            file: tokio::fs::File::from_std(file),
            path,
            unfinished: false,
        }
    }

    /// Completes the writes made through this handle, makes them durable and returns the
    /// file's path (kept from then on: the caller checks and installs or removes it).
    pub(crate) async fn finish_writing(mut self) -> io::Result<PathBuf> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        self.unfinished = false;
        Ok(self.path.clone())
    }
}

impl Drop for SnapshotFile {
    fn drop(&mut self) {
        if self.unfinished {
            // One unlink; the directory is local to this store.
            match std::fs::remove_file(&self.path) {
                Ok(()) => {
                    tracing::info!(path = %self.path.display(), "removed an abandoned snapshot transfer")
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot remove an abandoned snapshot transfer; it goes at the next restart")
                }
            }
        }
    }
}

impl AsyncRead for SnapshotFile {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_read(cx, buf)
    }
}

impl AsyncWrite for SnapshotFile {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().file).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_shutdown(cx)
    }
}

impl AsyncSeek for SnapshotFile {
    fn start_seek(self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        Pin::new(&mut self.get_mut().file).start_seek(position)
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Pin::new(&mut self.get_mut().file).poll_complete(cx)
    }
}

/// The snapshot directory of one metadata store.
#[derive(Clone, Debug)]
pub(crate) struct SnapshotDir {
    path: PathBuf,
}

impl SnapshotDir {
    /// Opens (creating it) the snapshot directory of the store in `meta_dir` and removes any
    /// unfinished `.part` file. Blocking.
    pub(crate) fn open(meta_dir: &Path) -> io::Result<SnapshotDir> {
        let path = meta_dir.join(DIR_NAME);
        std::fs::create_dir_all(&path)?;
        let dir = SnapshotDir { path };
        for entry in std::fs::read_dir(&dir.path)? {
            let p = entry?.path();
            if p.extension().is_some_and(|e| e == PART) {
                std::fs::remove_file(&p)?;
            }
        }
        Ok(dir)
    }

    /// Whether `path` is an unfinished file (received snapshots are removed when refused).
    pub(crate) fn is_part(path: &Path) -> bool {
        path.extension().is_some_and(|e| e == PART)
    }

    /// The directory itself.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the unfinished file number `n`. Blocking.
    pub(crate) fn create_part(&self, n: u64) -> io::Result<(std::fs::File, PathBuf)> {
        let path = self.path.join(format!("{n}.{PART}"));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok((file, path))
    }

    /// Creates an unfinished file for openraft to write a received snapshot into. Blocking.
    pub(crate) fn receive(&self, n: u64) -> io::Result<SnapshotFile> {
        let (file, path) = self.create_part(n)?;
        let mut received = SnapshotFile::new(file, path);
        received.unfinished = true;
        Ok(received)
    }

    /// Makes a synced `.part` file complete: renames it to its `.snap` name (a path that already
    /// is complete is returned as it is) and syncs the directory. Returns the file's name.
    /// Blocking.
    pub(crate) fn promote(&self, part: &Path) -> io::Result<String> {
        let name = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| io::Error::other(format!("{} has no file name", p.display())))
        };
        if part.extension().is_some_and(|e| e == SNAP) {
            return name(part);
        }
        let done = part.with_extension(SNAP);
        std::fs::rename(part, &done)?;
        std::fs::File::open(&self.path)?.sync_all()?;
        name(&done)
    }

    /// Writes everything `src` yields into complete file number `n` (synced, then renamed
    /// into place) and returns its name. Blocking.
    pub(crate) fn copy_in(&self, n: u64, mut src: impl std::io::Read) -> io::Result<String> {
        let (mut file, part) = self.create_part(n)?;
        std::io::copy(&mut src, &mut file)?;
        file.sync_all()?;
        self.promote(&part)
    }

    /// Whether `path` is in this directory.
    pub(crate) fn holds(&self, path: &Path) -> bool {
        path.parent() == Some(self.path.as_path())
    }

    /// The path of complete file `name`, refusing anything but a plain `<n>.snap` name.
    pub(crate) fn path_of(&self, name: &str) -> io::Result<PathBuf> {
        let valid = name
            .strip_suffix(&format!(".{SNAP}"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !valid {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("invalid snapshot file name {name:?}"),
            ));
        }
        Ok(self.path.join(name))
    }

    /// Opens complete file `name` for reading (openraft sends it from there). Blocking.
    pub(crate) fn open_snapshot(&self, name: &str) -> io::Result<SnapshotFile> {
        let path = self.path_of(name)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(SnapshotFile::new(file, path))
    }

    /// Removes every complete file but `keep`. Blocking.
    pub(crate) fn remove_all_but(&self, keep: &str) -> io::Result<()> {
        for entry in std::fs::read_dir(&self.path)? {
            let entry = entry?;
            let p = entry.path();
            if p.extension().is_some_and(|e| e == SNAP) && entry.file_name() != keep {
                std::fs::remove_file(&p)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_abandoned_receive_is_removed_and_a_finished_one_kept() {
        use tokio::io::AsyncWriteExt;
        let dir = tempfile::tempdir().unwrap();
        let d = SnapshotDir::open(dir.path()).unwrap();
        let mut abandoned = d.receive(1).unwrap();
        abandoned.write_all(b"half a snapshot").await.unwrap();
        let path = abandoned.path.clone();
        assert!(path.exists());
        drop(abandoned);
        assert!(!path.exists(), "an abandoned receive is removed");

        let mut done = d.receive(2).unwrap();
        done.write_all(b"a whole snapshot").await.unwrap();
        let path = done.finish_writing().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"a whole snapshot");

        // A complete snapshot opened for sending is never removed by its handle.
        let name = d.promote(&path).unwrap();
        drop(d.open_snapshot(&name).unwrap());
        assert!(d.path_of(&name).unwrap().exists());
    }

    #[test]
    fn only_plain_numbered_names_are_snapshot_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = SnapshotDir::open(dir.path()).unwrap();
        assert!(d.path_of("17.snap").is_ok());
        for bad in [
            "../17.snap",
            "17.part",
            ".snap",
            "a.snap",
            "17.snap/x",
            "/etc/17.snap",
        ] {
            assert!(d.path_of(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn opening_removes_unfinished_files_and_keeps_complete_ones() {
        let dir = tempfile::tempdir().unwrap();
        let d = SnapshotDir::open(dir.path()).unwrap();
        let (_, part) = d.create_part(1).unwrap();
        let (_, done) = d.create_part(2).unwrap();
        let name = d.promote(&done).unwrap();
        assert_eq!(name, "2.snap");
        let d = SnapshotDir::open(dir.path()).unwrap();
        assert!(!part.exists());
        assert!(d.path_of(&name).unwrap().exists());
        let (_, newer) = d.create_part(3).unwrap();
        let newer = d.promote(&newer).unwrap();
        d.remove_all_but(&newer).unwrap();
        assert!(!d.path_of(&name).unwrap().exists());
        assert!(d.path_of(&newer).unwrap().exists());
    }
}
