//! Reading the `Authorization` header into a [`Credential`], before any lookup.

use base64::Engine;
use http::header::AUTHORIZATION;
use http::HeaderMap;

use super::error::AuthFailure;

/// What a request presented. `Debug` never prints the secret.
pub(crate) enum Credential {
    /// No `Authorization` header.
    None,
    /// HTTP Basic (`.netrc`).
    Basic {
        /// The login; not a secret, but never logged either (people type passwords into it).
        login: String,
        /// The password: a static token or a JWT.
        password: String,
    },
    /// `Bearer <token>`: a static token or a JWT.
    Bearer(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::None => f.write_str("None"),
            Credential::Basic { .. } => f.write_str("Basic(<redacted>)"),
            Credential::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Credential {
    /// Parses the request's single `Authorization` header, if any.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Result<Credential, AuthFailure> {
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Ok(Credential::None);
        };
        if values.next().is_some() {
            return Err(AuthFailure::Malformed);
        }
        let value = value.to_str().map_err(|_| AuthFailure::Malformed)?;
        let (scheme, rest) = value.trim().split_once(' ').ok_or(AuthFailure::Malformed)?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            basic(rest)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            match rest {
                "" => Err(AuthFailure::Malformed),
                t => Ok(Credential::Bearer(t.to_string())),
            }
        } else {
            Err(AuthFailure::UnsupportedScheme)
        }
    }

    /// The metric `method` label.
    pub(crate) fn scheme(&self) -> &'static str {
        match self {
            Credential::None => "none",
            Credential::Basic { .. } => "basic",
            Credential::Bearer(_) => "bearer",
        }
    }
}

fn basic(encoded: &str) -> Result<Credential, AuthFailure> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| AuthFailure::Malformed)?;
    let text = String::from_utf8(raw).map_err(|_| AuthFailure::Malformed)?;
    let (login, password) = text.split_once(':').ok_or(AuthFailure::Malformed)?;
    Ok(Credential::Basic {
        login: login.to_string(),
        password: password.to_string(),
    })
}

/// Whether `s` has the shape of a compact JWS (`header.payload.signature`; the signature may be
/// empty so that `alg: none` tokens reach the verifier and are refused with a precise reason).
/// Static tokens never contain a `.`.
pub(crate) fn looks_like_jwt(s: &str) -> bool {
    let mut parts = s.split('.');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(h), Some(p), Some(_), None) if !h.is_empty() && !p.is_empty()
    )
}
