//! The cluster-wide view behind `cairn status` and `cairn members list`: ask one node for the
//! membership, then every member for its own `Status` (concurrently, short timeout), and judge
//! the whole.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use cairn_node::raft::placement::region_loss_risk;
use cairn_node::raft::RaftMember;
use cairn_proto::v1::StatusReply;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::client;

/// One member as seen by the cluster view.
#[derive(Clone, Debug)]
pub struct MemberView {
    /// Node id.
    pub id: u64,
    /// Cluster address from the membership (or the node's own, if it is not a member).
    pub addr: String,
    /// Voter (`Some(true)`), learner (`Some(false)`), or not in the membership (`None`).
    pub voter: Option<bool>,
    /// The region recorded in the membership (empty = none or not reported yet).
    pub region: String,
    /// The zone recorded in the membership (empty = none).
    pub zone: String,
    /// Its own `Status`, or why it could not be had.
    pub reply: Result<StatusReply, String>,
}

/// The whole cluster as the queried node and its members report it.
#[derive(Clone, Debug)]
pub struct ClusterView {
    /// Every member, grouped by region, by id inside a region.
    pub members: Vec<MemberView>,
}

/// How the cluster is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Every member answers, one leader, everything ready and complete.
    Healthy,
    /// Serving, but blobs are missing or being repaired somewhere.
    Degraded,
    /// A member is unreachable or not ready, or there is no leader.
    Unhealthy,
}

/// The verdict on a [`ClusterView`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Overall state.
    pub health: Health,
    /// The agreed leader, if any.
    pub leader: Option<u64>,
    /// One line for humans.
    pub summary: String,
}

/// Builds the view: `Status` of `node`, then of every member it lists (at most `member_timeout`
/// each, all at once).
pub async fn gather(
    node: &str,
    timeout: Duration,
    member_timeout: Duration,
) -> Result<ClusterView> {
    let first = client::status(node, timeout).await?;
    let mut members: Vec<MemberView> = first
        .members
        .iter()
        .map(|m| MemberView {
            id: m.id,
            addr: m.addr.clone(),
            voter: Some(m.voter),
            region: m.region.clone(),
            zone: m.zone.clone(),
            reply: Err("not queried".to_string()),
        })
        .collect();
    if !members.iter().any(|m| m.id == first.node_id) {
        members.push(MemberView {
            id: first.node_id,
            addr: first.cluster_addr.clone(),
            voter: None,
            region: first.region.clone(),
            zone: first.zone.clone(),
            reply: Err("not queried".to_string()),
        });
    }
    let mut calls = JoinSet::new();
    for (i, m) in members.iter().enumerate() {
        if m.id != first.node_id {
            let addr = m.addr.clone();
            calls.spawn(async move { (i, client::status(&addr, member_timeout).await) });
        }
    }
    while let Some(done) = calls.join_next().await {
        if let Ok((i, res)) = done {
            members[i].reply = res.map_err(|e| format!("unreachable: {}", short_error(&e)));
        }
    }
    for m in members.iter_mut().filter(|m| m.id == first.node_id) {
        m.reply = Ok(first.clone());
    }
    // Grouped by region (members without one first), by id inside a region.
    members.sort_by(|a, b| (&a.region, a.id).cmp(&(&b.region, b.id)));
    Ok(ClusterView { members })
}

impl ClusterView {
    /// The leader: the reachable member that says it leads (the highest term wins if several
    /// still think so).
    pub fn leader(&self) -> Option<&StatusReply> {
        self.members
            .iter()
            .filter_map(|m| m.reply.as_ref().ok())
            .filter(|r| r.raft_state == "Leader")
            .max_by_key(|r| r.current_term)
    }

    /// Whether any member has a region or zone (the REGION/ZONE columns and the per-region
    /// lines are shown then).
    pub fn has_locations(&self) -> bool {
        self.members
            .iter()
            .any(|m| !m.region.is_empty() || !m.zone.is_empty())
    }

    /// Per region: (voters, voters that answered, members).
    pub fn regions(&self) -> BTreeMap<String, RegionView> {
        let mut by: BTreeMap<String, RegionView> = BTreeMap::new();
        for m in &self.members {
            let r = by.entry(m.region.clone()).or_default();
            r.members += 1;
            if m.voter == Some(true) {
                r.voters += 1;
                if m.reply.is_ok() {
                    r.reachable_voters += 1;
                }
            }
        }
        by
    }

