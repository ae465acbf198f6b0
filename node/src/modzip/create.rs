//! Building a module zip from `git archive` output, byte-for-byte in file names and contents
//! what the go command builds in direct mode (PROTOCOL.md §3.2, §3.3, §3.5): a port of
//! `cmd/go/internal/modfetch/coderepo.go`'s `(*codeRepo).Zip` on top of
//! `golang.org/x/mod/zip.Create`. Since `h1:` hashes cover only names and contents, the same
//! file set and bytes give the same hash as the checksum database.
//!
//! Steps: list the archive's central directory (raw names, Go's file modes), strip the single
//! top-level `prefix/` and the module's sub-directory, add the repository-root `LICENSE` when the
//! module has none, read the root go.mod's `go` line, select files (module `select`), then
//! stream each kept file into a new Deflate zip, checking its real size against its header.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::module::ModuleError;

use super::gomod::go_directive;
use super::select::{self, Candidate, FileKind};

/// Size of the buffer each file is streamed through.
const BUF_LEN: usize = 64 * 1024;
/// Signature of a central directory file header.
const CENTRAL_SIGNATURE: [u8; 4] = *b"PK\x01\x02";
/// Size of a central directory file header without its variable-length fields.
const CENTRAL_FIXED_LEN: usize = 46;

/// Limits for building (defaults = the go command's: 500 MiB total, 16 MiB go.mod/LICENSE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateLimits {
    /// Largest total of the kept files' uncompressed sizes; also the largest accepted git
    /// archive, as cmd/go caps the archive it spools with the same 500 MiB.
    pub max_total: u64,
    /// Largest root `go.mod`.
    pub max_go_mod: u64,
    /// Largest root `LICENSE`.
    pub max_license: u64,
}

impl Default for CreateLimits {
    fn default() -> Self {
        CreateLimits {
            max_total: 500 << 20,
            max_go_mod: 16 << 20,
            max_license: 16 << 20,
        }
    }
}

/// What a build produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Created {
    /// Number of files in the module zip.
    pub files: usize,
    /// Sum of their uncompressed sizes.
    pub bytes: u64,
    /// Files under the module root that the zip rules left out (vendored packages, nested
    /// modules, symlinks, irregular files, `.hg_archival.txt`).
    pub omitted: usize,
}

