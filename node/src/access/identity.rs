//! Who a request is: the result of authentication.

use super::error::AuthFailure;

/// How a valid credential was presented and what kind it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// HTTP Basic whose login and password match a static token (`.netrc`).
    BasicToken,
    /// `Authorization: Bearer` with a static token (GOAUTH helpers).
    BearerToken,
    /// HTTP Basic whose password is a JWT (the login is ignored).
    BasicJwt,
    /// `Authorization: Bearer` with a JWT.
    BearerJwt,
}

impl AuthMethod {
    /// A stable label for logs (`basic_token`, `bearer_jwt`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::BasicToken => "basic_token",
            AuthMethod::BearerToken => "bearer_token",
            AuthMethod::BasicJwt => "basic_jwt",
            AuthMethod::BearerJwt => "bearer_jwt",
        }
    }

    /// The HTTP scheme part (`basic` or `bearer`), the metric `method` label.
    pub fn scheme(self) -> &'static str {
        match self {
            AuthMethod::BasicToken | AuthMethod::BasicJwt => "basic",
            AuthMethod::BearerToken | AuthMethod::BearerJwt => "bearer",
        }
    }

    /// The credential kind (`token` or `jwt`), the metric `source` label.
    pub fn source(self) -> &'static str {
        match self {
            AuthMethod::BasicToken | AuthMethod::BearerToken => "token",
            AuthMethod::BasicJwt | AuthMethod::BearerJwt => "jwt",
        }
    }
}

/// An authenticated client: a static token's `name`, or a JWT's name claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The name `user:<name>` principals match.
    pub name: String,
    /// The groups `group:<name>` principals match.
    pub groups: Vec<String>,
    /// How it was presented.
    pub method: AuthMethod,
}

/// The outcome of authenticating one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authn {
    /// No credentials were presented (or access control is disabled).
    Anonymous,
    /// Valid credentials.
    Authenticated(Identity),
    /// Credentials were presented and refused; always answered with 401.
    Failed(AuthFailure),
}

impl Authn {
    /// The identity, when authenticated.
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Authn::Authenticated(id) => Some(id),
            _ => None,
        }
    }
}
