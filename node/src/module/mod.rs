//! Pure Go module rules: module/import/file path validity, major version suffixes, `!`-escaping of
//! paths and versions, semantic versions (Go's `x/mod/semver` semantics) and pseudo-versions.
//!
//! Everything here follows the go command's `golang.org/x/mod/module` and `semver` packages
//! (PROTOCOL.md §2) so that the mirror accepts and rejects exactly what a Go client would. No I/O.
//! The one error type is [`ModuleError`]; its messages are fit to send to a client.

mod error;
mod escape;
mod path;
mod pseudo;
pub mod semver;
pub mod unicode;
mod unicode_tables;
mod version;

#[cfg(test)]
mod tests;

pub use error::{ModuleError, PathKind, PathProblem};
pub use escape::{escape_path, escape_version, unescape_path, unescape_version};
pub use path::{
    check, check_canonical, check_file_path, check_import_path, check_path, check_path_major,
    split_path_version,
};
pub use pseudo::{
    is_pseudo_version, pseudo_version, pseudo_version_base, pseudo_version_rev,
    pseudo_version_rfc3339, pseudo_version_time,
};
pub use version::{canonical_version, is_canonical, sort_versions};
