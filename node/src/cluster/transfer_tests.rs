//! Tests of blob transfer: real tonic servers on loopback ports serving one store each, and a
//! TCP proxy that cuts streams to play a peer dying mid-transfer.

use std::path::Path;
use std::time::Duration;

use cairn_proto::v1::blob_client::BlobClient;
use cairn_proto::v1::PullBlobRequest;
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

// === fixtures ===

pub(crate) fn settings() -> ClusterSettings {
    ClusterSettings {
        transfer_chunk_bytes: 256 * 1024,
        max_concurrent_transfers: 4,
        replicate_timeout_secs: 20,
        ..ClusterSettings::default()
    }
}

/// A node's blob store in a temp dir, and its transfer handle.
pub(crate) struct TestNode {
    pub dir: TempDir,
    pub blobs: BlobStore,
    pub transfer: BlobTransfer,
}

pub(crate) fn node() -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(dir.path()).unwrap();
    let transfer = BlobTransfer::with_idle_timeout(blobs.clone(), &settings(), secs(3));
    TestNode {
        dir,
        blobs,
        transfer,
    }
}

/// Serves `transfer` on a fresh loopback port; returns `HOST:PORT`.
pub(crate) async fn serve(transfer: &BlobTransfer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let server = tonic::transport::Server::builder()
        .add_service(transfer.service())
        .serve_with_incoming(incoming);
    tokio::spawn(server);
    addr
}

/// Deterministic bytes that do not compress or repeat per chunk.
pub(crate) fn data(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub(crate) fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Stores `bytes` properly; returns the sha256.
pub(crate) async fn put(blobs: &BlobStore, bytes: &[u8]) -> String {
    let tmp = blobs.temp_path();
    std::fs::write(&tmp, bytes).unwrap();
    blobs.commit(tmp, None).await.unwrap().sha256
}

/// Writes `bytes` under the name `sha256`, bypassing the store's checks (a lying or corrupt
/// copy).
pub(crate) fn put_raw(blobs: &BlobStore, sha256: &str, bytes: &[u8]) {
    let path = blobs.path_of(sha256).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

pub(crate) fn temp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("tmp")).unwrap().count()
}

/// Polls `cond` every 20 ms for up to 15 s.
pub(crate) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A TCP proxy to `target`. The first connection forwards at most `cut_after` bytes from the
/// server, then both sides are dropped; later connections are forwarded whole if `later`,
/// else refused (the listener closes).
async fn cutting_proxy(target: String, cut_after: usize, later: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = TcpStream::connect(&target).await.unwrap();
        forward_cut(client, server, cut_after).await;
        if !later {
            return;
        }
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let mut server = TcpStream::connect(&target).await.unwrap();
            tokio::spawn(async move {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    addr
}

async fn forward_cut(client: TcpStream, server: TcpStream, budget: usize) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
    });
    let mut left = budget;
    let mut buf = vec![0u8; 16 * 1024];
    while left > 0 {
        let n = match sr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n.min(left),
        };
        if cw.write_all(&buf[..n]).await.is_err() {
            break;
        }
        left -= n;
    }
    up.abort();
}

// === fetch ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_from_copies_a_multi_chunk_blob() {
    let (src, dst) = (node(), node());
    let bytes = data(3 * 1024 * 1024 + 17);
    let sha256 = put(&src.blobs, &bytes).await;
    let addr = serve(&src.transfer).await;
    let info = dst
        .transfer
        .fetch_from(&addr, &sha256, bytes.len() as u64)
        .await
        .unwrap();
    assert_eq!(info.sha256, sha256);
    assert_eq!(info.size, bytes.len() as u64);
    let got = std::fs::read(dst.blobs.path_of(&sha256).unwrap()).unwrap();
    assert!(got == bytes, "received bytes differ");
    assert_eq!(temp_files(dst.dir.path()), 0);
    assert_eq!(
        dst.transfer.inner.flights.len(),
        0,
        "flight entries cleaned"
    );
    let again = dst.transfer.fetch_from("127.0.0.1:1", &sha256, info.size);
    assert_eq!(again.await.unwrap(), info, "present blobs need no peer");
}

