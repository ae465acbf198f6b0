//! Heartbeats that do not hold up replication.
//!
//! openraft 0.9 keeps one AppendEntries in flight per follower, and a heartbeat (an empty
//! AppendEntries, also sent right after every commit to carry the commit index) occupies that
//! slot for a full round trip. Across regions (100 ms round trips) a write that arrives while a
//! heartbeat is out waits for it to come back before its own entries can leave: one commit
//! then costs two round trips instead of one (issue 14).
//!
//! So a heartbeat to a follower that is caught up and answered recently is sent in the
//! background, and openraft gets the follower's last answer (success) at once. The follower
//! still receives every such heartbeat (at most one in flight), so its election timer is reset
//! as before. Whatever else comes back — a higher vote, a conflict, an error, or no answer for
//! [`FRESH_FOR_HEARTBEATS`] intervals — ends the shortcut: the next heartbeat waits for its real
//! answer, which openraft then acts on (step down, back off, probe). The cost is that the
//! leader's view of its quorum (`millis_since_quorum_ack`) may be that much too optimistic.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How many heartbeat intervals a follower's last successful answer stays good for the
/// shortcut. Background heartbeats go out one at a time, so with round trips longer than the
/// interval the answers come less often than heartbeats are asked for; three intervals covers
/// round trips up to twice the interval.
pub const FRESH_FOR_HEARTBEATS: u32 = 3;

/// Per-connection state of background heartbeats (shared with the task that sends one).
#[derive(Debug, Default, Clone)]
pub struct Heartbeats {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// A background heartbeat is on its way.
    in_flight: bool,
    /// When the last request the follower answered with success was sent.
    last_ok_sent: Option<Instant>,
}

/// What to do with an empty AppendEntries.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Answer success now and send this heartbeat in the background.
    SendInBackground,
    /// Answer success now: a background heartbeat is already out.
    AlreadyOut,
    /// Send it and wait for the answer, as openraft expects.
    Wait,
}

impl Heartbeats {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides how to send a heartbeat whose `prev` index the follower is known to hold
    /// (`caught_up`), with heartbeat interval `interval`.
    pub fn plan(&self, caught_up: bool, interval: Duration) -> Plan {
        let mut st = self.lock();
        let fresh_for = interval * FRESH_FOR_HEARTBEATS;
        let fresh = st.last_ok_sent.is_some_and(|t| t.elapsed() < fresh_for);
        if !caught_up || !fresh {
            return Plan::Wait;
        }
        if st.in_flight {
            return Plan::AlreadyOut;
        }
        st.in_flight = true;
        Plan::SendInBackground
    }

    /// Records the answer to a request sent at `sent`: `ok` if the follower accepted it.
    /// Anything but success ends the shortcut until a waited-for request succeeds again.
    pub fn answered(&self, sent: Instant, ok: bool) {
        let mut st = self.lock();
        if ok {
            st.last_ok_sent = Some(st.last_ok_sent.map_or(sent, |t| t.max(sent)));
        } else {
            st.last_ok_sent = None;
        }
    }

    /// Records the end of a background heartbeat sent at `sent`.
    pub fn background_done(&self, sent: Instant, ok: bool) {
        self.answered(sent, ok);
        self.lock().in_flight = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HB: Duration = Duration::from_millis(200);

    #[test]
    fn waits_until_the_follower_has_answered_and_is_caught_up() {
        let hb = Heartbeats::default();
        assert_eq!(hb.plan(true, HB), Plan::Wait, "no answer yet");
        hb.answered(Instant::now(), true);
        assert_eq!(hb.plan(false, HB), Plan::Wait, "not caught up");
        assert_eq!(hb.plan(true, HB), Plan::SendInBackground);
        assert_eq!(hb.plan(true, HB), Plan::AlreadyOut, "one at a time");
        hb.background_done(Instant::now(), true);
        assert_eq!(hb.plan(true, HB), Plan::SendInBackground);
    }

    #[test]
    fn anything_but_success_ends_the_shortcut() {
        let hb = Heartbeats::default();
        hb.answered(Instant::now(), true);
        assert_eq!(hb.plan(true, HB), Plan::SendInBackground);
        hb.background_done(Instant::now(), false);
        assert_eq!(hb.plan(true, HB), Plan::Wait);
    }

    #[test]
    fn an_old_answer_is_not_trusted() {
        let hb = Heartbeats::default();
        let long_ago = Instant::now()
            .checked_sub(HB * (FRESH_FOR_HEARTBEATS + 1))
            .unwrap_or_else(Instant::now);
        hb.answered(long_ago, true);
        assert_eq!(hb.plan(true, HB), Plan::Wait);
    }
}
