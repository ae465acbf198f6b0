//! Tests of the raft module: openraft's storage conformance suite against the sled store, the
//! apply semantics, snapshots, and a single-node `Consensus` across restarts.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{log_id, StoreBuilder, Suite};
use openraft::{
    Entry, EntryPayload, RaftLogReader, RaftSnapshotBuilder, StorageError, StorageIOError,
};
use tempfile::TempDir;

use super::apply::apply_entries;
use super::db::MetaDb;
use super::flusher::Flusher;
use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::*;
use crate::store::meta::{MetaCmd, MetaResp, SumdbItem, TreeHeadRecord, VersionRecord, ZipRef};

// === conformance ===

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for SledBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
        let db = MetaDb::open(dir.path(), 8 << 20)
            .await
            .map_err(|e| StorageIOError::write(&e))?;
        let flusher = Flusher::spawn(db.db.clone());
        Ok((
            dir,
            LogStore::new(db.clone(), flusher.clone()),
            StateMachine::new(db, flusher),
        ))
    }
}

#[test]
fn openraft_storage_conformance() {
    Suite::test_all(SledBuilder).unwrap();
}

// === fixtures ===

pub(super) async fn open_store(dir: &Path) -> (MetaDb, LogStore, StateMachine) {
    let db = MetaDb::open(dir, 8 << 20).await.unwrap();
    let flusher = Flusher::spawn(db.db.clone());
    (
        db.clone(),
        LogStore::new(db.clone(), flusher.clone()),
        StateMachine::new(db, flusher),
    )
}

pub(super) fn rec(module: &str, version: &str) -> VersionRecord {
    VersionRecord {
        module: module.to_string(),
        version: version.to_string(),
        info: format!(r#"{{"Version":"{version}"}}"#).into_bytes(),
        gomod: format!("module {module}\n").into_bytes(),
        mod_h1: "h1:mod=".to_string(),
        zip: None,
        source: "https://proxy.golang.org".to_string(),
        cached_at_ms: 1_700_000_000_000,
        sumdb_verified: true,
        sumdb_zip_h1: None,
    }
}

fn zip(sha: &str) -> ZipRef {
    ZipRef {
        sha256: sha.repeat(64),
        size: 1234,
        h1: "h1:zip=".to_string(),
    }
}

fn list(module: &str, versions: &[&str], at: i64) -> MetaCmd {
    MetaCmd::PutList {
        module: module.to_string(),
        versions: versions.iter().map(|v| v.to_string()).collect(),
        fetched_at_ms: at,
    }
}

/// Applies `cmds` as consecutive normal entries starting at `first_index`.
pub(super) fn apply_cmds(db: &MetaDb, first_index: u64, cmds: Vec<MetaCmd>) -> Vec<MetaResp> {
    let entries: Vec<Entry<TypeConfig>> = cmds
        .into_iter()
        .enumerate()
        .map(|(i, cmd)| Entry {
            log_id: log_id(1, 1, first_index + i as u64),
            payload: EntryPayload::Normal(cmd),
        })
        .collect();
    apply_entries(&db.sm, &entries).unwrap()
}

pub(super) fn conflict(resp: &MetaResp) -> bool {
    matches!(resp, MetaResp::Conflict { .. })
}

// === apply semantics ===

#[tokio::test]
async fn put_version_is_idempotent_and_immutable() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, mut sm) = open_store(dir.path()).await;
    let reader = MetaReader::new(db.sm.clone());
    let base = rec("example.com/a", "v1.0.0");
    let mut other_info = base.clone();
    other_info.info = b"{}".to_vec();
    let mut other_h1 = base.clone();
    other_h1.mod_h1 = "h1:other=".to_string();
    let mut with_zip = base.clone();
    with_zip.zip = Some(zip("a"));
    let mut other_zip = base.clone();
    other_zip.zip = Some(zip("b"));
    let mut retry_other_meta = with_zip.clone();
    retry_other_meta.source = "file:///elsewhere".to_string();
    let out = apply_cmds(
        &db,
        1,
        vec![
            MetaCmd::PutVersion(base.clone()),
            MetaCmd::PutVersion(base.clone()),
            MetaCmd::PutVersion(other_info),
            MetaCmd::PutVersion(other_h1),
            MetaCmd::PutVersion(with_zip.clone()),
            MetaCmd::PutVersion(with_zip.clone()),
            MetaCmd::PutVersion(other_zip),
            MetaCmd::PutVersion(base.clone()),
            MetaCmd::PutVersion(retry_other_meta),
        ],
    );
    assert_eq!(out[0], MetaResp::Applied);
    assert_eq!(out[1], MetaResp::Unchanged);
    assert!(conflict(&out[2]), "{:?}", out[2]);
    assert!(conflict(&out[3]), "{:?}", out[3]);
    assert_eq!(
        out[4],
        MetaResp::Applied,
        "zip added to a record without one"
    );
    assert_eq!(out[5], MetaResp::Unchanged);
    assert!(conflict(&out[6]), "{:?}", out[6]);
    assert_eq!(
        out[7],
        MetaResp::Unchanged,
        "a record without zip never removes the zip"
    );
    assert_eq!(
        out[8],
        MetaResp::Unchanged,
        "mutable provenance fields are not compared"
    );
    assert_eq!(
        reader.get_version("example.com/a", "v1.0.0").unwrap(),
        Some(with_zip)
    );
    assert_eq!(reader.version_count(), 1);
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied.map(|l| l.index), Some(9));
}

