//! Waiting without sleep-and-hope: poll a condition until a deadline, then fail loudly.
//!
//! Every timeout in the suite goes through [`patience`], so a slow machine can stretch all of them
//! at once with `CAIRN_TEST_PATIENCE_MS` (the unit; default 10 000 ms).

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// The default patience unit, in milliseconds.
const DEFAULT_PATIENCE_MS: u64 = 10_000;

/// The patience unit: `CAIRN_TEST_PATIENCE_MS`, else 10 s.
pub fn patience_unit() -> Duration {
    let ms = std::env::var("CAIRN_TEST_PATIENCE_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&v| v > 0)
        .unwrap_or(DEFAULT_PATIENCE_MS);
    Duration::from_millis(ms)
}

/// A timeout of `factor` patience units (fractions allowed): `patience(3.0)` is 30 s by default.
pub fn patience(factor: f64) -> Duration {
    patience_unit().mul_f64(factor)
}

/// Polls `cond` until it returns true; fails after `timeout` with a message naming `what`.
///
/// The poll interval starts at 10 ms and backs off to 200 ms.
pub async fn wait_until<F, Fut>(
    what: impl Display,
    timeout: Duration,
    mut cond: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(what, timeout, move || {
        let fut = cond();
        async move { fut.await.then_some(()) }
    })
    .await
}

/// Polls `probe` until it returns `Some(value)` and returns that value; fails after `timeout`.
pub async fn wait_for<T, F, Fut>(
    what: impl Display,
    timeout: Duration,
    mut probe: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    let mut interval = Duration::from_millis(10);
    let mut polls = 0u64;
    loop {
        polls += 1;
        if let Some(v) = probe().await {
            return Ok(v);
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            anyhow::bail!(
                "timed out after {elapsed:?} (limit {timeout:?}, {polls} polls; scale with \
                 CAIRN_TEST_PATIENCE_MS) waiting for: {what}"
            );
        }
        tokio::time::sleep(interval.min(timeout - elapsed)).await;
        interval = (interval * 2).min(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_until_reports_what_it_waited_for() {
        let err = wait_until("the impossible", Duration::from_millis(50), || async {
            false
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("the impossible"), "{err}");
        let mut n = 0;
        wait_until("third poll", Duration::from_secs(5), || {
            n += 1;
            let done = n >= 3;
            async move { done }
        })
        .await
        .unwrap();
    }
}
