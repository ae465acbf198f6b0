//! Regions in the data plane (issue 14): which peers are local, who owns a miss, where a fill
//! places its copies, and which node of a region pulls a blob across a region boundary.
//!
//! Every choice is rendezvous hashing ([`super::owner`]) over a region's live members, so all
//! nodes of a region that see the same liveness agree without talking. A node whose region is
//! empty (no `cluster.region`) sees every member with an empty region as local: with no region
//! configured anywhere, every function here reduces to the cluster-wide choice of before.
//!
//! [`Locality`] maps a peer's cluster address to its region for the metrics of
//! `region_metrics.rs` (`cairn_cluster_peer_requests_total`, `cairn_cluster_cross_region_bytes_total`).

use std::sync::Arc;

use super::owner;
use super::peers::PeerInfo;
use crate::raft::Consensus;

#[path = "region_metrics.rs"]
pub mod metrics;

pub use metrics::describe;

/// The gRPC metadata key in which a node names its own region on blob requests, so that the
/// sender can count the bytes it sends across regions.
pub const REGION_HEADER: &str = "x-cairn-region";

/// This node's place among the members: its id and region.
#[derive(Clone, Copy, Debug)]
pub struct Here<'a> {
    /// This node's id.
    pub id: u64,
    /// This node's region (empty = none).
    pub region: &'a str,
}

impl Here<'_> {
    /// Whether `p` is another live member of this node's region.
    fn is_local_peer(&self, p: &PeerInfo) -> bool {
        p.id != self.id && p.live && p.region == self.region
    }

    /// Whether `p` is a live member of another region.
    fn is_remote_peer(&self, p: &PeerInfo) -> bool {
        p.id != self.id && p.live && p.region != self.region
    }
}

/// Orders `peers` by rendezvous weight for `key` (best first).
fn rank<'p>(key: &str, peers: impl IntoIterator<Item = &'p PeerInfo>) -> Vec<PeerInfo> {
    let peers: Vec<&PeerInfo> = peers.into_iter().collect();
    owner::ranked(key, peers.iter().map(|p| p.id))
        .into_iter()
        .filter_map(|id| peers.iter().find(|p| p.id == id).map(|p| (*p).clone()))
        .collect()
}

/// The owner of a miss for `key` asked at `here`: rendezvous among this node and the live
/// members of its region (learners included: they fill and forward their proposals like any
/// node). This node when its region has no other live member.
pub fn owner(key: &str, here: Here<'_>, members: &[PeerInfo]) -> u64 {
    let local = members
        .iter()
        .filter(|p| here.is_local_peer(p))
        .map(|p| p.id);
    owner::owner_of(key, local.chain([here.id])).unwrap_or(here.id)
}

/// The other live members of this node's region, best candidates for `key` first.
pub fn local_ranked(key: &str, here: Here<'_>, members: &[PeerInfo]) -> Vec<PeerInfo> {
    rank(key, members.iter().filter(|p| here.is_local_peer(p)))
}

/// The live members of the other regions, grouped by region. Each group is ranked for `key`
/// (its first node is the one that pulls `key` into that region, see [`cross_region_puller`]);
/// groups come in the order of their first nodes in a cluster-wide ranking, so every node
/// orders the regions the same way.
pub fn remote_ranked(
    key: &str,
    here: Here<'_>,
    members: &[PeerInfo],
) -> Vec<(String, Vec<PeerInfo>)> {
    let mut groups: Vec<(String, Vec<PeerInfo>)> = Vec::new();
    for p in rank(key, members.iter().filter(|p| here.is_remote_peer(p))) {
        match groups.iter_mut().find(|(r, _)| *r == p.region) {
            Some((_, g)) => g.push(p),
            None => groups.push((p.region.clone(), vec![p])),
        }
    }
    groups
}

