//! The content-addressed blob store on disk: module zips addressed by their sha256.
//!
//! Layout: `<dir>/<aa>/<sha256>` for blobs, `<dir>/tmp/` for files being written, and
//! `<dir>/quarantine/` for copies that failed verification. A blob appears under its name only
//! after it was written to a temp file, hashed, fsynced and renamed, and the directory fsynced,
//! so a crash at any moment leaves either nothing or the whole blob. Leftover temp files are
//! removed at startup.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// Blob store failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// A filesystem operation failed.
    #[error("blob store i/o error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file's content does not hash to the expected address.
    #[error("blob {expected} has wrong content (sha256 {actual})")]
    Mismatch {
        /// The expected sha256.
        expected: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// A string is not a lowercase hex sha256.
    #[error("invalid blob address {0:?}")]
    BadAddress(String),
    /// The disk is at its flood watermark: no new blob is stored on this node.
    #[error("disk full (flood watermark reached): blob {0} not stored on this node")]
    DiskFull(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A blob that was committed: its address and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// Lowercase hex sha256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The blob store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BlobStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    tmp: PathBuf,
    quarantine: PathBuf,
    objects: AtomicU64,
    bytes: AtomicU64,
    /// Blobs whose content was hashed and matched, with the file identity at that time.
    verified: Mutex<HashMap<String, FileStamp>>,
    /// When each blob was last served (for least-recently-served eviction).
    atimes: super::atime::AccessTimes,
    /// Blobs dropped on purpose by eviction (the repair worker leaves them alone); loaded and
    /// persisted by the disk worker.
    evicted: Mutex<std::collections::HashSet<String>>,
    /// The disk reached its flood watermark: store no new blob.
    flooded: std::sync::atomic::AtomicBool,
    /// Store sizes at which the disk worker is woken at once (high) and storing stops at once
    /// (flood), from the blob budget; `u64::MAX` when there is none.
    marks: (AtomicU64, AtomicU64),
    /// Wakes the disk worker (a permit is kept, so no wake-up is lost).
    wake: tokio::sync::Notify,
    /// Verified copies of hot small blobs (issue 13); dropped whenever the file goes away.
    hot: super::hot::HotBlobs,
}

/// Most entries remembered in the verified set (it is cleared when full: a bound, not an LRU).
const MAX_VERIFIED: usize = 200_000;

/// The identity of a file's content as the filesystem reports it: any write through the
/// filesystem changes `ctime` (which cannot be set back by a user), and a replaced file has
/// another inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    /// The stamp of an open file's metadata.
    pub fn of(meta: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }
}

