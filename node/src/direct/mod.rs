//! `direct`: serving modules straight from their git repositories, as the go command does with
//! `GOPROXY=direct`, from persistent bare mirrors kept under the data directory.
//!
//! - [`config`]: the `[direct]` section (mirror directory, host mappings, credentials, limits);
//! - [`credentials`]: per-host secrets handed to `git` through its environment, never logged;
//! - [`discover`]: module path → repository (host mappings, static rules, `?go-get=1`);
//! - [`netguard`]: the addresses client-named repositories may be reached at (SSRF guard);
//! - `git`: running the `git` command with deadlines, output caps and per-host concurrency;
//! - `mirror`: one persistent bare mirror per repository, fetched incrementally (re-exported by
//!   `git`);
//! - `source`: [`Direct`], the entry point the upstream chain calls for `direct` entries;
//! - `repo`: the go command's `coderepo` rules: versions from tags, pseudo-version validation,
//!   `go.mod` location, and the module zip built from `git archive`;
//! - `convert`: a resolved revision → its module version (tags, `+incompatible`,
//!   pseudo-versions);
//! - `timefmt`: commit times as pseudo-version timestamps and RFC 3339 (re-exported by `repo`).

pub mod config;
pub mod credentials;
pub mod discover;
pub mod git;
pub mod gomod;
pub mod metrics;
pub mod netguard;
pub mod repo;

mod convert;
mod mirror;
mod source;
pub(crate) mod timefmt;

pub use source::{Direct, DirectInitError, ScratchFile};
