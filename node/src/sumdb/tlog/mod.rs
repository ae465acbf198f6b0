//! The tamper-evident log behind a Go checksum database: Merkle tree hashes, inclusion and
//! consistency proofs, tree heads, lookup records and tiles.
//!
//! This is the client side of `golang.org/x/mod/sumdb/tlog`, which follows Certificate
//! Transparency (RFC 6962). Hashes are stored in the dense order of [`stored_hash_index`] and
//! published in tiles ([`Tile`]); [`TileHashReader`] reads hashes out of tiles and only returns
//! (and only lets its [`TileReader`] save) tiles it has authenticated against a signed tree
//! head, so a mirror can cache exactly the data a Go client would accept. Every input may come
//! from the network: nothing here panics, and out-of-range values are errors.

use std::collections::HashMap;
use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Size of a [`Hash`](type@Hash) in bytes.
pub const HASH_SIZE: usize = 32;

/// A SHA-256 hash of a record or of a tree node.
pub type Hash = [u8; HASH_SIZE];

/// The hashes proving that a record is in a tree (RFC 6962's audit path).
pub type RecordProof = Vec<Hash>;

/// The hashes proving that a tree extends a smaller one (RFC 6962's consistency proof).
pub type TreeProof = Vec<Hash>;

/// Hash of the empty tree: SHA-256 of no bytes.
const EMPTY_TREE_HASH: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// First line of a tree description.
const TREE_PREFIX: &[u8] = b"go.sum database tree\n";

/// Tile paths spell the tile number in groups of this many values (three digits).
const PATH_BASE: i64 = 1000;

/// Largest tile height Go accepts.
const MAX_TILE_HEIGHT: i32 = 30;

