//! Holding back elections this node cannot win: a stand-in for Raft's pre-vote, which
//! openraft 0.9 lacks.
//!
//! A voter cut off from the others (a region whose link is down) campaigns again and again,
//! raising its term each time. When the link returns, its first answer to the leader carries
//! that higher term and the leader steps down: every region stops writing for an election the
//! cut node cannot even win (its log is behind). Pre-vote avoids this by asking first; here a
//! task on every voter does the asking ahead of time:
//!
//! - while the leader is heard from (an AppendEntries accepted within two heartbeat intervals),
//!   or this node leads, elections stay enabled;
//! - once the leader is silent, every heartbeat interval the task probes the other voters
//!   (`Admin.Status`, which must answer within `election_min_ms`): elections stay enabled only
//!   while a majority of the voters, this one included, answers; otherwise openraft's election
//!   timer is switched off (`Raft::runtime_config().elect(false)`) until the leader is heard
//!   from, or a majority has answered for a grace period (the Raft channels' connect timeout
//!   plus `2 × election_max_ms`: time for a live leader to redial this node after the link
//!   returns, so that a campaign at the first answer does not depose it).
//!
//! openraft campaigns only after `election_max_ms + e` of silence (the leader lease and a random
//! election timeout), while the gate decides within `3 × heartbeat_ms + election_min_ms`
//! (heartbeats capped at a quarter of `election_max_ms` here, see `timing`), so a cut voter's
//! term stays where it was and the cluster does not notice the link coming back.
//! When the leader dies, the surviving voters answer each other's probes and elect as before.
//! [`CAMPAIGNS_HELD`] shows the state.

use std::time::Duration;

use futures_util::future::join_all;
use openraft::ServerState;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Consensus, NodeId};

/// Gauge: 1 while this voter holds back elections because it reaches no majority of voters.
pub const CAMPAIGNS_HELD: &str = "cairn_raft_campaigns_held";

/// Describes [`CAMPAIGNS_HELD`] (call once at startup, next to `raft::metrics::describe`).
pub fn describe() {
    metrics::describe_gauge!(
        CAMPAIGNS_HELD,
        metrics::Unit::Count,
        "1 while this voter holds back elections: the leader is silent and no majority of the voters answers (pre-vote), else 0."
    );
}

/// Whether a voter that cannot hear its leader may campaign: `answered` other voters (of
/// `voters`, this node included) answered its probes. A majority is needed to win, so without
/// one a campaign would only raise the term.
fn may_campaign(voters: usize, answered: usize) -> bool {
    2 * (answered + 1) > voters
}

/// What the gate learned in one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// This node leads, is no voter, is the only voter, or heard from its leader lately.
    Fine,
    /// The leader is silent; a majority of the voters answered.
    Majority,
    /// The leader is silent; no majority answered.
    Minority,
}

/// Whether elections are allowed after a round that found `reach`, given whether they are
/// now (`enabled`) and since when a majority has answered while they were held
/// (`majority_since`, kept here). Coming back from a hold, a majority must have answered for
/// `grace` first: the leader may be alive and about to reach this node again, and a campaign
/// in that window would raise the term and depose it.
fn next_state(
    reach: Reach,
    enabled: bool,
    majority_since: &mut Option<Instant>,
    grace: Duration,
) -> bool {
    match reach {
        Reach::Fine => {
            *majority_since = None;
            true
        }
        Reach::Minority => {
            *majority_since = None;
            false
        }
        Reach::Majority if enabled => true,
        Reach::Majority => majority_since.get_or_insert_with(Instant::now).elapsed() >= grace,
    }
}

/// Spawns the gate of `consensus` (see the module docs); it stops with `stop`.
pub(super) fn spawn(consensus: Consensus, stop: CancellationToken) {
    tokio::spawn(async move {
        let settings = consensus.settings();
        let (every, silent_after) = timing(settings.heartbeat_ms, settings.election_max_ms);
        // Long enough for the leader to redial this node after a cut (a connect attempt that
        // started during the cut times out first, openraft backs off) and send it an
        // AppendEntries.
        let grace = super::network::CONNECT_TIMEOUT
            + Duration::from_millis(settings.election_max_ms.saturating_mul(2));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut enabled = true;
        let mut majority_since = None;
        metrics::gauge!(CAMPAIGNS_HELD).set(0.0);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let reach = tokio::select! {
                () = stop.cancelled() => break,
                reach = probe(&consensus, silent_after) => reach,
            };
            let allow = next_state(reach, enabled, &mut majority_since, grace);
            if allow == enabled {
                continue;
            }
            enabled = allow;
            consensus.raft().runtime_config().elect(allow);
            metrics::gauge!(CAMPAIGNS_HELD).set(if allow { 0.0 } else { 1.0 });
            if allow {
                tracing::info!(?reach, "elections enabled again");
            } else {
                tracing::warn!(
                    "the leader is silent and no majority of voters answers: holding back \
                     elections (they could not be won and would disrupt the cluster when the \
                     link returns)"
                );
            }
        }
    });
}

