//! Owner routing: each (module, version) has one owner among the live members, chosen by
//! rendezvous (highest-random-weight) hashing, so misses for one version anywhere in the cluster
//! meet at one node and become one upstream fetch. When a member dies only the keys it owned
//! move; everything else keeps its owner.

use sha2::{Digest, Sha256};

/// The weight of `node` for `key`: the first 8 bytes of sha256(key ‖ 0 ‖ node id), stable across
/// processes, platforms and versions.
fn weight(key: &str, node: u64) -> u64 {
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update([0u8]);
    h.update(node.to_be_bytes());
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_be_bytes(first)
}

/// The owner of `key` among `candidates` (node ids), or `None` if there are none.
pub fn owner_of(key: &str, candidates: impl IntoIterator<Item = u64>) -> Option<u64> {
    candidates
        .into_iter()
        .max_by_key(|&id| (weight(key, id), id))
}

/// `candidates` ordered by preference for `key` (owner first).
pub fn ranked(key: &str, candidates: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut ids: Vec<u64> = candidates.into_iter().collect();
    ids.sort_by_key(|&id| std::cmp::Reverse((weight(key, id), id)));
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_stable_and_balanced() {
        let nodes = [1u64, 2, 3];
        let mut counts = [0usize; 4];
        for i in 0..3000 {
            let key = format!("example.com/m{i}@v1.0.0");
            let o = owner_of(&key, nodes).unwrap();
            assert_eq!(owner_of(&key, nodes), Some(o));
            assert_eq!(ranked(&key, nodes)[0], o);
            counts[o as usize] += 1;
        }
        for n in nodes {
            assert!(counts[n as usize] > 800, "unbalanced: {counts:?}");
        }
    }

    #[test]
    fn losing_a_node_moves_only_its_keys() {
        for i in 0..500 {
            let key = format!("k{i}");
            let before = owner_of(&key, [1, 2, 3]).unwrap();
            let after = owner_of(&key, [1, 3]).unwrap();
            if before != 2 {
                assert_eq!(before, after);
            }
        }
        assert_eq!(owner_of("k", []), None);
    }
}
