//! The mirror's view of the cluster ([`ClusterOps`]), implemented over peer liveness
//! ([`Peers`]), region-scoped rendezvous choices ([`super::region`]) and blob transfer
//! ([`BlobTransfer`]).

use std::time::Duration;

use cairn_proto::v1::fill_reply::Outcome;
use cairn_proto::v1::mirror_client::MirrorClient;
use cairn_proto::v1::{FillRequest, RefreshRequest};
use futures_util::future::BoxFuture;

use super::owner;
use super::peers::{PeerInfo, Peers};
use super::region::{self, metrics::RequestKind, Here};
use super::transfer::BlobTransfer;
use crate::config::ClusterSettings;
use crate::mirror::cluster::{ClusterOps, CopySource, RemoteOwner};
use crate::mirror::MirrorError;
use crate::store::meta::VersionRecord;

/// Deadline of a `Refresh` asked of the refresh owner: one small upstream fetch. Short, so a node
/// cut off from the owner (a silent link keeps the old connection open) soon refreshes itself;
/// meanwhile it serves its stale copy.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest `Fill` reply accepted: a record carries go.mod (≤ 16 MiB) base64-encoded in JSON.
const MAX_FILL_REPLY_BYTES: usize = 64 << 20;

/// Cluster operations for the mirror of node `self_id`.
pub struct ClusterLink {
    self_id: u64,
    peers: Peers,
    transfer: BlobTransfer,
    settings: ClusterSettings,
    fill_timeout: Duration,
}

impl ClusterLink {
    /// Links the mirror of `self_id` to the cluster. `fill_timeout` bounds a remote fill (it
    /// covers the owner's upstream transfer and replication).
    pub fn new(
        self_id: u64,
        peers: Peers,
        transfer: BlobTransfer,
        settings: &ClusterSettings,
        fill_timeout: Duration,
    ) -> Self {
        Self {
            self_id,
            peers,
            transfer,
            settings: settings.clone(),
            fill_timeout,
        }
    }

