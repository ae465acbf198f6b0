//! A circuit breaker per upstream entry. After `threshold` consecutive failed attempts (connect
//! errors, timeouts, truncated bodies, 429, 5xx — not 404s or other 4xx, which show the upstream
//! is alive) it opens for `cooldown`: requests fail fast without contacting the upstream. After the
//! cooldown one probe is let through (half-open); its success closes the breaker, its failure opens
//! it for another cooldown.
//!
//! Time is passed in explicitly so the state machine is tested without sleeping.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::metrics;

/// Breaker state. A `std` mutex guards it: it is held only for a few instructions and never across
/// an `.await`, which is what `tokio::sync::Mutex` would be for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// The breaker of one upstream (entry or, for sumdb URLs, origin).
#[derive(Debug)]
pub(crate) struct Breaker {
    name: String,
    /// Consecutive failures that open the breaker; 0 disables it.
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
    /// The reason of the last failure, shown while the breaker is open so the real cause (a
    /// refused connection, an untrusted certificate) is not hidden behind "breaker open".
    last_error: Mutex<Option<String>>,
}

/// Permission to make one attempt; report its outcome with [`Ticket::success`] or
/// [`Ticket::failure`]. Dropping an unreported probe ticket (the request was cancelled) lets the next
/// request probe instead, so a cancelled probe cannot wedge the breaker half-open.
#[derive(Debug)]
pub(crate) struct Ticket<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

impl Breaker {
    /// A closed breaker named `name` (used in logs).
    pub(crate) fn new(name: String, threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            name,
            threshold,
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
            last_error: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a plain value that every critical section leaves consistent, so a panic in
        // another holder cannot have corrupted it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The reason of the most recent failed attempt, if any.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Asks to make an attempt at `now`; `None` means fail fast.
    pub(crate) fn admit(&self, now: Instant) -> Option<Ticket<'_>> {
        let mut state = self.lock();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if now >= until => {
                *state = State::HalfOpen { probing: true };
                true
            }
            State::Open { .. } | State::HalfOpen { probing: true } => return None,
            State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                true
            }
        };
        Some(Ticket {
            breaker: self,
            probe,
            reported: false,
        })
    }

    fn on_success(&self) {
        let mut state = self.lock();
        if !matches!(*state, State::Closed { .. }) {
            metrics::breaker_closed();
            tracing::info!(source = %self.name, "upstream circuit breaker closed");
        }
        *state = State::Closed { failures: 0 };
    }

    fn on_failure(&self, probe: bool, now: Instant) {
        if self.threshold == 0 {
            return;
        }
        let mut state = self.lock();
        let open = match *state {
            State::Closed { failures } if failures + 1 >= self.threshold => true,
            State::Closed { failures } => {
                *state = State::Closed {
                    failures: failures + 1,
                };
                false
            }
            // Only the probe's outcome decides a half-open breaker; late failures of requests
            // admitted before the breaker opened change nothing.
            State::HalfOpen { .. } => probe,
            State::Open { .. } => false,
        };
        if open {
            if matches!(*state, State::Closed { .. }) {
                metrics::breaker_opened();
            }
            *state = State::Open {
                until: now + self.cooldown,
            };
            tracing::warn!(source = %self.name, cooldown_secs = self.cooldown.as_secs(), "upstream circuit breaker opened");
        }
    }

    fn release_probe(&self) {
        let mut state = self.lock();
        if *state == (State::HalfOpen { probing: true }) {
            *state = State::HalfOpen { probing: false };
        }
    }

    #[cfg(test)]
    fn is_closed(&self) -> bool {
        matches!(*self.lock(), State::Closed { .. })
    }
}

impl Ticket<'_> {
    /// The attempt reached the upstream and got an answer that shows it is healthy.
    pub(crate) fn success(mut self) {
        self.reported = true;
        self.breaker.on_success();
    }

    /// The attempt failed in a way that counts against the upstream's health; `reason` is kept
    /// for the message of later fail-fast rejections.
    pub(crate) fn failure(mut self, now: Instant, reason: &str) {
        self.reported = true;
        *self
            .breaker
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(reason.to_owned());
        self.breaker.on_failure(self.probe, now);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            self.breaker.release_probe();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new("test".to_owned(), 3, Duration::from_secs(30))
    }

    fn fail(b: &Breaker, now: Instant) {
        b.admit(now).unwrap().failure(now, "refused");
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let b = breaker();
        let now = Instant::now();
        fail(&b, now);
        fail(&b, now);
        b.admit(now).unwrap().success(); // resets the count
        fail(&b, now);
        fail(&b, now);
        assert!(b.admit(now).is_some());
        fail(&b, now);
        assert!(b.admit(now).is_none());
        assert!(b.admit(now + Duration::from_secs(29)).is_none());
    }

    #[test]
    fn half_open_lets_one_probe_through_and_success_closes() {
        let b = breaker();
        let now = Instant::now();
        (0..3).for_each(|_| fail(&b, now));
        let later = now + Duration::from_secs(30);
        let probe = b.admit(later).unwrap();
        assert!(b.admit(later).is_none(), "second request while probing");
        probe.success();
        assert!(b.is_closed());
        assert!(b.admit(later).is_some());
    }

    #[test]
    fn failed_probe_reopens_for_another_cooldown() {
        let b = breaker();
        let now = Instant::now();
        (0..3).for_each(|_| fail(&b, now));
        let later = now + Duration::from_secs(31);
        b.admit(later).unwrap().failure(later, "refused");
        assert!(b.admit(later + Duration::from_secs(29)).is_none());
        assert!(b.admit(later + Duration::from_secs(30)).is_some());
    }

    #[test]
    fn abandoned_probe_lets_the_next_request_probe() {
        let b = breaker();
        let now = Instant::now();
        (0..3).for_each(|_| fail(&b, now));
        let later = now + Duration::from_secs(30);
        drop(b.admit(later).unwrap());
        assert!(b.admit(later).is_some());
    }

    #[test]
    fn zero_threshold_disables_the_breaker() {
        let b = Breaker::new("off".to_owned(), 0, Duration::from_secs(30));
        let now = Instant::now();
        (0..100).for_each(|_| fail(&b, now));
        assert!(b.admit(now).is_some());
    }
}