#[tokio::test]
async fn module_prefixes_do_not_leak() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, _) = open_store(dir.path()).await;
    let reader = MetaReader::new(db.sm.clone());
    let cmds = ["example.com/a", "example.com/ab", "example.com/a/b"]
        .iter()
        .flat_map(|m| ["v1.0.0", "v1.1.0"].map(|v| MetaCmd::PutVersion(rec(m, v))))
        .chain([MetaCmd::PutVersion(rec("bad@module", "v1.0.0"))])
        .collect();
    let out = apply_cmds(&db, 1, cmds);
    assert!(conflict(&out[6]), "a module path with @ is refused");
    assert_eq!(
        reader.module_versions("example.com/a").unwrap(),
        vec!["v1.0.0", "v1.1.0"]
    );
    assert_eq!(
        reader.module_versions("example.com/ab").unwrap(),
        vec!["v1.0.0", "v1.1.0"]
    );
    assert!(reader.module_versions("example.com").unwrap().is_empty());
    assert_eq!(reader.get_version("example.com/a", "v2.0.0").unwrap(), None);
    assert_eq!(reader.version_count(), 6);
}

#[tokio::test]
async fn lists_and_latest_keep_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, _) = open_store(dir.path()).await;
    let reader = MetaReader::new(db.sm.clone());
    let latest = |at: i64| MetaCmd::PutLatest {
        module: "m".to_string(),
        info: format!("{at}").into_bytes(),
        fetched_at_ms: at,
    };
    let out = apply_cmds(
        &db,
        1,
        vec![
            list("m", &["v1.0.0"], 100),
            list("m", &["v0.9.0"], 50),
            list("m", &["v0.9.0"], 100),
            list("m", &["v1.0.0", "v1.1.0"], 200),
            latest(10),
            latest(5),
            latest(11),
        ],
    );
    use MetaResp::{Applied as A, Unchanged as U};
    assert_eq!(out, vec![A, U, U, A, A, U, A]);
    let l = reader.get_list("m").unwrap().unwrap();
    assert_eq!((l.versions.len(), l.fetched_at_ms), (2, 200));
    assert_eq!(
        reader.get_latest("m").unwrap().unwrap().info,
        b"11".to_vec()
    );
    assert_eq!(reader.get_list("other").unwrap(), None);
}

// === snapshots ===