    /// The warning when the voters would not keep a majority after losing one region.
    pub fn placement_warning(&self) -> Option<String> {
        let members: Vec<RaftMember> = self
            .members
            .iter()
            .filter(|m| m.voter.is_some())
            .map(|m| RaftMember {
                id: m.id,
                addr: m.addr.clone(),
                voter: m.voter == Some(true),
                region: m.region.clone(),
                zone: m.zone.clone(),
                matched_index: None,
            })
            .collect();
        region_loss_risk(&members).map(|r| {
            format!("WARNING: voter placement does not survive the loss of one region: {r}; spread the voters (`cairn members add`/`remove`, see the README's multi-region section)")
        })
    }

    /// One line per region (`region a: 1/1 voters reachable, 2 members`), then the placement
    /// warning if any; empty for a single-region cluster.
    fn region_lines(&self) -> String {
        let mut out = String::new();
        if !self.has_locations() {
            return out;
        }
        for (region, r) in self.regions() {
            let name = if region.is_empty() { "(none)" } else { &region };
            out.push_str(&format!(
                "region {name}: {}/{} voters reachable, {} members\n",
                r.reachable_voters, r.voters, r.members
            ));
        }
        if let Some(w) = self.placement_warning() {
            out.push_str(&w);
            out.push('\n');
        }
        out
    }

    /// Judges the view (see [`Health`]).
    pub fn verdict(&self) -> Verdict {
        let leader = self.leader().map(|r| r.node_id);
        let (mut problems, notes) = self.findings(leader.is_some());
        if leader.is_none() {
            problems.push("no leader (election running or quorum lost)".to_string());
        }
        let reachable = self.members.iter().filter(|m| m.reply.is_ok()).count();
        let head = format!(
            "{reachable}/{} members reachable, leader {}",
            self.members.len(),
            leader.map_or("none".to_string(), |l| l.to_string())
        );
        let (health, summary) = if !problems.is_empty() {
            let all = problems.join("; ");
            (
                Health::Unhealthy,
                format!("cluster UNHEALTHY: {head}; {all}"),
            )
        } else if !notes.is_empty() {
            let all = notes.join("; ");
            (Health::Degraded, format!("cluster degraded: {head}; {all}"))
        } else {
            (Health::Healthy, format!("cluster healthy: {head}"))
        };
        Verdict {
            health,
            leader,
            summary,
        }
    }

    /// Per-member findings: (problems that make the cluster unhealthy, notes that degrade it).
    fn findings(&self, has_leader: bool) -> (Vec<String>, Vec<String>) {
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        for m in &self.members {
            let r = match &m.reply {
                Err(_) => {
                    problems.push(format!("node {} unreachable", m.id));
                    continue;
                }
                Ok(r) => r,
            };
            let h = &r.health;
            if !r.ready {
                problems.push(format!("node {} not ready ({h})", m.id));
            } else if h.starts_with("unavailable") || h.contains("without a quorum") {
                problems.push(format!("node {}: {h}", m.id));
            } else if h.starts_with("degraded") && r.raft_state != "Leader" && has_leader {
                notes.push(format!("node {}: {h}", m.id));
            } else if r.blobs_missing > 0 || r.repair_queue > 0 {
                notes.push(format!(
                    "node {} misses {} blobs ({} queued for repair)",
                    m.id, r.blobs_missing, r.repair_queue
                ));
            }
        }
        (problems, notes)
    }

    /// Log entries member `r` has not applied yet, compared with the leader's last log index.
    fn lag(&self, r: &StatusReply) -> Option<u64> {
        self.leader()
            .map(|l| l.last_log_index.saturating_sub(r.last_applied_index))
    }

