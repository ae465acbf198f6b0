//! Keeping secrets out of output: [`redact_url`] for URLs, [`scrub`] for free text such as git's
//! stderr, before either is logged or returned.

use super::http::{basic_b64, DEFAULT_TOKEN_USER};
use super::secret::REDACTED;
use super::Credentials;

/// Secrets shorter than this are not replaced literally by [`scrub`]: they would mangle ordinary
/// words, and no real token is that short.
const MIN_SCRUB_LEN: usize = 4;

/// `url` with any userinfo password removed, for logs and errors (`https://user@host/x`).
pub fn redact_url(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    format!(
        "{}{}{}",
        &url[..start],
        redact_authority(&url[start..end]),
        &url[end..]
    )
}

/// `user:password@host` → `user@host`; anything else unchanged.
fn redact_authority(authority: &str) -> String {
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{user}@{host}")
        }
        _ => authority.to_owned(),
    }
}

/// Removes anything that looks like a secret from git's stderr before it is logged or returned:
/// passwords in URL userinfo, `Authorization:` header values, `Basic`/`Bearer` tokens, and the
/// literal current secret values (and their Basic-auth encodings).
pub fn scrub(text: &str, creds: &Credentials) -> String {
    let mut out = scrub_patterns(text);
    for secret in creds.current_secrets() {
        if out.contains(&secret) {
            out = out.replace(&secret, REDACTED);
        }
    }
    out
}

/// The pattern part of [`scrub`], line by line.
fn scrub_patterns(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let line = scrub_userinfo(line);
        out.push_str(&scrub_auth(&line));
    }
    out
}

/// Drops the password of every `scheme://user:password@host` in `line`.
fn scrub_userinfo(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find("://") {
        let start = i + 3;
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>') || c.is_whitespace()
            })
            .unwrap_or(after.len());
        out.push_str(&redact_authority(&after[..end]));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Redacts `Authorization: …` to the end of the line and `Basic`/`Bearer <token>` words.
fn scrub_auth(line: &str) -> String {
    let lower = line.to_ascii_lowercase();
    if let Some(i) = lower.find("authorization:") {
        let end = i + "authorization:".len();
        return format!("{} {REDACTED}", &line[..end]);
    }
    let words: Vec<&str> = line.split(' ').collect();
    let mut out: Vec<&str> = Vec::with_capacity(words.len());
    let mut redact_next = false;
    for word in words {
        if redact_next && word.len() >= 8 {
            out.push(REDACTED);
            redact_next = false;
            continue;
        }
        redact_next = word.eq_ignore_ascii_case("basic") || word.eq_ignore_ascii_case("bearer");
        out.push(word);
    }
    out.join(" ")
}

// === impl Credentials ===

impl Credentials {
    /// Every secret value currently in use (for [`scrub`]); unreadable ones are skipped.
    fn current_secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for entry in &self.entries {
            if let Ok(secret) = entry.secret(self.env.as_ref()) {
                let user = entry.username.as_deref().unwrap_or(DEFAULT_TOKEN_USER);
                out.push(basic_b64(user, secret.expose()));
                out.push(secret.0);
            }
        }
        for line in self.netrc_entries().unwrap_or_default() {
            out.push(basic_b64(&line.login, &line.password));
            out.push(line.password);
        }
        out.retain(|s| s.len() >= MIN_SCRUB_LEN);
        // Longest first, so a secret that contains another is replaced whole.
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out
    }
}