/// Go's `base64.StdEncoding`: padded, but lenient about non-zero trailing bits.
const GO_STD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TlogError {
    /// The sizes or indexes given to a function are out of range.
    #[error("invalid inputs in {0}")]
    InvalidInputs(&'static str),
    /// A record or tree proof does not prove what was claimed.
    #[error("invalid transparency proof")]
    ProofFailed,
    /// A hash reader returned a different number of hashes than requested.
    #[error("hash reader returned {got} hashes for {want} indexes")]
    HashCount {
        /// Number of indexes requested.
        want: usize,
        /// Number of hashes returned.
        got: usize,
    },
    /// A hash is not the base64 encoding of 32 bytes.
    #[error("malformed hash")]
    MalformedHash,
    /// A tree description is malformed.
    #[error("malformed tree note")]
    MalformedTree,
    /// A lookup record is malformed.
    #[error("malformed record data")]
    MalformedRecord,
    /// A tile path is malformed.
    #[error("malformed tile path {0:?}")]
    MalformedTilePath(String),
    /// A tile height is outside 1..=30.
    #[error("invalid tile height {0}")]
    InvalidHeight(i32),
    /// A stored hash index is negative.
    #[error("invalid stored hash index {0}")]
    InvalidIndex(i64),
    /// A tile's coordinates are out of range.
    #[error("invalid tile {0}")]
    InvalidTile(String),
    /// Tile data is shorter than the tile's width.
    #[error("data len {len} too short for tile {tile}")]
    ShortTileData {
        /// Length of the data.
        len: usize,
        /// Path of the tile.
        tile: String,
    },
    /// A hash was looked up in a tile that does not hold it.
    #[error("index {index} is in {want} not {got}")]
    WrongTile {
        /// The stored hash index.
        index: i64,
        /// Path of the tile holding the index.
        want: String,
        /// Path of the tile given.
        got: String,
    },
    /// A requested hash is not part of the tree.
    #[error("indexes not in tree")]
    IndexNotInTree,
    /// A tile reader returned the wrong number of tiles or tile data of the wrong size.
    #[error("tile reader returned bad result slice ({0})")]
    BadTileData(String),
    /// Tile data does not match the tree hash (at least one tile was forged or corrupted).
    #[error("downloaded inconsistent tile")]
    InconsistentTile,
    /// An internal consistency check failed; this is a bug.
    #[error("bad math in tlog: {0}")]
    BadMath(String),
    /// Reading hashes or tiles from storage or the network failed.
    #[error("reading tlog data: {0}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Reads hashes of the log's tree by stored hash index.
pub trait HashReader {
    /// Returns the hashes at `indexes` (see [`stored_hash_index`]), one per index, in order.
    fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, TlogError>;
}

impl HashReader for [Hash] {
    fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, TlogError> {
        indexes
            .iter()
            .map(|&x| {
                usize::try_from(x)
                    .ok()
                    .and_then(|x| self.get(x))
                    .copied()
                    .ok_or(TlogError::IndexNotInTree)
            })
            .collect()
    }
}

impl HashReader for Vec<Hash> {
    fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, TlogError> {
        self.as_slice().read_hashes(indexes)
    }
}

/// The hash of a record (a leaf): SHA-256(0x00 || data).
pub fn record_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(data)
        .finalize()
        .into()
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: Hash, right: Hash) -> Hash {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The base64 form of a hash, as used in tree descriptions.
pub fn format_hash(hash: &Hash) -> String {
    STANDARD.encode(hash)
}

/// Parses the base64 form of a hash.
pub fn parse_hash(s: &str) -> Result<Hash, TlogError> {
    decode_hash(s.as_bytes()).ok_or(TlogError::MalformedHash)
}

/// Maps tree coordinates (level, n) to the dense storage order of hashes: the `n`th hash of
/// `level` is stored right after the last hash it depends on. Wraps like Go's on overflow.
pub fn stored_hash_index(level: i32, n: i64) -> i64 {
    let mut n = n;
    // After 64 steps every bit is one, so more steps change nothing.
    for _ in 0..level.clamp(0, 64) {
        n = n.wrapping_mul(2).wrapping_add(1);
    }
    let mut index = 0i64;
    while n > 0 {
        index = index.wrapping_add(n);
        n >>= 1;
    }
    index.wrapping_add(i64::from(level))
}

/// The inverse of [`stored_hash_index`]: the (level, n) of a stored hash index.
pub fn split_stored_hash_index(index: i64) -> Result<(i32, i64), TlogError> {
    if index < 0 {
        return Err(TlogError::InvalidIndex(index));
    }
    // The record whose hashes include `index` is in [index/2, index/2 + log2(index)].
    let mut n = index / 2;
    let mut index_n = stored_hash_index(0, n);
    if index_n > index {
        return Err(TlogError::BadMath(format!("split of index {index}")));
    }
    loop {
        // Record n+1 adds its leaf hash plus one hash per subtree it completes.
        let added = 1 + i64::from(n.wrapping_add(1).trailing_zeros());
        match index_n.checked_add(added) {
            Some(next) if next <= index => {
                n += 1;
                index_n = next;
            }
            _ => break,
        }
    }
    let level = index - index_n;
    let n = go_shr(n, level);
    let level = i32::try_from(level).map_err(|_| TlogError::BadMath("split level".into()))?;
    Ok((level, n))
}

/// The number of hashes stored for a tree of `n` records.
pub fn stored_hash_count(n: i64) -> i64 {
    if n == 0 {
        return 0;
    }
    let last = n.wrapping_sub(1);
    let mut count = stored_hash_index(0, last).wrapping_add(1);
    let mut bits = last as u64;
    while bits & 1 != 0 {
        count = count.wrapping_add(1);
        bits >>= 1;
    }
    count
}

/// The hashes to store, starting at `stored_hash_index(0, n)`, when appending record `n` with
/// the given data; reads the earlier hashes it needs from `r`.
pub fn stored_hashes<R: HashReader + ?Sized>(
    n: i64,
    data: &[u8],
    r: &R,
) -> Result<Vec<Hash>, TlogError> {
    stored_hashes_for_record_hash(n, record_hash(data), r)
}

/// Like [`stored_hashes`], given the record's hash instead of its data.
pub fn stored_hashes_for_record_hash<R: HashReader + ?Sized>(
    n: i64,
    hash: Hash,
    r: &R,
) -> Result<Vec<Hash>, TlogError> {
    if n < 0 {
        return Err(TlogError::InvalidInputs("stored_hashes"));
    }
    // Each trailing one bit of n completes a subtree, which needs its left sibling.
    let completed = n.wrapping_add(1).trailing_zeros() as i32;
    let indexes: Vec<i64> = (0..completed)
        .rev()
        .map(|i| stored_hash_index(i, go_shr(n, i64::from(i)) - 1))
        .collect();
    let old = read_exact(r, &indexes)?;
    let mut hashes = vec![hash];
    let mut h = hash;
    for left in old.iter().rev() {
        h = node_hash(*left, h);
        hashes.push(h);
    }
    Ok(hashes)
}

/// The root hash of the tree of the first `n` records, read through `r`.
pub fn tree_hash<R: HashReader + ?Sized>(n: i64, r: &R) -> Result<Hash, TlogError> {
    if n < 0 {
        return Err(TlogError::InvalidInputs("tree_hash"));
    }
    if n == 0 {
        return Ok(EMPTY_TREE_HASH);
    }
    let mut indexes = Vec::new();
    sub_tree_index(0, n, &mut indexes);
    let hashes = read_exact(r, &indexes)?;
    let mut rest = hashes.as_slice();
    let hash = sub_tree_hash(0, n, &mut rest)?;
    expect_consumed(rest, "tree_hash")?;
    Ok(hash)
}

/// The proof that record `n` is in the tree of size `t`.
pub fn prove_record<R: HashReader + ?Sized>(
    t: i64,
    n: i64,
    r: &R,
) -> Result<RecordProof, TlogError> {
    if t < 0 || n < 0 || n >= t {
        return Err(TlogError::InvalidInputs("prove_record"));
    }
    let mut indexes = Vec::new();
    leaf_proof_index(0, t, n, &mut indexes);
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = read_exact(r, &indexes)?;
    let mut rest = hashes.as_slice();
    let proof = leaf_proof(0, t, n, &mut rest)?;
    expect_consumed(rest, "prove_record")?;
    Ok(proof)
}

/// Checks that `proof` proves that the tree of size `t` with hash `th` has record `n` with
/// hash `h`.
pub fn check_record(proof: &[Hash], t: i64, th: Hash, n: i64, h: Hash) -> Result<(), TlogError> {
    if t < 0 || n < 0 || n >= t {
        return Err(TlogError::InvalidInputs("check_record"));
    }
    if run_record_proof(proof, 0, t, n, h)? == th {
        Ok(())
    } else {
        Err(TlogError::ProofFailed)
    }
}

/// The proof that the tree of size `t` contains the tree of size `n` as a prefix.
pub fn prove_tree<R: HashReader + ?Sized>(t: i64, n: i64, r: &R) -> Result<TreeProof, TlogError> {
    if t < 1 || n < 1 || n > t {
        return Err(TlogError::InvalidInputs("prove_tree"));
    }
    let mut indexes = Vec::new();
    tree_proof_index(0, t, n, &mut indexes);
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = read_exact(r, &indexes)?;
    let mut rest = hashes.as_slice();
    let proof = tree_proof(0, t, n, &mut rest)?;
    expect_consumed(rest, "prove_tree")?;
    Ok(proof)
}

/// Checks that `proof` proves that the tree of size `t` with hash `th` contains as a prefix the
/// tree of size `n` with hash `h`.
pub fn check_tree(proof: &[Hash], t: i64, th: Hash, n: i64, h: Hash) -> Result<(), TlogError> {
    if t < 1 || n < 1 || n > t {
        return Err(TlogError::InvalidInputs("check_tree"));
    }
    let (old, new) = run_tree_proof(proof, 0, t, n, h)?;
    if new == th && old == h {
        Ok(())
    } else {
        Err(TlogError::ProofFailed)
    }
}

/// Reads `indexes` through `r`, insisting on one hash per index.
fn read_exact<R: HashReader + ?Sized>(r: &R, indexes: &[i64]) -> Result<Vec<Hash>, TlogError> {
    let hashes = r.read_hashes(indexes)?;
    if hashes.len() != indexes.len() {
        return Err(TlogError::HashCount {
            want: indexes.len(),
            got: hashes.len(),
        });
    }
    Ok(hashes)
}

fn expect_consumed(rest: &[Hash], what: &str) -> Result<(), TlogError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(TlogError::BadMath(format!(
            "{} unused hashes in {what}",
            rest.len()
        )))
    }
}

