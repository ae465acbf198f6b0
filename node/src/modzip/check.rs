//! `check_zip`: validate a module zip the way the go command does when it downloads one, and
//! compute its `h1:` hash in the same single pass (PROTOCOL.md §3.1, §3.4, §4).
//!
//! Order of work: module path/version, zip length, central directory (names, collisions, go.mod
//! placement, declared sizes), then each file entry is inflated exactly once through SHA-256 with
//! a fixed buffer while real bytes are counted, so a zip bomb is stopped as soon as it produces
//! more than its header or the total limit allows.

use std::io::{Read, Seek, SeekFrom};

use sha2::{Digest, Sha256};
use zip::ZipArchive;

use super::central::{self, CentralEntry};
use super::hash::{hash_files, EMPTY_SHA256};
use super::names::{EntryKind, NameChecker};
use super::ZipError;

/// Size of the buffer every entry is streamed through.
const BUF_LEN: usize = 64 * 1024;
/// Compression methods Go's zip reader supports: store and deflate.
const METHOD_STORED: u16 = 0;
/// See [`METHOD_STORED`].
const METHOD_DEFLATED: u16 = 8;

/// Size limits applied by [`check_zip`]; the defaults are the go command's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipLimits {
    /// Largest accepted zip file (Go: 500 MiB).
    pub max_zip_bytes: u64,
    /// Largest total of uncompressed file sizes, declared and actual (Go: 500 MiB).
    pub max_uncompressed_bytes: u64,
    /// Largest root `go.mod` (Go: 16 MiB).
    pub max_gomod_bytes: u64,
    /// Largest root `LICENSE` (Go: 16 MiB).
    pub max_license_bytes: u64,
}

impl Default for ZipLimits {
    fn default() -> Self {
        ZipLimits {
            max_zip_bytes: 500 << 20,
            max_uncompressed_bytes: 500 << 20,
            max_gomod_bytes: 16 << 20,
            max_license_bytes: 16 << 20,
        }
    }
}

/// What [`check_zip`] learned about a valid module zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipSummary {
    /// The zip's `h1:` hash (go.sum `<module> <version> h1:…`), directory entries included.
    pub h1: String,
    /// Number of regular file entries (directory entries not counted).
    pub files: usize,
    /// Total decompressed bytes of all files.
    pub uncompressed_bytes: u64,
    /// The root `go.mod` bytes, if the zip has one.
    pub gomod: Option<Vec<u8>>,
}

/// Validates the module zip read from `reader` for `module@version` and computes its `h1:` hash.
///
/// Rejects everything the go command's `checkZip`/`Unzip` would (see [`ZipError`]): an invalid or
/// non-canonical module version, a zip over `max_zip_bytes`, unparsable zips, bad entry names,
/// case collisions, nested or miscased go.mod files, oversized go.mod/LICENSE, declared or actual
/// uncompressed totals over the limit, and entries whose real size differs from the header.
pub fn check_zip<R: Read + Seek>(
    mut reader: R,
    module: &str,
    version: &str,
    limits: &ZipLimits,
) -> Result<ZipSummary, ZipError> {
    crate::module::check_canonical(module, version)?;
    let size = reader.seek(SeekFrom::End(0))?;
    if size > limits.max_zip_bytes {
        return Err(ZipError::ZipTooLarge {
            size,
            limit: limits.max_zip_bytes,
        });
    }
    // The zip crate parses the central directory twice: once to locate it for our own walk of
    // the raw records (see `central`), and again, after that walk, to read the entries.
    let (start, count) = {
        let archive = ZipArchive::new(&mut reader).map_err(ZipError::Malformed)?;
        (archive.central_directory_start(), archive.len())
    };
    let entries = central::read_entries(&mut reader, start, count)?;
    let plan = plan_entries(&entries, module, version, limits)?;
    if entries.len() != count {
        let entry = plan.last().map(|p| p.name.clone()).unwrap_or_default();
        return Err(ZipError::InconsistentDirectory { entry });
    }
    let mut archive = ZipArchive::new(&mut reader).map_err(ZipError::Malformed)?;
    hash_entries(&mut archive, &entries, plan, limits)
}

