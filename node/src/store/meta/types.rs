//! Records and commands of the replicated state machine.
//!
//! Everything here is serialized with serde (JSON in the Raft log and in sled). Byte fields use
//! base64 so that the encoding stays compact and readable.

use serde::{Deserialize, Serialize};

/// Where a cached module zip lives and what it hashes to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZipRef {
    /// Lowercase hex sha256 of the zip file bytes: the blob store address.
    pub sha256: String,
    /// Size of the zip in bytes.
    pub size: u64,
    /// The go.sum `h1:` hash of the zip contents.
    pub h1: String,
}

/// One immutable module version: `.info`, `.mod` and (once fetched) the zip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Module path, unescaped (`github.com/Azure/x`).
    pub module: String,
    /// Canonical version, unescaped (`v1.0.0-RC1`).
    pub version: String,
    /// The `.info` JSON exactly as served.
    #[serde(with = "b64")]
    pub info: Vec<u8>,
    /// The `.mod` bytes exactly as served.
    #[serde(with = "b64")]
    pub gomod: Vec<u8>,
    /// `h1:` hash of the go.mod (the `/go.mod` go.sum line).
    pub mod_h1: String,
    /// The zip, once some request needed it; `.mod`/`.info` never require it.
    pub zip: Option<ZipRef>,
    /// Which upstream answered (its base URL, or `file://...`).
    pub source: String,
    /// When the proposer first cached it (unix milliseconds, stamped by the proposer).
    pub cached_at_ms: i64,
    /// Whether the go.mod hash was checked against a checksum database (and, once the zip is
    /// recorded, the zip hash too).
    pub sumdb_verified: bool,
    /// The zip `h1:` the checksum database vouches for, recorded with a verified `.info`/`.mod`
    /// so that a zip fetched later (perhaps by another node) is checked against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sumdb_zip_h1: Option<String>,
}

/// The newest verified signed tree head of one checksum database, replicated so that every
/// node checks new tree heads for consistency against the same history (fork detection).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeHeadRecord {
    /// The signed note exactly as the database served it (its signature was verified).
    #[serde(with = "b64")]
    pub note: Vec<u8>,
    /// The tree size.
    pub size: u64,
    /// The root hash, base64.
    pub hash: String,
    /// Set once two tree heads were seen that cannot both be true: verification against this
    /// database is refused from then on. The evidence names both heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked: Option<String>,
    /// When the proposer verified it (unix ms): `latest` is answered from it while it is
    /// younger than `sumdb.latest_ttl_secs`, and whenever the database is unreachable.
    #[serde(default)]
    pub recorded_at_ms: i64,
}

/// A version taken out of service because the checksum database disagrees with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRecord {
    /// The record as it was stored.
    pub record: VersionRecord,
    /// Why.
    pub reason: String,
}

/// One immutable checksum-database answer (`lookup/…` or `tile/…`), replicated so that every
/// node answers it without the database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SumdbItem {
    /// The path below the database (`lookup/golang.org/x/text@v0.3.0`, `tile/8/0/x123/456`).
    pub path: String,
    /// The answer, exactly as the database sent it.
    #[serde(with = "b64")]
    pub body: Vec<u8>,
}

