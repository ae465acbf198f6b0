//! Access control for the GOPROXY port: who a request is, and whether it may read a module path.
//!
//! Clients are the `go` command, which sends HTTP Basic from `.netrc` or `Authorization: Bearer`
//! from a GOAUTH helper. [`Access::authenticate`] turns those headers into an [`Authn`]: a
//! static token from the hashed tokens file ([`tokens`]), or a JWT from the organization's
//! identity provider verified against a JWK set ([`jwt`]). [`Access::authorize`] then applies
//! the `[[access.rules]]` (routing-rule globs, first match wins) and answers a [`Decision`]:
//! 200, 401 or 403. Files are re-read off the request path by [`Access::spawn_reloader`].
//!
//! - [`settings`]: the `[access]` section and its validation; [`error`]: typed errors.
//! - `credentials`: parsing the `Authorization` header.
//! - `rules`: principals (`anonymous`, `authenticated`, `user:`, `group:`) and path rules.
//! - `gate`: [`Access`], which ties them together; [`metrics`]: what it counts.

mod credentials;
pub mod error;
mod gate;
mod identity;
pub mod jwt;
pub mod metrics;
mod reload;
mod rules;
pub mod settings;
pub mod tokens;

#[cfg(test)]
mod tests;

pub use error::{AccessError, AuthFailure, JwksError, TokenFileError};
pub use gate::{Access, RELOAD_POLL};
pub use identity::{AuthMethod, Authn, Identity};
pub use rules::Decision;
pub use settings::{AccessRule, AccessSettings, JwtSettings};
pub use tokens::{hash_token, new_token};
