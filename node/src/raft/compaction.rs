//! When to build a snapshot: after `snapshot_every_logs` entries, or after entries amounting to
//! `snapshot_state_percent` of the state's version records when that is more.
//!
//! A build writes the whole state, so a fixed interval makes its cost per write grow with the
//! state (a million records rewritten every 10,000 writes). Scaling the interval with the
//! state keeps the cost per write constant, at the price of a log that grows to that many
//! entries between snapshots. openraft's own policy is off (`SnapshotPolicy::Never`); this task
//! asks for a build through `Raft::trigger().snapshot()`, which openraft ignores while one runs.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::reader::MetaReader;
use super::RaftHandle;

/// How long to wait before asking again when a requested snapshot did not appear.
const RETRY: Duration = Duration::from_secs(30);

/// The number of log entries after which a state of `records` version records gets a new
/// snapshot.
pub(crate) fn interval(every_logs: u64, state_percent: u64, records: u64) -> u64 {
    every_logs.max(records.saturating_mul(state_percent) / 100)
}

/// Spawns the task that triggers snapshot builds (see the module docs) until `stop`.
pub(crate) fn spawn_trigger(
    raft: RaftHandle,
    reader: MetaReader,
    every_logs: u64,
    state_percent: u64,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut rx = raft.metrics();
        // (snapshot index when we last asked, when)
        let mut asked: Option<(u64, Instant)> = None;
        loop {
            let due = {
                let m = rx.borrow_and_update();
                let applied = m.last_applied.map_or(0, |l| l.index);
                let snap = m.snapshot.map_or(0, |l| l.index);
                let since = applied.saturating_sub(snap);
                let wanted = interval(every_logs, state_percent, reader.version_count());
                let pending = asked.is_some_and(|(at, when)| at == snap && when.elapsed() < RETRY);
                (since >= wanted && !pending).then_some((snap, since, wanted))
            };
            if let Some((snap, since, wanted)) = due {
                tracing::debug!(since, wanted, "requesting a snapshot");
                if raft.trigger().snapshot().await.is_err() {
                    break;
                }
                asked = Some((snap, Instant::now()));
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { break },
                () = stop.cancelled() => break,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::interval;

    #[test]
    fn the_interval_grows_with_the_state_above_the_fixed_minimum() {
        assert_eq!(interval(10_000, 25, 0), 10_000);
        assert_eq!(interval(10_000, 25, 40_000), 10_000);
        assert_eq!(interval(10_000, 25, 1_000_000), 250_000);
        assert_eq!(
            interval(50, 0, 1_000_000),
            50,
            "0 % keeps the fixed interval"
        );
    }
}