/// Why no zip could be built. Messages name the file and the reason, like the go command's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The module path or version is invalid, or the version is not canonical.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// Reading the archive or writing the output failed outside any one entry.
    #[error("module zip i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The git archive is larger than `max_total`.
    #[error("downloaded zip file too large ({size} bytes; max size is {limit} bytes)")]
    ArchiveTooLarge {
        /// Length of the archive.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The zip crate cannot parse the git archive.
    #[error("reading git archive: {0}")]
    Archive(#[source] zip::result::ZipError),
    /// The zip crate's view of an entry differs from the central directory record (duplicate
    /// names merged, or a name replaced from an extra field): never the case for git's zips.
    #[error("reading git archive: inconsistent central directory at entry {entry:?}")]
    InconsistentArchive {
        /// The entry name as stored.
        entry: String,
    },
    /// The archive's first entry has no `/`, so there is no top-level directory to strip.
    #[error("missing top-level directory prefix (entry {entry:?})")]
    MissingTopLevel {
        /// The first entry.
        entry: String,
    },
    /// An entry is outside the top-level directory named by the first entry.
    #[error("zip file contains more than one top-level directory (entry {entry:?})")]
    MultipleTopLevel {
        /// The offending entry.
        entry: String,
    },
    /// The kept files add up to more than `max_total`.
    #[error("module source tree too large (max size is {limit} bytes)")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// Files that make the module unzippable for the go command, one per line as Go lists them.
    #[error("{}", InvalidFile::lines(.0))]
    InvalidFiles(Vec<InvalidFile>),
    /// An entry could not be opened in the git archive.
    #[error("{path:?}: opening in git archive: {source}")]
    OpenEntry {
        /// Path of the file in the module.
        path: String,
        /// The zip crate's reason.
        source: zip::result::ZipError,
    },
    /// Reading (inflating, CRC-checking) an entry of the git archive failed.
    #[error("{path:?}: reading from git archive: {source}")]
    ReadEntry {
        /// Path of the file in the module.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An entry holds more data than its header declares.
    #[error("file {path:?} is larger than declared size ({declared} bytes)")]
    LargerThanDeclared {
        /// Path of the file in the module.
        path: String,
        /// The size in the archive's header.
        declared: u64,
    },
    /// An entry holds less data than its header declares.
    #[error("file {path:?} is smaller ({actual} bytes) than declared size ({declared} bytes)")]
    SmallerThanDeclared {
        /// Path of the file in the module.
        path: String,
        /// The size in the archive's header.
        declared: u64,
        /// The bytes actually read.
        actual: u64,
    },
    /// The zip writer failed.
    #[error("writing module zip: {0}")]
    Write(#[source] zip::result::ZipError),
}

/// A file that makes the module zip invalid, and why (one entry of Go's `FileErrorList`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidFile {
    /// The path relative to the module root (invalid UTF-8 shown as U+FFFD).
    pub path: String,
    /// What is wrong with it.
    pub problem: FileProblem,
}

impl InvalidFile {
    /// The list as Go prints it: `path: reason`, one per line.
    fn lines(files: &[InvalidFile]) -> String {
        let lines: Vec<String> = files.iter().map(|f| f.to_string()).collect();
        lines.join("\n")
    }
}

impl std::fmt::Display for InvalidFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

/// Why one file is invalid in a module zip (`checkFiles`' reasons).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileProblem {
    /// The path is not in `path.Clean` form.
    #[error("file path is not clean")]
    NotClean,
    /// The path is absolute.
    #[error("file path is not relative")]
    NotRelative,
    /// The path is not valid UTF-8.
    #[error("malformed file path {quoted}: invalid UTF-8")]
    InvalidUtf8 {
        /// The path quoted like Go's `%q`, invalid bytes as `\xNN`.
        quoted: String,
    },
    /// The path breaks the file path rules (`module.CheckFilePath`).
    #[error(transparent)]
    Path(ModuleError),
    /// The root go.mod is not spelled `go.mod`.
    #[error("go.mod files must have lowercase names")]
    GoModCase,
    /// Two paths are equal under Unicode case folding.
    #[error("case-insensitive file name collision: {first:?} and {second:?}")]
    CaseCollision {
        /// The path seen first.
        first: String,
        /// The path that collides with it.
        second: String,
    },
    /// A path is used both as a file and as a directory.
    #[error("entry {path:?} is both a file and a directory")]
    FileAndDirectory {
        /// The path in conflict.
        path: String,
    },
    /// The same file appears twice.
    #[error("multiple entries for file {path:?}")]
    DuplicateFile {
        /// The duplicated path.
        path: String,
    },
    /// The root go.mod is larger than `max_go_mod`.
    #[error("go.mod file too large (max size is {limit} bytes)")]
    GoModTooLarge {
        /// The limit.
        limit: u64,
    },
    /// The root LICENSE is larger than `max_license`.
    #[error("LICENSE file too large (max size is {limit} bytes)")]
    LicenseTooLarge {
        /// The limit.
        limit: u64,
    },
}

/// Where a candidate file's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// Entry `n` of the git archive.
    Entry(usize),
    /// The `license` bytes passed by the caller.
    License,
}

/// Builds the module zip for `module@version` from a zip written by
/// `git archive --format=zip --prefix=prefix/ <commit> [-- <subdir>]` at `archive`,
/// keeping only entries under `<top>/<subdir>/` (subdir "" = whole tree), skipping directory
/// entries, adding `license` as `LICENSE` when subdir != "" and the module root has no LICENSE
/// (the caller passes the repository-root LICENSE blob bytes if one exists, else None),
/// applying the zip.Create rules, and writing the result to `out` (created/truncated; not fsynced).
/// Entries are named `<module>@<version>/<path>`, Deflate, no directory entries.
///
/// `out` is only created once every file passed the rules; if reading the archive fails after
/// that, it holds a partial zip the caller must discard.
pub fn create_from_git_archive(
    module: &str,
    version: &str,
    archive: &Path,
    subdir: &str,
    license: Option<&[u8]>,
    out: &Path,
    limits: &CreateLimits,
) -> Result<Created, CreateError> {
    crate::module::check_canonical(module, version)?;
    let mut archive = GitArchive::open(archive, limits)?;
    let files = list_files(&mut archive, subdir, license)?;
    let go = match select::root_gomod(&files) {
        Some(index) => read_go_directive(&mut archive, &files[index], limits)?,
        None => None,
    };
    let selection = select::select(&files, go.as_deref(), limits)?;
    let prefix = format!("{module}@{version}/");
    let bytes = write_zip(out, &prefix, &mut archive, &files, &selection, license)?;
    Ok(Created {
        files: selection.valid.len(),
        bytes,
        omitted: selection.omitted,
    })
}

// === reading the git archive ===

/// The opened git archive: the zip crate's reader, and the raw central directory records in
/// the same order.
struct GitArchive {
    zip: ZipArchive<BufReader<File>>,
    entries: Vec<RawEntry>,
}

