//! Tests of snapshot files and the streaming snapshot format: large states round-trip, a
//! snapshot that is not valid leaves the state untouched, an interrupted install is redone at
//! startup, and a snapshot stored by an older cairn as a sled value moves into a file.

use openraft::storage::RaftStateMachine;
use openraft::testing::log_id;
use openraft::{RaftSnapshotBuilder, SnapshotMeta};
use tokio::io::AsyncWriteExt;

use super::db::{snapshot_key, MetaDb};
use super::reader::MetaReader;
use super::snapshot::{self, SnapshotError};
use super::state_machine::StateMachine;
use super::tests::{apply_cmds, open_store, rec};
use crate::store::meta::MetaCmd;

/// `n` versions of `n / 10` modules, each module with a list.
fn corpus(n: usize) -> Vec<MetaCmd> {
    let mut cmds = Vec::new();
    for i in 0..n {
        cmds.push(MetaCmd::PutVersion(rec(
            &format!("example.com/m{}", i / 10),
            &format!("v1.0.{}", i % 10),
        )));
        if i % 10 == 9 {
            cmds.push(MetaCmd::PutList {
                module: format!("example.com/m{}", i / 10),
                versions: (0..10).map(|v| format!("v1.0.{v}")).collect(),
                fetched_at_ms: 1,
            });
        }
    }
    cmds
}

fn snapshot_files(db: &MetaDb) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(db.snapshots.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn build(sm: &mut StateMachine) -> openraft::Snapshot<super::TypeConfig> {
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap()
}

/// More records than one install batch travel whole, through a received file as openraft
/// writes it, and only the current snapshot file is kept.
#[tokio::test]
async fn a_state_larger_than_an_install_batch_round_trips_through_files() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (db_a, _, mut sm_a) = open_store(dir_a.path()).await;
    let (db_b, _, mut sm_b) = open_store(dir_b.path()).await;
    apply_cmds(&db_a, 1, corpus(10_000));
    build(&mut sm_a).await;
    let snap = build(&mut sm_a).await;
    assert_eq!(
        snapshot_files(&db_a).len(),
        1,
        "{:?}",
        snapshot_files(&db_a)
    );

    let mut bytes = Vec::new();
    let mut src = snap.snapshot;
    tokio::io::AsyncReadExt::read_to_end(&mut *src, &mut bytes)
        .await
        .unwrap();
    let mut dst = sm_b.begin_receiving_snapshot().await.unwrap();
    for chunk in bytes.chunks(64 * 1024) {
        dst.write_all(chunk).await.unwrap();
    }
    sm_b.install_snapshot(&snap.meta, dst).await.unwrap();

    let b = MetaReader::new(db_b.sm.clone());
    assert_eq!(b.version_count(), 10_000);
    let v = b
        .get_version("example.com/m999", "v1.0.9")
        .unwrap()
        .unwrap();
    assert_eq!(v, rec("example.com/m999", "v1.0.9"));
    assert_eq!(
        b.get_list("example.com/m0")
            .unwrap()
            .unwrap()
            .versions
            .len(),
        10
    );
    assert_eq!(sm_b.applied_state().await.unwrap().0, snap.meta.last_log_id);
    assert_eq!(
        snapshot_files(&db_b).len(),
        1,
        "{:?}",
        snapshot_files(&db_b)
    );
    assert!(!db_b
        .raft_snapshot
        .contains_key(snapshot_key::INSTALLING)
        .unwrap());
}

/// A received snapshot that is not a valid document is refused before anything is written:
/// the old records stay, and it does not become the current snapshot.
#[tokio::test]
async fn an_invalid_snapshot_is_refused_and_leaves_the_state_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, mut sm) = open_store(dir.path()).await;
    apply_cmds(&db, 1, corpus(20));
    let before = build(&mut sm).await.meta;
    let good = {
        let (built, body) = snapshot::write_body(&db.sm, Vec::new()).unwrap();
        assert_eq!(built.versions, 20);
        body
    };
    let cut = &good[..good.len() / 2];
    let wrong_format = br#"{"format":99,"versions":[]}"#;
    let format_late = br#"{"versions":[],"format":1}"#;
    let bad_record = br#"{"format":1,"versions":[{"module":"x"}]}"#;
    for (body, what) in [
        (cut, "truncated"),
        (&wrong_format[..], "unknown format"),
        (&format_late[..], "format not first"),
        (&bad_record[..], "undecodable record"),
        (&b"garbage"[..], "not JSON"),
    ] {
        let mut dst = sm.begin_receiving_snapshot().await.unwrap();
        dst.write_all(body).await.unwrap();
        let meta = SnapshotMeta {
            last_log_id: Some(log_id(5, 1, 500)),
            snapshot_id: "5-500-x".into(),
            ..before.clone()
        };
        assert!(sm.install_snapshot(&meta, dst).await.is_err(), "{what}");
        assert_eq!(MetaReader::new(db.sm.clone()).version_count(), 20, "{what}");
        let current = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, before, "{what}");
        assert_eq!(
            snapshot_files(&db).len(),
            1,
            "{what}: {:?}",
            snapshot_files(&db)
        );
    }
    assert!(matches!(
        snapshot::check(&wrong_format[..]),
        Err(SnapshotError::Format(99))
    ));
    assert!(matches!(
        snapshot::check(&format_late[..]),
        Err(SnapshotError::Malformed(_))
    ));
}

