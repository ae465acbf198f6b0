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

    /// Makes a blob this node holds durable on `min_copies` nodes (capped by the live members);
    /// returns how many nodes hold it now, this one included.
    fn replicate<'a>(
        &'a self,
        sha256: &'a str,
        size: u64,
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

/// Whether a remote fill failed only because the owner was unreachable (fill locally then).
pub fn owner_unreachable(e: &MirrorError) -> bool {
    matches!(e, MirrorError::Storage(_))
}