/// A command proposed through Raft. Applying any command twice is harmless.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaCmd {
    /// Insert a version, or add the zip to a version that had only `.info`/`.mod`.
    /// Same bytes as already stored: no-op. Different bytes: [`MetaResp::Conflict`].
    PutVersion(VersionRecord),
    /// [`MetaCmd::PutVersion`] together with the checksum-database answers that verified it
    /// (stored as by [`MetaCmd::PutSumdbItems`]): one log entry, one flush. Answers with the
    /// version's response.
    PutVerifiedVersion {
        /// The version.
        record: VersionRecord,
        /// The database that vouched for it.
        db: String,
        /// The lookup and tiles it fetched to do so.
        answers: Vec<SumdbItem>,
    },
    /// Replace the upstream's `@v/list` answer for a module if `fetched_at_ms` is newer.
    PutList {
        /// Module path, unescaped.
        module: String,
        /// Versions the upstream listed (release and pre-release, as given).
        versions: Vec<String>,
        /// When the proposer fetched it (unix ms).
        fetched_at_ms: i64,
    },
    /// Replace the upstream's `@latest` answer for a module if `fetched_at_ms` is newer.
    PutLatest {
        /// Module path, unescaped.
        module: String,
        /// The `@latest` JSON as served by the upstream.
        #[serde(with = "b64")]
        info: Vec<u8>,
        /// When the proposer fetched it (unix ms).
        fetched_at_ms: i64,
    },
    /// Records a verified tree head of checksum database `db` if it is larger than the stored
    /// one (the proposer proved it consistent). Ignored once the database is marked forked.
    PutTreeHead {
        /// The database name (`sum.golang.org`).
        db: String,
        /// The head.
        head: TreeHeadRecord,
    },
    /// Stores immutable answers of checksum database `db`; paths already stored are left as
    /// they are.
    PutSumdbItems {
        /// The database name.
        db: String,
        /// The answers.
        items: Vec<SumdbItem>,
    },
    /// Records that a version stored unverified (`best-effort`) was since verified. Refused
    /// ([`MetaResp::Conflict`]) when the stored go.mod or zip hash is not the database's (a zip
    /// recorded after the proposer read the version).
    MarkVerified {
        /// Module path.
        module: String,
        /// Version.
        version: String,
        /// The go.mod `h1:` the database vouches for.
        mod_h1: String,
        /// The zip `h1:` the database vouches for.
        zip_h1: String,
    },
    /// Takes a version the checksum database disagrees with out of service: its record moves
    /// to the quarantine (kept for the operator), so it is never served again and a later
    /// request fetches and verifies it afresh.
    Quarantine {
        /// Module path.
        module: String,
        /// Version.
        version: String,
        /// Both hashes, for the operator.
        reason: String,
    },
    /// Marks checksum database `db` as forked (two inconsistent tree heads were seen).
    MarkForked {
        /// The database name.
        db: String,
        /// Both tree heads, for the operator.
        evidence: String,
    },
    // === disk: pins (issue 12) ===
    /// Pins the versions a pattern matches: no node evicts their blobs. Pinning a pattern
    /// that is already pinned changes nothing.
    Pin(PinRecord),
    /// Removes a pin (absent: nothing changes).
    Unpin {
        /// The pattern exactly as pinned.
        pattern: String,
    },
    // === operator policy (issue 12: deny, purge) ===
    /// Adds (or replaces) an operator deny rule: matching versions are answered with the
    /// configured deny status and left out of lists and `@latest`.
    Deny(DenyRule),
    /// Removes the deny rule with exactly this pattern and version (absent: no-op).
    LiftDeny {
        /// The rule's pattern.
        pattern: String,
        /// The rule's version (`None`: the module-wide rule).
        version: Option<String>,
    },
    /// Removes a version's record and leaves a tombstone: every node drops its blob (when no
    /// other record references it) and the version is not stored again until lifted.
    Purge(Tombstone),
    /// Removes the tombstone of a version (absent: no-op); the next request refills it.
    LiftPurge {
        /// Module path.
        module: String,
        /// Version.
        version: String,
    },
    /// Appends held versions the `/index` feed does not list yet (stored before the feed
    /// existed) to its end, in the given order; versions not held or already listed are
    /// skipped. Proposed by the leader in batches until nothing is left.
    IndexBackfill {
        /// `(module, version)` pairs.
        versions: Vec<(String, String)>,
    },
}

/// A pin: versions matching `pattern` (`corp.example.com/*`, `example.com/m@v1.2.3`) are never
/// evicted from any node's disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRecord {
    /// A module glob (Go's `path.Match` over leading path elements, as in `GOPRIVATE`),
    /// optionally followed by `@` and a version glob.
    pub pattern: String,
    /// Who pinned it (the operator's name).
    pub by: String,
    /// When (unix ms, stamped by the proposer).
    pub at_ms: i64,
}

/// The result of applying a [`MetaCmd`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaResp {
    /// The command changed the state.
    Applied,
    /// The state already held exactly this (idempotent retry), or a newer list/latest.
    #[default]
    Unchanged,
    /// The command contradicts an immutable record; nothing was changed.
    Conflict {
        /// What differs, for logs and metrics.
        reason: String,
    },
}

/// A cached `@v/list` answer from the upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRecord {
    /// Versions the upstream listed.
    pub versions: Vec<String>,
    /// When it was fetched (unix ms).
    pub fetched_at_ms: i64,
}

/// A cached `@latest` answer from the upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestRecord {
    /// The JSON body.
    #[serde(with = "b64")]
    pub info: Vec<u8>,
    /// When it was fetched (unix ms).
    pub fetched_at_ms: i64,
}

// === operator policy records (issue 12) ===

/// An operator deny rule, replicated: versions it matches are refused on every node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenyRule {
    /// A module path or a `GOPRIVATE`-style glob (matched against leading path elements).
    pub pattern: String,
    /// One exact version, or `None` for every version (and the module's list and `@latest`).
    pub version: Option<String>,
    /// Why, for the operator and the refused clients.
    pub reason: String,
    /// Who asked (the operator identity that called the admin RPC).
    pub by: String,
    /// When the proposer accepted it (unix ms, stamped by the proposer).
    pub at_ms: i64,
}

/// A purged version: its record is gone and it must not be stored again until lifted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// Module path.
    pub module: String,
    /// Version.
    pub version: String,
    /// Why, for the operator and the refused clients.
    pub reason: String,
    /// Who asked.
    pub by: String,
    /// When the proposer accepted it (unix ms).
    pub at_ms: i64,
    /// The zip blob the purged record referenced (filled in by apply from the stored record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// One line of the `/index` feed: a version in the order the cluster committed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Module path.
    pub module: String,
    /// Version.
    pub version: String,
    /// Commit time (unix microseconds): strictly greater than the previous entry's, so a
    /// follower paging by timestamp never stalls on a burst sharing one instant.
    pub ts_us: i64,
}

/// Serde helper: `Vec<u8>` as a standard base64 string.
pub mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize bytes as base64.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// Deserialize bytes from base64.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}
