//! Per-region quorum health as this node sees it: voters per region (from the Raft
//! membership), how many of them answer this node's liveness probes ([`Peers`]), and whether
//! the voter placement keeps a quorum after the loss of any one region
//! ([`crate::raft::placement::region_loss_risk`]). Also this node's own location as an info
//! gauge.
//!
//! Metrics (names below, described by [`describe`]): `cairn_cluster_region_voters{region}`,
//! `cairn_cluster_region_voters_reachable{region}`, `cairn_cluster_quorum_survives_region_loss`
//! and `cairn_node_info{node_id,region,zone}`. `region` is bounded by the membership; members
//! without a region count under `region=""`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use metrics::{describe_gauge, Unit};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::peers::Peers;
use crate::raft::placement::{region_loss_risk, RegionLossRisk};
use crate::raft::{Consensus, RaftMember};

/// Gauge: voters in the region (label `region`).
pub const REGION_VOTERS: &str = "cairn_cluster_region_voters";
/// Gauge: voters in the region that answer this node's liveness probes (label `region`).
pub const REGION_VOTERS_REACHABLE: &str = "cairn_cluster_region_voters_reachable";
/// Gauge: 1 if the voters keep a majority after losing any one region, else 0.
pub const QUORUM_SURVIVES_REGION_LOSS: &str = "cairn_cluster_quorum_survives_region_loss";
/// Gauge: always 1; labels `node_id`, `region`, `zone` say where this node runs.
pub const NODE_INFO: &str = "cairn_node_info";

/// Describes the region metrics (call once at startup).
pub fn describe() {
    describe_gauge!(
        REGION_VOTERS,
        Unit::Count,
        "Raft voters per region in the membership as this node sees it (region=\"\": members without a region)."
    );
    describe_gauge!(
        REGION_VOTERS_REACHABLE,
        Unit::Count,
        "Raft voters per region that answer this node's liveness probes (this node always counts)."
    );
    describe_gauge!(
        QUORUM_SURVIVES_REGION_LOSS,
        Unit::Count,
        "1 if the voters keep a majority after the loss of any one region (also 1 when the members span fewer than two regions), else 0."
    );
    describe_gauge!(
        NODE_INFO,
        Unit::Count,
        "Always 1; the node_id, region and zone labels say where this node runs (cluster.region, cluster.zone)."
    );
}

/// Region → (voters, reachable voters) of `members`, a voter being reachable when `live(id)`.
fn voters_per_region(
    members: &[RaftMember],
    live: impl Fn(u64) -> bool,
) -> BTreeMap<String, (usize, usize)> {
    let mut voters: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for m in members.iter().filter(|m| m.voter) {
        let e = voters.entry(m.region.clone()).or_default();
        e.0 += 1;
        if live(m.id) {
            e.1 += 1;
        }
    }
    voters
}

/// Observations of the same placement risk before it is logged: members report their region
/// a few seconds after a cluster forms, and the transient mix must not warn.
const RISK_LOG_AFTER: u32 = 10;

/// Sets this node's info gauge and starts the worker that refreshes the region gauges every
/// `interval` (the liveness probe interval) until `shutdown`.
pub fn spawn(consensus: Consensus, peers: Peers, interval: Duration, shutdown: CancellationToken) {
    {
        let s = consensus.settings();
        metrics::gauge!(NODE_INFO, "node_id" => consensus.node_id().to_string(),
            "region" => s.region.clone(), "zone" => s.zone.clone())
        .set(1.0);
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut gauges = RegionGauges::default();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let live: BTreeSet<u64> = peers.live().into_iter().map(|p| p.id).collect();
            gauges.observe(&consensus.status().members, &live);
        }
    });
}

/// The worker's memory between observations.
#[derive(Default)]
struct RegionGauges {
    /// Regions ever exported: a region that left the membership drops to 0 instead of keeping
    /// its last value.
    seen: BTreeSet<String>,
    /// The current placement risk and how many observations in a row saw it.
    risk: Option<(RegionLossRisk, u32)>,
}

impl RegionGauges {
    /// Sets the gauges from `members` (`live`: the members answering probes) and logs a
    /// placement risk once it has lasted [`RISK_LOG_AFTER`] observations.
    fn observe(&mut self, members: &[RaftMember], live: &BTreeSet<u64>) {
        let by = voters_per_region(members, |id| live.contains(&id));
        for region in self.seen.iter().filter(|r| !by.contains_key(*r)) {
            metrics::gauge!(REGION_VOTERS, "region" => region.clone()).set(0.0);
            metrics::gauge!(REGION_VOTERS_REACHABLE, "region" => region.clone()).set(0.0);
        }
        for (region, (voters, reachable)) in &by {
            metrics::gauge!(REGION_VOTERS, "region" => region.clone()).set(*voters as f64);
            metrics::gauge!(REGION_VOTERS_REACHABLE, "region" => region.clone())
                .set(*reachable as f64);
            self.seen.insert(region.clone());
        }
        let risk = region_loss_risk(members);
        let survives = if risk.is_none() { 1.0 } else { 0.0 };
        metrics::gauge!(QUORUM_SURVIVES_REGION_LOSS).set(survives);
        self.risk = match (risk, self.risk.take()) {
            (None, Some((_, n))) if n >= RISK_LOG_AFTER => {
                tracing::info!("voter placement survives the loss of any one region again");
                None
            }
            (None, _) => None,
            (Some(r), Some((old, n))) if r == old => Some((r, n.saturating_add(1))),
            (Some(r), _) => Some((r, 1)),
        };
        if let Some((r, n)) = &self.risk {
            if *n == RISK_LOG_AFTER {
                tracing::warn!(region = %r.region, voters = r.voters, holds = r.holds, "voter placement does not survive the loss of one region: {r}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: u64, region: &str, voter: bool) -> RaftMember {
        RaftMember {
            id,
            addr: format!("n{id}:1"),
            voter,
            region: region.into(),
            zone: String::new(),
            matched_index: None,
        }
    }

    #[test]
    fn voters_are_counted_per_region_with_their_reachability() {
        let ms = [
            m(1, "a", true),
            m(2, "b", true),
            m(3, "c", true),
            m(4, "a", false),
        ];
        assert_eq!(
            voters_per_region(&ms, |id| id != 2),
            BTreeMap::from([
                ("a".to_string(), (1, 1)),
                ("b".to_string(), (1, 0)),
                ("c".to_string(), (1, 1)),
            ])
        );
        assert_eq!(
            voters_per_region(&[m(1, "", true)], |_| true),
            BTreeMap::from([(String::new(), (1, 1))]),
            "members without a region count under region=\"\""
        );
    }

    #[test]
    fn a_placement_risk_is_tracked_until_it_clears() {
        let risky = [m(1, "a", true), m(2, "a", true), m(3, "b", true)];
        let fine = [m(1, "a", true), m(2, "b", true), m(3, "c", true)];
        let live = BTreeSet::from([1, 2, 3]);
        let mut g = RegionGauges::default();
        for _ in 0..RISK_LOG_AFTER + 2 {
            g.observe(&risky, &live);
        }
        let (r, n) = g.risk.clone().expect("a risk");
        assert_eq!(
            (r.region.as_str(), r.holds, n),
            ("a", 2, RISK_LOG_AFTER + 2)
        );
        assert_eq!(g.seen, BTreeSet::from(["a".to_string(), "b".to_string()]));
        g.observe(&fine, &live);
        assert_eq!(g.risk, None);
        assert!(g.seen.contains("c"));
    }
}
