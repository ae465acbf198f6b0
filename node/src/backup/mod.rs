//! Backups of a cluster (`cairn backup`, `cairn backup verify`, `cairn restore`): the on-disk
//! format of a backup directory, its offline verification, and building a new data directory
//! from it.
//!
//! A backup directory holds:
//!
//! | path                      | what                                                         |
//! |---------------------------|--------------------------------------------------------------|
//! | `backup.json`             | the [`Manifest`], written last (atomic rename): a directory without it is an unfinished backup |
//! | `state.json`              | the replicated state machine at `applied.index`, as a Raft snapshot carries it |
//! | `blobs/<aa>/<sha256>`     | every included blob, named by its sha256                    |
//!
//! - `format`: [`Manifest`] and its parts, the blob manifest of a state ([`blob_manifest`]).
//! - `verify`: [`verify`], the offline check (every problem, not just the first).
//! - `restore`: [`restore`], a fresh data directory that `cairn-node` starts as a new
//!   single-node cluster holding the backed-up state and blobs.
//!
//! The CLI streams the state and the blobs from a node (`Admin.BackupState`,
//! `Admin.BackupBlob`, served by `crate::admin`) and writes this format with these types.

mod format;
mod restore;
mod verify;

pub use format::{
    blob_manifest, blob_path, is_refetchable, BlobEntry, Counts, Manifest, ManifestMember, Mode,
    SourceNode, StateFile, FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE, STATE_FILE,
};
pub use restore::{restore, RestoreError, RestoreSummary};
pub use verify::{verify, Problem, Verified, VerifyError};

pub use crate::raft::backup::AppliedId;

/// RFC 3339 (UTC, seconds) of unix milliseconds, for manifests and reports.
pub fn rfc3339_ms(ms: i64) -> String {
    crate::direct::timefmt::rfc3339(ms.div_euclid(1000))
}