#[tokio::test]
async fn snapshot_install_replaces_state() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (db_a, _, mut sm_a) = open_store(dir_a.path()).await;
    let (db_b, _, mut sm_b) = open_store(dir_b.path()).await;
    apply_cmds(
        &db_a,
        1,
        vec![
            MetaCmd::PutVersion(rec("a", "v1.0.0")),
            list("a", &["v1.0.0"], 1),
        ],
    );
    apply_cmds(
        &db_b,
        1,
        vec![
            MetaCmd::PutVersion(rec("stale", "v9.0.0")),
            list("stale", &[], 1),
        ],
    );
    let snap = sm_a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snap.meta.last_log_id.map(|l| l.index), Some(2));
    sm_b.install_snapshot(&snap.meta, snap.snapshot)
        .await
        .unwrap();
    let reader = MetaReader::new(db_b.sm.clone());
    assert!(reader.get_version("a", "v1.0.0").unwrap().is_some());
    assert_eq!(
        reader.get_version("stale", "v9.0.0").unwrap(),
        None,
        "old keys are cleared"
    );
    assert_eq!(reader.get_list("stale").unwrap(), None);
    assert_eq!(reader.version_count(), 1);
    assert_eq!(sm_b.applied_state().await.unwrap().0, snap.meta.last_log_id);
    let current = sm_b.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, snap.meta);
}

fn head(size: u64, hash: &str) -> TreeHeadRecord {
    TreeHeadRecord {
        note: format!("go.sum database tree\n{size}\n{hash}\n").into_bytes(),
        size,
        hash: hash.to_string(),
        forked: None,
        recorded_at_ms: 1,
    }
}

fn put_head(size: u64, hash: &str) -> MetaCmd {
    MetaCmd::PutTreeHead {
        db: "sum.example".to_string(),
        head: head(size, hash),
    }
}

#[tokio::test]
async fn tree_heads_only_grow_and_a_fork_is_final() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, _sm) = open_store(dir.path()).await;
    let reader = MetaReader::new(db.sm.clone());
    let resps = apply_cmds(
        &db,
        1,
        vec![
            put_head(10, "a"),
            put_head(5, "b"),
            put_head(10, "a"),
            put_head(12, "d"),
        ],
    );
    use MetaResp::{Applied, Unchanged};
    assert_eq!(resps, [Applied, Unchanged, Unchanged, Applied]);
    assert_eq!(
        reader.get_tree_head("sum.example").unwrap(),
        Some(head(12, "d"))
    );
    // A rival head of the same size is a fork by itself; the fork is final.
    let forked = MetaCmd::MarkForked {
        db: "sum.example".to_string(),
        evidence: "later evidence".to_string(),
    };
    let resps = apply_cmds(&db, 5, vec![put_head(12, "e"), forked, put_head(20, "f")]);
    assert_eq!(resps, [Applied, Unchanged, Unchanged]);
    let stored = reader.get_tree_head("sum.example").unwrap().unwrap();
    assert_eq!(stored.size, 12);
    let evidence = stored.forked.unwrap();
    assert!(
        evidence.contains(" d ") || evidence.contains("d and e"),
        "{evidence}"
    );
    assert_eq!(reader.get_tree_head("other.example").unwrap(), None);
}

#[tokio::test]
async fn mark_verified_and_quarantine_change_only_unverified_or_stored_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, _sm) = open_store(dir.path()).await;
    let reader = MetaReader::new(db.sm.clone());
    let unverified = VersionRecord {
        sumdb_verified: false,
        ..rec("a", "v1.0.0")
    };
    let mark = |v: &str| MetaCmd::MarkVerified {
        module: "a".to_string(),
        version: v.to_string(),
        mod_h1: "h1:mod=".to_string(),
        zip_h1: "h1:zip=".to_string(),
    };
    let quarantine = |v: &str| MetaCmd::Quarantine {
        module: "a".to_string(),
        version: v.to_string(),
        reason: "go.mod differs".to_string(),
    };
    let resps = apply_cmds(
        &db,
        1,
        vec![
            MetaCmd::PutVersion(unverified),
            MetaCmd::PutVersion(rec("a", "v2.0.0")),
            mark("v1.0.0"),
            mark("v1.0.0"),
            mark("v9.0.0"),
            quarantine("v2.0.0"),
            quarantine("v2.0.0"),
        ],
    );
    use MetaResp::{Applied, Unchanged};
    assert_eq!(
        resps,
        [Applied, Applied, Applied, Unchanged, Unchanged, Applied, Unchanged]
    );
    let v1 = reader.get_version("a", "v1.0.0").unwrap().unwrap();
    assert!(v1.sumdb_verified && v1.sumdb_zip_h1.as_deref() == Some("h1:zip="));
    assert_eq!(
        reader.get_version("a", "v2.0.0").unwrap(),
        None,
        "quarantined"
    );
    assert_eq!(reader.version_count(), 1);
}

