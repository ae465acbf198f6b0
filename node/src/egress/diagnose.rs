//! Turns TLS verification failures into messages that say what to change. A gateway that
//! inspects TLS shows up as `UnknownIssuer`; the operator must learn which host failed and which
//! setting fixes it, not only that "the request failed".

/// What fixes an untrusted certificate, shown in error bodies, logs and `--check-upstream`.
pub const TLS_FIX: &str = "add the CA that signed it (behind a TLS-inspecting gateway: the gateway's CA) to the system trust store, point SSL_CERT_FILE at a PEM bundle that contains it, or set egress.extra_ca_file";

/// `e` and its causes on one line, each cause once (client libraries repeat them).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let msg = cause.to_string();
        if !text.contains(&msg) {
            text.push_str(": ");
            text.push_str(&msg);
        }
        source = cause.source();
    }
    text
}

/// A one-line explanation with the fix when `error` (an error chain as text) is a certificate
/// verification failure for `host`; `None` for every other error.
pub fn tls_hint(host: &str, error: &str) -> Option<String> {
    let detail = error
        .split("invalid peer certificate: ")
        .nth(1)
        .map(|rest| rest.split([':', ';', ')']).next().unwrap_or(rest).trim())?;
    let fix = if detail.contains("NotValidForName") {
        "the certificate is not for this host name: check the URL, and whether a proxy or gateway answers in its place"
    } else if detail.contains("Expired") || detail.contains("NotValidYet") {
        "the certificate is outside its validity period: check this machine's clock, or ask the server's operator to renew it"
    } else {
        TLS_FIX
    };
    Some(format!(
        "TLS certificate of {host} was rejected ({detail}): {fix}"
    ))
}

/// The fix for a git stderr that reports a certificate verification failure (curl with OpenSSL
/// or GnuTLS); `None` otherwise.
pub fn git_tls_hint(stderr: &str) -> Option<&'static str> {
    let lower = stderr.to_ascii_lowercase();
    let markers = [
        "server certificate verification failed",
        "ssl certificate problem",
        "certificate verify failed",
        "unable to get local issuer certificate",
    ];
    markers.iter().any(|m| lower.contains(m)).then_some(TLS_FIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_issuer_names_host_error_and_settings() {
        let err = "error sending request: client error (Connect): invalid peer certificate: UnknownIssuer";
        let hint = tls_hint("proxy.golang.org", err).unwrap();
        assert!(
            hint.contains("proxy.golang.org") && hint.contains("UnknownIssuer"),
            "{hint}"
        );
        assert!(
            hint.contains("SSL_CERT_FILE") && hint.contains("egress.extra_ca_file"),
            "{hint}"
        );
        let name = tls_hint("h", "invalid peer certificate: NotValidForName").unwrap();
        assert!(name.contains("host name"), "{name}");
        assert_eq!(tls_hint("h", "connection refused"), None);
    }

    #[test]
    fn git_certificate_errors_are_recognised() {
        let gnutls = "fatal: unable to access 'https://h/r/': server certificate verification failed. CAfile: /x CRLfile: none";
        let openssl = "fatal: unable to access 'https://h/r/': SSL certificate problem: unable to get local issuer certificate";
        assert!(git_tls_hint(gnutls).is_some() && git_tls_hint(openssl).is_some());
        assert_eq!(git_tls_hint("fatal: repository not found"), None);
    }
}