    /// The `cairn status` table.
    pub fn render_table(&self) -> String {
        let header = [
            "ID", "REGION", "ZONE", "ADDR", "ROLE", "VOTER", "TERM", "APPLIED", "LAG", "BLOBS",
            "MISSING", "REPAIR", "HEALTH",
        ];
        let regional = self.has_locations();
        let mut rows = vec![header.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
        for m in &self.members {
            rows.push(self.row(m));
        }
        if !regional {
            for row in &mut rows {
                row.drain(1..3);
            }
        }
        let mut out = align(&rows);
        out.push_str(&self.region_lines());
        out.push_str(&self.verdict().summary);
        out.push('\n');
        out
    }

    fn row(&self, m: &MemberView) -> Vec<String> {
        let voter = match m.voter {
            Some(true) => "voter",
            Some(false) => "learner",
            None => "-",
        };
        let mut row = vec![
            m.id.to_string(),
            dash(&m.region),
            dash(&m.zone),
            m.addr.clone(),
        ];
        match &m.reply {
            Ok(r) => row.extend([
                r.raft_state.to_lowercase(),
                voter.to_string(),
                r.current_term.to_string(),
                r.last_applied_index.to_string(),
                self.lag(r).map_or("-".to_string(), |l| l.to_string()),
                r.blob_count.to_string(),
                r.blobs_missing.to_string(),
                r.repair_queue.to_string(),
                r.health.clone(),
            ]),
            Err(e) => {
                row.extend(["unreachable".to_string(), voter.to_string()]);
                row.extend(std::iter::repeat_n("-".to_string(), 6));
                row.push(e.clone());
            }
        }
        row
    }

    /// The same as JSON: `{state, leader_id, summary, members: [..], regions: {..},
    /// placement_warning}`.
    pub fn to_json(&self) -> serde_json::Value {
        let v = self.verdict();
        let members: Vec<serde_json::Value> =
            self.members.iter().map(|m| self.member_json(m)).collect();
        serde_json::json!({
            "state": v.health,
            "leader_id": v.leader,
            "summary": v.summary,
            "members": members,
            "regions": self.regions(),
            "placement_warning": self.placement_warning(),
        })
    }

    fn member_json(&self, m: &MemberView) -> serde_json::Value {
        let mut j = serde_json::json!({
            "id": m.id, "addr": m.addr, "voter": m.voter, "reachable": m.reply.is_ok(),
            "region": m.region, "zone": m.zone,
        });
        match &m.reply {
            Ok(r) => {
                let extra = serde_json::json!({
                    "role": r.raft_state.to_lowercase(), "term": r.current_term,
                    "applied_index": r.last_applied_index, "last_log_index": r.last_log_index,
                    "lag": self.lag(r), "blobs": r.blob_count, "blob_bytes": r.blob_bytes,
                    "blobs_missing": r.blobs_missing, "repair_queue": r.repair_queue,
                    "health": r.health, "ready": r.ready, "initialized": r.initialized,
                    "version": r.version, "version_records": r.version_records,
                    "listen_addr": r.listen_addr, "uptime_seconds": r.uptime_seconds,
                });
                merge(&mut j, extra);
            }
            Err(e) => merge(
                &mut j,
                serde_json::json!({"role": "unreachable", "error": e}),
            ),
        }
        j
    }
}

/// The members of one region in a [`ClusterView`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RegionView {
    /// Voters in the region.
    pub voters: usize,
    /// Voters that answered the status query.
    pub reachable_voters: usize,
    /// Members (voters and learners).
    pub members: usize,
}

/// `s`, or `-` when empty (a table cell).
pub fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.to_string()
    }
}

/// The root cause of a failed member query, short enough for a table cell.
fn short_error(e: &anyhow::Error) -> String {
    if e.root_cause().is::<tokio::time::error::Elapsed>() {
        return "no answer in time".to_string();
    }
    e.root_cause().to_string()
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}