/// A crash in the middle of an install (the mark set, the trees half written) is redone from
/// the recorded snapshot at startup, even though the log was never purged.
#[tokio::test]
async fn an_interrupted_install_is_redone_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let snap = {
        let (db, _, mut sm) = open_store(dir.path()).await;
        apply_cmds(&db, 1, corpus(50));
        let snap = build(&mut sm).await;
        db.raft_snapshot
            .insert(snapshot_key::INSTALLING, &[][..])
            .unwrap();
        db.sm.versions.clear().unwrap();
        db.sm.versions.insert(b"junk@v0", &b"{}"[..]).unwrap();
        db.db.flush().unwrap();
        snap
    };
    let (db, _, mut sm) = open_store(dir.path()).await;
    sm.recover(None).await.unwrap();
    let r = MetaReader::new(db.sm.clone());
    assert_eq!(r.version_count(), 50);
    assert_eq!(r.get_version("junk", "v0").unwrap(), None);
    assert!(!db
        .raft_snapshot
        .contains_key(snapshot_key::INSTALLING)
        .unwrap());
    assert_eq!(sm.applied_state().await.unwrap().0, snap.meta.last_log_id);
}

/// A snapshot stored as a sled value (cairn before snapshot files) is moved into a file the
/// first time it is read, byte for byte.
#[tokio::test]
async fn a_snapshot_stored_in_sled_moves_into_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, mut sm) = open_store(dir.path()).await;
    apply_cmds(&db, 1, corpus(5));
    let (built, body) = snapshot::write_body(&db.sm, Vec::new()).unwrap();
    let meta = SnapshotMeta {
        last_log_id: built.last_applied,
        last_membership: built.membership,
        snapshot_id: "1-5-legacy".into(),
    };
    db.raft_snapshot
        .insert(snapshot_key::META, serde_json::to_vec(&meta).unwrap())
        .unwrap();
    db.raft_snapshot
        .insert(snapshot_key::LEGACY_DATA, body.clone())
        .unwrap();
    let current = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, meta);
    let mut bytes = Vec::new();
    let mut file = current.snapshot;
    tokio::io::AsyncReadExt::read_to_end(&mut *file, &mut bytes)
        .await
        .unwrap();
    assert_eq!(bytes, body);
    assert!(!db
        .raft_snapshot
        .contains_key(snapshot_key::LEGACY_DATA)
        .unwrap());
    assert!(db.raft_snapshot.contains_key(snapshot_key::FILE).unwrap());
}

/// Times building, checking and installing a snapshot of an existing metadata store (not a
/// test: `CAIRN_SNAPSHOT_PROBE=<data-dir>/meta cargo test --release -p cairn-node --lib
/// snapshot_probe -- --ignored --nocapture`, e.g. on a directory kept by `cairn-bench scale`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement on a kept data directory"]
async fn snapshot_probe() {
    let Some(src) = std::env::var_os("CAIRN_SNAPSHOT_PROBE") else {
        return;
    };
    let db = MetaDb::open(std::path::Path::new(&src), 64 << 20)
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("probe.snap");
    let t = std::time::Instant::now();
    let file = std::fs::File::create(&path).unwrap();
    let (built, w) =
        snapshot::write_body(&db.sm, std::io::BufWriter::with_capacity(1 << 20, file)).unwrap();
    let body_ms = t.elapsed().as_millis();
    w.into_inner().unwrap().sync_all().unwrap();
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!(
        "build: {} versions, {} MiB: body {body_ms} ms (under the read lock), +sync {} ms",
        built.versions,
        bytes >> 20,
        t.elapsed().as_millis()
    );
    let t = std::time::Instant::now();
    let file = std::fs::File::open(&path).unwrap();
    snapshot::check(std::io::BufReader::with_capacity(1 << 20, file)).unwrap();
    println!("check: {} ms", t.elapsed().as_millis());
    let dst = MetaDb::open(&out.path().join("meta"), 64 << 20)
        .await
        .unwrap();
    let t = std::time::Instant::now();
    let file = std::fs::File::open(&path).unwrap();
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let n = snapshot::install(&dst.sm, reader, &built.last_applied, &built.membership).unwrap();
    dst.db.flush().unwrap();
    println!("install: {n} versions in {} ms", t.elapsed().as_millis());
}
