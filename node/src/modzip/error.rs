//! The error type of module zip checking and hashing: one variant per reason the go command would
//! refuse a zip, each naming the offending entry.

use crate::module::ModuleError;

/// Why a module zip (or a set of names to hash) was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZipError {
    /// The module path or version is invalid or the version is not canonical.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// The zip file itself is larger than `max_zip_bytes`.
    #[error("module zip file is too large ({size} bytes; limit is {limit} bytes)")]
    ZipTooLarge {
        /// Length of the zip file.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Reading or seeking the underlying zip file failed (outside of any entry's data).
    #[error("reading module zip: {0}")]
    Io(#[from] std::io::Error),
    /// The zip crate cannot parse the archive (truncated file, no central directory, ...).
    #[error("malformed module zip: {0}")]
    Malformed(#[source] zip::result::ZipError),
    /// The central directory lists entries the zip reader did not see the same way (more records
    /// than the end record announces, or an alternative Unicode name in an extra field).
    #[error("malformed module zip: inconsistent central directory at entry {entry:?}")]
    InconsistentDirectory {
        /// The entry name as stored in the central directory.
        entry: String,
    },
    /// An entry name is not valid UTF-8.
    #[error("zip entry {entry:?}: name is not valid utf-8")]
    NonUtf8Name {
        /// The name with invalid bytes replaced.
        entry: String,
    },
    /// An entry name does not start with `module@version/`.
    #[error("zip entry {entry:?}: path does not have prefix {prefix:?}")]
    MissingPrefix {
        /// The offending entry.
        entry: String,
        /// The required prefix.
        prefix: String,
    },
    /// An entry is named exactly `module@version`, without the trailing slash.
    #[error("zip entry {entry:?}: module prefix without a trailing slash")]
    PrefixWithoutSlash {
        /// The offending entry.
        entry: String,
    },
    /// An entry name is not in clean form (`a/../b`, `./a`, `a//b`).
    #[error("zip entry {entry:?}: file path is not clean")]
    NotClean {
        /// The offending entry.
        entry: String,
    },
    /// The file path inside the module fails the file path rules.
    #[error("zip entry {entry:?}: {source}")]
    InvalidFilePath {
        /// The offending entry.
        entry: String,
        /// What is wrong with its path.
        source: ModuleError,
    },
    /// Two entries differ only in case (Unicode simple folding).
    #[error("zip entry {entry:?}: case-insensitive file name collision: {first:?} and {second:?}")]
    CaseCollision {
        /// The entry that caused the collision.
        entry: String,
        /// The path seen first.
        first: String,
        /// The path that collides with it.
        second: String,
    },
    /// A path is used both as a file and as a directory.
    #[error("zip entry {entry:?}: {path:?} is both a file and a directory")]
    FileAndDirectory {
        /// The entry that caused the conflict.
        entry: String,
        /// The path in conflict.
        path: String,
    },
    /// The same file appears twice.
    #[error("zip entry {entry:?}: multiple entries for file {path:?}")]
    DuplicateFile {
        /// The second entry.
        entry: String,
        /// The duplicated path.
        path: String,
    },
    /// A `go.mod` (any case) below the module root: nested modules must be absent.
    #[error("zip entry {entry:?}: go.mod file not in module root directory")]
    NestedGoMod {
        /// The offending entry.
        entry: String,
    },
    /// The root go.mod is not spelled exactly `go.mod`.
    #[error("zip entry {entry:?}: go.mod files must have lowercase names")]
    GoModCase {
        /// The offending entry.
        entry: String,
    },
    /// The root go.mod is larger than `max_gomod_bytes`.
    #[error(
        "zip entry {entry:?}: go.mod file too large ({size} bytes; max size is {limit} bytes)"
    )]
    GoModTooLarge {
        /// The offending entry.
        entry: String,
        /// Its declared size.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The root LICENSE is larger than `max_license_bytes`.
    #[error(
        "zip entry {entry:?}: LICENSE file too large ({size} bytes; max size is {limit} bytes)"
    )]
    LicenseTooLarge {
        /// The offending entry.
        entry: String,
        /// Its declared size.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The declared or actually decompressed total exceeds `max_uncompressed_bytes`.
    #[error("total uncompressed size of module contents too large (max size is {limit} bytes)")]
    UncompressedTooLarge {
        /// The configured limit.
        limit: u64,
    },
    /// An entry decompresses to more bytes than its header declares (reading stopped there).
    #[error(
        "zip entry {entry:?}: uncompressed size is larger than declared size ({declared} bytes)"
    )]
    LargerThanDeclared {
        /// The offending entry.
        entry: String,
        /// The size in the central directory.
        declared: u64,
    },
    /// An entry decompresses to fewer bytes than its header declares.
    #[error("zip entry {entry:?}: uncompressed size {actual} bytes differs from declared size ({declared} bytes)")]
    SmallerThanDeclared {
        /// The offending entry.
        entry: String,
        /// The size in the central directory.
        declared: u64,
        /// The number of bytes actually produced.
        actual: u64,
    },
    /// A directory entry carries data (Go's reader refuses to open it).
    #[error("zip entry {entry:?}: directory entry has data")]
    DirectoryWithData {
        /// The offending entry.
        entry: String,
    },
    /// An entry uses a compression method other than store (0) or deflate (8).
    #[error("zip entry {entry:?}: unsupported compression method {method}")]
    UnsupportedCompression {
        /// The offending entry.
        entry: String,
        /// The method number from the central directory.
        method: u16,
    },
    /// An entry cannot be opened (encrypted, bad local header, ...).
    #[error("zip entry {entry:?}: {source}")]
    OpenEntry {
        /// The offending entry.
        entry: String,
        /// The zip crate's reason.
        source: zip::result::ZipError,
    },
    /// Decompressing an entry failed (corrupt deflate data, CRC mismatch, truncated data).
    #[error("zip entry {entry:?}: reading data: {source}")]
    ReadEntry {
        /// The offending entry.
        entry: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A name to hash contains a newline, which the h1 summary format cannot represent.
    #[error("file name {name:?} contains a newline, which h1 hashing does not support")]
    NewlineInName {
        /// The offending name.
        name: String,
    },
}