#[tokio::test]
async fn concurrent_fetches_of_one_blob_all_succeed() {
    let (src, dst) = (node(), node());
    let bytes = data(700 * 1024);
    let sha256 = put(&src.blobs, &bytes).await;
    let addr = serve(&src.transfer).await;
    let size = bytes.len() as u64;
    let fetches = (0..4).map(|_| {
        let (t, a, s) = (dst.transfer.clone(), addr.clone(), sha256.clone());
        tokio::spawn(async move { t.fetch_from(&a, &s, size).await })
    });
    for f in fetches.collect::<Vec<_>>() {
        assert_eq!(f.await.unwrap().unwrap().size, size);
    }
    assert_eq!(dst.blobs.objects(), 1);
    assert_eq!(temp_files(dst.dir.path()), 0);
}

#[tokio::test]
async fn missing_blob_is_not_found() {
    let (src, dst) = (node(), node());
    let addr = serve(&src.transfer).await;
    let err = dst
        .transfer
        .fetch_from(&addr, &"0".repeat(64), 10)
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::NotFound { .. }), "{err}");
    assert_eq!(temp_files(dst.dir.path()), 0);
}

#[tokio::test]
async fn lying_server_is_refused_and_nothing_is_kept() {
    let (src, dst) = (node(), node());
    let good = data(600 * 1024);
    let sha256 = sha(&good);
    let mut bad = good.clone();
    bad[300_000] ^= 1;
    put_raw(&src.blobs, &sha256, &bad);
    let addr = serve(&src.transfer).await;
    let size = good.len() as u64;
    let err = dst
        .transfer
        .fetch_from(&addr, &sha256, size)
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::Mismatch { .. }), "{err}");
    assert!(!dst.blobs.contains(&sha256));
    assert_eq!(temp_files(dst.dir.path()), 0);
    put_raw(&src.blobs, &sha256, &good[..1000]);
    let err = dst
        .transfer
        .fetch_from(&addr, &sha256, size)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransferError::Size { got: 1000, .. }),
        "{err}"
    );
    let err = dst
        .transfer
        .fetch_from(&addr, &sha256, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransferError::Size { expected: 10, .. }),
        "{err}"
    );
    assert!(!dst.blobs.contains(&sha256));
    assert_eq!(temp_files(dst.dir.path()), 0);
}

#[tokio::test]
async fn empty_blob_transfers() {
    let (src, dst) = (node(), node());
    let sha256 = put(&src.blobs, b"").await;
    let addr = serve(&src.transfer).await;
    let info = dst.transfer.fetch_from(&addr, &sha256, 0).await.unwrap();
    assert_eq!(info.size, 0);
    assert!(dst.blobs.contains(&sha256));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_from_any_skips_dead_and_empty_peers() {
    let (src, empty, dst) = (node(), node(), node());
    let bytes = data(100_000);
    let sha256 = put(&src.blobs, &bytes).await;
    let peers = vec![
        "127.0.0.1:1".to_string(),
        serve(&empty.transfer).await,
        serve(&src.transfer).await,
    ];
    let size = bytes.len() as u64;
    let err = dst
        .transfer
        .fetch_from_any(&peers[..2], &sha256, size)
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::Unreachable { .. }), "{err}");
    let err = dst.transfer.fetch_from_any(&peers[1..2], &sha256, size);
    assert!(err.await.unwrap_err().is_not_found());
    let err = dst.transfer.fetch_from_any(&[], &sha256, size).await;
    assert!(matches!(err, Err(TransferError::NoPeers { .. })));
    let info = dst.transfer.fetch_from_any(&peers, &sha256, size).await;
    assert_eq!(info.unwrap().size, size);
}

