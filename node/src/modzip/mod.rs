//! Pure module zip rules: validating a downloaded module zip the way the go command would, and the
//! `h1:` (dirhash `Hash1`) hashes of zips and go.mod files (PROTOCOL.md §3, §4).
//!
//! [`check_zip`] reads a zip from any `Read + Seek` (no other I/O), rejects what a Go client would
//! reject, and computes the zip's `h1:` in the same pass with constant memory per entry.
//! [`hash_gomod`] and [`hash_files`] are the building blocks for go.sum lines. Errors are
//! [`ZipError`].

mod central;
mod check;
mod error;
mod hash;
mod names;

#[cfg(test)]
mod tests;

pub use check::{check_zip, ZipLimits, ZipSummary};
pub use error::ZipError;
pub use hash::{hash_files, hash_gomod};
