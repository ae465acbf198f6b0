//! Module path → git repository, the way the go command finds one in `GOPROXY=direct` mode
//! (`cmd/go/internal/vcs.RepoRootForImportPath`), with configured host mappings in front.
//!
//! The order is:
//! 1. `[[direct.hosts]]` mappings, longest prefix first (no network);
//! 2. the go command's static rules (`vcsPaths`): `github.com/<o>/<r>`, `bitbucket.org/<o>/<r>`,
//!    `hub.jazz.net/git/<u>/<r>`, `git.apache.org/<r>.git`, `git.openstack.org/<o>/<r>`, and a
//!    path element ending in `.git` (no network);
//! 3. `GET https://<module>?go-get=1` and its `<meta name="go-import">` tags, when
//!    `direct.discovery` is on.
//!
//! gitlab.com has no static rule (the go command has none either): GitLab answers `?go-get=1`
//! itself, and a two-element rule would be wrong for its nested groups.
//!
//! Steps 2 and 3 follow client-chosen paths, so their hosts, redirects and repository URLs must
//! pass the address guard ([`crate::direct::netguard`]): non-global addresses are refused
//! ([`DiscoverError::Refused`], served as 404) unless `direct.allow_networks` allows them.
//! Mappings and `direct.resolve` hosts are the operator's own and are not checked.
//!
//! Discovery answers are cached in memory: successes for 10 minutes, answers that say "no such
//! repository" for 30 seconds, and transient failures for 5 seconds.
//!
//! The files follow those steps: `lookup` holds [`Discovery`] itself (options, host mappings and
//! the answer cache), `static_rules` the go command's `vcsPaths`, `go_get` the `?go-get=1` request
//! and the checks on its answer, `html` the go-import tag parser, and `error` [`DiscoverError`].

mod error;
mod go_get;
mod html;
mod lookup;
mod static_rules;
#[cfg(test)]
mod tests;

pub use error::DiscoverError;
pub use go_get::MAX_BODY_BYTES;
pub(crate) use lookup::has_path_prefix;
pub use lookup::{Discovery, DiscoveryOptions};

/// Where a module's code lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRoot {
    /// The module-path prefix that is the repository root (`git.corp.example/team/repo`, or
    /// `x.example/r.git` for the `.git` rule): what the go command calls `Root`.
    pub root: String,
    /// The git remote URL (no credentials in it).
    pub url: String,
    /// The go-import 4th field: the directory inside the repository that holds `root`; "" normally.
    pub subdir: String,
}
