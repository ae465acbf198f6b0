//! The `[access]` section: raw, serde-friendly settings and their validation.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::AccessError;
use super::rules::Principal;
use crate::routing::validate_patterns;

/// The realm used when `realm` is unset.
pub const DEFAULT_REALM: &str = "cairn";
/// The principals allowed on unmatched paths when `default` is unset.
pub const DEFAULT_PRINCIPALS: &[&str] = &["authenticated"];

/// Who may read what through the GOPROXY port. The default is disabled: everything is allowed
/// and no credential is looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessSettings {
    /// Turns authentication and per-path rules on.
    pub enabled: bool,
    /// The realm named in `WWW-Authenticate` challenges (default `cairn`).
    pub realm: Option<String>,
    /// A TOML file of hashed static tokens (`[[token]]` with `name`, `sha256`, `groups`),
    /// re-read when it changes.
    pub tokens_file: Option<PathBuf>,
    /// When set, `/metrics` requires `Authorization: Bearer <token>` whose SHA-256 is this (hex).
    pub metrics_token_sha256: Option<String>,
    /// Principals allowed on paths no rule matches, and on non-module paths such as checksum
    /// database tiles (default `["authenticated"]`).
    pub default: Option<Vec<String>>,
    /// Identity-provider JWTs, verified against a JWK set.
    pub jwt: Option<JwtSettings>,
    /// Per-path rules, first match wins.
    pub rules: Vec<AccessRule>,
}

/// The `[access.jwt]` section: which JWTs are accepted and where their keys come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtSettings {
    /// A JWK set file, re-read when it changes. Exclusive with `jwks_url`.
    pub jwks_file: Option<PathBuf>,
    /// A JWK set URL, fetched at start, every `jwks_refresh_secs`, and on an unknown `kid` (at
    /// most every 30 s). Exclusive with `jwks_file`.
    pub jwks_url: Option<String>,
    /// The required `iss` claim.
    pub issuer: String,
    /// The `aud` value that must be among the token's audiences.
    pub audience: String,
    /// The claim holding the identity name (default `sub`).
    pub name_claim: String,
    /// The claim holding the group list, an array of strings (default `groups`); a single string
    /// is one group, absent means no groups.
    pub groups_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds (default 30).
    pub leeway_secs: u64,
    /// How often a `jwks_url` is fetched again, in seconds (default 300).
    pub jwks_refresh_secs: u64,
}

impl Default for JwtSettings {
    fn default() -> Self {
        JwtSettings {
            jwks_file: None,
            jwks_url: None,
            issuer: String::new(),
            audience: String::new(),
            name_claim: "sub".to_string(),
            groups_claim: "groups".to_string(),
            leeway_secs: 30,
            jwks_refresh_secs: 300,
        }
    }
}

/// One `[[access.rules]]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// Module path globs in routing-rule syntax (comma-separated; `corp.example.com/payments`
    /// covers that module and everything below it).
    pub pattern: String,
    /// Who may read matching paths: `anonymous`, `authenticated`, `user:<name>`,
    /// `group:<name>`. An empty list lets nobody in.
    #[serde(default)]
    pub allow: Vec<String>,
}

impl AccessSettings {
    /// The realm, defaulted.
    pub fn realm(&self) -> &str {
        self.realm.as_deref().unwrap_or(DEFAULT_REALM)
    }

    /// Checks everything that can be checked without touching files; lists every problem.
    pub fn validate(&self) -> Result<(), Vec<AccessError>> {
        let mut errs = Vec::new();
        if self.enabled && self.tokens_file.is_none() && self.jwt.is_none() {
            errs.push(AccessError::NoCredentialSource);
        }
        if !valid_realm(self.realm()) {
            errs.push(AccessError::BadRealm(self.realm().to_string()));
        }
        if let Some(h) = &self.metrics_token_sha256 {
            if !self.enabled {
                errs.push(AccessError::MetricsTokenDisabled);
            }
            if super::tokens::parse_hash(h).is_none() {
                errs.push(AccessError::BadHash {
                    at: "access.metrics_token_sha256",
                });
            }
        }
        if let Some(default) = &self.default {
            check_principals("access.default", default, &mut errs);
        }
        for (index, rule) in self.rules.iter().enumerate() {
            if let Err(source) = validate_patterns(&rule.pattern) {
                errs.push(AccessError::BadPattern { index, source });
            }
            let at = format!("access.rules[{index}].allow");
            check_principals(&at, &rule.allow, &mut errs);
        }
        if let Some(jwt) = &self.jwt {
            jwt.validate(&mut errs);
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }
}

impl JwtSettings {
    fn validate(&self, errs: &mut Vec<AccessError>) {
        if self.issuer.trim().is_empty() {
            errs.push(AccessError::JwtNoIssuer);
        }
        if self.audience.trim().is_empty() {
            errs.push(AccessError::JwtNoAudience);
        }
        match (&self.jwks_file, &self.jwks_url) {
            (Some(_), None) => {}
            (None, Some(url)) => {
                // Keys fetched over plain http could be replaced on the way, and whoever
                // replaces them mints any identity: only loopback may use http.
                let ok = reqwest::Url::parse(url).is_ok_and(|u| match u.scheme() {
                    "https" => true,
                    "http" => u.host_str().is_some_and(|h| {
                        h == "localhost"
                            || h.trim_start_matches('[')
                                .trim_end_matches(']')
                                .parse::<std::net::IpAddr>()
                                .is_ok_and(|ip| ip.is_loopback())
                    }),
                    _ => false,
                });
                if !ok {
                    errs.push(AccessError::JwtBadUrl(url.clone()));
                }
            }
            _ => errs.push(AccessError::JwtKeySource),
        }
        if self.name_claim.is_empty() {
            errs.push(AccessError::JwtEmptyClaim("name_claim"));
        }
        if self.groups_claim.is_empty() {
            errs.push(AccessError::JwtEmptyClaim("groups_claim"));
        }
        if self.jwks_refresh_secs == 0 {
            errs.push(AccessError::JwtZeroRefresh);
        }
    }
}

fn check_principals(at: &str, list: &[String], errs: &mut Vec<AccessError>) {
    for p in list {
        if Principal::parse(p).is_none() {
            errs.push(AccessError::BadPrincipal {
                at: at.to_string(),
                principal: p.clone(),
            });
        }
    }
}

/// Whether `realm` fits in a quoted-string without escaping.
fn valid_realm(realm: &str) -> bool {
    !realm.is_empty()
        && realm
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
}
