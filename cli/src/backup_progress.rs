//! Progress of a long copy (`cairn backup`): blobs and bytes done of the total, the rate and an
//! ETA, on stderr. Bytes are counted as they arrive (not when a blob completes), and a ticker
//! task prints on its own clock, so a single large blob still shows movement. On a terminal one
//! line is redrawn every [`REDRAW_EVERY`]; otherwise a line is printed every [`LINE_EVERY`],
//! plus the context line at the start and one at the end, so logs of scheduled backups stay
//! short.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Interval of the lines when stderr is not a terminal.
pub const LINE_EVERY: Duration = Duration::from_secs(5);
/// Interval of the redraws on a terminal.
pub const REDRAW_EVERY: Duration = Duration::from_millis(200);

/// Progress towards `total` items of `total_bytes`, printed by a ticker task until
/// [`Progress::finish`].
pub struct Progress {
    shared: Arc<Shared>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

/// The counters the copy tasks advance (cheap to clone).
#[derive(Clone)]
pub struct Counter(Arc<Shared>);

struct Shared {
    what: &'static str,
    tty: bool,
    started: Instant,
    total: u64,
    total_bytes: u64,
    done: AtomicU64,
    done_bytes: AtomicU64,
    out: Mutex<Box<dyn Write + Send>>,
}

impl Progress {
    /// Starts counting and printing to stderr; `what` prefixes every line. Needs a tokio
    /// runtime (the ticker is a task).
    pub fn new(what: &'static str, total: u64, total_bytes: u64) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let every = if tty { REDRAW_EVERY } else { LINE_EVERY };
        Progress::with_sink(
            what,
            total,
            total_bytes,
            tty,
            every,
            Box::new(std::io::stderr()),
        )
    }

    /// Like [`Progress::new`] with the output, the terminal mode and the interval given.
    fn with_sink(
        what: &'static str,
        total: u64,
        total_bytes: u64,
        tty: bool,
        every: Duration,
        out: Box<dyn Write + Send>,
    ) -> Progress {
        let shared = Arc::new(Shared {
            what,
            tty,
            started: Instant::now(),
            total,
            total_bytes,
            done: AtomicU64::new(0),
            done_bytes: AtomicU64::new(0),
            out: Mutex::new(out),
        });
        let ticking = shared.clone();
        let ticker = tokio::spawn(async move {
            let mut iv = tokio::time::interval(every);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            iv.tick().await;
            loop {
                iv.tick().await;
                ticking.show(false);
            }
        });
        Progress {
            shared,
            ticker: Some(ticker),
        }
    }

    /// Prints a line of context (never redrawn).
    pub fn note(&self, text: &str) {
        let line = format!("{}: {text}", self.shared.what);
        self.shared.print(&line, true);
    }

    /// The counters, for the copy tasks.
    pub fn counter(&self) -> Counter {
        Counter(self.shared.clone())
    }

    /// Stops the ticker and prints the final line.
    pub fn finish(mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        self.shared.show(true);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
    }
}

impl Counter {
    /// `n` more bytes arrived.
    pub fn bytes(&self, n: u64) {
        self.0.done_bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// One more item is complete.
    pub fn item(&self) {
        self.0.done.fetch_add(1, Ordering::Relaxed);
    }
}

impl Shared {
    fn show(&self, last: bool) {
        let line = self.line(last);
        self.print(&line, last || !self.tty);
    }

    /// Prints `line`; on a terminal a line that is not `whole` is redrawn in place.
    fn print(&self, line: &str, whole: bool) {
        let Ok(mut out) = self.out.lock() else {
            return;
        };
        let _ = match (self.tty, whole) {
            (true, false) => write!(out, "\r\x1b[2K{line}"),
            (true, true) => writeln!(out, "\r\x1b[2K{line}"),
            (false, _) => writeln!(out, "{line}"),
        };
        let _ = out.flush();
    }

    /// `backup: 12/40 blobs, 3.1 MiB/10.2 MiB, 5.2 MiB/s, ETA 2s`.
    fn line(&self, last: bool) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let done = self.done.load(Ordering::Relaxed);
        let done_bytes = self.done_bytes.load(Ordering::Relaxed);
        let rate = if secs > 0.0 {
            done_bytes as f64 / secs
        } else {
            0.0
        };
        let left = self.total_bytes.saturating_sub(done_bytes);
        let eta = match (last, rate > 0.0) {
            (true, _) => format!("done in {secs:.1}s"),
            (false, true) => format!("ETA {:.0}s", left as f64 / rate),
            (false, false) => "ETA ?".to_string(),
        };
        format!(
            "{}: {done}/{} blobs, {}/{}, {}/s, {eta}",
            self.what,
            self.total,
            bytes(done_bytes),
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

    /// A `Write` into a shared buffer.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn byte_counts_are_for_people() {
        assert_eq!(bytes(10 * 1024 * 1024 + 200 * 1024), "10.2 MiB");
        assert_eq!(bytes(12), "12 B");
        assert_eq!(bytes(1536), "1.5 KiB");
    }

    /// Polls `buf` until `pred` holds (5 s deadline).
    async fn wait_for(buf: &Buf, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = buf.text();
            if pred(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "progress output never matched:\n{text:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Not on a terminal: whole lines on the ticker's clock while bytes move (even with no
    /// item complete), no carriage return, and a final `done in` line.
    #[tokio::test]
    async fn non_terminal_mode_prints_a_line_per_interval_and_a_final_one() {
        let buf = Buf::default();
        let every = Duration::from_millis(50);
        let p = Progress::with_sink("backup", 4, 4096, false, every, Box::new(buf.clone()));
        p.note("state at log index 7");
        let c = p.counter();
        c.bytes(1024);
        let text = wait_for(&buf, |t| t.contains("backup: 0/4 blobs, 1.0 KiB/4.0 KiB, ")).await;
        assert!(text.contains("/s, ETA "), "{text}");
        c.bytes(3072);
        c.item();
        wait_for(&buf, |t| t.contains("backup: 1/4 blobs, 4.0 KiB/4.0 KiB, ")).await;
        p.finish();
        let text = buf.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "backup: state at log index 7");
        assert!(lines.len() >= 4, "note, two ticks at least, final:\n{text}");
        for l in &lines[1..] {
            assert!(
                l.starts_with("backup: ") && l.contains(" blobs, "),
                "{text}"
            );
        }
        assert!(lines[lines.len() - 1].contains("done in"), "{text}");
        assert!(!text.contains('\r'), "no redraws off a terminal: {text:?}");
    }

    /// On a terminal the line is redrawn in place and the final one ends with a newline.
    #[tokio::test]
    async fn terminal_mode_redraws_one_line() {
        let buf = Buf::default();
        let every = Duration::from_millis(20);
        let p = Progress::with_sink("backup", 2, 2048, true, every, Box::new(buf.clone()));
        p.counter().bytes(1024);
        wait_for(&buf, |t| t.matches("\r\x1b[2K").count() >= 3).await;
        p.finish();
        let text = buf.text();
        assert_eq!(text.matches('\n').count(), 1, "{text:?}");
        assert!(text.ends_with('\n') && text.contains("done in"), "{text:?}");
    }
}