/// The node of this node's region that pulls blob `sha256` from another region: the first by
/// rendezvous among this node and the live members of its region. The others wait for it and
/// then copy the blob inside the region; when it goes down the next one takes over.
pub fn cross_region_puller(sha256: &str, here: Here<'_>, members: &[PeerInfo]) -> u64 {
    owner(sha256, here, members)
}

/// Where a node looks for a blob it lacks (the repair worker's plan for one attempt).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlobSources {
    /// Cluster addresses of the other members of this node's region: live ones ranked for the
    /// blob, then the ones that do not answer probes (they may be back).
    pub local: Vec<String>,
    /// Cluster addresses in the other regions, in the same order; empty while this node waits
    /// for its region's puller.
    pub remote: Vec<String>,
    /// The region's cross-region puller this node waits for (`None`: this node may cross).
    pub waiting_for: Option<u64>,
}

/// The sources of blob `sha256` for one attempt at `here`. Every node asks its own region
/// first; only the region's [`cross_region_puller`] (or any node once `takeover` is set, after
/// waiting long enough) also asks the other regions.
pub fn blob_sources(
    sha256: &str,
    here: Here<'_>,
    members: &[PeerInfo],
    takeover: bool,
) -> BlobSources {
    let others: Vec<&PeerInfo> = members.iter().filter(|p| p.id != here.id).collect();
    let ordered = |local: bool| -> Vec<String> {
        let set = others.iter().filter(|p| (p.region == here.region) == local);
        let (live, down): (Vec<&PeerInfo>, Vec<&PeerInfo>) = set.partition(|p| p.live);
        let mut out: Vec<String> = rank(sha256, live).into_iter().map(|p| p.addr).collect();
        out.extend(rank(sha256, down).into_iter().map(|p| p.addr));
        out.retain(|a| !a.is_empty());
        out
    };
    let other_regions = others.iter().any(|p| p.region != here.region);
    let puller = cross_region_puller(sha256, here, members);
    let waiting_for = (other_regions && puller != here.id && !takeover).then_some(puller);
    BlobSources {
        local: ordered(true),
        remote: if waiting_for.is_some() {
            Vec::new()
        } else {
            ordered(false)
        },
        waiting_for,
    }
}

// === Locality ===

/// Looks up the region of a cluster address (`None`: not a member).
type RegionOf = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// This node's region and a lookup of the region of any member's cluster address, for metrics
/// labels (cheap to clone). [`Locality::none`] puts every peer in this node's region.
#[derive(Clone)]
pub struct Locality {
    region: String,
    region_of: RegionOf,
}

/// Whether a request stays in this node's region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The peer is in this node's region (or no regions are configured).
    Local,
    /// The peer is in another region.
    CrossRegion,
}

impl Scope {
    /// The metrics label value.
    pub fn label(self) -> &'static str {
        match self {
            Scope::Local => "local",
            Scope::CrossRegion => "cross_region",
        }
    }
}

impl std::fmt::Debug for Locality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locality")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Default for Locality {
    fn default() -> Self {
        Locality::none()
    }
}

impl Locality {
    /// No regions: every peer counts as local.
    pub fn none() -> Locality {
        Locality {
            region: String::new(),
            region_of: Arc::new(|_| None),
        }
    }

    /// This node's configured region, and the members' regions as the Raft membership records
    /// them (read at each lookup).
    pub fn from_consensus(consensus: Consensus) -> Locality {
        Locality {
            region: consensus.settings().region.clone(),
            region_of: Arc::new(move |addr| {
                let st = consensus.status();
                let m = st.members.into_iter().find(|m| m.addr == addr)?;
                Some(m.region)
            }),
        }
    }

    /// A fixed table of address → region (tests).
    #[cfg(test)]
    pub fn fixed(region: &str, table: &[(&str, &str)]) -> Locality {
        let table: Vec<(String, String)> = table
            .iter()
            .map(|(a, r)| (a.to_string(), r.to_string()))
            .collect();
        Locality {
            region: region.to_string(),
            region_of: Arc::new(move |addr| {
                table
                    .iter()
                    .find(|(a, _)| a == addr)
                    .map(|(_, r)| r.clone())
            }),
        }
    }