    fn here(&self) -> Here<'_> {
        Here {
            id: self.self_id,
            region: self.peers.self_region(),
        }
    }

    /// Live peers other than this node that hold or may take `key`: those of this node's region
    /// first, then those of the other regions (region by region), each ranked for `key`.
    fn others_ranked(&self, key: &str) -> Vec<PeerInfo> {
        let members = self.peers.members();
        let mut out = region::local_ranked(key, self.here(), &members);
        let remote = region::remote_ranked(key, self.here(), &members);
        out.extend(remote.into_iter().flat_map(|(_, group)| group));
        out
    }

    async fn fill_at(
        &self,
        owner: &RemoteOwner,
        module: &str,
        version: &str,
        zip: bool,
    ) -> Result<VersionRecord, MirrorError> {
        let unreachable = |why: String| {
            MirrorError::Storage(format!("owner node {} unreachable: {why}", owner.id))
        };
        let channel = self
            .peers
            .channel(&owner.addr)
            .map_err(|e| unreachable(e.to_string()))?;
        self.transfer
            .locality()
            .count_request(RequestKind::Fill, &owner.addr);
        let mut req = tonic::Request::new(FillRequest {
            module: module.to_string(),
            version: version.to_string(),
            zip,
        });
        req.set_timeout(self.fill_timeout);
        req.metadata_mut()
            .insert(super::fill::REQUESTER_KEY, self.self_id.into());
        let reply = MirrorClient::new(channel)
            .max_decoding_message_size(MAX_FILL_REPLY_BYTES)
            .fill(req)
            .await
            .map_err(|s| unreachable(s.message().to_string()))?;
        match reply.into_inner().outcome {
            Some(Outcome::RecordJson(j)) => {
                serde_json::from_str(&j).map_err(|e| unreachable(format!("bad record: {e}")))
            }
            Some(Outcome::NotFound(m)) => Err(MirrorError::NotFound(m)),
            Some(Outcome::UpstreamError(m)) => Err(MirrorError::Upstream(m)),
            None => Err(unreachable("empty reply".into())),
        }
    }

    /// Makes the blob durable per `min_copies` and `min_copies_remote_regions` and returns as
    /// soon as enough copies are fsynced. Copies go to the live nodes of this node's region
    /// first (`prefer`, the node that asked, first in line; then ranked for the blob) and, at
    /// the same time, to one node of each required other region (the node that would pull it
    /// into its region anyway). When this region has too few live nodes, the missing copies go
    /// to the other regions, so a fill is as durable as before regions existed.
    ///
    /// A whole (small) blob is pushed to every local node at once; a large one goes to the
    /// copies the answer waits for first, the next node stepping in for each that fails, so
    /// that they do not share the bandwidth with the rest (issue 13). The rest of the region
    /// then copies it in the background; other regions get it from the repair worker, which
    /// pulls it across each region boundary once.
    async fn replicate_inner(
        &self,
        sha256: &str,
        size: u64,
        prefer: Option<u64>,
        from: CopySource,
    ) -> Result<usize, MirrorError> {
        let members = self.peers.members();
        let live = members.iter().filter(|p| p.live).count().max(1);
        let needed = self.settings.min_copies.min(live).saturating_sub(1);
        let mut local = region::local_ranked(sha256, self.here(), &members);
        if let Some(pos) = prefer.and_then(|p| local.iter().position(|x| x.id == p)) {
            let preferred = local.remove(pos);
            local.insert(0, preferred);
        }
        let remote = region::remote_ranked(sha256, self.here(), &members);
        let want_regions = self.settings.min_copies_remote_regions.min(remote.len());
        if needed == 0 && want_regions == 0 {
            return Ok(1);
        }
        let job = CopyJob {
            transfer: self.transfer.clone(),
            sha256: sha256.to_owned(),
            size,
            source: self.peers.addr_of(self.self_id).unwrap_or_default(),
            // A staged file is served to the peers until the last copy task is done with it.
            staged: match &from {
                CopySource::Staged(path) => Some(self.transfer.stage(sha256, path.clone())),
                _ => None,
            },
            from,
        };
        let all_at_once = matches!(job.from, CopySource::Whole(_));
        let in_regions = async {
            let mut holders = Vec::new();
            for (_, group) in &remote {
                if holders.len() >= want_regions {
                    break;
                }
                holders.extend(job.copy(group.clone(), 1, false).await.0);
            }
            holders
        };
        let local_n = needed.min(local.len());
        let ((local_acks, local_rest), remote_holders) =
            tokio::join!(job.copy(local, local_n, all_at_once), in_regions);
        let mut acks = local_acks.len() + remote_holders.len();
        if acks < needed {
            let spill: Vec<PeerInfo> = remote
                .iter()
                .flat_map(|(_, group)| group)
                .filter(|p| !remote_holders.contains(&p.id))
                .cloned()
                .collect();
            acks += job.copy(spill, needed - acks, false).await.0.len();
        }
        if acks < needed || remote_holders.len() < want_regions {
            return Err(MirrorError::Storage(format!(
                "blob {sha256} is on {} node(s) ({} in other regions), {} required ({} other regions)",
                acks + 1,
                remote_holders.len(),
                needed + 1,
                want_regions
            )));
        }
        // The rest of this region copies it in the background (the tasks run on when dropped).
        for peer in local_rest {
            drop(job.start(peer));
        }
        Ok(acks + 1)
    }
}

/// One blob being copied to peers, from where [`CopySource`] says.
struct CopyJob {
    transfer: BlobTransfer,
    sha256: String,
    size: u64,
    /// This node's cluster address, where peers pull from.
    source: String,
    from: CopySource,
    staged: Option<std::sync::Arc<super::transfer::Staged>>,
}

impl CopyJob {
    /// Starts one copy as a task of its own, so that a copy nobody waits for still completes.
    fn start(
        &self,
        peer: PeerInfo,
    ) -> impl std::future::Future<Output = (u64, Result<(), String>)> + Send + 'static {
        let (transfer, sha, source) = (
            self.transfer.clone(),
            self.sha256.clone(),
            self.source.clone(),
        );
        let (from, staged, size) = (self.from.clone(), self.staged.clone(), self.size);
        let addr = peer.addr;
        let task = tokio::spawn(async move {
            let _staged = staged;
            match from {
                CopySource::Whole(body) => {
                    let wait = Duration::from_secs(10);
                    transfer
                        .push_or_pull(&addr, &sha, body, &source, wait)
                        .await
                }
                CopySource::Installed | CopySource::Staged(_) => {
                    transfer.replicate_to(&addr, &sha, size, &source).await
                }
            }
        });
        let id = peer.id;
        async move {
            match task.await {
                Ok(r) => (id, r.map_err(|e| e.to_string())),
                Err(e) => (id, Err(format!("copy task failed: {e}"))),
            }
        }
    }

    /// Copies to `targets` in order until `n` of them hold the blob, starting `n` at a time
    /// (all of them when `all_at_once`) and the next for each that fails. Returns the ids that
    /// confirmed and the targets never started.
    async fn copy(
        &self,
        targets: Vec<PeerInfo>,
        n: usize,
        all_at_once: bool,
    ) -> (Vec<u64>, Vec<PeerInfo>) {
        let mut acked = Vec::new();
        if n == 0 {
            return (acked, targets);
        }
        let first = if all_at_once { targets.len() } else { n };
        let mut rest = targets.into_iter();
        let mut calls: futures_util::stream::FuturesUnordered<_> =
            rest.by_ref().take(first).map(|p| self.start(p)).collect();
        while acked.len() < n {
            let Some((id, res)) = futures_util::StreamExt::next(&mut calls).await else {
                break;
            };
            match res {
                Ok(()) => acked.push(id),
                Err(e) => {
                    tracing::warn!(peer = id, sha256 = %self.sha256, error = %e, "peer could not take a copy")
                }
            }
            if acked.len() < n {
                calls.extend(rest.next().map(|p| self.start(p)));
            }
        }
        (acked, rest.collect())
    }
}

