//! Operator policy on the GOPROXY port (issue 12): deny rules and purge tombstones answered
//! before the mirror is asked, lists and `@latest` filtered, the `/index` feed, and the local
//! worker that deletes the blobs of purged versions.
//!
//! The rules themselves are replicated state (`raft/policy.rs`); this module only reads them.

pub mod backfill;
pub mod gate;
pub mod index;
pub mod metrics;
pub mod purger;
mod settings;

#[cfg(test)]
mod tests;

pub use settings::PolicySettings;
