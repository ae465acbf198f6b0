//! `direct`: serving modules straight from their git repositories, as the go command does with
//! `GOPROXY=direct`, from persistent bare mirrors kept under the data directory.
//!
//! - [`config`]: the `[direct]` section (mirror directory, host mappings, credentials, limits);
//! - [`credentials`]: per-host secrets handed to `git` through its environment, never logged;
//! - [`discover`]: module path → repository (host mappings, static rules, `?go-get=1`);
//! - `git`: running the `git` command with deadlines and per-host concurrency, one bare mirror
//!   per repository;
//! - `source`: [`Direct`], the entry point the upstream chain calls for `direct` entries;
//! - `repo`: the go command's `coderepo` rules: versions from tags, pseudo-versions, `go.mod`
//!   location, and the module zip built from `git archive`.

pub mod config;
pub mod credentials;
pub mod discover;
pub mod git;
pub mod gomod;
pub mod metrics;
pub mod repo;

mod source;

pub use source::{Direct, DirectInitError, ScratchFile};
