//! Membership changes on the leader, serialized by one lock per node (concurrent changes can
//! leave the cluster in a joint configuration, openraft#1351).
//!
//! - Add: `add_learner(id, addr, blocking)` first (the leader waits, bounded, until the learner
//!   has caught up — it may need a snapshot), then `change_membership(AddVoterIds{id})` unless
//!   the node should stay a learner. Every change is joint consensus and returns once the final
//!   configuration is committed.
//! - Remove: `change_membership(RemoveVoters{id}, retain = false)` for a voter (this also drops
//!   its address), `RemoveNodes{id}` for a learner. The last voter is never removed. A removed
//!   node never hears about it: stop it.
//!
//! The admin service (`crate::admin`) forwards a follower's request to the leader.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::ChangeMembers;

use super::error::MembershipError;
use super::status::members_of;
use super::{Consensus, NodeAddr, NodeId, RaftMember, RaftStatus};

/// How long the leader waits for a new learner to catch up (it may need a full snapshot).
pub const LEARNER_CATCH_UP: Duration = Duration::from_secs(300);
/// How long one configuration change may take to commit.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);

type WriteError = RaftError<NodeId, ClientWriteError<NodeId, NodeAddr>>;
type WriteResult = Result<openraft::raft::ClientWriteResponse<super::TypeConfig>, WriteError>;

impl Consensus {
    /// Adds node `id` (`node`: its cluster address and the location it reported): as a learner,
    /// then (unless `learner_only`) as a voter. Must run on the leader
    /// ([`MembershipError::NotLeader`] otherwise). Refuses a promotion that gives one region a
    /// majority of the voters unless `force_placement` ([`super::placement`]). Idempotent: a
    /// node already present at the same address is only promoted if needed. Returns the
    /// resulting membership.
    pub async fn add_member(
        &self,
        id: NodeId,
        node: NodeAddr,
        learner_only: bool,
        force_placement: bool,
    ) -> Result<Vec<RaftMember>, MembershipError> {
        let addr = node.cluster_addr.clone();
        check_id(id)?;
        check_addr(&addr)?;
        let _serial = self.inner.membership_lock.lock().await;
        let st = self.leader_status()?;
        check_no_conflict(&st, id, &addr)?;
        let present = st.member(id).cloned();
        let wants_voter = !learner_only;
        if present.as_ref().is_some_and(|m| m.voter || !wants_voter) {
            return Ok(st.members);
        }
        if wants_voter {
            let region = match &present {
                Some(m) if node.region.is_empty() => m.region.clone(),
                _ => node.region.clone(),
            };
            if let Some(problem) = super::placement::check(&st.members, Some((id, &region))) {
                if !force_placement {
                    return Err(MembershipError::Placement { problem });
                }
                tracing::warn!(node_id = id, %problem, "voter placement forced by the operator");
            }
        }
        // Also for a present learner: waits until it has caught up before promoting it.
        self.add_learner(id, node).await?;
        if !wants_voter {
            return Ok(self.status().members);
        }
        let ids = BTreeSet::from([id]);
        let resp = self
            .change(ChangeMembers::AddVoterIds(ids), CHANGE_TIMEOUT)
            .await?;
        tracing::info!(node_id = id, addr, "member promoted to voter");
        Ok(resp)
    }

    /// Records the region and zone node `id` reports for itself (its address stays). Must run
    /// on the leader. A no-op when the membership already says so. Returns the membership.
    pub async fn set_location(
        &self,
        id: NodeId,
        region: &str,
        zone: &str,
    ) -> Result<Vec<RaftMember>, MembershipError> {
        check_id(id)?;
        let _serial = self.inner.membership_lock.lock().await;
        let st = self.leader_status()?;
        let Some(member) = st.member(id) else {
            return Err(MembershipError::NotMember { id });
        };
        if member.region == region && member.zone == zone {
            return Ok(st.members);
        }
        let node = NodeAddr {
            cluster_addr: member.addr.clone(),
            region: region.to_string(),
            zone: zone.to_string(),
        };
        let members = self
            .change(
                ChangeMembers::SetNodes(BTreeMap::from([(id, node)])),
                CHANGE_TIMEOUT,
            )
            .await?;
        if let Some(problem) = super::placement::check(&members, None) {
            tracing::warn!(node_id = id, region, %problem, "voter placement does not survive the loss of a region");
        }
        tracing::info!(node_id = id, region, zone, "member location recorded");
        Ok(members)
    }