/// Checks that `s` is 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl BlobStore {
    /// Opens (creating if needed) the store at `dir`, removes leftover temp files and counts
    /// the blobs present.
    pub fn open(dir: &Path) -> Result<BlobStore, BlobError> {
        let tmp = dir.join("tmp");
        let quarantine = dir.join("quarantine");
        for d in [dir, &tmp, &quarantine] {
            std::fs::create_dir_all(d).map_err(io_err(d))?;
        }
        for entry in std::fs::read_dir(&tmp).map_err(io_err(&tmp))?.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        let store = BlobStore {
            inner: Arc::new(Inner {
                root: dir.to_path_buf(),
                tmp,
                quarantine,
                objects: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                verified: Mutex::new(HashMap::new()),
                atimes: super::atime::AccessTimes::default(),
                evicted: Mutex::new(std::collections::HashSet::new()),
                flooded: std::sync::atomic::AtomicBool::new(false),
                marks: (AtomicU64::new(u64::MAX), AtomicU64::new(u64::MAX)),
                wake: tokio::sync::Notify::new(),
                hot: super::hot::HotBlobs::default(),
            }),
        };
        store.recount()?;
        Ok(store)
    }

    fn recount(&self) -> Result<(), BlobError> {
        let (mut n, mut bytes) = (0u64, 0u64);
        let root = &self.inner.root;
        for shard in std::fs::read_dir(root).map_err(io_err(root))?.flatten() {
            let name = shard.file_name();
            if name.len() != 2 || !shard.path().is_dir() {
                continue;
            }
            for f in std::fs::read_dir(shard.path())
                .map_err(io_err(&shard.path()))?
                .flatten()
            {
                if is_sha256_hex(&f.file_name().to_string_lossy()) {
                    n += 1;
                    bytes += f.metadata().map(|m| m.len()).unwrap_or(0);
                }
            }
        }
        self.inner.objects.store(n, Ordering::Relaxed);
        self.inner.bytes.store(bytes, Ordering::Relaxed);
        self.publish_gauges();
        Ok(())
    }

    fn publish_gauges(&self) {
        metrics::gauge!("cairn_blob_objects").set(self.objects() as f64);
        metrics::gauge!("cairn_blob_bytes").set(self.bytes() as f64);
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<String, FileStamp>> {
        match self.inner.verified.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Whether `sha256` was verified while its file had exactly this identity.
    pub fn is_verified(&self, sha256: &str, stamp: &FileStamp) -> bool {
        self.verified().get(sha256) == Some(stamp)
    }

    /// Records that `sha256`'s file, with this identity, hashed to its address.
    pub fn mark_verified(&self, sha256: &str, stamp: FileStamp) {
        let mut v = self.verified();
        if v.len() >= MAX_VERIFIED {
            v.clear();
        }
        v.insert(sha256.to_string(), stamp);
    }

    fn mark_file_verified(&self, sha256: &str, path: &Path) {
        if let Ok(meta) = std::fs::metadata(path) {
            self.mark_verified(sha256, FileStamp::of(&meta));
        }
    }

    /// Number of blobs held.
    pub fn objects(&self) -> u64 {
        self.inner.objects.load(Ordering::Relaxed)
    }

    /// Total bytes of blobs held.
    pub fn bytes(&self) -> u64 {
        self.inner.bytes.load(Ordering::Relaxed)
    }

    /// The final path of a blob (which may not exist).
    pub fn path_of(&self, sha256: &str) -> Result<PathBuf, BlobError> {
        if !is_sha256_hex(sha256) {
            return Err(BlobError::BadAddress(sha256.to_string()));
        }
        Ok(self.inner.root.join(&sha256[..2]).join(sha256))
    }

    /// A fresh temp file path for a blob being written; it is removed at startup if left over.
    pub fn temp_path(&self) -> PathBuf {
        let n: u64 = rand::random();
        self.inner.tmp.join(format!("{n:016x}.part"))
    }

    /// Whether the blob is present.
    pub fn contains(&self, sha256: &str) -> bool {
        self.path_of(sha256).map(|p| p.is_file()).unwrap_or(false)
    }

    /// Hashes a finished temp file, fsyncs it, renames it to its address and fsyncs the
    /// directory. If `expected` is given and differs, the temp file is removed and
    /// [`BlobError::Mismatch`] returned. Runs on a blocking thread.
    pub async fn commit(
        &self,
        tmp: PathBuf,
        expected: Option<String>,
    ) -> Result<BlobInfo, BlobError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            store
                .commit_blocking(&tmp, expected.as_deref())
                .inspect(|b| store.note_refill(&b.sha256, "upstream"))
        })
        .await
        .map_err(|e| BlobError::Io {
            path: PathBuf::from("<commit task>"),
            source: std::io::Error::other(e.to_string()),
        })?
    }

    fn commit_blocking(&self, tmp: &Path, expected: Option<&str>) -> Result<BlobInfo, BlobError> {
        let result = self.commit_inner(tmp, expected);
        if result.is_err() {
            let _ = std::fs::remove_file(tmp);
        }
        result
    }

    fn commit_inner(&self, tmp: &Path, expected: Option<&str>) -> Result<BlobInfo, BlobError> {
        let (sha256, size) = hash_file(tmp)?;
        if let Some(exp) = expected {
            if exp != sha256 {
                return Err(BlobError::Mismatch {
                    expected: exp.to_string(),
                    actual: sha256,
                });
            }
        }
        self.install(tmp, sha256, size)
    }

    /// Like [`BlobStore::commit`] for a temp file whose sha256 the caller computed while
    /// writing it (saves re-reading it): fsync, rename, directory fsync.
    pub async fn commit_hashed(
        &self,
        tmp: PathBuf,
        sha256: String,
        size: u64,
    ) -> Result<BlobInfo, BlobError> {
        self.commit_hashed_from(tmp, sha256, size, "peer").await
    }

    /// [`BlobStore::commit_hashed`] for bytes that came `from` somewhere else than a peer
    /// (`upstream`: a fill that hashed the body while downloading it), for the refill metric.
    pub async fn commit_hashed_from(
        &self,
        tmp: PathBuf,
        sha256: String,
        size: u64,
        from: &'static str,
    ) -> Result<BlobInfo, BlobError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let result = store.install(&tmp, sha256, size);
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result.inspect(|b| store.note_refill(&b.sha256, from))
        })
        .await
        .map_err(|e| BlobError::Io {
            path: PathBuf::from("<commit task>"),
            source: std::io::Error::other(e.to_string()),
        })?
    }

    /// Moves a verified temp file to its address durably.
    fn install(&self, tmp: &Path, sha256: String, size: u64) -> Result<BlobInfo, BlobError> {
        let dest = self.path_of(&sha256)?;
        if dest.is_file() {
            std::fs::remove_file(tmp).map_err(io_err(tmp))?;
            return Ok(BlobInfo { sha256, size });
        }
        if self.is_flooded() {
            return Err(BlobError::DiskFull(sha256));
        }
        std::fs::File::open(tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_err(tmp))?;
        let shard = dest.parent().unwrap_or(&self.inner.root).to_path_buf();
        let created = !shard.exists();
        std::fs::create_dir_all(&shard).map_err(io_err(&shard))?;
        std::fs::rename(tmp, &dest).map_err(io_err(&dest))?;
        sync_dir(&shard)?;
        if created {
            sync_dir(&self.inner.root)?;
        }
        self.mark_file_verified(&sha256, &dest);
        self.inner.objects.fetch_add(1, Ordering::Relaxed);
        let total = self.inner.bytes.fetch_add(size, Ordering::Relaxed) + size;
        self.publish_gauges();
        self.inner.atimes.touch(&sha256);
        self.check_marks(total);
        Ok(BlobInfo { sha256, size })
    }

    /// Opens a blob for reading, with its size; `None` if absent.
    pub async fn open_blob(
        &self,
        sha256: &str,
    ) -> Result<Option<(tokio::fs::File, u64)>, BlobError> {
        let path = self.path_of(sha256)?;
        match tokio::fs::File::open(&path).await {
            Ok(f) => {
                let len = f.metadata().await.map_err(io_err(&path))?.len();
                Ok(Some((f, len)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::Io { path, source: e }),
        }
    }

    /// Re-hashes a blob; `Ok(true)` if its content matches its address.
    pub async fn verify(&self, sha256: &str) -> Result<bool, BlobError> {
        let path = self.path_of(sha256)?;
        let before = std::fs::metadata(&path).map(|m| FileStamp::of(&m)).ok();
        let (actual, _) = tokio::task::spawn_blocking(move || hash_file(&path))
            .await
            .map_err(|e| BlobError::Io {
                path: PathBuf::from("<verify task>"),
                source: std::io::Error::other(e.to_string()),
            })??;
        match before {
            Some(stamp) if actual == sha256 => self.mark_verified(sha256, stamp),
            _ => {
                self.verified().remove(sha256);
                self.inner.hot.remove(sha256);
            }
        }
        Ok(actual == sha256)
    }

    /// Moves a blob that failed verification out of the way, so it is never served again.
    pub fn quarantine(&self, sha256: &str) -> Result<(), BlobError> {
        let path = self.path_of(sha256)?;
        self.verified().remove(sha256);
        self.inner.hot.remove(sha256);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let n: u32 = rand::random();
        let dest = self.inner.quarantine.join(format!("{sha256}.{n:08x}"));
        match std::fs::rename(&path, &dest) {
            Ok(()) => {
                self.inner.objects.fetch_sub(1, Ordering::Relaxed);
                self.inner.bytes.fetch_sub(size, Ordering::Relaxed);
                self.publish_gauges();
                metrics::counter!("cairn_blob_quarantined_total").increment(1);
                tracing::warn!(sha256, quarantined = %dest.display(), "corrupt blob quarantined");
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BlobError::Io { path, source: e }),
        }
    }

    /// The last-served times of blobs.
    pub fn access_times(&self) -> &super::atime::AccessTimes {
        &self.inner.atimes
    }

    /// Records that `sha256` was served now (a hit): memory only, see [`super::atime`].
    pub fn touch(&self, sha256: &str) {
        self.inner.atimes.touch(sha256);
    }

    fn evicted_set(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.inner.evicted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `sha256` was evicted on purpose and not stored again since.
    pub fn is_evicted(&self, sha256: &str) -> bool {
        self.evicted_set().contains(sha256)
    }

    /// Remembers blobs evicted before a restart (from the disk worker's local tree).
    pub fn restore_evicted(&self, shas: impl IntoIterator<Item = String>) {
        self.evicted_set().extend(shas);
    }

    /// Counts a blob stored again after it was evicted, by where it came from.
    fn note_refill(&self, sha256: &str, from: &'static str) {
        if self.evicted_set().remove(sha256) {
            metrics::counter!(super::DISK_REFILLS_TOTAL, "from" => from).increment(1);
            tracing::info!(sha256, from, "evicted blob refilled");
        }
    }

    /// Removes a blob's local copy on purpose (eviction): the file, its verified entry, its
    /// access time, the counters; it is remembered as evicted. Returns the bytes freed (0 if it
    /// was not here). A reader that opened the file before keeps reading it (unlink semantics).
    pub fn evict(&self, sha256: &str) -> Result<u64, BlobError> {
        let path = self.path_of(sha256)?;
        let size = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(BlobError::Io { path, source: e }),
        };
        self.evicted_set().insert(sha256.to_string());
        self.inner.hot.remove(sha256);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => {
                self.evicted_set().remove(sha256);
                return Err(BlobError::Io { path, source: e });
            }
        }
        self.verified().remove(sha256);
        self.inner.atimes.remove(sha256);
        self.inner.objects.fetch_sub(1, Ordering::Relaxed);
        self.inner.bytes.fetch_sub(size, Ordering::Relaxed);
        self.publish_gauges();
        Ok(size)
    }

    /// Deletes a purged blob's file (an operator purge, issue 12) and forgets it everywhere a
    /// hit could find it: the hot cache, the verified set, its access time. Returns whether a
    /// file was deleted.
    pub fn remove_purged(&self, sha256: &str) -> Result<bool, BlobError> {
        let path = self.path_of(sha256)?;
        self.inner.hot.remove(sha256);
        self.verified().remove(sha256);
        self.inner.atimes.remove(sha256);
        // The object and byte counters are not adjusted, as the purger never did: decrementing
        // them here underflowed in a cluster purge (a blob not counted on this node), and a
        // restart recounts them anyway.
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(BlobError::Io { path, source: e }),
        }
    }

    /// Whether a hit can be served: the blob is in the hot cache or on disk (the hot cache
    /// first, so a hot hit costs no `stat`).
    pub fn servable(&self, sha256: &str) -> bool {
        self.inner.hot.contains(sha256) || self.contains(sha256)
    }

    /// A small blob's bytes from the hot cache, else read from disk, checked against its
    /// address and kept in the cache; `Ok(None)` when the blob is too large for the cache (or
    /// the cache is off) or its file is gone. A copy that fails the check is quarantined and
    /// [`BlobError::Mismatch`] returned: nothing of it is served.
    pub async fn read_hot(
        &self,
        sha256: &str,
        size: u64,
    ) -> Result<Option<bytes::Bytes>, BlobError> {
        if let Some(bytes) = self.inner.hot.get(sha256) {
            return Ok(Some(bytes));
        }
        if !self.inner.hot.admits(size) {
            return Ok(None);
        }
        let path = self.path_of(sha256)?;
        let ticket = self.inner.hot.ticket();
        let read = tokio::task::spawn_blocking(move || read_hashed(&path, size))
            .await
            .map_err(|e| BlobError::Io {
                path: PathBuf::from("<hot fill task>"),
                source: std::io::Error::other(e.to_string()),
            })??;
        let Some((bytes, actual, stamp)) = read else {
            return Ok(None);
        };
        if actual != sha256 {
            metrics::counter!("cairn_blob_verify_failures_total").increment(1);
            tracing::warn!(sha256, actual = %actual, "blob failed verification while filling the hot cache");
            self.quarantine(sha256)?;
            return Err(BlobError::Mismatch {
                expected: sha256.to_string(),
                actual,
            });
        }
        self.mark_verified(sha256, stamp);
        let bytes = bytes::Bytes::from(bytes);
        self.inner.hot.insert(sha256, bytes.clone(), ticket);
        Ok(Some(bytes))
    }

    /// The in-memory cache of hot small blobs (see [`super::hot`]).
    pub fn hot(&self) -> &super::hot::HotBlobs {
        &self.inner.hot
    }

    /// Sets the store sizes at which the disk worker is woken at once and storing stops at
    /// once (the blob budget's high and flood watermarks; `u64::MAX`: none).
    pub fn set_marks(&self, high: u64, flood: u64) {
        self.inner.marks.0.store(high, Ordering::Relaxed);
        self.inner.marks.1.store(flood, Ordering::Relaxed);
    }

    fn check_marks(&self, total: u64) {
        if total >= self.inner.marks.1.load(Ordering::Relaxed) {
            self.set_flooded(true);
        }
        if total >= self.inner.marks.0.load(Ordering::Relaxed) {
            self.inner.wake.notify_one();
        }
    }

    /// Resolves when a store crossed the high mark since the last call (the disk worker waits
    /// on it between its periodic checks).
    pub async fn over_high(&self) {
        self.inner.wake.notified().await;
    }

    /// Whether the disk reached its flood watermark (no new blob is stored here).
    pub fn is_flooded(&self) -> bool {
        self.inner.flooded.load(Ordering::Relaxed)
    }

    /// Sets the flood state (the disk worker, after each measurement).
    pub fn set_flooded(&self, on: bool) {
        self.inner.flooded.store(on, Ordering::Relaxed);
    }

    /// Checks that the store's directory accepts writes (for `/readyz`).
    pub fn check_writable(&self) -> Result<(), BlobError> {
        let n: u64 = rand::random();
        let probe = self.inner.tmp.join(format!(".probe-{n:016x}"));
        std::fs::write(&probe, b"ok").map_err(io_err(&probe))?;
        std::fs::remove_file(&probe).map_err(io_err(&probe))
    }
}

