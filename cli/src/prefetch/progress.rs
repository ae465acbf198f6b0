//! Progress of a prefetch on stderr: a line redrawn in place on a terminal, otherwise a
//! line every ten seconds (`--progress-interval`) (logs of CI jobs and cron stay short and greppable).

use std::io::Write;
use std::time::{Duration, Instant};

use crate::backup_progress::bytes;

/// Counters of a run.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Versions planned.
    pub total: u64,
    /// Versions finished (fetched or failed).
    pub done: u64,
    /// Versions the node had to fetch from its upstream.
    pub filled: u64,
    /// Versions the node already held.
    pub cached: u64,
    /// Versions that failed.
    pub failed: u64,
    /// Body bytes received.
    pub bytes: u64,
}

/// Draws [`Tally`] snapshots.
#[derive(Debug)]
pub struct Progress {
    terminal: bool,
    start: Instant,
    last: Option<Instant>,
    every: Duration,
}

impl Progress {
    /// A display for a terminal (`true`, redrawn five times a second) or a log (a line every
    /// `log_every`).
    pub fn new(terminal: bool, log_every: Duration) -> Progress {
        Progress {
            terminal,
            start: Instant::now(),
            last: None,
            every: if terminal {
                Duration::from_millis(200)
            } else {
                log_every
            },
        }
    }

    /// Shows `t` if enough time passed since the last line.
    pub fn tick(&mut self, t: &Tally) {
        let now = Instant::now();
        if self.last.is_some_and(|l| now - l < self.every)
            || (self.last.is_none() && !self.terminal)
        {
            if self.last.is_none() {
                self.last = Some(now);
            }
            return;
        }
        self.last = Some(now);
        let line = line(t, self.start.elapsed());
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    /// Ends the display (clears the live line on a terminal).
    pub fn finish(&mut self) {
        if self.terminal && self.last.is_some() {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// `prefetch: 120/300 versions (40%), 100 filled, 18 cached, 2 failed, 12.3 MiB, 45.1/s, ETA 4s`
pub fn line(t: &Tally, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let rate = t.done as f64 / secs;
    let pct = (t.done * 100).checked_div(t.total).unwrap_or(100);
    let eta = if t.done == 0 || rate <= 0.0 {
        "?".to_string()
    } else {
        human_secs(t.total.saturating_sub(t.done) as f64 / rate)
    };
    format!(
        "prefetch: {}/{} versions ({pct}%), {} filled, {} cached, {} failed, {}, {rate:.1}/s, {}/s, ETA {eta}",
        t.done,
        t.total,
        t.filled,
        t.cached,
        t.failed,
        bytes(t.bytes),
        bytes((t.bytes as f64 / secs) as u64),
    )
}

/// `4s`, `3m20s`
pub fn human_secs(s: f64) -> String {
    if s < 10.0 {
        return format!("{s:.1}s");
    }
    let s = s.round() as u64;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_counts_rate_and_eta() {
        let t = Tally {
            total: 300,
            done: 120,
            filled: 100,
            cached: 18,
            failed: 2,
            bytes: 12_900_000,
        };
        let l = line(&t, Duration::from_secs(4));
        assert!(l.starts_with("prefetch: 120/300 versions (40%), 100 filled, 18 cached, 2 failed, 12.3 MiB, 30.0/s"), "{l}");
        assert!(l.ends_with("ETA 6.0s"), "{l}");
        assert_eq!(human_secs(200.0), "3m20s");
        assert_eq!(human_secs(0.43), "0.4s");
    }
}