#[tokio::test]
async fn bad_arguments_are_refused() {
    let t = node().transfer;
    let sha256 = "a".repeat(64);
    for (peer, sha) in [("127.0.0.1:80", "ABC"), ("http://x:1/", sha256.as_str())] {
        let err = t.fetch_from(peer, sha, 1).await.unwrap_err();
        assert!(matches!(err, TransferError::InvalidArgument(_)), "{err}");
    }
    let ok = [
        "a:1",
        "node-1.cairn.svc:9090",
        "10.0.0.1:65535",
        "[::1]:9090",
    ];
    let bad = [
        "", "a", "a:0", "a:x", ":80", "a b:1", "a/b:1", "h:1:2", "[]:1", "x@y:1",
    ];
    for addr in ok {
        assert!(looks_like_host_port(addr), "{addr}");
    }
    for addr in bad {
        assert!(!looks_like_host_port(addr), "{addr}");
    }
}

// === replicate ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicate_to_makes_a_peer_pull_from_a_source() {
    let (client, source, target) = (node(), node(), node());
    let bytes = data(1_000_000);
    let sha256 = put(&source.blobs, &bytes).await;
    let source_addr = serve(&source.transfer).await;
    let target_addr = serve(&target.transfer).await;
    let size = bytes.len() as u64;
    let t = &client.transfer;
    t.replicate_to(&target_addr, &sha256, size, &source_addr)
        .await
        .unwrap();
    assert!(target.blobs.verify(&sha256).await.unwrap());
    t.replicate_to(&target_addr, &sha256, size, &source_addr)
        .await
        .unwrap();
    let missing = "f".repeat(64);
    let err = t
        .replicate_to(&target_addr, &missing, 5, &source_addr)
        .await;
    assert!(err.unwrap_err().is_not_found());
    assert_eq!(client.blobs.objects(), 0, "the caller keeps nothing");
    assert_eq!(temp_files(target.dir.path()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_to_stores_a_whole_blob_and_refuses_wrong_bytes() {
    let (client, target) = (node(), node());
    let target_addr = serve(&target.transfer).await;
    let bytes = data(300_000);
    let sha256 = sha(&bytes);
    let t = &client.transfer;
    t.push_to(&target_addr, &sha256, bytes.clone().into())
        .await
        .unwrap();
    assert!(target.blobs.verify(&sha256).await.unwrap());
    // Idempotent: a second push finds it present.
    t.push_to(&target_addr, &sha256, bytes.clone().into())
        .await
        .unwrap();
    assert_eq!(target.blobs.objects(), 1);
    // Bytes that do not hash to the address are refused and nothing is kept.
    let other = "e".repeat(64);
    let err = t
        .push_to(&target_addr, &other, bytes.into())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            TransferError::Remote {
                code: tonic::Code::DataLoss,
                ..
            }
        ),
        "{err}"
    );
    assert!(!target.blobs.contains(&other));
    assert_eq!(target.blobs.objects(), 1);
    assert_eq!(temp_files(target.dir.path()), 0);
    assert_eq!(client.blobs.objects(), 0, "the sender keeps nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_temp_file_is_served_until_unstaged() {
    let (client, source, target, late) = (node(), node(), node(), node());
    let bytes = data(700_000);
    let sha256 = sha(&bytes);
    let tmp = source.blobs.temp_path();
    std::fs::write(&tmp, &bytes).unwrap();
    let (source_addr, target_addr) = (serve(&source.transfer).await, serve(&target.transfer).await);
    let size = bytes.len() as u64;
    let staged = source.transfer.stage(&sha256, tmp.clone());
    client
        .transfer
        .replicate_to(&target_addr, &sha256, size, &source_addr)
        .await
        .unwrap();
    assert!(target.blobs.verify(&sha256).await.unwrap());
    assert!(!source.blobs.contains(&sha256), "staging does not install");
    drop(staged);
    let late_addr = serve(&late.transfer).await;
    let err = client
        .transfer
        .replicate_to(&late_addr, &sha256, size, &source_addr)
        .await;
    assert!(err.unwrap_err().is_not_found());
}

#[tokio::test]
async fn pull_blob_validates_its_request() {
    let target = node();
    let addr = serve(&target.transfer).await;
    let mut client = BlobClient::connect(format!("http://{addr}")).await.unwrap();
    let bad = [
        ("nothex", "127.0.0.1:1"),
        (&*"a".repeat(64), "http://evil/x"),
    ];
    for (sha256, source_addr) in bad {
        let req = PullBlobRequest {
            sha256: sha256.to_string(),
            size: 1,
            source_addr: source_addr.to_string(),
        };
        let status = client.pull_blob(req).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    }
}

// === broken streams ===

/// A stream cut for good fails, but keeps what it received (issue 14): the next fetch, from
/// any peer, continues from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_cut_for_good_fails_and_the_next_fetch_resumes_it() {
    let (src, dst) = (node(), node());
    let bytes = data(3 * 1024 * 1024);
    let sha256 = put(&src.blobs, &bytes).await;
    let direct = serve(&src.transfer).await;
    let proxy = cutting_proxy(direct.clone(), 1024 * 1024, false).await;
    let size = bytes.len() as u64;
    let err = dst
        .transfer
        .fetch_from(&proxy, &sha256, size)
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::Unreachable { .. }), "{err}");
    assert!(!dst.blobs.contains(&sha256));
    assert_eq!(temp_files(dst.dir.path()), 1, "the partial is kept");
    let info = dst
        .transfer
        .fetch_from(&direct, &sha256, size)
        .await
        .unwrap();
    assert_eq!(info.size, size);
    assert!(dst.blobs.verify(&sha256).await.unwrap());
    assert_eq!(temp_files(dst.dir.path()), 0);
}