#[tokio::test]
async fn a_verified_version_and_its_evidence_are_one_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, _sm) = open_store(dir.path()).await;
    let evidence = |body: &str| MetaCmd::PutVerifiedVersion {
        record: rec("a", "v1.0.0"),
        db: "sum.example".to_string(),
        answers: vec![SumdbItem {
            path: "lookup/a@v1.0.0".to_string(),
            body: body.as_bytes().to_vec(),
        }],
    };
    let resps = apply_cmds(&db, 1, vec![evidence("first"), evidence("second")]);
    assert_eq!(resps, [MetaResp::Applied, MetaResp::Unchanged]);
    let reader = MetaReader::new(db.sm.clone());
    assert!(reader.get_version("a", "v1.0.0").unwrap().is_some());
    let item = reader
        .get_sumdb_item("sum.example", "lookup/a@v1.0.0")
        .unwrap();
    assert_eq!(item.as_deref(), Some(&b"first"[..]));
}

#[tokio::test]
async fn sumdb_items_are_immutable_and_travel_in_snapshots() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (db_a, _, mut sm_a) = open_store(dir_a.path()).await;
    let (db_b, _, mut sm_b) = open_store(dir_b.path()).await;
    let item = |path: &str, body: &str| SumdbItem {
        path: path.to_string(),
        body: body.as_bytes().to_vec(),
    };
    let put = |items: Vec<SumdbItem>| MetaCmd::PutSumdbItems {
        db: "sum.example".to_string(),
        items,
    };
    let resps = apply_cmds(
        &db_a,
        1,
        vec![
            put(vec![
                item("lookup/a@v1.0.0", "first"),
                item("tile/8/0/000", "t"),
            ]),
            put(vec![item("lookup/a@v1.0.0", "second")]),
            put_head(3, "h"),
        ],
    );
    assert_eq!(
        resps,
        [MetaResp::Applied, MetaResp::Unchanged, MetaResp::Applied]
    );
    let reader = MetaReader::new(db_a.sm.clone());
    let got = reader
        .get_sumdb_item("sum.example", "lookup/a@v1.0.0")
        .unwrap();
    assert_eq!(got.as_deref(), Some(&b"first"[..]));
    assert_eq!(
        reader.get_sumdb_item("other", "lookup/a@v1.0.0").unwrap(),
        None
    );

    let snap = sm_a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    sm_b.install_snapshot(&snap.meta, snap.snapshot)
        .await
        .unwrap();
    let b = MetaReader::new(db_b.sm.clone());
    let tile = b.get_sumdb_item("sum.example", "tile/8/0/000").unwrap();
    assert_eq!(tile.as_deref(), Some(&b"t"[..]));
    assert_eq!(b.get_tree_head("sum.example").unwrap(), Some(head(3, "h")));
}

#[tokio::test]
async fn recover_reinstalls_snapshot_when_behind_purge() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, mut sm) = open_store(dir.path()).await;
    apply_cmds(&db, 1, vec![MetaCmd::PutVersion(rec("a", "v1.0.0"))]);
    let snap = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    // Simulate a lost install: the state machine is empty again but the log is purged.
    for tree in [&db.sm.meta, &db.sm.versions] {
        tree.clear().unwrap();
    }
    sm.recover(snap.meta.last_log_id).await.unwrap();
    assert_eq!(sm.applied_state().await.unwrap().0, snap.meta.last_log_id);
    assert_eq!(MetaReader::new(db.sm.clone()).version_count(), 1);
    let ahead = Some(log_id(9, 1, 99));
    assert!(matches!(
        sm.recover(ahead).await,
        Err(ConsensusError::SnapshotMissing { .. })
    ));
}