    /// This node's region (empty = none).
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The region of the member at `addr` (empty when it has none, has not reported it yet, or
    /// is not a member).
    pub fn region_of(&self, addr: &str) -> String {
        if self.region.is_empty() {
            // No region here: nothing is counted as crossing, so skip the lookup.
            return String::new();
        }
        (self.region_of)(addr).unwrap_or_default()
    }

    /// Whether a peer in `peer_region` is in this node's region.
    pub fn scope(&self, peer_region: &str) -> Scope {
        if peer_region == self.region {
            Scope::Local
        } else {
            Scope::CrossRegion
        }
    }

    /// Counts one outgoing data request of `kind` to the peer at `addr`; returns the peer's
    /// region.
    pub fn count_request(&self, kind: metrics::RequestKind, addr: &str) -> String {
        let peer_region = self.region_of(addr);
        metrics::count_request(kind, &peer_region, self.scope(&peer_region));
        peer_region
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, region: &str, live: bool) -> PeerInfo {
        PeerInfo {
            id,
            addr: format!("n{id}:1"),
            voter: id <= 3,
            live,
            region: region.to_string(),
        }
    }

    /// Two regions of three: a = 1, 2, 3; b = 4, 5, 6.
    fn two_regions() -> Vec<PeerInfo> {
        (1..=6)
            .map(|id| member(id, if id <= 3 { "a" } else { "b" }, true))
            .collect()
    }

    fn ids(v: &[PeerInfo]) -> Vec<u64> {
        v.iter().map(|p| p.id).collect()
    }

    #[test]
    fn the_owner_of_a_miss_is_in_the_asking_nodes_region() {
        let members = two_regions();
        let mut owners = std::collections::BTreeSet::new();
        for i in 0..300 {
            let key = format!("example.com/m{i}@v1.0.0");
            let from_a = owner(&key, Here { id: 1, region: "a" }, &members);
            let from_b = owner(&key, Here { id: 5, region: "b" }, &members);
            assert!((1..=3).contains(&from_a) && (4..=6).contains(&from_b));
            // Every node of a region agrees.
            for id in 2..=3 {
                assert_eq!(owner(&key, Here { id, region: "a" }, &members), from_a);
            }
            owners.insert(from_a);
        }
        assert_eq!(owners.len(), 3, "every node of the region owns some keys");
    }

    #[test]
    fn a_node_alone_in_its_region_owns_its_misses() {
        let mut members = two_regions();
        members[1].live = false;
        members[2].live = false;
        for i in 0..50 {
            let key = format!("k{i}");
            assert_eq!(owner(&key, Here { id: 1, region: "a" }, &members), 1);
        }
        // A member whose region is not reported yet is not local to a node with a region.
        let members = vec![member(1, "a", true), member(2, "", true)];
        assert_eq!(owner("k", Here { id: 1, region: "a" }, &members), 1);
    }

    #[test]
    fn without_regions_choices_are_cluster_wide_as_before() {
        let members: Vec<_> = (1..=3).map(|id| member(id, "", true)).collect();
        for i in 0..100 {
            let key = format!("k{i}");
            let here = Here { id: 2, region: "" };
            assert_eq!(
                owner(&key, here, &members),
                owner::owner_of(&key, [1, 2, 3]).unwrap()
            );
            let want: Vec<u64> = owner::ranked(&key, [1, 3]);
            assert_eq!(ids(&local_ranked(&key, here, &members)), want);
            assert!(remote_ranked(&key, here, &members).is_empty());
        }
    }

    #[test]
    fn copies_and_sources_are_ranked_per_region() {
        let mut members = two_regions();
        members.push(member(7, "c", true));
        members.push(member(8, "c", false));
        let here = Here { id: 2, region: "a" };
        let sha = "ab".repeat(32);
        let local = local_ranked(&sha, here, &members);
        assert_eq!(ids(&local), owner::ranked(&sha, [1, 3]));
        let remote = remote_ranked(&sha, here, &members);
        let regions: Vec<&str> = remote.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(regions.len(), 2);
        assert!(regions.contains(&"b") && regions.contains(&"c"));
        for (region, group) in &remote {
            assert!(group.iter().all(|p| &p.region == region && p.live));
            // The first of each group is the node that pulls the blob into that region.
            let first = group[0].clone();
            let there = Here {
                id: first.id,
                region,
            };
            assert_eq!(cross_region_puller(&sha, there, &members), first.id);
        }
        // Region order is the cluster-wide ranking of each group's first node.
        let firsts: Vec<u64> = remote.iter().map(|(_, g)| g[0].id).collect();
        let global: Vec<u64> = owner::ranked(&sha, firsts.iter().copied());
        assert_eq!(firsts, global);
    }

    #[test]
    fn the_next_node_pulls_when_the_first_is_down() {
        let mut members = two_regions();
        let sha = "cd".repeat(32);
        let first = cross_region_puller(&sha, Here { id: 4, region: "b" }, &members);
        assert!((4..=6).contains(&first));
        members.iter_mut().find(|p| p.id == first).unwrap().live = false;
        let other = [4, 5, 6].into_iter().find(|&id| id != first).unwrap();
        let next = cross_region_puller(
            &sha,
            Here {
                id: other,
                region: "b",
            },
            &members,
        );
        assert!(next != first && (4..=6).contains(&next));
        assert_eq!(next, owner::ranked(&sha, [4, 5, 6])[1]);
    }

    #[test]
    fn only_the_regions_puller_crosses_for_a_missing_blob() {
        let mut members = two_regions();
        members[4].live = false; // node 5 is down
        let sha = "ef".repeat(32);
        let puller = cross_region_puller(&sha, Here { id: 4, region: "b" }, &members);
        assert!(puller == 4 || puller == 6);
        let waiter = if puller == 4 { 6 } else { 4 };
        let p = blob_sources(
            &sha,
            Here {
                id: puller,
                region: "b",
            },
            &members,
            false,
        );
        assert_eq!(p.waiting_for, None);
        let want_local: Vec<String> = vec![format!("n{waiter}:1"), "n5:1".to_string()];
        assert_eq!(p.local, want_local, "live first, the down node last");
        let want_remote: Vec<String> = owner::ranked(&sha, [1, 2, 3])
            .into_iter()
            .map(|id| format!("n{id}:1"))
            .collect();
        assert_eq!(p.remote, want_remote);
        let w = blob_sources(
            &sha,
            Here {
                id: waiter,
                region: "b",
            },
            &members,
            false,
        );
        assert_eq!(w.waiting_for, Some(puller));
        assert!(w.remote.is_empty());
        assert!(w.local.contains(&format!("n{puller}:1")));
        let t = blob_sources(
            &sha,
            Here {
                id: waiter,
                region: "b",
            },
            &members,
            true,
        );
        assert_eq!((t.waiting_for, t.remote.len()), (None, 3), "takeover");
        // Without regions every peer is local and nobody waits.
        let flat: Vec<PeerInfo> = (1..=3).map(|id| member(id, "", true)).collect();
        let f = blob_sources(&sha, Here { id: 2, region: "" }, &flat, false);
        assert_eq!((f.local.len(), f.remote.len(), f.waiting_for), (2, 0, None));
    }

    #[test]
    fn locality_labels_peers() {
        let loc = Locality::fixed("a", &[("x:1", "a"), ("y:1", "b")]);
        assert_eq!(loc.scope(&loc.region_of("x:1")), Scope::Local);
        assert_eq!(loc.scope(&loc.region_of("y:1")), Scope::CrossRegion);
        assert_eq!(loc.region_of("z:1"), "");
        assert_eq!(loc.scope(""), Scope::CrossRegion);
        let none = Locality::none();
        assert_eq!(none.scope(&none.region_of("y:1")), Scope::Local);
    }
}
