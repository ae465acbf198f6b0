//! Backoff between attempts on one upstream entry: exponential with full jitter (AWS architecture
//! blog, "Exponential Backoff And Jitter", 2015), so a fleet of mirror nodes retrying a struggling
//! upstream spreads out instead of arriving in waves. An upstream `Retry-After` in seconds replaces
//! the jittered delay, capped at the same maximum.

use std::time::Duration;

use rand::Rng;

/// Delay policy between attempts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// A policy with delays `random(0 ..= min(max, base * 2^retry))`.
    pub(crate) fn new(base: Duration, max: Duration) -> Backoff {
        Backoff { base, max }
    }

    /// The delay before retry number `retry` (0 for the first retry). `retry_after` is the
    /// upstream's `Retry-After`, honoured up to the maximum delay.
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max);
        }
        let factor = 2u32.saturating_pow(retry.min(31));
        let ceiling = self.base.saturating_mul(factor).min(self.max);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=ceiling_ms))
    }
}

/// Parses a `Retry-After` header given in seconds. HTTP dates are ignored (the jittered backoff
/// is used instead): upstream proxies send seconds in practice, and a date needs a trusted clock.
pub(crate) fn parse_retry_after(value: Option<&http::HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    text.parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_the_exponential_ceiling_and_the_cap() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1_000));
        for _ in 0..200 {
            assert!(backoff.delay(0, None) <= Duration::from_millis(100));
            assert!(backoff.delay(2, None) <= Duration::from_millis(400));
            assert!(backoff.delay(40, None) <= Duration::from_millis(1_000));
        }
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1_000));
        let two = Some(Duration::from_millis(700));
        assert_eq!(backoff.delay(0, two), Duration::from_millis(700));
        let long = Some(Duration::from_secs(3_600));
        assert_eq!(backoff.delay(0, long), Duration::from_millis(1_000));
    }

    #[test]
    fn retry_after_parses_seconds_only() {
        let secs = http::HeaderValue::from_static(" 3 ");
        assert_eq!(parse_retry_after(Some(&secs)), Some(Duration::from_secs(3)));
        let date = http::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(parse_retry_after(Some(&date)), None);
        assert_eq!(parse_retry_after(None), None);
    }
}