/// The largest power of two not above `m` (for `m >= 1`), with its exponent.
fn pow2_at_most(m: i64) -> (i64, i32) {
    if m < 1 {
        return (1, 0);
    }
    let level = 63 - m.leading_zeros() as i32;
    (1i64 << level, level)
}

/// Where a subtree of `size >= 2` leaves splits: the largest power of two below `size`.
fn split_point(size: i64) -> i64 {
    pow2_at_most(size - 1).0
}

/// Appends the stored indexes of the complete subtrees that make up leaves `[lo, hi)`.
fn sub_tree_index(mut lo: i64, hi: i64, need: &mut Vec<i64>) {
    while lo < hi {
        let (k, level) = pow2_at_most(hi - lo);
        need.push(stored_hash_index(level, lo >> level));
        lo += k;
    }
}

/// Hashes leaves `[lo, hi)` from the hashes [`sub_tree_index`] asked for, consuming them.
fn sub_tree_hash(mut lo: i64, hi: i64, hashes: &mut &[Hash]) -> Result<Hash, TlogError> {
    let mut count = 0;
    while lo < hi {
        lo += pow2_at_most(hi - lo).0;
        count += 1;
    }
    if count == 0 || hashes.len() < count {
        return Err(TlogError::BadMath("sub_tree_hash".into()));
    }
    let (mine, rest) = hashes.split_at(count);
    *hashes = rest;
    let Some((last, init)) = mine.split_last() else {
        return Err(TlogError::BadMath("sub_tree_hash".into()));
    };
    Ok(init
        .iter()
        .rev()
        .fold(*last, |right, left| node_hash(*left, right)))
}

