//! The backup manifest (`backup.json`) and how its blob list is derived from a state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::AppliedId;
use crate::store::meta::VersionRecord;

/// `Manifest::format` of every cairn backup.
pub const FORMAT_NAME: &str = "cairn-backup";
/// The manifest layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's file name in a backup directory.
pub const MANIFEST_FILE: &str = "backup.json";
/// The state file's name in a backup directory.
pub const STATE_FILE: &str = "state.json";

/// Which blobs a backup includes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Every blob the state references.
    Full,
    /// No blob: the state only (blobs come back from the upstreams).
    StateOnly,
    /// Only the blobs that cannot be fetched again (from `direct` sources).
    NonRefetchableOnly,
}

impl Mode {
    /// Whether a blob with this refetchability belongs in a backup of this mode.
    pub fn includes(self, refetchable: bool) -> bool {
        match self {
            Mode::Full => true,
            Mode::StateOnly => false,
            Mode::NonRefetchableOnly => !refetchable,
        }
    }
}

/// `backup.json`: what a backup holds and how to check it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// When the backup finished (unix ms, the CLI's clock).
    pub created_at_ms: i64,
    /// The same, RFC 3339.
    pub created_at: String,
    /// The cairn version of the CLI that wrote it.
    pub cairn_version: String,
    /// The node the state came from and the cluster it saw.
    pub source: SourceNode,
    /// The last log entry the state includes.
    pub applied: AppliedId,
    /// Which blobs are included.
    pub mode: Mode,
    /// The state file.
    pub state: StateFile,
    /// Totals.
    pub counts: Counts,
    /// Every blob the state references, included or not, by sha256.
    pub blobs: Vec<BlobEntry>,
}

/// The node a backup was taken from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceNode {
    /// Its id.
    pub node_id: u64,
    /// The cluster address the CLI used.
    pub node_addr: String,
    /// Its cairn version.
    pub version: String,
    /// The leader it knew (0: none).
    pub leader_id: u64,
    /// The membership recorded in the state.
    pub members: Vec<ManifestMember>,
}

/// One member of the backed-up cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestMember {
    /// Node id.
    pub id: u64,
    /// Cluster address.
    pub addr: String,
    /// Voter (else learner).
    pub voter: bool,
}

/// The state file of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    /// Its name in the backup directory.
    pub file: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its lowercase hex sha256.
    pub sha256: String,
}

/// Totals of a backup.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Version records in the state.
    pub versions: u64,
    /// Distinct blobs the state references.
    pub blobs: u64,
    /// Their total size.
    pub blob_bytes: u64,
    /// Blobs included in the backup.
    pub blobs_included: u64,
    /// Their total size.
    pub bytes_included: u64,
}

/// One blob the state references.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobEntry {
    /// Lowercase hex sha256 (the file name).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The `module@version`s whose zip it is.
    pub versions: Vec<String>,
    /// Whether a node can fetch it again from an upstream (not a `direct` source).
    pub refetchable: bool,
    /// Whether the backup holds it (`blobs/<aa>/<sha256>`).
    pub included: bool,
}

/// Whether a version recorded from `source` can be fetched again: everything but the `direct`
/// (version control) source, whose repository may be gone and whose zips are built, not copied.
pub fn is_refetchable(source: &str) -> bool {
    source != "direct"
}

/// The blob list of a state's version records, by sha256: a blob is refetchable only when every
/// version using it is. `mode` decides which are marked included.
pub fn blob_manifest(versions: &[VersionRecord], mode: Mode) -> Vec<BlobEntry> {
    let mut by_sha: BTreeMap<String, BlobEntry> = BTreeMap::new();
    for rec in versions {
        let Some(zip) = &rec.zip else { continue };
        let refetchable = is_refetchable(&rec.source);
        let e = by_sha
            .entry(zip.sha256.clone())
            .or_insert_with(|| BlobEntry {
                sha256: zip.sha256.clone(),
                size: zip.size,
                versions: Vec::new(),
                refetchable,
                included: false,
            });
        e.refetchable &= refetchable;
        e.versions.push(format!("{}@{}", rec.module, rec.version));
    }
    by_sha
        .into_values()
        .map(|mut e| {
            e.included = mode.includes(e.refetchable);
            e
        })
        .collect()
}

/// Where a backup directory keeps blob `sha256` (`blobs/<aa>/<sha256>`); the caller checks
/// that `sha256` is a sha256 hex string.
pub fn blob_path(dir: &Path, sha256: &str) -> PathBuf {
    dir.join("blobs")
        .join(sha256.get(..2).unwrap_or("xx"))
        .join(sha256)
}

impl Counts {
    /// The totals of `blobs` for a state of `versions` records.
    pub fn of(versions: u64, blobs: &[BlobEntry]) -> Counts {
        let mut c = Counts {
            versions,
            ..Counts::default()
        };
        for b in blobs {
            c.blobs += 1;
            c.blob_bytes += b.size;
            if b.included {
                c.blobs_included += 1;
                c.bytes_included += b.size;
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::meta::ZipRef;

    fn rec(module: &str, sha: &str, source: &str) -> VersionRecord {
        VersionRecord {
            module: module.into(),
            version: "v1.0.0".into(),
            info: Vec::new(),
            gomod: Vec::new(),
            mod_h1: String::new(),
            zip: Some(ZipRef {
                sha256: sha.into(),
                size: 3,
                h1: String::new(),
            }),
            source: source.into(),
            cached_at_ms: 0,
            sumdb_verified: false,
            sumdb_zip_h1: None,
        }
    }

    #[test]
    fn manifest_dedups_blobs_and_marks_what_each_mode_includes() {
        let recs = vec![
            rec("a.example/x", "aa", "https://proxy.golang.org"),
            rec("b.example/y", "aa", "direct"),
            rec("c.example/z", "bb", "file:///srv"),
        ];
        let full = blob_manifest(&recs, Mode::Full);
        assert_eq!(full.len(), 2);
        assert_eq!(full[0].versions.len(), 2);
        assert!(!full[0].refetchable, "shared with a direct version");
        assert!(full.iter().all(|b| b.included));
        let nr = blob_manifest(&recs, Mode::NonRefetchableOnly);
        assert_eq!(
            nr.iter().map(|b| b.included).collect::<Vec<_>>(),
            [true, false]
        );
        assert!(blob_manifest(&recs, Mode::StateOnly)
            .iter()
            .all(|b| !b.included));
        let c = Counts::of(3, &nr);
        assert_eq!((c.blobs, c.blob_bytes, c.blobs_included), (2, 6, 1));
    }
}