impl GitArchive {
    /// Opens the archive, refusing one over `max_total` bytes as cmd/go does.
    fn open(path: &Path, limits: &CreateLimits) -> Result<Self, CreateError> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        if size > limits.max_total {
            return Err(CreateError::ArchiveTooLarge {
                size,
                limit: limits.max_total,
            });
        }
        let zip = ZipArchive::new(BufReader::new(file)).map_err(CreateError::Archive)?;
        let entries = read_central(&mut BufReader::new(File::open(path)?), &zip)?;
        Ok(GitArchive { zip, entries })
    }

    /// The uncompressed size the central directory declares for entry `index` (zip64
    /// included), read without inflating anything.
    fn declared_size(&mut self, index: usize) -> Result<u64, CreateError> {
        let name = &self.entries[index].name;
        let file = self.zip.by_index_raw(index);
        let file = file.map_err(|source| CreateError::OpenEntry {
            path: lossy(name),
            source,
        })?;
        if file.name_raw() != name.as_slice() {
            let entry = lossy(name);
            return Err(CreateError::InconsistentArchive { entry });
        }
        Ok(file.size())
    }

    /// Opens entry `index` (module path `path`) for reading its inflated, CRC-checked bytes.
    fn open_entry(
        &mut self,
        index: usize,
        path: &str,
    ) -> Result<zip::read::ZipFile<'_, BufReader<File>>, CreateError> {
        let name = &self.entries[index].name;
        let file = self.zip.by_index(index);
        let file = file.map_err(|source| CreateError::OpenEntry {
            path: path.to_string(),
            source,
        })?;
        if file.name_raw() != name.as_slice() {
            let entry = lossy(name);
            return Err(CreateError::InconsistentArchive { entry });
        }
        Ok(file)
    }
}

/// One central directory record: what Go's reader sees of an entry before opening it.
#[derive(Debug)]
struct RawEntry {
    /// The name bytes as stored (Go does not decode or replace them).
    name: Vec<u8>,
    /// The type from the creator system and external attributes.
    kind: FileKind,
}

