//! Tests of the repair worker against a real single-node `Consensus` and a peer store served
//! over gRPC (a single-node membership has no peers, so the peer list is injected).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::cluster::transfer::tests::{data, eventually, node, put, put_raw, serve, TestNode};
use crate::raft::{NodeAddr, QueueEntry, RaftSettings};
use crate::store::meta::{MetaCmd, MetaResp, VersionRecord, ZipRef};

// === fixtures ===

async fn start_consensus(dir: &Path) -> Consensus {
    let settings = RaftSettings {
        heartbeat_ms: 50,
        election_min_ms: 200,
        election_max_ms: 400,
        propose_timeout_ms: 5000,
        sled_cache_bytes: 8 << 20,
        ..RaftSettings::default()
    };
    let peers = BTreeMap::from([(1, NodeAddr::at("127.0.0.1:1"))]);
    let c = Consensus::start(1, peers, dir, &settings).await.unwrap();
    assert_eq!(c.wait_for_leader_id(Duration::from_secs(10)).await, Some(1));
    c
}

fn settings(scrub_interval_secs: u64) -> ClusterSettings {
    ClusterSettings {
        repair_interval_secs: 1,
        repair_backoff_max_secs: 1,
        scrub_interval_secs,
        ..crate::cluster::transfer::tests::settings()
    }
}

fn version(v: &str, sha256: &str, size: u64) -> MetaCmd {
    MetaCmd::PutVersion(VersionRecord {
        module: "example.com/r".to_string(),
        version: v.to_string(),
        info: b"{}".to_vec(),
        gomod: b"module example.com/r\n".to_vec(),
        mod_h1: "h1:mod=".to_string(),
        zip: Some(ZipRef {
            sha256: sha256.to_string(),
            size,
            h1: "h1:zip=".to_string(),
        }),
        source: "file:///x".to_string(),
        cached_at_ms: 1,
        sumdb_verified: false,
        sumdb_zip_h1: None,
    })
}

/// A running consensus, a local node whose repair worker fetches from a served peer node.
struct Setup {
    _meta: tempfile::TempDir,
    consensus: Consensus,
    local: TestNode,
    peer: TestNode,
    peer_addr: String,
    shutdown: CancellationToken,
}

async fn setup() -> Setup {
    let meta = tempfile::tempdir().unwrap();
    let consensus = start_consensus(meta.path()).await;
    let peer = node();
    let peer_addr = serve(&peer.transfer).await;
    Setup {
        _meta: meta,
        consensus,
        local: node(),
        peer,
        peer_addr,
        shutdown: CancellationToken::new(),
    }
}

impl Setup {
    fn spawn(&self, scrub_interval_secs: u64) -> Repair {
        let addr = self.peer_addr.clone();
        Repair::spawn_with_peers(
            self.consensus.clone(),
            self.local.blobs.clone(),
            self.local.transfer.clone(),
            Arc::new(move || vec![addr.clone()]),
            &settings(scrub_interval_secs),
            self.shutdown.clone(),
        )
    }

    /// A blob held only by the peer; returns (sha256, bytes).
    async fn peer_blob(&self, n: usize) -> (String, Vec<u8>) {
        let bytes = data(n);
        (put(&self.peer.blobs, &bytes).await, bytes)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.consensus.shutdown().await.unwrap();
    }
}

// === tests ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_zip_is_fetched_from_a_peer() {
    let s = setup().await;
    let repair = s.spawn(0);
    let (sha256, bytes) = s.peer_blob(500_000).await;
    let cmd = version("v1.0.0", &sha256, bytes.len() as u64);
    assert_eq!(s.consensus.propose(cmd).await.unwrap(), MetaResp::Applied);
    eventually("blob fetched", || s.local.blobs.contains(&sha256)).await;
    assert!(s.local.blobs.verify(&sha256).await.unwrap());
    eventually("queue drained", || repair.queue_len() == 0).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_finds_blobs_that_were_never_queued() {
    let s = setup().await;
    let (sha256, bytes) = s.peer_blob(300_000).await;
    let cmd = version("v1.0.0", &sha256, bytes.len() as u64);
    s.consensus.propose(cmd).await.unwrap();
    // As after a snapshot install: the record exists but apply never queued its blob here.
    s.consensus.blob_queue().remove(&sha256).unwrap();
    let repair = s.spawn(0);
    eventually("blob fetched", || s.local.blobs.contains(&sha256)).await;
    eventually("missing back to 0", || repair.missing() == 0).await;
    assert!(repair.status().last_scan_ms.is_some());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrub_quarantines_a_corrupt_copy_and_refetches_it() {
    let s = setup().await;
    let (sha256, bytes) = s.peer_blob(400_000).await;
    put(&s.local.blobs, &bytes).await;
    let mut bad = bytes.clone();
    bad[1234] ^= 0xff;
    put_raw(&s.local.blobs, &sha256, &bad);
    s.consensus
        .propose(version("v1.0.0", &sha256, bytes.len() as u64))
        .await
        .unwrap();
    let repair = s.spawn(1);
    let quarantine = s.local.dir.path().join("quarantine");
    let quarantined = || std::fs::read_dir(&quarantine).unwrap().count() == 1;
    eventually("corrupt copy quarantined", quarantined).await;
    eventually("good copy refetched", || {
        std::fs::read(s.local.blobs.path_of(&sha256).unwrap()).is_ok_and(|b| b == bytes)
    })
    .await;
    eventually("scrub recorded", || repair.status().last_scrub_ms.is_some()).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_blob_backs_off_and_enqueue_makes_it_due() {
    let s = setup().await;
    let repair = s.spawn(0);
    let sha256 = "e".repeat(64);
    repair.enqueue(&sha256, 10);
    repair.enqueue("not-a-sha", 10);
    let queue = s.consensus.blob_queue();
    let attempts = || queue.get(&sha256).unwrap().map_or(0, |e| e.attempts);
    eventually("a failed attempt", || attempts() >= 1).await;
    let entry = queue.get(&sha256).unwrap().unwrap();
    assert!(entry.next_try_ms > 0);
    repair.enqueue(&sha256, 10);
    assert_eq!(repair.queue_len(), 1);
    s.stop().await;
}

#[test]
fn backoff_grows_to_its_cap_with_jitter() {
    let max = Duration::from_secs(60);
    for attempts in 0..40 {
        let d = worker::backoff(attempts, max);
        let full = Duration::from_secs(1u64 << attempts.min(30)).min(max);
        assert!(d <= full && d >= full / 2, "{attempts}: {d:?}");
    }
    assert_eq!(QueueEntry::new(3).next_try_ms, 0);
}