#[tokio::test]
async fn log_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_, mut log, _) = open_store(dir.path()).await;
        let entries = (1..=5).map(|i| openraft::testing::blank_ent::<TypeConfig>(1, 1, i));
        openraft::storage::RaftLogStorageExt::blocking_append(&mut log, entries)
            .await
            .unwrap();
        log.save_vote(&openraft::Vote::new(1, 1)).await.unwrap();
        log.purge(log_id(1, 1, 2)).await.unwrap();
    }
    let (_, mut log, _) = open_store(dir.path()).await;
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 2)));
    assert_eq!(state.last_log_id, Some(log_id(1, 1, 5)));
    assert_eq!(
        log.read_vote().await.unwrap(),
        Some(openraft::Vote::new(1, 1))
    );
}

/// A purge hides the purged entries at once and deletes them in the background; entries a
/// crash left behind the purge point stay hidden after a restart and never count as the end of
/// the log.
#[tokio::test]
async fn purged_entries_are_hidden_at_once_and_deleted_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let (db, mut log, _) = open_store(dir.path()).await;
    let entries = (1..=5000).map(|i| openraft::testing::blank_ent::<TypeConfig>(1, 1, i));
    openraft::storage::RaftLogStorageExt::blocking_append(&mut log, entries)
        .await
        .unwrap();
    log.purge(log_id(1, 1, 4990)).await.unwrap();
    let got = log.try_get_log_entries(0..=4995).await.unwrap();
    let indexes: Vec<u64> = got.iter().map(|e| e.log_id.index).collect();
    assert_eq!(indexes, (4991..=4995).collect::<Vec<_>>());
    let mut reader = log.get_log_reader().await;
    assert_eq!(reader.try_get_log_entries(..4992).await.unwrap().len(), 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while db.raft_log.len() != 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} entries left",
            db.raft_log.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A crash between the purge point and the deletion: stale entries below it.
    for i in [1u64, 2, 3] {
        let entry = openraft::testing::blank_ent::<TypeConfig>(1, 1, i);
        let bytes = serde_json::to_vec(&entry).unwrap();
        db.raft_log.insert(super::db::log_key(i), bytes).unwrap();
    }
    log.truncate(log_id(1, 1, 4991)).await.unwrap();
    drop((log, reader, db));
    let (_, mut log, _) = open_store(dir.path()).await;
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(1, 1, 4990)));
    assert!(log.try_get_log_entries(0..10).await.unwrap().is_empty());
}

// === single-node consensus ===

fn fast_settings() -> RaftSettings {
    RaftSettings {
        heartbeat_ms: 50,
        election_min_ms: 200,
        election_max_ms: 400,
        propose_timeout_ms: 5000,
        sled_cache_bytes: 8 << 20,
        ..RaftSettings::default()
    }
}

fn one_peer(id: NodeId) -> BTreeMap<NodeId, NodeAddr> {
    BTreeMap::from([(id, NodeAddr::at("127.0.0.1:1"))])
}

