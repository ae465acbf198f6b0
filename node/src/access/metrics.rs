//! Metric names owned by access control, and their descriptions.

/// Authentication attempts by `method` (basic, bearer, none), `source` (token, jwt, none) and
/// `outcome` (ok, anonymous, or an [`super::AuthFailure`] label).
pub const ATTEMPTS_TOTAL: &str = "cairn_auth_attempts_total";
/// Reloads of credential sources by `source` (tokens_file, jwks_file, jwks_url) and `result`
/// (ok, error).
pub const RELOADS_TOTAL: &str = "cairn_auth_reloads_total";
/// Credentials currently loaded, by `kind` (tokens, jwks).
pub const LOADED: &str = "cairn_auth_loaded";

/// Registers help text for the access-control metrics.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        ATTEMPTS_TOTAL,
        "Authentication attempts on the GOPROXY port, by method (basic, bearer, none), source (token, jwt, none) and outcome (ok, anonymous, or the failure reason)."
    );
    describe_counter!(
        RELOADS_TOTAL,
        "Loads of the tokens file and the JWK set after startup, by source (tokens_file, jwks_file, jwks_url) and result (ok, error); on error the previous set stays in use."
    );
    describe_gauge!(
        LOADED,
        "Credentials currently in use, by kind (tokens: static tokens, jwks: usable JWT verification keys)."
    );
}

/// Counts one authentication attempt.
pub(crate) fn attempt(method: &'static str, source: &'static str, outcome: &'static str) {
    metrics::counter!(ATTEMPTS_TOTAL, "method" => method, "source" => source, "outcome" => outcome)
        .increment(1);
}

/// Counts one reload.
pub(crate) fn reload(source: &'static str, result: &'static str) {
    metrics::counter!(RELOADS_TOTAL, "source" => source, "result" => result).increment(1);
}

/// Sets how many credentials of `kind` are loaded.
pub(crate) fn loaded(kind: &'static str, n: usize) {
    metrics::gauge!(LOADED, "kind" => kind).set(n as f64);
}