/// Left-aligned columns separated by two spaces.
pub fn align(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, s)| format!("{s:<w$}", w = widths[c]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(id: u64, state: &str, ready: bool) -> StatusReply {
        StatusReply {
            node_id: id,
            raft_state: state.to_string(),
            ready,
            health: "healthy".to_string(),
            current_term: 3,
            last_log_index: 10,
            last_applied_index: 7,
            ..StatusReply::default()
        }
    }

    fn member(id: u64, reply: Result<StatusReply, String>) -> MemberView {
        MemberView {
            id,
            addr: format!("n{id}:9090"),
            voter: Some(true),
            region: String::new(),
            zone: String::new(),
            reply,
        }
    }

    fn in_region(id: u64, region: &str, voter: bool) -> MemberView {
        MemberView {
            voter: Some(voter),
            region: region.to_string(),
            ..member(id, Ok(reply(id, "Follower", true)))
        }
    }

    #[test]
    fn members_are_grouped_by_region_and_bad_placement_is_warned() {
        let mut down = in_region(3, "c", true);
        down.reply = Err("unreachable: no answer in time".into());
        let view = ClusterView {
            members: vec![
                in_region(1, "a", true),
                in_region(4, "a", false),
                in_region(2, "b", true),
                down,
            ],
        };
        let table = view.render_table();
        assert!(table.starts_with("ID  REGION  ZONE"), "{table}");
        assert!(
            table.contains("region c: 0/1 voters reachable, 1 members"),
            "{table}"
        );
        assert!(
            table.contains("region a: 1/1 voters reachable, 2 members"),
            "{table}"
        );
        assert_eq!(view.placement_warning(), None);
        let j = view.to_json();
        assert_eq!(j["members"][1]["region"], "a");
        assert_eq!(j["regions"]["c"]["reachable_voters"], 0);
        assert!(j["placement_warning"].is_null(), "{j}");

        let lopsided = ClusterView {
            members: vec![
                in_region(1, "a", true),
                in_region(2, "a", true),
                in_region(3, "b", true),
            ],
        };
        let w = lopsided.placement_warning().expect("a warning");
        assert!(w.contains("region a holds 2 of 3 voters"), "{w}");
        assert!(lopsided.render_table().contains(&w));
        assert_eq!(lopsided.to_json()["placement_warning"], w.as_str());
        // Without locations the table keeps its old columns and says nothing about regions.
        let plain = ClusterView {
            members: vec![member(1, Ok(reply(1, "Leader", true)))],
        };
        assert!(
            plain.render_table().starts_with("ID  ADDR"),
            "{}",
            plain.render_table()
        );
        assert!(!plain.render_table().contains("region"));
    }

    #[test]
    fn a_healthy_cluster() {
        let v = ClusterView {
            members: vec![
                member(1, Ok(reply(1, "Follower", true))),
                member(2, Ok(reply(2, "Leader", true))),
            ],
        };
        let verdict = v.verdict();
        assert_eq!(verdict.health, Health::Healthy);
        assert_eq!(verdict.leader, Some(2));
        assert_eq!(
            verdict.summary,
            "cluster healthy: 2/2 members reachable, leader 2"
        );
        let table = v.render_table();
        assert!(table.starts_with("ID  ADDR"), "{table}");
        assert!(table.contains("n2:9090  leader"), "{table}");
        let j = v.to_json();
        assert_eq!(j["members"][1]["role"], "leader");
        assert_eq!(j["members"][0]["lag"], 3);
        assert_eq!(j["state"], "healthy");
    }

    #[test]
    fn unreachable_or_leaderless_is_unhealthy() {
        let v = ClusterView {
            members: vec![
                member(1, Ok(reply(1, "Leader", true))),
                member(2, Err("unreachable: connection refused".into())),
            ],
        };
        let verdict = v.verdict();
        assert_eq!(verdict.health, Health::Unhealthy);
        assert!(
            verdict.summary.contains("node 2 unreachable"),
            "{}",
            verdict.summary
        );
        assert!(v.render_table().contains("unreachable"));
        let v = ClusterView {
            members: vec![member(1, Ok(reply(1, "Follower", true)))],
        };
        assert!(v.verdict().summary.contains("no leader"));
    }

    #[test]
    fn missing_blobs_are_degraded() {
        let mut r = reply(1, "Leader", true);
        r.blobs_missing = 4;
        let v = ClusterView {
            members: vec![member(1, Ok(r))],
        };
        let verdict = v.verdict();
        assert_eq!(verdict.health, Health::Degraded);
        assert!(
            verdict.summary.contains("misses 4 blobs"),
            "{}",
            verdict.summary
        );
    }

    #[test]
    fn a_leader_without_quorum_is_unhealthy() {
        let mut r = reply(1, "Leader", true);
        r.health = "degraded: leader without a quorum of voters".into();
        let v = ClusterView {
            members: vec![member(1, Ok(r))],
        };
        assert_eq!(v.verdict().health, Health::Unhealthy);
    }
}