async fn wait_until(cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn start_leader(dir: &Path) -> Consensus {
    let c = Consensus::start(1, one_peer(1), dir, &fast_settings())
        .await
        .unwrap();
    assert_eq!(c.wait_for_leader_id(Duration::from_secs(10)).await, Some(1));
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_propose_read_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = start_leader(dir.path()).await;
    let r = c.reader();
    let v = rec("example.com/m", "v1.0.0");
    assert_eq!(
        c.propose(MetaCmd::PutVersion(v.clone())).await.unwrap(),
        MetaResp::Applied
    );
    assert_eq!(
        c.propose(MetaCmd::PutVersion(v.clone())).await.unwrap(),
        MetaResp::Unchanged
    );
    assert_eq!(
        c.propose(list("example.com/m", &["v1.0.0"], 7))
            .await
            .unwrap(),
        MetaResp::Applied
    );
    assert_eq!(
        r.get_version("example.com/m", "v1.0.0").unwrap(),
        Some(v.clone())
    );
    assert_eq!(
        r.get_list("example.com/m").unwrap().unwrap().fetched_at_ms,
        7
    );
    let status = c.status();
    assert_eq!(
        (status.state, status.leader_id),
        (RaftRole::Leader, Some(1))
    );
    assert_eq!(status.members.len(), 1);
    assert!(status.members[0].voter);
    let membership_before = *c.raft().metrics().borrow().membership_config.log_id();
    wait_until(|| c.is_caught_up()).await;
    c.shutdown().await.unwrap();
    drop((c, r));

    let c = start_leader(dir.path()).await;
    let r = c.reader();
    wait_until(|| c.is_caught_up()).await;
    assert_eq!(
        r.get_version("example.com/m", "v1.0.0").unwrap(),
        Some(v.clone())
    );
    assert_eq!(r.version_count(), 1);
    let membership_after = *c.raft().metrics().borrow().membership_config.log_id();
    assert_eq!(
        membership_before, membership_after,
        "restart must not re-initialize"
    );
    let mut with_zip = v.clone();
    with_zip.zip = Some(zip("c"));
    assert_eq!(
        c.propose(MetaCmd::PutVersion(with_zip)).await.unwrap(),
        MetaResp::Applied
    );
    c.shutdown().await.unwrap();
    drop((c, r));

    let err = Consensus::start(2, one_peer(2), dir.path(), &fast_settings())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConsensusError::NodeIdMismatch {
                stored: 1,
                given: 2
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_lowest_peer_does_not_initialize() {
    let dir = tempfile::tempdir().unwrap();
    let mut peers = one_peer(1);
    peers.insert(2, NodeAddr::at("127.0.0.1:2"));
    let settings = RaftSettings {
        propose_timeout_ms: 300,
        ..fast_settings()
    };
    let c = Consensus::start(2, peers, dir.path(), &settings)
        .await
        .unwrap();
    assert!(!c.raft().is_initialized().await.unwrap());
    let err = c.propose(list("m", &[], 1)).await.unwrap_err();
    assert!(matches!(err, ProposeError::NoLeader { .. }), "{err}");
    assert!(err.is_retryable());
    c.shutdown().await.unwrap();
}

// === wire ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_over_grpc_applies_on_leader() {
    let dir = tempfile::tempdir().unwrap();
    let c = start_leader(dir.path()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let server = tonic::transport::Server::builder()
        .add_service(c.raft_service())
        .serve_with_incoming(incoming);
    let server = tokio::spawn(server);
    let net = Network::new(9, &fast_settings());
    let cmd = MetaCmd::PutVersion(rec("fwd", "v1.0.0"));
    let t = Duration::from_secs(5);
    assert_eq!(
        net.forward(1, &addr, &cmd, 2, t).await.unwrap(),
        MetaResp::Applied
    );
    assert_eq!(
        net.forward(1, &addr, &cmd, 2, t).await.unwrap(),
        MetaResp::Unchanged
    );
    let err = net.forward(1, &addr, &cmd, 0, t).await.unwrap_err();
    assert!(matches!(err, ProposeError::HopsExhausted), "{err}");
    server.abort();
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn unreachable_peer_maps_to_unreachable() {
    use openraft::error::RPCError;
    use openraft::network::RPCOption;
    use openraft::{RaftNetwork, RaftNetworkFactory};
    let mut net = Network::new(1, &fast_settings());
    let node = NodeAddr::at("127.0.0.1:1");
    let mut conn = net.new_client(2, &node).await;
    let rpc = openraft::raft::VoteRequest::new(openraft::Vote::new(1, 1), None);
    let err = conn
        .vote(rpc, RPCOption::new(Duration::from_secs(2)))
        .await
        .unwrap_err();
    assert!(matches!(err, RPCError::Unreachable(_)), "{err:?}");
}

// === crash safety ===

/// Env var that turns [`kill9_child`] into the crashing writer of [`kill9_loses_no_ack`].
const KILL9_DIR: &str = "CAIRN_TEST_KILL9_DIR";

/// Child process: proposes versions forever, printing `ACK n` after each acknowledged one.
#[test]
#[ignore = "run only as the child of kill9_loses_no_ack"]
fn kill9_child() {
    let Ok(dir) = std::env::var(KILL9_DIR) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = start_leader(Path::new(&dir)).await;
        for i in 0.. {
            let resp = c
                .propose(MetaCmd::PutVersion(rec("kill9", &format!("v0.0.{i}"))))
                .await;
            assert_eq!(resp.unwrap(), MetaResp::Applied);
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            writeln!(out, "ACK {i}").unwrap();
            out.flush().unwrap();
        }
    });
}

/// A node killed with SIGKILL in the middle of a write burst keeps every acknowledged write.
#[test]
fn kill9_loses_no_ack() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "raft::tests::kill9_child",
            "--ignored",
            "--nocapture",
        ])
        .env(KILL9_DIR, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    let mut killed = false;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("ACK ") {
            acked.push(n.parse::<u64>().unwrap());
        }
        if acked.len() == 100 && !killed {
            child.kill().unwrap(); // SIGKILL; lines already in the pipe are still read
            killed = true;
        }
    }
    child.wait().unwrap();
    assert!(
        acked.len() >= 100,
        "child acknowledged only {} writes",
        acked.len()
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = start_leader(dir.path()).await;
        wait_until(|| c.is_caught_up()).await;
        let r = c.reader();
        for i in &acked {
            let got = r.get_version("kill9", &format!("v0.0.{i}")).unwrap();
            assert!(got.is_some(), "acknowledged write {i} lost after kill -9");
        }
        assert!(r.version_count() >= acked.len() as u64);
        c.shutdown().await.unwrap();
    });
}

