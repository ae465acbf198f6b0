//! Progress of a long copy (`cairn backup`): blobs and bytes done of the total, the rate and an
//! ETA, on stderr. On a terminal one line is redrawn (at most 10 times a second); otherwise a
//! summary line is printed every [`LINE_EVERY`], plus one at the start and one at the end, so
//! logs of scheduled backups stay short.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Interval of the summary lines when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(2);
/// Shortest interval between redraws on a terminal.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// Progress towards `total` items of `total_bytes`.
pub struct Progress {
    what: &'static str,
    tty: bool,
    started: Instant,
    last: Option<Instant>,
    total: u64,
    total_bytes: u64,
    done: u64,
    done_bytes: u64,
}

impl Progress {
    /// Starts counting; `what` prefixes every line.
    pub fn new(what: &'static str, total: u64, total_bytes: u64) -> Progress {
        Progress {
            what,
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: None,
            total,
            total_bytes,
            done: 0,
            done_bytes: 0,
        }
    }

    /// Prints a line of context (never redrawn).
    pub fn note(&self, text: &str) {
        eprintln!("{}: {text}", self.what);
    }

    /// One more item of `bytes` done.
    pub fn advance(&mut self, bytes: u64) {
        self.done += 1;
        self.done_bytes += bytes;
        let now = Instant::now();
        let due = match (self.tty, self.last) {
            (_, None) => true,
            (true, Some(t)) => now - t >= REDRAW_EVERY,
            (false, Some(t)) => now - t >= LINE_EVERY,
        };
        if due {
            self.last = Some(now);
            self.show(false);
        }
    }

    /// Prints the final line.
    pub fn finish(&mut self) {
        self.show(true);
        if self.tty {
            eprintln!();
        }
    }

    fn show(&self, last: bool) {
        let line = self.line(last);
        let mut err = std::io::stderr();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
        } else {
            let _ = writeln!(err, "{line}");
        }
    }

    /// `backup: 12/40 blobs, 3.1 MiB/10.2 MiB, 5.2 MiB/s, ETA 2s`.
    fn line(&self, last: bool) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            self.done_bytes as f64 / secs
        } else {
            0.0
        };
        let left = self.total_bytes.saturating_sub(self.done_bytes);
        let eta = match (last, rate > 0.0) {
            (true, _) => format!("done in {secs:.1}s"),
            (false, true) => format!("ETA {:.0}s", left as f64 / rate),
            (false, false) => "ETA ?".to_string(),
        };
        format!(
            "{}: {}/{} blobs, {}/{}, {}/s, {eta}",
            self.what,
            self.done,
            self.total,
            bytes(self.done_bytes),
            bytes(self.total_bytes),
            bytes(rate as u64)
        )
    }
}

/// A byte count for people: `512 B`, `3.1 KiB`, `10.2 MiB`, `1.5 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_done_total_rate_and_eta() {
        let mut p = Progress::new("backup", 4, 4096);
        p.tty = false;
        p.done = 1;
        p.done_bytes = 1024;
        let l = p.line(false);
        assert!(l.starts_with("backup: 1/4 blobs, 1.0 KiB/4.0 KiB, "), "{l}");
        assert!(l.contains("/s, ETA "), "{l}");
        assert!(p.line(true).contains("done in"), "{}", p.line(true));
        assert_eq!(bytes(10 * 1024 * 1024 + 200 * 1024), "10.2 MiB");
        assert_eq!(bytes(12), "12 B");
    }
}