impl ClusterOps for ClusterLink {
    fn remote_owner(&self, key: &str) -> Option<RemoteOwner> {
        if !self.settings.owner_routing {
            return None;
        }
        let members = self.peers.members();
        let id = region::owner(key, self.here(), &members);
        if id == self.self_id {
            return None;
        }
        let addr = members.into_iter().find(|p| p.id == id)?.addr;
        Some(RemoteOwner { id, addr })
    }

    fn fill_remote<'a>(
        &'a self,
        owner: &'a RemoteOwner,
        module: &'a str,
        version: &'a str,
        zip: bool,
    ) -> BoxFuture<'a, Result<VersionRecord, MirrorError>> {
        Box::pin(async move {
            let result = self.fill_at(owner, module, version, zip).await;
            let label = match &result {
                Ok(_) => "ok",
                Err(MirrorError::NotFound(_)) => "not_found",
                Err(MirrorError::Storage(_)) => "unreachable",
                Err(_) => "upstream_error",
            };
            metrics::counter!("cairn_owner_fills_total", "result" => label).increment(1);
            result
        })
    }

    fn fetch_blob<'a>(
        &'a self,
        sha256: &'a str,
        size: u64,
    ) -> BoxFuture<'a, Result<(), MirrorError>> {
        Box::pin(async move {
            let addrs: Vec<String> = self
                .others_ranked(sha256)
                .into_iter()
                .map(|p| p.addr)
                .collect();
            self.transfer
                .fetch_from_any(&addrs, sha256, size)
                .await
                .map(|_| ())
                .map_err(|e| MirrorError::Storage(e.to_string()))
        })
    }

    fn replicate<'a>(
        &'a self,
        sha256: &'a str,
        size: u64,
        prefer: Option<u64>,
        from: CopySource,
    ) -> BoxFuture<'a, Result<usize, MirrorError>> {
        Box::pin(async move {
            let deadline = Duration::from_secs(self.settings.replicate_timeout_secs);
            let copies = self.replicate_inner(sha256, size, prefer, from);
            match tokio::time::timeout(deadline, copies).await {
                Ok(r) => r,
                Err(_) => Err(MirrorError::Storage(format!(
                    "copying blob {sha256} to peers took longer than {}s",
                    deadline.as_secs()
                ))),
            }
        })
    }

    fn refresh_owner(&self, key: &str) -> Option<RemoteOwner> {
        let live = self.peers.live();
        let id = owner::owner_of(key, live.iter().map(|p| p.id))?;
        if id == self.self_id {
            return None;
        }
        let addr = live.into_iter().find(|p| p.id == id)?.addr;
        Some(RemoteOwner { id, addr })
    }

    fn refresh_remote<'a>(
        &'a self,
        owner: &'a RemoteOwner,
        module: &'a str,
        latest: bool,
    ) -> BoxFuture<'a, Result<(), MirrorError>> {
        Box::pin(async move {
            let unreachable = |why: String| {
                MirrorError::Storage(format!(
                    "refresh owner node {} unreachable: {why}",
                    owner.id
                ))
            };
            let channel = self
                .peers
                .channel(&owner.addr)
                .map_err(|e| unreachable(e.to_string()))?;
            let mut req = tonic::Request::new(RefreshRequest {
                module: module.to_string(),
                latest,
            });
            req.set_timeout(REFRESH_TIMEOUT);
            let mut client = MirrorClient::new(channel);
            let r = tokio::time::timeout(REFRESH_TIMEOUT, client.refresh(req))
                .await
                .map_err(|_| unreachable("no answer in time".to_string()))?
                .map_err(|s| unreachable(s.message().to_string()))?
                .into_inner();
            if !r.not_found.is_empty() {
                Err(MirrorError::NotFound(r.not_found))
            } else if !r.upstream_error.is_empty() {
                Err(MirrorError::Upstream(r.upstream_error))
            } else {
                Ok(())
            }
        })
    }
}