// === disk: pins (issue 12) ===

#[tokio::test]
async fn pins_are_idempotent_and_travel_in_snapshots() {
    use crate::store::meta::PinRecord;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (db_a, _, mut sm_a) = open_store(dir_a.path()).await;
    let (db_b, _, mut sm_b) = open_store(dir_b.path()).await;
    let pin = |pattern: &str, by: &str| {
        MetaCmd::Pin(PinRecord {
            pattern: pattern.to_string(),
            by: by.to_string(),
            at_ms: 7,
        })
    };
    let unpin = |pattern: &str| MetaCmd::Unpin {
        pattern: pattern.to_string(),
    };
    let resps = apply_cmds(
        &db_a,
        1,
        vec![
            pin("corp.example.com/*", "alice"),
            pin("corp.example.com/*", "bob"),
            pin("example.com/m@v1.0.0", "alice"),
            unpin("example.com/m@v1.0.0"),
            unpin("example.com/m@v1.0.0"),
            pin("x.org/*", "carol"),
        ],
    );
    use MetaResp::{Applied, Unchanged};
    assert_eq!(
        resps,
        [Applied, Unchanged, Applied, Applied, Unchanged, Applied]
    );
    let pins = MetaReader::new(db_a.sm.clone()).pins().unwrap();
    let names: Vec<_> = pins
        .iter()
        .map(|p| (p.pattern.as_str(), p.by.as_str()))
        .collect();
    assert_eq!(
        names,
        [("corp.example.com/*", "alice"), ("x.org/*", "carol")]
    );

    let snap = sm_a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    sm_b.install_snapshot(&snap.meta, snap.snapshot)
        .await
        .unwrap();
    assert_eq!(MetaReader::new(db_b.sm.clone()).pins().unwrap(), pins);
}

#[tokio::test]
async fn disk_bookkeeping_survives_reopen() {
    use super::DiskLocal;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = ("aa".repeat(32), "bb".repeat(32));
    {
        let (db, _, _) = open_store(dir.path()).await;
        let local = DiskLocal::from_trees(&db.sm);
        local
            .save_atimes(&[(a.clone(), 10), (b.clone(), 20)])
            .unwrap();
        local.mark_evicted(std::slice::from_ref(&b), 30).unwrap();
        db.db.flush_async().await.unwrap();
    }
    let (db, _, _) = open_store(dir.path()).await;
    let local = DiskLocal::from_trees(&db.sm);
    assert_eq!(
        local.atimes().unwrap(),
        vec![(a, 10)],
        "an eviction forgets the time"
    );
    assert_eq!(local.evicted().unwrap(), vec![b.clone()]);
    local.unmark_evicted(&[b]).unwrap();
    assert!(local.evicted().unwrap().is_empty());
}
