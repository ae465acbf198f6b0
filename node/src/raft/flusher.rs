//! The group-commit flusher: the only place that fsyncs the sled database.
//!
//! Writers put their data into sled first (visible at once), then hand a waiter to the flusher:
//! either openraft's [`LogFlushed`] callback (appends) or a oneshot (vote, purge, snapshot
//! install). The flusher task takes every waiter queued so far, runs one blocking
//! `Db::flush()` on the blocking pool and then completes all of them, so one fsync covers a
//! whole burst of writes. A waiter is completed only after a flush that *started* after its
//! write, which is what makes "durable before the callback" hold. `flush_async` is never used
//! (it can deadlock in sled 0.34.7).
//!
//! Note: openraft 0.9's core awaits each append's callback before it appends again, so a burst
//! of proposals still costs one fsync each; batching happens when appends coincide with vote,
//! purge or snapshot-install waits. The structure is ready for openraft 0.10's pipelined IO.

use std::io;

use openraft::storage::LogFlushed;
use tokio::sync::{mpsc, oneshot};

use super::metrics as m;
use super::TypeConfig;

/// Something to complete once the writes queued before it are on disk.
enum Waiter {
    /// An openraft append callback.
    Log(LogFlushed<TypeConfig>),
    /// A caller awaiting the flush.
    Sync(oneshot::Sender<io::Result<()>>),
}

/// Handle to the flusher task (cheap to clone). The task ends when every handle is dropped.
#[derive(Clone, Debug)]
pub(crate) struct Flusher {
    tx: mpsc::UnboundedSender<Waiter>,
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Waiter::Log(_) => "Waiter::Log",
            Waiter::Sync(_) => "Waiter::Sync",
        })
    }
}

impl Flusher {
    /// Spawns the flusher task for `db` on the current runtime.
    pub(crate) fn spawn(db: sled::Db) -> Flusher {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(db, rx));
        Flusher { tx }
    }

    /// Completes `callback` once everything written so far is durable.
    pub(crate) fn after_flush(&self, callback: LogFlushed<TypeConfig>) -> io::Result<()> {
        self.tx.send(Waiter::Log(callback)).map_err(|_| stopped())
    }

    /// Waits until everything written so far is durable.
    pub(crate) async fn flush(&self) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Waiter::Sync(tx)).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> io::Error {
    io::Error::other("metadata flusher stopped")
}

async fn run(db: sled::Db, mut rx: mpsc::UnboundedReceiver<Waiter>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, usize::MAX).await > 0 {
        let result = flush_once(&db).await;
        metrics::histogram!(m::FLUSH_BATCH_SIZE).record(batch.len() as f64);
        if let Err(e) = &result {
            tracing::error!(error = %e, waiters = batch.len(), "metadata store flush failed");
        }
        for waiter in batch.drain(..) {
            let res = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            match waiter {
                Waiter::Log(cb) => cb.log_io_completed(res),
                // The waiter may have given up (e.g. its caller was cancelled).
                Waiter::Sync(tx) => drop(tx.send(res)),
            }
        }
    }
    // Dropping what may be the last handle makes sled flush and close files: keep that off the
    // async worker threads too.
    if let Err(e) = tokio::task::spawn_blocking(move || drop(db)).await {
        tracing::warn!(error = %e, "closing the metadata store failed");
    }
    tracing::debug!("metadata flusher stopped");
}

async fn flush_once(db: &sled::Db) -> io::Result<()> {
    let db = db.clone();
    let started = tokio::time::Instant::now();
    let res = tokio::task::spawn_blocking(move || db.flush()).await;
    metrics::histogram!(m::FLUSH_DURATION_SECONDS).record(started.elapsed().as_secs_f64());
    match res {
        Ok(Ok(_bytes)) => Ok(()),
        Ok(Err(e)) => Err(io::Error::other(e)),
        Err(join) => Err(io::Error::other(join)),
    }
}