/// Hashes a file with sha256 using a fixed-size buffer; returns (hex, size).
pub fn hash_file(path: &Path) -> Result<(String, u64), BlobError> {
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Reads a whole file of `size` bytes and hashes it: its bytes, sha256 and stamp; `None` if it
/// is gone. A file of another size is read as it is (its hash cannot match).
fn read_hashed(path: &Path, size: u64) -> Result<Option<(Vec<u8>, String, FileStamp)>, BlobError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(BlobError::Io {
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    let meta = file.metadata().map_err(io_err(path))?;
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // Bounded by the recorded size plus one byte, so a grown file is read no further than
    // needed to fail the check.
    (&mut file)
        .take(size + 1)
        .read_to_end(&mut buf)
        .map_err(io_err(path))?;
    let actual = hex::encode(Sha256::digest(&buf));
    Ok(Some((buf, actual, FileStamp::of(&meta))))
}

fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commit_open_verify_quarantine() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let tmp = store.temp_path();
        std::fs::write(&tmp, b"hello").unwrap();
        let info = store.commit(tmp.clone(), None).await.unwrap();
        assert_eq!(info.size, 5);
        assert_eq!(info.sha256, hex::encode(Sha256::digest(b"hello")));
        assert!(!tmp.exists());
        assert!(store.contains(&info.sha256));
        assert_eq!(store.objects(), 1);
        assert!(store.verify(&info.sha256).await.unwrap());
        std::fs::write(store.path_of(&info.sha256).unwrap(), b"HELLO").unwrap();
        assert!(!store.verify(&info.sha256).await.unwrap());
        store.quarantine(&info.sha256).unwrap();
        assert!(!store.contains(&info.sha256));
        assert_eq!(store.objects(), 0);
    }

    #[tokio::test]
    async fn an_overwrite_in_place_invalidates_verification() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let tmp = store.temp_path();
        std::fs::write(&tmp, b"hello").unwrap();
        let info = store.commit(tmp, None).await.unwrap();
        let path = store.path_of(&info.sha256).unwrap();
        let stamp = |p: &Path| FileStamp::of(&std::fs::metadata(p).unwrap());
        assert!(
            store.is_verified(&info.sha256, &stamp(&path)),
            "commit hashed it"
        );
        std::fs::write(&path, b"jello").unwrap();
        assert!(
            !store.is_verified(&info.sha256, &stamp(&path)),
            "same size, new content"
        );
        assert!(!store.verify(&info.sha256).await.unwrap());
        assert!(!store.is_verified(&info.sha256, &stamp(&path)));
    }

    #[tokio::test]
    async fn mismatch_removes_temp_and_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let tmp = store.temp_path();
        std::fs::write(&tmp, b"data").unwrap();
        let err = store
            .commit(tmp.clone(), Some("0".repeat(64)))
            .await
            .unwrap_err();
        assert!(matches!(err, BlobError::Mismatch { .. }));
        assert!(!tmp.exists());
        assert_eq!(store.objects(), 0);
    }

    #[test]
    fn leftovers_are_cleaned_and_blobs_counted_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = BlobStore::open(dir.path()).unwrap();
            std::fs::write(store.temp_path(), b"half").unwrap();
            let sha = hex::encode(Sha256::digest(b"x"));
            let p = store.path_of(&sha).unwrap();
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let store = BlobStore::open(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert_eq!(store.objects(), 1);
        assert_eq!(store.bytes(), 1);
    }

    #[tokio::test]
    async fn evict_forgets_the_copy_and_a_refill_clears_the_mark() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let tmp = store.temp_path();
        std::fs::write(&tmp, b"hello").unwrap();
        let info = store.commit(tmp, None).await.unwrap();
        assert!(store.access_times().get(&info.sha256).is_some());
        assert_eq!(store.evict(&info.sha256).unwrap(), 5);
        assert!(!store.contains(&info.sha256));
        assert!(store.is_evicted(&info.sha256));
        assert_eq!((store.objects(), store.bytes()), (0, 0));
        assert_eq!(store.evict(&info.sha256).unwrap(), 0, "already gone");
        let tmp = store.temp_path();
        std::fs::write(&tmp, b"hello").unwrap();
        store.commit(tmp, None).await.unwrap();
        assert!(store.contains(&info.sha256));
        assert!(!store.is_evicted(&info.sha256), "refilled");
    }

    /// A hot store holding `content` as a blob that has been read into memory once.
    async fn hot_store(content: &[u8]) -> (tempfile::TempDir, BlobStore, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        store.hot().set_budget(64 << 20);
        let tmp = store.temp_path();
        std::fs::write(&tmp, content).unwrap();
        let info = store.commit(tmp, None).await.unwrap();
        let got = store.read_hot(&info.sha256, info.size).await.unwrap();
        assert_eq!(got.as_deref(), Some(content));
        assert!(store.hot().contains(&info.sha256));
        (dir, store, info.sha256)
    }

    #[tokio::test]
    async fn hot_copies_go_when_the_blob_is_evicted_quarantined_or_purged() {
        let (_d, store, sha) = hot_store(b"evict me").await;
        store.evict(&sha).unwrap();
        assert!(!store.hot().contains(&sha) && !store.servable(&sha));
        assert_eq!(store.read_hot(&sha, 8).await.unwrap(), None);

        let (_d, store, sha) = hot_store(b"quarantine me").await;
        store.quarantine(&sha).unwrap();
        assert!(!store.hot().contains(&sha) && !store.servable(&sha));
        assert_eq!(store.read_hot(&sha, 13).await.unwrap(), None);

        let (_d, store, sha) = hot_store(b"purge me").await;
        assert!(store.remove_purged(&sha).unwrap());
        assert!(!store.hot().contains(&sha) && !store.servable(&sha));
        assert_eq!(store.read_hot(&sha, 8).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_corrupt_copy_never_enters_the_hot_cache_and_is_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        store.hot().set_budget(64 << 20);
        let tmp = store.temp_path();
        std::fs::write(&tmp, b"good bytes").unwrap();
        let info = store.commit(tmp, None).await.unwrap();
        std::fs::write(store.path_of(&info.sha256).unwrap(), b"evil bytes").unwrap();
        let r = store.read_hot(&info.sha256, info.size).await;
        assert!(matches!(r, Err(BlobError::Mismatch { .. })), "{r:?}");
        assert!(!store.hot().contains(&info.sha256));
        assert!(!store.contains(&info.sha256), "quarantined");
    }

    #[tokio::test]
    async fn nothing_new_is_stored_at_flood() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        store.set_flooded(true);
        let tmp = store.temp_path();
        std::fs::write(&tmp, b"x").unwrap();
        let err = store.commit(tmp.clone(), None).await.unwrap_err();
        assert!(matches!(err, BlobError::DiskFull(_)), "{err}");
        assert!(!tmp.exists());
        store.set_flooded(false);
        store.set_marks(1, 3);
        let tmp = store.temp_path();
        std::fs::write(&tmp, b"abc").unwrap();
        store.commit(tmp, None).await.unwrap();
        assert!(
            store.is_flooded(),
            "crossing the budget's flood mark floods at once"
        );
    }

    #[test]
    fn rejects_bad_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        assert!(store.path_of("../etc/passwd").is_err());
        assert!(store.path_of(&"A".repeat(64)).is_err());
    }
}
