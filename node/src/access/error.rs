//! Typed errors: why settings or files are unusable ([`AccessError`]) and why a request's
//! credentials were refused ([`AuthFailure`]).

use std::path::PathBuf;

use crate::routing::GlobError;

/// A problem with the `[access]` settings or with a file they name, found at startup.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// Access control is on but no credential can ever be valid.
    #[error("access.enabled is true but neither access.tokens_file nor [access.jwt] is set; add at least one")]
    NoCredentialSource,
    /// A principal is not one of the four known forms.
    #[error("{at}: unknown principal {principal:?}; use \"anonymous\", \"authenticated\", \"user:<name>\" or \"group:<name>\"")]
    BadPrincipal {
        /// Where it was found (`access.default`, `access.rules[2].allow`).
        at: String,
        /// The offending entry.
        principal: String,
    },
    /// A rule's pattern is not a valid glob list.
    #[error("access.rules[{index}].pattern: {source}")]
    BadPattern {
        /// Index of the rule.
        index: usize,
        /// What is wrong with the pattern.
        source: GlobError,
    },
    /// The realm cannot be put inside a quoted `WWW-Authenticate` parameter.
    #[error("access.realm {0:?} must be non-empty printable ASCII without '\"' or '\\'")]
    BadRealm(String),
    /// A configured SHA-256 is not 64 hex digits.
    #[error("{at} must be 64 hex digits (the SHA-256 of the token, e.g. from `cairn token hash`)")]
    BadHash {
        /// The setting (`access.metrics_token_sha256`).
        at: &'static str,
    },
    /// `[access.jwt]` has no `issuer`.
    #[error("access.jwt.issuer is required: set it to the identity provider's `iss` value")]
    JwtNoIssuer,
    /// `[access.jwt]` has no `audience`.
    #[error("access.jwt.audience is required: set it to the `aud` value tokens for cairn carry")]
    JwtNoAudience,
    /// `metrics_token_sha256` is set while access control is off (it would not be enforced).
    #[error("access.metrics_token_sha256 is set but access.enabled is false: /metrics would stay open; set access.enabled = true (with a rule `*` = [\"anonymous\"] to keep modules open)")]
    MetricsTokenDisabled,
    /// `[access.jwt]` has neither or both of `jwks_file` and `jwks_url`.
    #[error("access.jwt needs exactly one of jwks_file and jwks_url")]
    JwtKeySource,
    /// `jwks_url` is not an https URL (or http on loopback).
    #[error("access.jwt.jwks_url {0:?} must be an https:// URL (http:// only on loopback): keys fetched in clear text can be replaced")]
    JwtBadUrl(String),
    /// A claim name setting is empty.
    #[error("access.jwt.{0} must not be empty")]
    JwtEmptyClaim(&'static str),
    /// `jwks_refresh_secs` is zero.
    #[error("access.jwt.jwks_refresh_secs must be at least 1")]
    JwtZeroRefresh,
    /// The tokens file could not be loaded at startup.
    #[error("access.tokens_file {path:?}: {source}")]
    TokensFile {
        /// The file.
        path: PathBuf,
        /// Why it was refused.
        source: TokenFileError,
    },
    /// The JWKS file could not be loaded at startup.
    #[error("access.jwt.jwks_file {path:?}: {source}")]
    JwksFile {
        /// The file.
        path: PathBuf,
        /// Why it was refused.
        source: JwksError,
    },
    /// `jsonwebtoken` has no crypto backend (its features were unified into an unusable set).
    #[error("the JWT library has no crypto provider; enable exactly one of its rust_crypto and aws_lc_rs features")]
    NoCryptoProvider,
}

/// Why a tokens file was refused; the previous good set stays in use after a reload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenFileError {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Read(#[from] std::io::Error),
    /// The file is not the expected TOML.
    #[error("cannot parse: {0}")]
    Parse(#[from] toml::de::Error),
    /// An entry has an empty name.
    #[error("token[{index}]: name must not be empty")]
    EmptyName {
        /// Index of the entry.
        index: usize,
    },
    /// An entry's `sha256` is not 64 hex digits.
    #[error("token[{index}] ({name}): sha256 must be 64 hex digits")]
    BadHash {
        /// Index of the entry.
        index: usize,
        /// Its name.
        name: String,
    },
    /// Two entries carry the same hash, so a token would have two identities.
    #[error("token[{index}] ({name}): the same sha256 appears earlier in the file")]
    DuplicateHash {
        /// Index of the later entry.
        index: usize,
        /// Its name.
        name: String,
    },
}

/// Why a JWKS document was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Read(#[from] std::io::Error),
    /// The document is not a JWK set.
    #[error("not a JWK set: {0}")]
    Parse(#[from] serde_json::Error),
    /// No key of the set can verify an allowed algorithm.
    #[error("no usable signing key (RSA, EC P-256/P-384 or Ed25519 with use=sig)")]
    NoUsableKey,
    /// The URL could not be fetched.
    #[error("fetch failed: {0}")]
    Fetch(#[from] reqwest::Error),
    /// The URL answered with an error status.
    #[error("fetch answered HTTP {0}")]
    Status(u16),
    /// The document is larger than any sensible key set.
    #[error("document larger than {0} bytes")]
    TooLarge(usize),
}

/// Why presented credentials were refused. The message is safe to log and to count: it never
/// contains the secret, the login or any claim value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// A Bearer token (or Basic password) matches no static token.
    #[error("unknown token")]
    UnknownToken,
    /// A Basic login names no static token.
    #[error("unknown user")]
    UnknownUser,
    /// A Basic password does not match the login's tokens.
    #[error("bad password")]
    BadPassword,
    /// The JWT's `exp` has passed.
    #[error("token expired")]
    Expired,
    /// The JWT's `nbf` lies in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// The JWT's signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The JWT's `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// The JWT's `aud` does not include the configured audience.
    #[error("wrong audience")]
    WrongAudience,
    /// The JWT's `alg` is not allowed (`none`, HMAC) or does not fit its key.
    #[error("algorithm not allowed")]
    BadAlgorithm,
    /// The JWT's `kid` names no key of the JWK set.
    #[error("unknown signing key")]
    UnknownKey,
    /// The header or token cannot be decoded, or a required claim is missing or mistyped.
    #[error("malformed credentials")]
    Malformed,
    /// The `Authorization` scheme is neither Basic nor Bearer.
    #[error("unsupported authorization scheme")]
    UnsupportedScheme,
}

impl AuthFailure {
    /// A short snake_case label, used as the metric `outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::UnknownToken => "unknown_token",
            AuthFailure::UnknownUser => "unknown_user",
            AuthFailure::BadPassword => "bad_password",
            AuthFailure::Expired => "expired",
            AuthFailure::NotYetValid => "not_yet_valid",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::WrongIssuer => "wrong_issuer",
            AuthFailure::WrongAudience => "wrong_audience",
            AuthFailure::BadAlgorithm => "bad_algorithm",
            AuthFailure::UnknownKey => "unknown_key",
            AuthFailure::Malformed => "malformed",
            AuthFailure::UnsupportedScheme => "unsupported_scheme",
        }
    }
}