/// Walks the central directory records (the zip crate keeps neither the raw creator system nor
/// duplicate names) and checks that the crate saw the same number of entries.
fn read_central<R: Read + Seek>(
    reader: &mut R,
    zip: &ZipArchive<BufReader<File>>,
) -> Result<Vec<RawEntry>, CreateError> {
    reader.seek(SeekFrom::Start(zip.central_directory_start()))?;
    let mut entries = Vec::with_capacity(zip.len().min(1 << 16));
    loop {
        let mut fixed = [0u8; CENTRAL_FIXED_LEN];
        match reader.read_exact(&mut fixed) {
            Ok(()) if fixed[..4] == CENTRAL_SIGNATURE => {}
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
        let u16_at = |i: usize| u16::from_le_bytes([fixed[i], fixed[i + 1]]);
        let attrs = u32::from_le_bytes([fixed[38], fixed[39], fixed[40], fixed[41]]);
        let mut name = vec![0u8; usize::from(u16_at(28))];
        reader.read_exact(&mut name)?;
        let skip = i64::from(u16_at(30)) + i64::from(u16_at(32));
        reader.seek(SeekFrom::Current(skip))?;
        let kind = file_kind(u16_at(4), attrs);
        entries.push(RawEntry { name, kind });
    }
    if entries.len() != zip.len() {
        let entry = entries.last().map(|e| lossy(&e.name)).unwrap_or_default();
        return Err(CreateError::InconsistentArchive { entry });
    }
    Ok(entries)
}

/// Go's `zip.FileHeader.Mode()` type bits: Unix modes for creators Unix (3) and macOS (19),
/// MS-DOS attributes for FAT (0), NTFS (11) and VFAT (14), a plain file otherwise. git writes
/// regular files as FAT with no attributes, executables and symlinks with Unix modes.
pub(super) fn file_kind(made_by: u16, attrs: u32) -> FileKind {
    const S_IFMT: u32 = 0o170000;
    const MSDOS_DIR: u32 = 0x10;
    match made_by >> 8 {
        3 | 19 => match (attrs >> 16) & S_IFMT {
            0o040000 => FileKind::Dir,
            0o120000 => FileKind::Symlink,
            // Block and character devices, pipes and sockets.
            0o060000 | 0o020000 | 0o010000 | 0o140000 => FileKind::Other,
            _ => FileKind::Regular,
        },
        0 | 11 | 14 if attrs & MSDOS_DIR != 0 => FileKind::Dir,
        _ => FileKind::Regular,
    }
}

/// The files under `<top>/<subdir>/`, paths relative to the module root, in archive order,
/// plus the repository-root `LICENSE` when the module is in a sub-directory and has none
/// (coderepo.go's loop).
fn list_files(
    archive: &mut GitArchive,
    subdir: &str,
    license: Option<&[u8]>,
) -> Result<Vec<Candidate>, CreateError> {
    let subdir = subdir.trim_matches('/');
    let sub_prefix = if subdir.is_empty() {
        String::new()
    } else {
        format!("{subdir}/")
    };
    let mut top: Option<Vec<u8>> = None;
    let mut have_license = false;
    let mut files = Vec::new();
    for index in 0..archive.entries.len() {
        let entry = &archive.entries[index];
        let top = match &top {
            Some(top) => top,
            None => top.insert(top_prefix(&entry.name)?.to_vec()),
        };
        let Some(name) = entry.name.strip_prefix(top.as_slice()) else {
            let entry = lossy(&entry.name);
            return Err(CreateError::MultipleTopLevel { entry });
        };
        let Some(path) = name.strip_prefix(sub_prefix.as_bytes()) else {
            continue;
        };
        if path.is_empty() || path.ends_with(b"/") {
            continue;
        }
        have_license |= path == b"LICENSE";
        let (path, kind) = (path.to_vec(), entry.kind);
        files.push(Candidate {
            path,
            kind,
            size: archive.declared_size(index)?,
            source: Source::Entry(index),
        });
    }
    if let (Some(data), false, false) = (license, have_license, subdir.is_empty()) {
        files.push(Candidate {
            path: b"LICENSE".to_vec(),
            kind: FileKind::Regular,
            size: data.len() as u64,
            source: Source::License,
        });
    }
    Ok(files)
}

/// The top-level directory prefix (`prefix/`) named by the first entry.
fn top_prefix(first: &[u8]) -> Result<&[u8], CreateError> {
    match first.iter().position(|&b| b == b'/') {
        Some(slash) => Ok(&first[..=slash]),
        None => Err(CreateError::MissingTopLevel {
            entry: lossy(first),
        }),
    }
}

/// The root go.mod's `go` version (see [`go_directive`]). A go.mod over `max_go_mod` is not
/// parsed: the zip fails on its size anyway.
fn read_go_directive(
    archive: &mut GitArchive,
    gomod: &Candidate,
    limits: &CreateLimits,
) -> Result<Option<String>, CreateError> {
    let Source::Entry(index) = gomod.source else {
        return Ok(None);
    };
    let file = archive.open_entry(index, "go.mod")?;
    let mut data = Vec::new();
    let read = file
        .take(limits.max_go_mod.saturating_add(1))
        .read_to_end(&mut data);
    read.map_err(|source| CreateError::ReadEntry {
        path: "go.mod".to_string(),
        source,
    })?;
    if data.len() as u64 > limits.max_go_mod {
        return Ok(None);
    }
    Ok(go_directive(&data))
}

/// The name for messages: lossy UTF-8.
fn lossy(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

// === writing ===

/// Writes the selected files to a new zip at `out`, each named `prefix` + path, Deflate;
/// returns the total uncompressed bytes.
fn write_zip(
    out: &Path,
    prefix: &str,
    archive: &mut GitArchive,
    files: &[Candidate],
    selection: &select::Selection,
    license: Option<&[u8]>,
) -> Result<u64, CreateError> {
    let mut writer = ZipWriter::new(BufWriter::new(File::create(out)?));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let mut copier = Copier::new();
    for (index, path) in &selection.valid {
        let file = &files[*index];
        writer
            .start_file(format!("{prefix}{path}"), options)
            .map_err(CreateError::Write)?;
        match file.source {
            Source::Entry(entry) => {
                let mut reader = archive.open_entry(entry, path)?;
                copier.copy(&mut reader, &mut writer, path, file.size)?;
            }
            Source::License => {
                let mut data = license.unwrap_or_default();
                copier.copy(&mut data, &mut writer, path, file.size)?;
            }
        }
    }
    let buffered = writer.finish().map_err(CreateError::Write)?;
    buffered.into_inner().map_err(|e| e.into_error())?;
    Ok(copier.total)
}

/// Streams files into the output through one buffer, counting the bytes.
struct Copier {
    buf: Vec<u8>,
    /// Bytes copied so far, all files together.
    total: u64,
}

impl Copier {
    fn new() -> Self {
        Copier {
            buf: vec![0u8; BUF_LEN],
            total: 0,
        }
    }

    /// Copies `reader` to `writer`; it must produce exactly `declared` bytes. Stops as soon as
    /// it produces more.
    fn copy(
        &mut self,
        reader: &mut impl Read,
        writer: &mut impl Write,
        path: &str,
        declared: u64,
    ) -> Result<(), CreateError> {
        let mut actual: u64 = 0;
        loop {
            let n = match reader.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    let path = path.to_string();
                    return Err(CreateError::ReadEntry { path, source });
                }
            };
            actual += n as u64;
            if actual > declared {
                let path = path.to_string();
                return Err(CreateError::LargerThanDeclared { path, declared });
            }
            writer.write_all(&self.buf[..n])?;
        }
        if actual != declared {
            let path = path.to_string();
            return Err(CreateError::SmallerThanDeclared {
                path,
                declared,
                actual,
            });
        }
        self.total += actual;
        Ok(())
    }
}