/// The gate's tick and how long the leader must be silent before it probes: a heartbeat
/// interval and two, but at most a quarter and a half of `election_max_ms`, so that a decision
/// (silence, a tick, a probe of at most `election_min_ms`) always comes before openraft's
/// first campaign at `election_max_ms + election_min_ms` or later, whatever the settings.
fn timing(heartbeat_ms: u64, election_max_ms: u64) -> (Duration, Duration) {
    let tick = heartbeat_ms.min(election_max_ms / 4).max(10);
    let silent = heartbeat_ms
        .saturating_mul(2)
        .min(election_max_ms / 2)
        .max(20);
    (Duration::from_millis(tick), Duration::from_millis(silent))
}

/// One round: is the leader heard from within `silent_after`, and if not, does a majority of
/// voters answer?
async fn probe(consensus: &Consensus, silent_after: Duration) -> Reach {
    let me = consensus.node_id();
    let (voters, leading) = {
        let metrics = consensus.raft().metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        let voters: Vec<(NodeId, String)> = membership
            .voter_ids()
            .filter_map(|id| {
                let addr = membership.get_node(&id)?.cluster_addr.clone();
                Some((id, addr))
            })
            .collect();
        (voters, m.state == ServerState::Leader)
    };
    if leading || voters.len() <= 1 || !voters.iter().any(|(id, _)| *id == me) {
        return Reach::Fine;
    }
    if consensus.leader_heard_within(silent_after) {
        return Reach::Fine;
    }
    let timeout = Duration::from_millis(consensus.settings().election_min_ms.max(50));
    let network = consensus.network();
    let probes = voters
        .iter()
        .filter(|(id, _)| *id != me)
        .map(|(id, addr)| async move {
            network
                .probe_status(*id, addr, timeout)
                .await
                .is_ok_and(|r| r.node_id == *id)
        });
    let answered = join_all(probes).await.into_iter().filter(|ok| *ok).count();
    match may_campaign(voters.len(), answered) {
        true => Reach::Majority,
        false => Reach::Minority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_voter_campaigns_only_with_a_majority_in_reach() {
        // Three voters: the cut one reaches nobody, a survivor of a dead leader reaches one.
        assert!(!may_campaign(3, 0));
        assert!(may_campaign(3, 1));
        // Four voters: two of four is no majority.
        assert!(!may_campaign(4, 1));
        assert!(may_campaign(4, 2));
        // Five voters spread a:2 b:2 c:1, region a cut off: its two voters reach each other.
        assert!(!may_campaign(5, 1));
        assert!(may_campaign(5, 2));
        // A lone voter always may.
        assert!(may_campaign(1, 0));
    }

    #[test]
    fn the_gate_decides_before_openraft_campaigns() {
        for (hb, min, max) in [
            (200, 450, 900),
            (300, 1000, 2000),
            (100, 600, 1200),
            (400, 450, 900),
        ] {
            let (tick, silent) = timing(hb, max);
            let decided = silent + tick + Duration::from_millis(min);
            assert!(
                decided < Duration::from_millis(max + min),
                "{hb}/{min}-{max}: {decided:?}"
            );
        }
        assert_eq!(
            timing(200, 900),
            (Duration::from_millis(200), Duration::from_millis(400))
        );
    }

    #[test]
    fn coming_back_from_a_hold_waits_for_the_grace() {
        let grace = Duration::from_secs(3600);
        let mut since = None;
        // Enabled, the leader goes silent but a majority answers: stays enabled.
        assert!(next_state(Reach::Majority, true, &mut since, grace));
        // Cut off: held.
        assert!(!next_state(Reach::Minority, true, &mut since, grace));
        // The link returns before the leader reached us: still held during the grace.
        assert!(!next_state(Reach::Majority, false, &mut since, grace));
        assert!(since.is_some());
        // The leader is heard from: enabled, and the grace starts over next time.
        assert!(next_state(Reach::Fine, false, &mut since, grace));
        assert!(since.is_none());
        // Held again; a majority answering for the whole grace re-enables (the leader is gone).
        assert!(!next_state(
            Reach::Minority,
            true,
            &mut since,
            Duration::ZERO
        ));
        assert!(next_state(
            Reach::Majority,
            false,
            &mut since,
            Duration::ZERO
        ));
    }
}