    /// Removes node `id` from the membership (voter or learner). Must run on the leader. Refuses
    /// to remove the last voter. Returns the resulting membership.
    pub async fn remove_member(&self, id: NodeId) -> Result<Vec<RaftMember>, MembershipError> {
        check_id(id)?;
        let _serial = self.inner.membership_lock.lock().await;
        let st = self.leader_status()?;
        let Some(member) = st.member(id) else {
            return Err(MembershipError::NotMember { id });
        };
        if member.voter && st.members.iter().filter(|m| m.voter).count() == 1 {
            return Err(MembershipError::LastVoter { id });
        }
        let mut members = st.members.clone();
        if member.voter {
            let ids = BTreeSet::from([id]);
            members = self
                .change(ChangeMembers::RemoveVoters(ids), CHANGE_TIMEOUT)
                .await?;
        }
        if members.iter().any(|m| m.id == id) {
            let ids = BTreeSet::from([id]);
            members = self
                .change(ChangeMembers::RemoveNodes(ids), CHANGE_TIMEOUT)
                .await?;
        }
        tracing::info!(node_id = id, "member removed");
        Ok(members)
    }

    /// Whether [`Consensus::add_member`] would get past its checks here: valid arguments, this
    /// node leads, no conflicting member. Lets the caller probe the new node first, only where
    /// the change will actually be made.
    pub fn precheck_add(&self, id: NodeId, addr: &str) -> Result<(), MembershipError> {
        check_id(id)?;
        check_addr(addr)?;
        let st = self.leader_status()?;
        check_no_conflict(&st, id, addr)
    }

    /// This node's status if it leads, else [`MembershipError::NotLeader`].
    fn leader_status(&self) -> Result<RaftStatus, MembershipError> {
        let st = self.status();
        if st.leader_id == Some(self.inner.id) {
            return Ok(st);
        }
        let leader_addr = st
            .leader_id
            .and_then(|l| st.member(l))
            .map(|m| m.addr.clone())
            .unwrap_or_default();
        Err(MembershipError::NotLeader {
            leader_id: st.leader_id,
            leader_addr,
        })
    }

    /// Adds a learner and waits (at most [`LEARNER_CATCH_UP`]) until it has caught up.
    async fn add_learner(&self, id: NodeId, node: NodeAddr) -> Result<(), MembershipError> {
        tracing::info!(
            node_id = id,
            addr = %node.cluster_addr,
            region = %node.region,
            "adding learner; waiting for it to catch up"
        );
        let add = self.inner.raft.add_learner(id, node, true);
        match tokio::time::timeout(LEARNER_CATCH_UP, add).await {
            Err(_) => Err(MembershipError::CatchUpTimeout {
                id,
                waited_secs: LEARNER_CATCH_UP.as_secs(),
            }),
            Ok(res) => res.map(|_| ()).map_err(|e| self.write_error(e)),
        }
    }

    /// Runs one membership change (joint consensus) and returns the resulting members.
    async fn change(
        &self,
        change: ChangeMembers<NodeId, NodeAddr>,
        timeout: Duration,
    ) -> Result<Vec<RaftMember>, MembershipError> {
        let run = self.inner.raft.change_membership(change, false);
        let res: WriteResult = match tokio::time::timeout(timeout, run).await {
            Err(_) => {
                return Err(MembershipError::Timeout {
                    waited_secs: timeout.as_secs(),
                })
            }
            Ok(res) => res,
        };
        let resp = res.map_err(|e| self.write_error(e))?;
        Ok(match resp.membership {
            Some(m) => members_of(&m, None),
            None => self.status().members,
        })
    }

