//! The writer thread and its sinks: standard output, or a file rotated by size
//! (`audit.log` → `audit.log.1` … `audit.log.N`, the oldest deleted).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Stdout, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use tokio::sync::mpsc::{self, error::TryRecvError};
use tokio::time::Instant;
use tracing::{info, warn};

use super::log::{Counters, Msg, WARN_INTERVAL};
use super::metrics;

/// Where the writer puts lines.
pub(super) enum Sink {
    /// Standard output, buffered and flushed whenever the queue runs empty.
    Stdout(BufWriter<Stdout>),
    /// A size-rotated file.
    File(RotatingFile),
}

impl Sink {
    pub(super) fn stdout() -> Sink {
        Sink::Stdout(BufWriter::new(io::stdout()))
    }

    pub(super) fn file(path: &Path, max_bytes: u64, max_files: usize) -> io::Result<Sink> {
        RotatingFile::open(path, max_bytes, max_files).map(Sink::File)
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout(out) => out.write_all(line),
            Sink::File(file) => file.write_line(line),
        }
    }

    /// Hands buffered lines to the OS.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(out) => out.flush(),
            Sink::File(file) => file.out.flush(),
        }
    }

    /// [`Self::flush`], and for a file also onto the disk.
    fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        match self {
            Sink::Stdout(_) => Ok(()),
            Sink::File(file) => file.out.get_ref().sync_data(),
        }
    }
}

/// A file that is renamed to `<path>.1` (and older ones shifted up) before a line would make it
/// larger than `max_bytes`.
pub(super) struct RotatingFile {
    path: PathBuf,
    out: BufWriter<File>,
    /// Bytes in the current file, counting buffered ones.
    size: u64,
    max_bytes: u64,
    max_files: usize,
}

impl RotatingFile {
    /// Opens `path` for appending; an existing file keeps its lines and counts toward the limit.
    fn open(path: &Path, max_bytes: u64, max_files: usize) -> io::Result<RotatingFile> {
        let file = append(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_owned(),
            out: BufWriter::new(file),
            size,
            max_bytes,
            max_files,
        })
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64;
        // A line longer than max_bytes still goes in, alone: rotation happens only when the
        // file already holds something.
        let rotated = if self.size > 0 && self.size.saturating_add(len) > self.max_bytes {
            self.rotate()
        } else {
            Ok(())
        };
        // Even when rotation failed the line is kept (in the old file): losing it is worse than
        // an oversized file.
        self.out.write_all(line)?;
        self.size += len;
        rotated
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.max_files == 0 {
            self.out = BufWriter::new(File::create(&self.path)?);
            self.size = 0;
            return Ok(());
        }
        for n in (1..self.max_files).rev() {
            match std::fs::rename(self.numbered(n), self.numbered(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        // Renaming over `<path>.<max_files>` deletes the oldest.
        std::fs::rename(&self.path, self.numbered(1))?;
        self.out = BufWriter::new(append(&self.path)?);
        self.size = 0;
        Ok(())
    }

    fn numbered(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The writer thread: takes lines until every [`super::AuditLog`] is gone, flushing whenever
/// the queue runs empty (so lines reach the OS promptly without a syscall per line).
pub(super) fn run(
    mut sink: Sink,
    mut rx: mpsc::Receiver<Msg>,
    counters: &Counters,
    gate: Option<std::sync::mpsc::Receiver<()>>,
) {
    if let Some(gate) = gate {
        // Tests only: hold the queue until released (a dropped sender releases too).
        let _ = gate.recv();
    }
    let mut errors = ErrorReporter::default();
    loop {
        let msg = match rx.try_recv() {
            Ok(msg) => msg,
            Err(TryRecvError::Empty) => {
                errors.check(sink.flush(), counters, "flush");
                match rx.blocking_recv() {
                    Some(msg) => msg,
                    None => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        match msg {
            Msg::Line(kind, line) => {
                if errors.check(sink.write_line(&line), counters, "write") {
                    counters.written.fetch_add(1, Ordering::Relaxed);
                    ::metrics::counter!(metrics::EVENTS_TOTAL, "type" => kind.as_str())
                        .increment(1);
                }
            }
            Msg::Flush(ack) => {
                errors.check(sink.sync(), counters, "sync");
                // The flusher may have given up waiting; nothing to do then.
                let _ = ack.send(());
            }
        }
    }
    errors.check(sink.sync(), counters, "sync");
    info!("audit log writer stopped");
}

/// Counts write errors and warns about them at most once per [`WARN_INTERVAL`].
#[derive(Default)]
struct ErrorReporter {
    last_warning: Option<Instant>,
    since_warning: u64,
}

impl ErrorReporter {
    /// Whether `result` is a success; a failure is counted and maybe logged.
    fn check(&mut self, result: io::Result<()>, counters: &Counters, op: &'static str) -> bool {
        let Err(e) = result else {
            return true;
        };
        counters.write_errors.fetch_add(1, Ordering::Relaxed);
        ::metrics::counter!(metrics::WRITE_ERRORS_TOTAL).increment(1);
        self.since_warning += 1;
        let now = Instant::now();
        if self
            .last_warning
            .is_none_or(|t| now.duration_since(t) >= WARN_INTERVAL)
        {
            warn!(op, error = %e, errors = self.since_warning, "audit log write failed");
            self.last_warning = Some(now);
            self.since_warning = 0;
        }
        false
    }
}
