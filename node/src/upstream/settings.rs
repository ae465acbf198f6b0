//! [`UpstreamSettings`]: timeouts, retries, concurrency and circuit-breaker knobs for upstream
//! fetching, with defaults suited to a mirror in front of proxy.golang.org.

use std::time::Duration;

use super::error::ConfigProblem;

/// Largest accepted `retries`: beyond this a failing upstream holds requests for minutes.
pub const MAX_RETRIES: u32 = 10;

/// Tuning of upstream requests. Every field has a default; unknown fields are rejected so typos in
/// the config file surface at startup.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamSettings {
    /// Time allowed to establish the TCP (and TLS) connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Time allowed from sending the request until the response headers arrive, in milliseconds.
    pub first_byte_timeout_ms: u64,
    /// Time allowed to read the whole response body, in seconds.
    pub transfer_timeout_secs: u64,
    /// Extra attempts on an entry after a connect error, timeout, truncated body, 429 or 5xx.
    pub retries: u32,
    /// Base of the exponential backoff between attempts, in milliseconds (full jitter applied).
    pub backoff_base_ms: u64,
    /// Upper bound of one backoff delay, also the cap on an upstream `Retry-After`, in milliseconds.
    pub backoff_max_ms: u64,
    /// Upstream requests in flight at once across all entries; further requests wait for a slot.
    pub max_concurrent: usize,
    /// Consecutive failed attempts on one entry that open its circuit breaker; 0 disables breakers.
    pub breaker_failures: u32,
    /// How long an open breaker fails fast before letting one probe request through, in seconds.
    pub breaker_cooldown_secs: u64,
    /// `User-Agent` header sent upstream.
    pub user_agent: String,
    /// Use the proxies that `[egress]` took from the environment (`HTTPS_PROXY`, …) for upstream
    /// requests; proxies set in `[egress]` itself always apply.
    pub system_proxy: bool,
    /// Trust and proxies, from `[egress]` (not a key of this section).
    #[serde(skip)]
    pub egress: crate::egress::Egress,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        UpstreamSettings {
            connect_timeout_ms: 5_000,
            first_byte_timeout_ms: 30_000,
            transfer_timeout_secs: 600,
            retries: 3,
            backoff_base_ms: 200,
            backoff_max_ms: 5_000,
            max_concurrent: 64,
            breaker_failures: 5,
            breaker_cooldown_secs: 30,
            user_agent: concat!("cairn/", env!("CARGO_PKG_VERSION")).to_owned(),
            system_proxy: true,
            egress: crate::egress::Egress::default(),
        }
    }
}

impl UpstreamSettings {
    /// Every problem with these settings (empty when they are usable).
    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let positive = [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("first_byte_timeout_ms", self.first_byte_timeout_ms),
            ("transfer_timeout_secs", self.transfer_timeout_secs),
            ("backoff_max_ms", self.backoff_max_ms),
            ("breaker_cooldown_secs", self.breaker_cooldown_secs),
            ("max_concurrent", self.max_concurrent as u64),
        ];
        for (field, value) in positive {
            if value == 0 {
                problems.push(ConfigProblem::Zero { field });
            }
        }
        if self.backoff_base_ms > self.backoff_max_ms {
            problems.push(ConfigProblem::BackoffRange {
                base_ms: self.backoff_base_ms,
                max_ms: self.backoff_max_ms,
            });
        }
        if self.retries > MAX_RETRIES {
            problems.push(ConfigProblem::TooManyRetries {
                retries: self.retries,
                max: MAX_RETRIES,
            });
        }
        if http::HeaderValue::from_str(&self.user_agent).is_err() || self.user_agent.is_empty() {
            problems.push(ConfigProblem::UserAgent);
        }
        problems
    }

    /// [`Self::connect_timeout_ms`] as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// [`Self::first_byte_timeout_ms`] as a duration.
    pub fn first_byte_timeout(&self) -> Duration {
        Duration::from_millis(self.first_byte_timeout_ms)
    }

    /// [`Self::transfer_timeout_secs`] as a duration.
    pub fn transfer_timeout(&self) -> Duration {
        Duration::from_secs(self.transfer_timeout_secs)
    }

    /// [`Self::breaker_cooldown_secs`] as a duration.
    pub fn breaker_cooldown(&self) -> Duration {
        Duration::from_secs(self.breaker_cooldown_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let s = UpstreamSettings::default();
        assert!(s.problems().is_empty(), "{:?}", s.problems());
        assert_eq!(s.connect_timeout_ms, 5_000);
        assert_eq!(s.retries, 3);
        assert_eq!(s.max_concurrent, 64);
        assert!(s.user_agent.starts_with("cairn/"));
    }

    #[test]
    fn every_problem_is_reported() {
        let s = UpstreamSettings {
            connect_timeout_ms: 0,
            max_concurrent: 0,
            backoff_base_ms: 10_000,
            retries: 99,
            user_agent: String::new(),
            ..UpstreamSettings::default()
        };
        let problems = s.problems();
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(problems.contains(&ConfigProblem::Zero {
            field: "max_concurrent"
        }));
        assert!(problems.contains(&ConfigProblem::UserAgent));
    }

    #[test]
    fn partial_config_uses_defaults_and_unknown_fields_are_rejected() {
        let s: UpstreamSettings = serde_json::from_str(r#"{"retries":1}"#).unwrap();
        assert_eq!(s.retries, 1);
        assert_eq!(s.backoff_max_ms, 5_000);
        assert!(serde_json::from_str::<UpstreamSettings>(r#"{"retry":1}"#).is_err());
    }
}
