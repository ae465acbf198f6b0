//! Module zip rules: validating a downloaded module zip the way the go command would, building
//! one from `git archive` output the way the go command does in direct mode, and the `h1:`
//! (dirhash `Hash1`) hashes of zips and go.mod files (PROTOCOL.md §3, §4).
//!
//! [`check_zip`] reads a zip from any `Read + Seek` (no other I/O), rejects what a Go client would
//! reject, and computes the zip's `h1:` in the same pass with constant memory per entry.
//! [`hash_gomod`] and [`hash_files`] are the building blocks for go.sum lines. Errors are
//! [`ZipError`]. [`create_from_git_archive`] builds a zip (file selection in `select`, the root
//! go.mod's `go` line via [`go_directive`]); its errors are [`CreateError`].

mod central;
mod check;
pub mod create;
mod error;
mod gomod;
mod gomod_tables;
mod hash;
mod names;
mod select;

#[cfg(test)]
mod tests;

pub use check::{check_zip, ZipLimits, ZipSummary};
pub use create::{
    create_from_git_archive, CreateError, CreateLimits, Created, FileProblem, InvalidFile,
};
pub use error::ZipError;
pub use gomod::go_directive;
pub use hash::{hash_files, hash_gomod};
