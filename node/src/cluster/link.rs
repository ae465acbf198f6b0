//! The mirror's view of the cluster ([`ClusterOps`]), implemented over peer liveness
//! ([`Peers`]), rendezvous ownership ([`super::owner`]) and blob transfer ([`BlobTransfer`]).

use std::time::Duration;

use cairn_proto::v1::fill_reply::Outcome;
use cairn_proto::v1::mirror_client::MirrorClient;
use cairn_proto::v1::FillRequest;
use futures_util::future::BoxFuture;

use super::owner;
use super::peers::Peers;
use super::transfer::BlobTransfer;
use crate::config::ClusterSettings;
use crate::mirror::cluster::{ClusterOps, CopySource, RemoteOwner};
use crate::mirror::MirrorError;
use crate::store::meta::VersionRecord;

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

    /// Live peers other than this node, best candidates for `key` first, as (id, addr).
    fn others_ranked(&self, key: &str) -> Vec<(u64, String)> {
        let live: Vec<_> = self
            .peers
            .live()
            .into_iter()
            .filter(|p| p.id != self.self_id)
            .collect();
        owner::ranked(key, live.iter().map(|p| p.id))
            .into_iter()
            .filter_map(|id| {
                live.iter()
                    .find(|p| p.id == id)
                    .map(|p| (id, p.addr.clone()))
            })
            .collect()
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

    /// Copies the blob to the live peers, `prefer` first in line, and returns as soon as
    /// `min_copies - 1` of them hold it fsynced. A whole (small) blob is pushed to every peer
    /// at once; a large one goes to the `min_copies - 1` first peers, the next one stepping in
    /// for each that fails, and to the others once those hold it, so that the copies the
    /// answer waits for do not share the bandwidth with the rest (issue 13). The other copies
    /// finish in the background, before the record is committed if they can, instead of
    /// waiting for its apply.
    async fn replicate_inner(
        &self,
        sha256: &str,
        size: u64,
        prefer: Option<u64>,
        from: CopySource,
    ) -> Result<usize, MirrorError> {
        let live = self.peers.live().len().max(1);
        let needed = self.settings.min_copies.min(live).saturating_sub(1);
        if needed == 0 {
            return Ok(1);
        }
        let source = self.peers.addr_of(self.self_id).unwrap_or_default();
        // A staged file is served to the peers until the last copy task is done with it.
        let staged = match &from {
            CopySource::Staged(path) => Some(self.transfer.stage(sha256, path.clone())),
            _ => None,
        };
        let mut targets = self.others_ranked(sha256);
        if let Some(pos) = prefer.and_then(|p| targets.iter().position(|(id, _)| *id == p)) {
            let preferred = targets.remove(pos);
            targets.insert(0, preferred);
        }
        // Starts one copy as a task of its own: a copy not needed for the answer completes
        // even when nobody waits for it.
        let start = |(id, addr): (u64, String)| {
            let (transfer, sha, source) =
                (self.transfer.clone(), sha256.to_owned(), source.clone());
            let (from, staged) = (from.clone(), staged.clone());
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
            async move { (id, task.await) }
        };
        let first = match from {
            CopySource::Whole(_) => targets.len(),
            _ => needed,
        };
        let mut rest = targets.into_iter();
        let mut calls: futures_util::stream::FuturesUnordered<_> =
            rest.by_ref().take(first).map(&start).collect();
        let mut acks = 0;
        while acks < needed {
            let Some((id, res)) = futures_util::StreamExt::next(&mut calls).await else {
                break;
            };
            match res {
                Ok(Ok(())) => acks += 1,
                Ok(Err(e)) => {
                    tracing::warn!(peer = id, sha256, error = %e, "peer could not take a copy")
                }
                Err(e) => tracing::warn!(peer = id, sha256, error = %e, "copy task failed"),
            }
            if acks < needed {
                calls.extend(rest.next().map(&start));
            }
        }
        if acks < needed {
            return Err(MirrorError::Storage(format!(
                "blob {sha256} is on {} node(s), {} required",
                acks + 1,
                needed + 1
            )));
        }
        // The remaining peers copy it in the background (their tasks run on when dropped).
        rest.for_each(|target| drop(start(target)));
        Ok(acks + 1)
    }
}

impl ClusterOps for ClusterLink {
    fn remote_owner(&self, key: &str) -> Option<RemoteOwner> {
        if !self.settings.owner_routing {
            return None;
        }
        let live = self.peers.live();
        let id = owner::owner_of(key, live.iter().map(|p| p.id))?;
        if id == self.self_id {
            return None;
        }
        let addr = live.into_iter().find(|p| p.id == id)?.addr;
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
                .map(|(_, a)| a)
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
}