/// An entry whose name passed the checks, waiting to be hashed.
struct Planned {
    /// The full entry name (with the `module@version/` prefix), as hashed.
    name: String,
    kind: EntryKind,
    /// Whether this is the root `go.mod` (its bytes are returned).
    root_gomod: bool,
}

/// Checks every entry's name and declared size before any data is read.
fn plan_entries(
    entries: &[CentralEntry],
    module: &str,
    version: &str,
    limits: &ZipLimits,
) -> Result<Vec<Planned>, ZipError> {
    let mut names = NameChecker::new(module, version);
    let mut declared_total: u64 = 0;
    let mut plan = Vec::with_capacity(entries.len());
    for raw in entries {
        let entry = std::str::from_utf8(&raw.name).map_err(|_| ZipError::NonUtf8Name {
            entry: String::from_utf8_lossy(&raw.name).into_owned(),
        })?;
        let (kind, name) = names.check(entry)?;
        if kind == EntryKind::File {
            declared_total = declared_total
                .checked_add(raw.uncompressed)
                .filter(|&total| total <= limits.max_uncompressed_bytes)
                .ok_or(ZipError::UncompressedTooLarge {
                    limit: limits.max_uncompressed_bytes,
                })?;
            check_special_size(entry, name, raw.uncompressed, limits)?;
        }
        plan.push(Planned {
            name: entry.to_string(),
            kind,
            root_gomod: kind == EntryKind::File && name == "go.mod",
        });
    }
    Ok(plan)
}

/// Applies the root `go.mod` and `LICENSE` size limits to a declared size.
fn check_special_size(
    entry: &str,
    name: &str,
    size: u64,
    limits: &ZipLimits,
) -> Result<(), ZipError> {
    let entry = entry.to_string();
    match name {
        "go.mod" if size > limits.max_gomod_bytes => Err(ZipError::GoModTooLarge {
            entry,
            size,
            limit: limits.max_gomod_bytes,
        }),
        "LICENSE" if size > limits.max_license_bytes => Err(ZipError::LicenseTooLarge {
            entry,
            size,
            limit: limits.max_license_bytes,
        }),
        _ => Ok(()),
    }
}

/// Hashes every planned entry (files streamed, directories as empty) and builds the summary.
fn hash_entries<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    entries: &[CentralEntry],
    plan: Vec<Planned>,
    limits: &ZipLimits,
) -> Result<ZipSummary, ZipError> {
    let mut reading = Reading::new(limits.max_uncompressed_bytes);
    let mut digests = Vec::with_capacity(plan.len());
    let (mut files, mut gomod) = (0, None);
    for (index, (planned, raw)) in plan.into_iter().zip(entries).enumerate() {
        let digest = if planned.kind == EntryKind::File {
            files += 1;
            let mut keep = planned.root_gomod.then(Vec::new);
            let digest = hash_file(
                archive,
                index,
                &planned.name,
                raw,
                &mut reading,
                keep.as_mut(),
            )?;
            gomod = keep.or(gomod);
            digest
        } else {
            check_directory(archive, index, &planned.name, raw)?;
            EMPTY_SHA256
        };
        digests.push((planned.name, digest));
    }
    let h1 = hash_files(
        digests
            .iter()
            .map(|(name, digest)| (name.as_str(), *digest)),
    )?;
    Ok(ZipSummary {
        h1,
        files,
        uncompressed_bytes: reading.used(),
        gomod,
    })
}

