//! Voter placement across regions: a multi-region cluster must keep a quorum when any one region
//! is lost, so no region may hold a majority of the voters. Learners (non-voters) may sit
//! anywhere. Clusters whose members all share one region (or have none) are not checked: there
//! is no other region to survive in.

use std::collections::BTreeMap;

use super::{NodeId, RaftMember};

/// Why a voter set is badly placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementProblem {
    /// The region holding too many voters (`""` = members that reported no region).
    pub region: String,
    /// Voters in that region.
    pub holds: usize,
    /// Voters in the whole cluster.
    pub voters: usize,
}

impl std::fmt::Display for PlacementProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let region = if self.region.is_empty() {
            "(no region)"
        } else {
            &self.region
        };
        write!(
            f,
            "region {region} would hold {} of {} voters, so losing that region would lose the quorum",
            self.holds, self.voters
        )
    }
}

/// Voters per region of `members` (learners excluded).
pub fn voters_by_region(members: &[RaftMember]) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for m in members.iter().filter(|m| m.voter) {
        *by.entry(m.region.clone()).or_insert(0) += 1;
    }
    by
}

/// The placement problem of `members` once node `promote` (with `region`) is a voter too, or
/// `None` when the membership spans fewer than two regions or no region holds a majority.
pub fn check(members: &[RaftMember], promote: Option<(NodeId, &str)>) -> Option<PlacementProblem> {
    let mut after: Vec<RaftMember> = members.to_vec();
    if let Some((id, region)) = promote {
        match after.iter_mut().find(|m| m.id == id) {
            Some(m) => {
                m.voter = true;
                m.region = region.to_string();
            }
            None => after.push(RaftMember {
                id,
                addr: String::new(),
                voter: true,
                region: region.to_string(),
                zone: String::new(),
                matched_index: None,
            }),
        }
    }
    let regions: std::collections::BTreeSet<&str> =
        after.iter().map(|m| m.region.as_str()).collect();
    if regions.len() < 2 {
        return None;
    }
    let by = voters_by_region(&after);
    let voters: usize = by.values().sum();
    by.into_iter()
        .filter(|(_, n)| 2 * n > voters)
        .map(|(region, holds)| PlacementProblem {
            region,
            holds,
            voters,
        })
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: NodeId, region: &str, voter: bool) -> RaftMember {
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
    fn one_region_clusters_are_not_checked() {
        let ms = [m(1, "", true), m(2, "", true)];
        assert_eq!(check(&ms, Some((3, ""))), None);
        let ms = [m(1, "eu", true), m(2, "eu", true)];
        assert_eq!(check(&ms, Some((3, "eu"))), None);
    }

    #[test]
    fn a_region_with_a_majority_of_voters_is_refused() {
        // Growing one voter per region is fine at every step.
        assert_eq!(check(&[m(1, "a", true)], Some((2, "b"))), None);
        let ms = [m(1, "a", true), m(2, "b", true)];
        assert_eq!(check(&ms, Some((3, "c"))), None);
        // A second voter in region a would give it 2 of 3.
        let p = check(&ms, Some((3, "a"))).expect("refused");
        assert_eq!((p.region.as_str(), p.holds, p.voters), ("a", 2, 3));
        assert!(p.to_string().contains("lose the quorum"), "{p}");
        // 2 + 2 + 1 is fine; learners never count.
        let ms = [
            m(1, "a", true),
            m(2, "a", true),
            m(3, "b", true),
            m(4, "b", true),
            m(6, "a", false),
        ];
        assert_eq!(check(&ms, Some((5, "c"))), None);
        // Promoting an existing learner counts it in its (new) region.
        let p = check(&ms, Some((6, "a"))).expect("refused");
        assert_eq!((p.holds, p.voters), (3, 5));
    }
}
