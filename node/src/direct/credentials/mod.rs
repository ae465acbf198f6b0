//! Credentials for `git` and `?go-get=1` discovery, handled so that they never leak.
//!
//! - Secrets live in files or environment variables named by `[[direct.credentials]]` (or in
//!   the netrc file) and are **re-read on every use**, so a rotated Kubernetes secret keeps
//!   working without a restart. Nothing here keeps a secret value in memory longer than one call.
//! - They reach `git` only through its environment (`GIT_CONFIG_*`, `GIT_SSH_COMMAND`), never
//!   through process arguments, which any local user can read in `/proc`.
//! - [`Secret`] prints as `<redacted>`; [`redact_url`] and [`scrub`] clean URLs and git's stderr
//!   before they reach a log or an HTTP error body.
//!
//! An explicit entry for a host beats the netrc file. As the go command does, netrc credentials
//! are sent over `https` only; an explicit entry also applies to `http://` URLs of its host,
//! because the operator named that host on purpose (test setups, internal networks).
//!
//! The files: `store` holds [`Credentials`] (the configured entries and the netrc file, loaded and
//! checked), `http` and `git_env` turn them into an `Authorization` header or a `git` environment,
//! `netrc` parses netrc files, `remote` takes remote URLs apart, `secret` and `redact` keep values
//! out of output, and `error` holds [`CredentialError`].

mod error;
mod git_env;
mod http;
mod netrc;
mod redact;
mod remote;
mod secret;
mod store;
#[cfg(test)]
mod tests;

pub use error::CredentialError;
pub use http::DEFAULT_TOKEN_USER;
pub use redact::{redact_url, scrub};
pub(crate) use remote::{parse_remote, RemoteScheme};
pub use secret::Secret;
pub use store::Credentials;
