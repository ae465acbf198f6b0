//! The mirror's view of the cluster ([`ClusterOps`]), implemented over peer liveness
//! ([`Peers`]), region-scoped rendezvous choices ([`super::region`]) and blob transfer
//! ([`BlobTransfer`]).

use std::time::Duration;

use cairn_proto::v1::fill_reply::Outcome;
use cairn_proto::v1::mirror_client::MirrorClient;
use cairn_proto::v1::{FillRequest, RefreshRequest};
use futures_util::future::BoxFuture;

use super::peers::{PeerInfo, Peers};
use super::region::{self, metrics::RequestKind, Here};
use super::transfer::BlobTransfer;
use crate::config::ClusterSettings;
use crate::mirror::cluster::{ClusterOps, RemoteOwner};
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

    /// Makes the blob durable per `min_copies` and `min_copies_remote_regions`: copies go to
    /// the live nodes of this node's region first (ranked for the blob) and, at the same time,
    /// to one node of each required other region (the node that would pull it into its region
    /// anyway). When this region has too few live nodes, the missing copies go to the other
    /// regions, so a fill is as durable as before regions existed.
    async fn replicate_inner(&self, sha256: &str, size: u64) -> Result<usize, MirrorError> {
        let members = self.peers.members();
        let live = members.iter().filter(|p| p.live).count().max(1);
        let needed = self.settings.min_copies.min(live).saturating_sub(1);
        let local = region::local_ranked(sha256, self.here(), &members);
        let remote = region::remote_ranked(sha256, self.here(), &members);
        let want_regions = self.settings.min_copies_remote_regions.min(remote.len());
        if needed == 0 && want_regions == 0 {
            return Ok(1);
        }
        let source = self.peers.addr_of(self.self_id).unwrap_or_default();
        let copy =
            |targets: Vec<PeerInfo>, n: usize| self.copy_to(targets, n, sha256, size, &source);
        let in_regions = async {
            let mut holders = Vec::new();
            for (_, group) in &remote {
                if holders.len() >= want_regions {
                    break;
                }
                holders.extend(copy(group.clone(), 1).await);
            }
            holders
        };
        let local_n = needed.min(local.len());
        let (local_acks, remote_holders) = tokio::join!(copy(local, local_n), in_regions);
        let mut acks = local_acks.len() + remote_holders.len();
        if acks < needed {
            let spill: Vec<PeerInfo> = remote
                .iter()
                .flat_map(|(_, group)| group)
                .filter(|p| !remote_holders.contains(&p.id))
                .cloned()
                .collect();
            acks += copy(spill, needed - acks).await.len();
        }
        if acks >= needed && remote_holders.len() >= want_regions {
            Ok(acks + 1)
        } else {
            Err(MirrorError::Storage(format!(
                "blob {sha256} is on {} node(s) ({} in other regions), {} required ({} other regions)",
                acks + 1,
                remote_holders.len(),
                needed + 1,
                want_regions
            )))
        }
    }

    /// Asks `targets`, in order and `n` at a time, to pull the blob from `source` until `n`
    /// of them hold it; returns the ids of those that confirmed.
    async fn copy_to(
        &self,
        targets: Vec<PeerInfo>,
        n: usize,
        sha256: &str,
        size: u64,
        source: &str,
    ) -> Vec<u64> {
        let mut acked = Vec::new();
        let mut targets = targets.into_iter();
        while acked.len() < n {
            let batch: Vec<PeerInfo> = targets.by_ref().take(n - acked.len()).collect();
            if batch.is_empty() {
                break;
            }
            let calls = batch
                .iter()
                .map(|p| self.transfer.replicate_to(&p.addr, sha256, size, source));
            for (r, p) in futures_util::future::join_all(calls)
                .await
                .into_iter()
                .zip(&batch)
            {
                match r {
                    Ok(()) => acked.push(p.id),
                    Err(e) => {
                        tracing::warn!(peer = p.id, sha256, error = %e, "peer could not take a copy")
                    }
                }
            }
        }
        acked
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
    ) -> BoxFuture<'a, Result<usize, MirrorError>> {
        Box::pin(async move {
            let deadline = Duration::from_secs(self.settings.replicate_timeout_secs);
            match tokio::time::timeout(deadline, self.replicate_inner(sha256, size)).await {
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
