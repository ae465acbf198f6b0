//! Which local blobs to evict (pure): least recently served first, never a pinned one, never a
//! recently served one, and for a blob that cannot be fetched again only on a node that is not
//! one of its keepers.
//!
//! The keepers of a non-refetchable blob are the first `min_copies` voters of the rendezvous
//! ranking for its sha256 ([`crate::cluster::owner::ranked`]): deterministic on every node for
//! one membership, so no two nodes can each decide the other keeps the last copy. A keeper
//! never evicts it; any other node drops its copy only after every keeper confirmed it holds
//! the blob (`HasBlobs`).
//!
//! Regions (issue 14) do not change this rule, on purpose. Fills place their `min_copies` in the
//! filling node's region by liveness (`cluster::region`), which nodes may momentarily see
//! differently; keepers must be a function of the membership alone, or two nodes could each
//! count on the other. Keepers in another region than the fill's copies are safe: a non-keeper
//! only drops its copy once every keeper confirmed holding it, and the repair worker brings
//! every blob to every node.

use crate::cluster::owner;

/// Why a blob stays or may go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Refetchable from the upstream: may be evicted.
    Evictable,
    /// Not refetchable, and this node is not a keeper: may be evicted once these keepers
    /// confirmed they hold it.
    IfKeepersHold(Vec<u64>),
    /// A pin matches one of its versions.
    Pinned,
    /// Not refetchable and this node is one of its keepers.
    Keeper,
}

/// A local blob as the planner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Its address.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last served (or stored), unix ms.
    pub last_ms: u64,
    /// Whether it may go.
    pub keep: Keep,
}

/// Whether a version's `source` can be asked again for the same bytes: module proxies
/// (`http(s)://`) and `file://` trees keep every version; `direct` (version control) may lose
/// a repository or a tag, so its versions are not refetchable.
pub fn refetchable(source: &str) -> bool {
    source.starts_with("https://") || source.starts_with("http://") || source.starts_with("file://")
}

/// The nodes that keep a non-refetchable blob: the first `min_copies` voters of its ranking.
pub fn keepers(sha256: &str, voters: &[u64], min_copies: usize) -> Vec<u64> {
    let mut ranked = owner::ranked(sha256, voters.iter().copied());
    ranked.truncate(min_copies.max(1));
    ranked
}

/// How node `self_id` may treat a blob, from what references it.
pub fn classify(
    sha256: &str,
    pinned: bool,
    refetchable: bool,
    self_id: u64,
    voters: &[u64],
    min_copies: usize,
) -> Keep {
    if pinned {
        return Keep::Pinned;
    }
    if refetchable {
        return Keep::Evictable;
    }
    let k = keepers(sha256, voters, min_copies);
    if k.contains(&self_id) || voters.is_empty() {
        Keep::Keeper
    } else {
        Keep::IfKeepersHold(k)
    }
}

/// The blobs to try, least recently served first, until their sizes add up to `need`: skips
/// pinned and keeper blobs and any served at or after `idle_before_ms`.
pub fn plan(mut cands: Vec<Candidate>, need: u64, idle_before_ms: u64) -> Vec<Candidate> {
    cands.retain(|c| {
        matches!(c.keep, Keep::Evictable | Keep::IfKeepersHold(_)) && c.last_ms < idle_before_ms
    });
    cands.sort_by(|a, b| (a.last_ms, &a.sha256).cmp(&(b.last_ms, &b.sha256)));
    let mut total = 0u64;
    let mut out = Vec::new();
    for c in cands {
        if total >= need {
            break;
        }
        total += c.size;
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(sha: &str, size: u64, last_ms: u64, keep: Keep) -> Candidate {
        Candidate {
            sha256: sha.into(),
            size,
            last_ms,
            keep,
        }
    }

    #[test]
    fn least_recently_served_first_until_enough() {
        let cands = vec![
            cand("c", 10, 300, Keep::Evictable),
            cand("a", 10, 100, Keep::Evictable),
            cand("p", 10, 1, Keep::Pinned),
            cand("k", 10, 2, Keep::Keeper),
            cand("b", 10, 200, Keep::IfKeepersHold(vec![2])),
            cand("hot", 10, 5000, Keep::Evictable),
        ];
        let got: Vec<_> = plan(cands.clone(), 15, 1000)
            .into_iter()
            .map(|c| c.sha256)
            .collect();
        assert_eq!(got, ["a", "b"]);
        let all: Vec<_> = plan(cands, 1 << 30, 1000)
            .into_iter()
            .map(|c| c.sha256)
            .collect();
        assert_eq!(
            all,
            ["a", "b", "c"],
            "never pinned, keeper or recently served"
        );
    }

    #[test]
    fn sources() {
        assert!(refetchable("https://proxy.golang.org"));
        assert!(refetchable("file:///srv/goproxy"));
        assert!(!refetchable("direct"));
        assert!(!refetchable(""));
    }

    #[test]
    fn min_copies_rule_keeps_enough_holders_on_every_membership() {
        let voters = [1u64, 2, 3];
        for i in 0..200 {
            let sha = format!("{i:064x}");
            let k = keepers(&sha, &voters, 2);
            assert_eq!(k.len(), 2);
            let mut allowed_to_drop = 0;
            for &me in &voters {
                match classify(&sha, false, false, me, &voters, 2) {
                    Keep::Keeper => assert!(k.contains(&me)),
                    Keep::IfKeepersHold(ks) => {
                        assert_eq!(ks, k);
                        assert!(!k.contains(&me));
                        allowed_to_drop += 1;
                    }
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(allowed_to_drop, 1, "exactly the non-keeper may drop");
        }
        // min_copies at or above the voter count: every node keeps it.
        for me in voters {
            assert_eq!(classify("ab", false, false, me, &voters, 3), Keep::Keeper);
        }
        assert_eq!(classify("ab", true, false, 1, &voters, 1), Keep::Pinned);
        assert_eq!(classify("ab", false, true, 1, &voters, 1), Keep::Evictable);
    }
}