/// Appends the indexes needed to prove that leaf `n` is in leaves `[lo, hi)`.
fn leaf_proof_index(lo: i64, hi: i64, n: i64, need: &mut Vec<i64>) {
    if lo + 1 >= hi {
        return;
    }
    let k = split_point(hi - lo);
    if n < lo + k {
        leaf_proof_index(lo, lo + k, n, need);
        sub_tree_index(lo + k, hi, need);
    } else {
        sub_tree_index(lo, lo + k, need);
        leaf_proof_index(lo + k, hi, n, need);
    }
}

/// Builds the proof that leaf `n` is in leaves `[lo, hi)` from [`leaf_proof_index`]'s hashes.
fn leaf_proof(lo: i64, hi: i64, n: i64, hashes: &mut &[Hash]) -> Result<RecordProof, TlogError> {
    if lo + 1 >= hi {
        return Ok(Vec::new());
    }
    let k = split_point(hi - lo);
    let (mut proof, sibling) = if n < lo + k {
        let proof = leaf_proof(lo, lo + k, n, hashes)?;
        (proof, sub_tree_hash(lo + k, hi, hashes)?)
    } else {
        let sibling = sub_tree_hash(lo, lo + k, hashes)?;
        (leaf_proof(lo + k, hi, n, hashes)?, sibling)
    };
    proof.push(sibling);
    Ok(proof)
}

/// The hash of leaves `[lo, hi)` implied by `proof` for leaf `n` with hash `leaf`.
fn run_record_proof(
    proof: &[Hash],
    lo: i64,
    hi: i64,
    n: i64,
    leaf: Hash,
) -> Result<Hash, TlogError> {
    if lo + 1 >= hi {
        return if proof.is_empty() {
            Ok(leaf)
        } else {
            Err(TlogError::ProofFailed)
        };
    }
    let Some((sibling, rest)) = proof.split_last() else {
        return Err(TlogError::ProofFailed);
    };
    let k = split_point(hi - lo);
    if n < lo + k {
        Ok(node_hash(
            run_record_proof(rest, lo, lo + k, n, leaf)?,
            *sibling,
        ))
    } else {
        Ok(node_hash(
            *sibling,
            run_record_proof(rest, lo + k, hi, n, leaf)?,
        ))
    }
}

/// Appends the indexes needed for the consistency proof of the old tree of size `n` within
/// leaves `[lo, hi)`.
fn tree_proof_index(lo: i64, hi: i64, n: i64, need: &mut Vec<i64>) {
    if n >= hi {
        if lo != 0 {
            sub_tree_index(lo, hi, need);
        }
        return;
    }
    let k = split_point(hi - lo);
    if n <= lo + k {
        tree_proof_index(lo, lo + k, n, need);
        sub_tree_index(lo + k, hi, need);
    } else {
        sub_tree_index(lo, lo + k, need);
        tree_proof_index(lo + k, hi, n, need);
    }
}

/// Builds the consistency proof part for leaves `[lo, hi)` from [`tree_proof_index`]'s hashes.
fn tree_proof(lo: i64, hi: i64, n: i64, hashes: &mut &[Hash]) -> Result<TreeProof, TlogError> {
    if n >= hi {
        if lo == 0 {
            return Ok(Vec::new());
        }
        return Ok(vec![sub_tree_hash(lo, hi, hashes)?]);
    }
    let k = split_point(hi - lo);
    let (mut proof, sibling) = if n <= lo + k {
        let proof = tree_proof(lo, lo + k, n, hashes)?;
        (proof, sub_tree_hash(lo + k, hi, hashes)?)
    } else {
        let sibling = sub_tree_hash(lo, lo + k, hashes)?;
        (tree_proof(lo + k, hi, n, hashes)?, sibling)
    };
    proof.push(sibling);
    Ok(proof)
}