/// A kept partial that does not belong to the blob (wrong bytes) is caught by the hash check
/// and removed; the fetch after that starts over and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_partial_is_refused_then_forgotten() {
    let (src, dst) = (node(), node());
    let bytes = data(600_000);
    let sha256 = put(&src.blobs, &bytes).await;
    let direct = serve(&src.transfer).await;
    let partial = client::partial_path(&dst.blobs.temp_path(), &sha256);
    std::fs::write(&partial, vec![7u8; 1000]).unwrap();
    let size = bytes.len() as u64;
    let err = dst
        .transfer
        .fetch_from(&direct, &sha256, size)
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::Mismatch { .. }), "{err}");
    assert_eq!(temp_files(dst.dir.path()), 0);
    dst.transfer
        .fetch_from(&direct, &sha256, size)
        .await
        .unwrap();
    assert!(dst.blobs.verify(&sha256).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_cut_midway_resumes_from_its_offset() {
    let (src, dst) = (node(), node());
    let bytes = data(3 * 1024 * 1024);
    let sha256 = put(&src.blobs, &bytes).await;
    let proxy = cutting_proxy(serve(&src.transfer).await, 1024 * 1024, true).await;
    let size = bytes.len() as u64;
    let info = dst
        .transfer
        .fetch_from(&proxy, &sha256, size)
        .await
        .unwrap();
    assert_eq!(info.size, size);
    assert!(dst.blobs.verify(&sha256).await.unwrap());
    assert_eq!(temp_files(dst.dir.path()), 0);
}

#[tokio::test]
async fn silent_peer_times_out() {
    let dst = node();
    let transfer = BlobTransfer::with_idle_timeout(dst.blobs.clone(), &settings(), secs(1));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let err = transfer
        .fetch_from(&addr, &"b".repeat(64), 5)
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::Timeout { .. }), "{err}");
    assert_eq!(temp_files(dst.dir.path()), 0);
    hold.abort();
}

#[tokio::test]
async fn dropped_fetch_removes_its_temp_file() {
    let (src, dst) = (node(), node());
    let bytes = data(2 * 1024 * 1024);
    let sha256 = put(&src.blobs, &bytes).await;
    let addr = serve(&src.transfer).await;
    let fetch = dst.transfer.fetch_from(&addr, &sha256, bytes.len() as u64);
    let _ = tokio::time::timeout(Duration::from_millis(30), fetch).await;
    // A commit already under way finishes on its blocking thread; anything else is removed.
    eventually("temp files gone", || temp_files(dst.dir.path()) == 0).await;
    assert_eq!(dst.transfer.inner.flights.len(), 0);
}