    fn write_error(&self, e: WriteError) -> MembershipError {
        match e {
            RaftError::Fatal(f) => MembershipError::Fatal(Box::new(f)),
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                MembershipError::NotLeader {
                    leader_id: f.leader_id,
                    leader_addr: f.leader_node.map(|n| n.cluster_addr).unwrap_or_default(),
                }
            }
            RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => match e {
                ChangeMembershipError::InProgress(p) => MembershipError::InProgress(p.to_string()),
                other => MembershipError::InProgress(other.to_string()),
            },
        }
    }
}

fn check_id(id: NodeId) -> Result<(), MembershipError> {
    if id == 0 {
        return Err(MembershipError::ZeroId);
    }
    Ok(())
}

/// Accepts `host:port` with a non-empty host (name, IPv4 or `[IPv6]`) and a port 1–65535.
pub(crate) fn check_addr(addr: &str) -> Result<(), MembershipError> {
    let bad = |reason| MembershipError::BadAddr {
        addr: addr.to_string(),
        reason,
    };
    if addr.contains("://") {
        return Err(bad("give HOST:PORT without a scheme"));
    }
    if addr.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(bad("contains whitespace or '/'"));
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(bad("missing :PORT"));
    };
    if host.is_empty() || host == "[]" {
        return Err(bad("missing host"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(bad("an IPv6 host must be in brackets"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(bad("port must be 1-65535")),
    }
}

/// Refuses an id present at another address, and an address that belongs to another id.
fn check_no_conflict(st: &RaftStatus, id: NodeId, addr: &str) -> Result<(), MembershipError> {
    let by_addr: BTreeMap<&str, NodeId> =
        st.members.iter().map(|m| (m.addr.as_str(), m.id)).collect();
    if let Some(m) = st.member(id) {
        if m.addr != addr {
            return Err(MembershipError::IdConflict {
                id,
                existing: m.addr.clone(),
            });
        }
    }
    match by_addr.get(addr) {
        Some(other) if *other != id => Err(MembershipError::AddrConflict {
            addr: addr.to_string(),
            existing_id: *other,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        for good in ["node-1.cairn.ns.svc:9090", "127.0.0.1:1", "[::1]:9090"] {
            assert!(check_addr(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "host",
            ":9090",
            "host:0",
            "host:65536",
            "host:x",
            "http://host:9090",
            "::1:9090",
            "a b:1",
        ] {
            assert!(check_addr(bad).is_err(), "{bad}");
        }
        assert!(check_id(0).is_err());
    }

    fn status(members: &[(NodeId, &str, bool)]) -> RaftStatus {
        RaftStatus {
            node_id: 1,
            state: super::super::RaftRole::Leader,
            term: 1,
            leader_id: Some(1),
            last_log_index: Some(1),
            applied_index: Some(1),
            snapshot_index: None,
            millis_since_quorum_ack: None,
            leader_silent_ms: None,
            running: true,
            initialized: true,
            members: members
                .iter()
                .map(|(id, addr, voter)| RaftMember {
                    id: *id,
                    addr: addr.to_string(),
                    voter: *voter,
                    matched_index: None,
                    region: String::new(),
                    zone: String::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn conflicts_are_refused() {
        let st = status(&[(1, "a:1", true), (2, "b:1", true)]);
        assert!(check_no_conflict(&st, 3, "c:1").is_ok());
        assert!(
            check_no_conflict(&st, 2, "b:1").is_ok(),
            "same id, same addr"
        );
        assert!(matches!(
            check_no_conflict(&st, 2, "c:1"),
            Err(MembershipError::IdConflict { id: 2, .. })
        ));
        assert!(matches!(
            check_no_conflict(&st, 3, "b:1"),
            Err(MembershipError::AddrConflict { existing_id: 2, .. })
        ));
    }
}