/// The hashes of leaves `[lo, hi)` in the old tree (size `n`, hash `old`) and in the new tree
/// implied by `proof`.
fn run_tree_proof(
    proof: &[Hash],
    lo: i64,
    hi: i64,
    n: i64,
    old: Hash,
) -> Result<(Hash, Hash), TlogError> {
    if n >= hi {
        return match (lo, proof) {
            (0, []) => Ok((old, old)),
            (0, _) => Err(TlogError::ProofFailed),
            (_, [h]) => Ok((*h, *h)),
            _ => Err(TlogError::ProofFailed),
        };
    }
    let Some((sibling, rest)) = proof.split_last() else {
        return Err(TlogError::ProofFailed);
    };
    let k = split_point(hi - lo);
    if n <= lo + k {
        let (oh, th) = run_tree_proof(rest, lo, lo + k, n, old)?;
        Ok((oh, node_hash(th, *sibling)))
    } else {
        let (oh, th) = run_tree_proof(rest, lo + k, hi, n, old)?;
        Ok((node_hash(*sibling, oh), node_hash(*sibling, th)))
    }
}

/// A signed tree head: the log's size and root hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tree {
    /// Number of records in the tree.
    pub n: i64,
    /// Root hash of the tree.
    pub hash: Hash,
}

/// Formats a tree description for signing: `go.sum database tree\n<n>\n<base64 hash>\n`.
pub fn format_tree(tree: &Tree) -> String {
    format!(
        "go.sum database tree\n{}\n{}\n",
        tree.n,
        format_hash(&tree.hash)
    )
}

/// Parses a tree description (the text of a signed tree note). Lines after the hash are
/// ignored, for forward compatibility, as Go does.
pub fn parse_tree(text: &[u8]) -> Result<Tree, TlogError> {
    let newlines = text.iter().filter(|&&b| b == b'\n').count();
    if !text.starts_with(TREE_PREFIX) || newlines < 3 || text.len() > 1_000_000 {
        return Err(TlogError::MalformedTree);
    }
    let mut lines = text.split(|&b| b == b'\n').skip(1);
    let (Some(n_line), Some(hash_line)) = (lines.next(), lines.next()) else {
        return Err(TlogError::MalformedTree);
    };
    let n = std::str::from_utf8(n_line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok().filter(|n| n.to_string() == s))
        .filter(|&n| n >= 0)
        .ok_or(TlogError::MalformedTree)?;
    let hash = decode_hash(hash_line).ok_or(TlogError::MalformedTree)?;
    Ok(Tree { n, hash })
}

/// Parses a lookup answer: a decimal record id line, the record text up to and including the
/// newline before the first blank line, and the rest (the signed tree note), as Go's
/// `ParseRecord`. The text must be valid UTF-8 without control characters other than newline.
pub fn parse_record(msg: &[u8]) -> Result<(i64, &[u8], &[u8]), TlogError> {
    let eol = msg
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(TlogError::MalformedRecord)?;
    let (id_line, body) = (msg.get(..eol), msg.get(eol + 1..));
    let (Some(id_line), Some(body)) = (id_line, body) else {
        return Err(TlogError::MalformedRecord);
    };
    let id = std::str::from_utf8(id_line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(TlogError::MalformedRecord)?;
    let blank = body
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or(TlogError::MalformedRecord)?;
    let (Some(text), Some(rest)) = (body.get(..=blank), body.get(blank + 2..)) else {
        return Err(TlogError::MalformedRecord);
    };
    if !is_valid_record_text(text) {
        return Err(TlogError::MalformedRecord);
    }
    Ok((id, text, rest))
}

/// Record text is UTF-8 without control characters but newline, without blank lines, and ends
/// in a newline.
fn is_valid_record_text(text: &[u8]) -> bool {
    std::str::from_utf8(text).is_ok()
        && text.ends_with(b"\n")
        && !text.iter().any(|&b| b < 0x20 && b != b'\n')
        && !text.windows(2).any(|w| w == b"\n\n")
}

/// Decodes a base64 hash like Go's `base64.StdEncoding` (which skips CR and LF).
fn decode_hash(s: &[u8]) -> Option<Hash> {
    let cleaned: Vec<u8> = s
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    let data = GO_STD_BASE64.decode(cleaned).ok()?;
    Hash::try_from(data.as_slice()).ok()
}

/// `x << s` with Go's semantics: shifts of 64 or more (or negative) give zero.
fn go_shl(x: i64, s: i64) -> i64 {
    match u32::try_from(s) {
        Ok(s) if s < 64 => x << s,
        _ => 0,
    }
}

/// `x >> s` with Go's semantics: shifts of 64 or more give zero or minus one.
fn go_shr(x: i64, s: i64) -> i64 {
    match u32::try_from(s) {
        Ok(s) if s < 64 => x >> s,
        _ if x < 0 => -1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
mod tile;

pub use tile::*;
