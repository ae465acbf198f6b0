//! [`AuditLog`]: the handle request handlers and admin RPCs log through.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::warn;

use super::event::{to_line, EventType};
use super::writer::{self, Sink};
use super::{metrics, AdminEvent, AuditError, AuditSettings, AuditTarget, RequestEvent};

/// Lines queued for the writer at most; past this, events are dropped. At ~300 bytes a line
/// this is a few MB — several seconds of a stalled disk at a busy node's request rate.
const DEFAULT_CAPACITY: usize = 8192;
/// At most one warning about dropped events (and one about write errors) per this interval.
pub(super) const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// What the writer thread is handed.
pub(super) enum Msg {
    /// One serialized line (with its newline).
    Line(EventType, Vec<u8>),
    /// Answer once everything queued before is written and synced.
    Flush(oneshot::Sender<()>),
}

/// Counts kept next to the metrics so that status views and tests can read them.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) written: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) write_errors: AtomicU64,
}

/// A snapshot of an [`AuditLog`]'s counters since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Lines written.
    pub written: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
    /// Failed writes, rotations and flushes.
    pub write_errors: u64,
}

/// The audit trail. Cheap to clone (one `Arc`); logging never waits for the disk: the event is
/// serialized on the caller's thread and queued for a dedicated writer thread, or dropped and
/// counted when the queue is full. The writer stops once every clone is gone.
#[derive(Clone, Default)]
pub struct AuditLog {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    /// tokio's bounded channel: `try_send` never blocks the async caller, `send().await` lets
    /// `flush` wait for room, and the writer (a plain thread) takes lines with
    /// `blocking_recv`, so a slow disk stalls only that thread.
    tx: mpsc::Sender<Msg>,
    counters: Arc<Counters>,
    /// When dropped events were last reported; a std mutex held only to compare and set.
    last_drop_warning: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("on", &self.is_on())
            .field("stats", &self.stats())
            .finish()
    }
}

impl AuditLog {
    /// A log that records nothing.
    pub fn off() -> AuditLog {
        AuditLog { inner: None }
    }

    /// Validates `settings`, opens the target and starts the writer thread.
    pub fn open(settings: &AuditSettings) -> Result<AuditLog, AuditError> {
        AuditLog::open_with_capacity(settings, DEFAULT_CAPACITY)
    }

    /// [`Self::open`] with a queue of `capacity` lines (at least 1).
    pub fn open_with_capacity(
        settings: &AuditSettings,
        capacity: usize,
    ) -> Result<AuditLog, AuditError> {
        match open_sink(settings)? {
            Some(sink) => AuditLog::start(sink, capacity, None),
            None => Ok(AuditLog::off()),
        }
    }

    /// A log whose writer takes nothing from the queue until the returned sender sends (or is
    /// dropped): lets tests fill the queue deterministically.
    #[cfg(test)]
    pub(super) fn open_gated(
        settings: &AuditSettings,
        capacity: usize,
    ) -> Result<(AuditLog, std::sync::mpsc::Sender<()>), AuditError> {
        let (gate_tx, gate_rx) = std::sync::mpsc::channel();
        let sink = open_sink(settings)?.ok_or(AuditError::Invalid(Vec::new()))?;
        Ok((AuditLog::start(sink, capacity, Some(gate_rx))?, gate_tx))
    }

    fn start(
        sink: Sink,
        capacity: usize,
        gate: Option<std::sync::mpsc::Receiver<()>>,
    ) -> Result<AuditLog, AuditError> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let counters = Arc::new(Counters::default());
        let shared = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("cairn-audit".to_owned())
            .spawn(move || writer::run(sink, rx, &shared, gate))
            .map_err(AuditError::Spawn)?;
        Ok(AuditLog {
            inner: Some(Arc::new(Inner {
                tx,
                counters,
                last_drop_warning: Mutex::new(None),
            })),
        })
    }

    /// Whether events are recorded at all.
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// Records a GOPROXY or checksum-database request.
    pub fn request(&self, event: RequestEvent<'_>) {
        self.submit(EventType::Request, &event);
    }

    /// Records an admin action.
    pub fn admin(&self, event: AdminEvent<'_>) {
        self.submit(EventType::Admin, &event);
    }

    /// Waits until every event queued before this call is written and synced to disk (or to
    /// stdout). For shutdown and tests; returns at once when off or when the writer has stopped.
    pub async fn flush(&self) {
        let Some(inner) = &self.inner else {
            return;
        };
        let (ack, done) = oneshot::channel();
        if inner.tx.send(Msg::Flush(ack)).await.is_ok() {
            // An error means the writer is gone; nothing more will be written either way.
            let _ = done.await;
        }
    }

    /// The counters since the log was opened (all zero when off).
    pub fn stats(&self) -> AuditStats {
        let Some(inner) = &self.inner else {
            return AuditStats::default();
        };
        let c = &inner.counters;
        AuditStats {
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            write_errors: c.write_errors.load(Ordering::Relaxed),
        }
    }

    fn submit<E: Serialize>(&self, kind: EventType, event: &E) {
        let Some(inner) = &self.inner else {
            return;
        };
        let line = match to_line(kind, event) {
            Ok(line) => line,
            Err(e) => {
                // Unreachable with these plain structs; counted rather than panicking.
                inner.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                ::metrics::counter!(metrics::WRITE_ERRORS_TOTAL).increment(1);
                warn!(error = %e, event_type = kind.as_str(), "cannot encode an audit event");
                return;
            }
        };
        if inner.tx.try_send(Msg::Line(kind, line)).is_err() {
            inner.dropped(kind);
        }
    }
}

impl Inner {
    fn dropped(&self, kind: EventType) {
        let total = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        ::metrics::counter!(metrics::DROPPED_TOTAL).increment(1);
        let now = Instant::now();
        let mut last = self
            .last_drop_warning
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_none_or(|t| now.duration_since(t) >= WARN_INTERVAL) {
            *last = Some(now);
            warn!(
                dropped_total = total,
                event_type = kind.as_str(),
                "audit log queue full; dropping events (the disk or stdout is too slow)"
            );
        }
    }
}

/// The sink `settings` name, opened; `None` when off.
fn open_sink(settings: &AuditSettings) -> Result<Option<Sink>, AuditError> {
    settings.validate().map_err(AuditError::Invalid)?;
    match settings.target() {
        AuditTarget::Off => Ok(None),
        AuditTarget::Stdout => Ok(Some(Sink::stdout())),
        AuditTarget::File(path) => Sink::file(&path, settings.max_bytes, settings.max_files)
            .map(Some)
            .map_err(|source| AuditError::Open { path, source }),
    }
}