/// Go's reader opens a directory entry as empty if its declared size is 0 (whatever its
/// compressed size, as some tools deflate directories) and refuses it otherwise; its local header
/// must still be readable.
fn check_directory<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    index: usize,
    entry: &str,
    raw: &CentralEntry,
) -> Result<(), ZipError> {
    if raw.uncompressed != 0 {
        return Err(ZipError::DirectoryWithData {
            entry: entry.to_string(),
        });
    }
    let file = archive
        .by_index_raw(index)
        .map_err(|source| ZipError::OpenEntry {
            entry: entry.to_string(),
            source,
        })?;
    if file.name_raw() != raw.name.as_slice() {
        return Err(ZipError::InconsistentDirectory {
            entry: entry.to_string(),
        });
    }
    Ok(())
}

/// Opens file entry `index`, cross-checks it with its central record, and streams it.
fn hash_file<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    index: usize,
    entry: &str,
    raw: &CentralEntry,
    reading: &mut Reading,
    keep: Option<&mut Vec<u8>>,
) -> Result<[u8; 32], ZipError> {
    if raw.method != METHOD_STORED && raw.method != METHOD_DEFLATED {
        return Err(ZipError::UnsupportedCompression {
            entry: entry.to_string(),
            method: raw.method,
        });
    }
    let mut file = archive
        .by_index(index)
        .map_err(|source| ZipError::OpenEntry {
            entry: entry.to_string(),
            source,
        })?;
    if file.name_raw() != raw.name.as_slice() || file.size() != raw.uncompressed {
        return Err(ZipError::InconsistentDirectory {
            entry: entry.to_string(),
        });
    }
    reading.digest(&mut file, entry, raw.uncompressed, keep)
}

/// The shared streaming state: one buffer and the running total of real decompressed bytes.
pub(super) struct Reading {
    buf: Vec<u8>,
    /// Bytes produced so far, all entries together.
    used: u64,
    /// `max_uncompressed_bytes`.
    limit: u64,
}

impl Reading {
    /// A fresh state allowing `limit` decompressed bytes in total.
    pub(super) fn new(limit: u64) -> Self {
        Reading {
            buf: vec![0u8; BUF_LEN],
            used: 0,
            limit,
        }
    }

    /// Decompressed bytes counted so far.
    pub(super) fn used(&self) -> u64 {
        self.used
    }

    /// SHA-256 of everything `reader` produces, which must be exactly `declared` bytes; stops
    /// reading as soon as the entry or the running total goes over its limit. Appends the bytes to
    /// `keep` if given.
    pub(super) fn digest(
        &mut self,
        reader: &mut impl Read,
        entry: &str,
        declared: u64,
        mut keep: Option<&mut Vec<u8>>,
    ) -> Result<[u8; 32], ZipError> {
        let mut hasher = Sha256::new();
        let mut actual: u64 = 0;
        loop {
            let n = match reader.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    let entry = entry.to_string();
                    return Err(ZipError::ReadEntry { entry, source });
                }
            };
            self.account(entry, n as u64, &mut actual, declared)?;
            hasher.update(&self.buf[..n]);
            if let Some(keep) = keep.as_deref_mut() {
                keep.extend_from_slice(&self.buf[..n]);
            }
        }
        if actual != declared {
            let entry = entry.to_string();
            return Err(ZipError::SmallerThanDeclared {
                entry,
                declared,
                actual,
            });
        }
        Ok(hasher.finalize().into())
    }

    /// Counts `n` more real bytes against the total limit and the entry's declared size.
    fn account(
        &mut self,
        entry: &str,
        n: u64,
        actual: &mut u64,
        declared: u64,
    ) -> Result<(), ZipError> {
        self.used = self.used.saturating_add(n);
        if self.used > self.limit {
            return Err(ZipError::UncompressedTooLarge { limit: self.limit });
        }
        *actual = actual.saturating_add(n);
        if *actual > declared {
            let entry = entry.to_string();
            return Err(ZipError::LargerThanDeclared { entry, declared });
        }
        Ok(())
    }
}
