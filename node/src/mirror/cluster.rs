//! What the mirror needs from the rest of the cluster, as a trait so the mirror stays free of
//! gRPC: the owner of a miss, filling at that owner, fetching a blob from peers, and making a new
//! blob durable on enough nodes. A single node runs without it.

use futures_util::future::BoxFuture;

use super::MirrorError;
use crate::store::meta::VersionRecord;

/// Another live node that owns a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOwner {
    /// Its node id.
    pub id: u64,
    /// Its cluster (gRPC) address.
    pub addr: String,
}

/// Cluster operations used by the mirror.
pub trait ClusterOps: Send + Sync {
    /// The owner of `key` when it is another live node; `None` when this node owns it (or is
    /// alone, or routing is off).
    fn remote_owner(&self, key: &str) -> Option<RemoteOwner>;

    /// Asks `owner` to fill (module, version), with the zip if `zip`, and returns the record it
    /// committed. Errors: `NotFound`/`Upstream`/`Rejected` as the owner saw them; `Storage` when
    /// the owner could not be reached (the caller then fills locally).
    fn fill_remote<'a>(
        &'a self,
        owner: &'a RemoteOwner,
        module: &'a str,
        version: &'a str,
        zip: bool,
    ) -> BoxFuture<'a, Result<VersionRecord, MirrorError>>;

    /// Copies a blob from whichever live peer holds it into the local store (verified).
    fn fetch_blob<'a>(
        &'a self,
        sha256: &'a str,
        size: u64,
    ) -> BoxFuture<'a, Result<(), MirrorError>>;

    /// Makes a blob durable on `min_copies` nodes (capped by the live members); returns how
    /// many nodes held it when that was reached, this one included. `prefer` (a node id, the
    /// node that asked for the fill) gets one of the copies first when it is live. `from` says
    /// where the peers get the bytes.
    fn replicate<'a>(
        &'a self,
        sha256: &'a str,
        size: u64,
        prefer: Option<u64>,
        from: CopySource,
    ) -> BoxFuture<'a, Result<usize, MirrorError>>;

    /// The node that refreshes the stale list or `@latest` `key` for the whole cluster, when it
    /// is another live node (chosen among all live members, whatever their region, so a refresh
    /// happens once per cluster); `None` when this node should refresh it.
    fn refresh_owner(&self, key: &str) -> Option<RemoteOwner>;

    /// Asks `owner` to refresh the list (or `@latest` if `latest`) of `module` and waits until
    /// it did. Errors: `NotFound`/`Upstream` as the owner saw them; `Storage` when the owner
    /// could not be reached (the caller then refreshes itself).
    fn refresh_remote<'a>(
        &'a self,
        owner: &'a RemoteOwner,
        module: &'a str,
        latest: bool,
    ) -> BoxFuture<'a, Result<(), MirrorError>>;
}

/// Where the peers taking copies of a new blob get its bytes.
#[derive(Debug, Clone)]
pub enum CopySource {
    /// The blob is installed in this node's store: they pull it.
    Installed,
    /// The whole blob (at most [`PUSH_MAX_BYTES`]): it is sent to them, and this node need
    /// not hold it yet.
    Whole(bytes::Bytes),
    /// A complete, checked temp file whose sha256 is the blob's, being installed here while
    /// the peers pull it (it may be renamed into the store meanwhile).
    Staged(std::path::PathBuf),
}

/// Zips up to this size are pushed whole to the peers while the filling node installs its own
/// copy; larger ones are installed first and pulled in chunks. Well under the gRPC message
/// limit of blob transfers.
pub const PUSH_MAX_BYTES: u64 = 1 << 20;

/// Whether a remote fill failed only because the owner was unreachable (fill locally then).
pub fn owner_unreachable(e: &MirrorError) -> bool {
    matches!(e, MirrorError::Storage(_))
}
