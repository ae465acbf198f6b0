//! Tests of the operator policy in the state machine (issue 12): deny rules, purge
//! tombstones and the `/index` feed — apply idempotence and determinism, tombstones refusing a
//! racing fill, index paging, and snapshots.

use std::path::Path;

use openraft::storage::RaftStateMachine;
use openraft::RaftSnapshotBuilder;

use super::db::MetaDb;
use super::flusher::Flusher;
use super::state_machine::StateMachine;
use super::tests::{apply_cmds as apply, conflict};
use super::*;
use crate::store::meta::{DenyRule, MetaCmd, MetaResp, Tombstone, VersionRecord, ZipRef};

async fn open(dir: &Path) -> (MetaDb, StateMachine) {
    let db = MetaDb::open(dir, 8 << 20).await.unwrap();
    let flusher = Flusher::spawn(db.db.clone());
    (db.clone(), StateMachine::new(db, flusher))
}

fn rec(module: &str, version: &str, at: i64, sha: Option<&str>) -> VersionRecord {
    VersionRecord {
        module: module.into(),
        version: version.into(),
        info: format!(r#"{{"Version":"{version}"}}"#).into_bytes(),
        gomod: format!("module {module}\n").into_bytes(),
        mod_h1: "h1:mod=".into(),
        zip: sha.map(|s| ZipRef {
            sha256: s.repeat(64),
            size: 10,
            h1: "h1:zip=".into(),
        }),
        source: "https://proxy.golang.org".into(),
        cached_at_ms: at,
        sumdb_verified: false,
        sumdb_zip_h1: None,
    }
}

fn put(module: &str, version: &str, at: i64) -> MetaCmd {
    MetaCmd::PutVersion(rec(module, version, at, None))
}

fn deny(pattern: &str, version: Option<&str>) -> MetaCmd {
    MetaCmd::Deny(DenyRule {
        pattern: pattern.into(),
        version: version.map(Into::into),
        reason: "compromised".into(),
        by: "alice".into(),
        at_ms: 5,
    })
}

fn purge(module: &str, version: &str) -> MetaCmd {
    MetaCmd::Purge(Tombstone {
        module: module.into(),
        version: version.into(),
        reason: "malware".into(),
        by: "alice".into(),
        at_ms: 6,
        sha256: None,
    })
}

/// Every (module, version, ts) the feed shows, paged `limit` at a time the way a follower
/// pages: the next `since` is the last timestamp plus one microsecond.
fn page_all(reader: &MetaReader, limit: usize) -> Vec<(String, String, i64)> {
    let mut out: Vec<(String, String, i64)> = Vec::new();
    let mut since = i64::MIN;
    loop {
        let page = reader.index_page(since, limit, |_| true).unwrap();
        let Some(last) = page.last() else {
            return out;
        };
        since = last.ts_us + 1;
        for e in page {
            let line = (e.module.clone(), e.version.clone(), e.ts_us);
            assert!(!out.contains(&line), "duplicate {line:?}");
            out.push(line);
        }
    }
}

#[tokio::test]
async fn deny_rules_are_idempotent_validated_and_liftable() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = open(dir.path()).await;
    let r = apply(
        &db,
        1,
        vec![
            deny("example.com/m", Some("v1.0.0")),
            deny("example.com/m", Some("v1.0.0")),
            deny("corp.example.com/*", None),
            deny("bad[", None),
            deny("example.com/m", Some("1.0")),
        ],
    );
    assert_eq!(r[0], MetaResp::Applied);
    assert_eq!(r[1], MetaResp::Unchanged);
    assert_eq!(r[2], MetaResp::Applied);
    assert!(conflict(&r[3]) && conflict(&r[4]), "{r:?}");
    let reader = MetaReader::new(db.sm.clone());
    assert_eq!(reader.deny_rules().unwrap().len(), 2);
    let lift = MetaCmd::LiftDeny {
        pattern: "example.com/m".into(),
        version: Some("v1.0.0".into()),
    };
    let r = apply(&db, 6, vec![lift.clone(), lift]);
    assert_eq!(r, vec![MetaResp::Applied, MetaResp::Unchanged]);
    let left = reader.deny_rules().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].pattern, "corp.example.com/*");
}

#[tokio::test]
async fn purge_tombstones_refuse_fills_until_lifted() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = open(dir.path()).await;
    let v = rec("example.com/m", "v1.0.0", 10, Some("a"));
    apply(&db, 1, vec![MetaCmd::PutVersion(v.clone())]);
    let reader = MetaReader::new(db.sm.clone());
    assert_eq!(reader.version_count(), 1);
    let r = apply(
        &db,
        2,
        vec![
            purge("example.com/m", "v1.0.0"),
            purge("example.com/m", "v1.0.0"),
            purge("example.com/unknown", "v1.0.0"),
            // A fill racing the purge must not resurrect the version.
            MetaCmd::PutVersion(v.clone()),
        ],
    );
    assert_eq!(r[0], MetaResp::Applied);
    assert_eq!(r[1], MetaResp::Unchanged);
    assert!(conflict(&r[2]), "unknown version: {:?}", r[2]);
    assert!(conflict(&r[3]), "tombstoned fill: {:?}", r[3]);
    assert_eq!(reader.get_version("example.com/m", "v1.0.0").unwrap(), None);
    assert_eq!(reader.version_count(), 0);
    let t = reader
        .tombstone("example.com/m", "v1.0.0")
        .unwrap()
        .unwrap();
    assert_eq!(t.sha256.as_deref(), Some("a".repeat(64).as_str()));
    assert_eq!(reader.purge_pending().unwrap(), vec!["a".repeat(64)]);
    assert!(reader
        .index_page(i64::MIN, 10, |_| true)
        .unwrap()
        .is_empty());
    let lift = MetaCmd::LiftPurge {
        module: "example.com/m".into(),
        version: "v1.0.0".into(),
    };
    let r = apply(&db, 6, vec![lift, MetaCmd::PutVersion(v)]);
    assert_eq!(r, vec![MetaResp::Applied, MetaResp::Applied]);
    assert_eq!(reader.version_count(), 1);
    let feed = reader.index_page(i64::MIN, 10, |_| true).unwrap();
    assert_eq!(
        feed.len(),
        1,
        "the refilled version is listed once: {feed:?}"
    );
}

#[tokio::test]
async fn index_pages_in_commit_order_with_monotone_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = open(dir.path()).await;
    // cached_at_ms goes backwards for the third record: its feed timestamp must not.
    let cmds = vec![
        put("a.example/x", "v1.0.0", 100),
        put("b.example/y", "v1.0.0", 100),
        put("c.example/z", "v1.0.0", 50),
        put("a.example/x", "v1.0.0", 100), // idempotent: no second entry
        put("a.example/x", "v1.1.0", 300),
        put("d.example/w", "v0.1.0", 300),
        put("e.example/v", "v0.2.0", 400),
    ];
    apply(&db, 1, cmds);
    let reader = MetaReader::new(db.sm.clone());
    let all = reader.index_page(i64::MIN, 100, |_| true).unwrap();
    let order: Vec<_> = all
        .iter()
        .map(|e| format!("{}@{}", e.module, e.version))
        .collect();
    assert_eq!(
        order,
        [
            "a.example/x@v1.0.0",
            "b.example/y@v1.0.0",
            "c.example/z@v1.0.0",
            "a.example/x@v1.1.0",
            "d.example/w@v0.1.0",
            "e.example/v@v0.2.0"
        ]
    );
    let ts: Vec<i64> = all.iter().map(|e| e.ts_us).collect();
    assert_eq!(ts, [100_000, 100_001, 100_002, 300_000, 300_001, 400_000]);
    for limit in 1..=7 {
        let paged = page_all(&reader, limit);
        assert_eq!(paged.len(), 6, "limit {limit}: {paged:?}");
    }
    assert_eq!(reader.index_page(300_000, 100, |_| true).unwrap().len(), 3);
    assert_eq!(reader.index_page(400_001, 100, |_| true).unwrap().len(), 0);
    let only_a = reader
        .index_page(i64::MIN, 1, |m| m == "a.example/x")
        .unwrap();
    assert_eq!(only_a.len(), 1);
    assert_eq!(only_a[0].module, "a.example/x");
    let page = reader
        .index_page(100_003, 1, |m| m == "a.example/x")
        .unwrap();
    assert_eq!(
        page[0].version, "v1.1.0",
        "filtered entries do not end a page early"
    );
}

#[tokio::test]
async fn policy_and_index_travel_in_snapshots_and_apply_is_deterministic() {
    let (da, dbb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (db_a, mut sm_a) = open(da.path()).await;
    let (db_b, mut sm_b) = open(dbb.path()).await;
    let cmds = vec![
        put("a.example/x", "v1.0.0", 100),
        MetaCmd::PutVersion(rec("a.example/x", "v1.1.0", 200, Some("b"))),
        deny("a.example/*", None),
        purge("a.example/x", "v1.1.0"),
    ];
    apply(&db_a, 1, cmds.clone());
    apply(&db_b, 1, cmds);
    let (ra, rb) = (
        MetaReader::new(db_a.sm.clone()),
        MetaReader::new(db_b.sm.clone()),
    );
    assert_eq!(ra.deny_rules().unwrap(), rb.deny_rules().unwrap());
    assert_eq!(ra.tombstones().unwrap(), rb.tombstones().unwrap());
    assert_eq!(
        ra.index_page(i64::MIN, 10, |_| true).unwrap(),
        rb.index_page(i64::MIN, 10, |_| true).unwrap()
    );
    // A third store with other state gets A's through a snapshot.
    let dc = tempfile::tempdir().unwrap();
    let (db_c, mut sm_c) = open(dc.path()).await;
    apply(&db_c, 1, vec![deny("stale.example/m", None)]);
    let snap = sm_a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    sm_c.install_snapshot(&snap.meta, snap.snapshot)
        .await
        .unwrap();
    let rc = MetaReader::new(db_c.sm.clone());
    assert_eq!(rc.deny_rules().unwrap(), ra.deny_rules().unwrap());
    assert_eq!(rc.tombstones().unwrap(), ra.tombstones().unwrap());
    let feed_a = ra.index_page(i64::MIN, 10, |_| true).unwrap();
    assert_eq!(rc.index_page(i64::MIN, 10, |_| true).unwrap(), feed_a);
    assert_eq!(feed_a.len(), 1);
    // The index continues after the snapshot exactly as on the source.
    apply(&db_a, 5, vec![put("z.example/q", "v1.0.0", 150)]);
    apply(&db_c, 5, vec![put("z.example/q", "v1.0.0", 150)]);
    assert_eq!(
        rc.index_page(i64::MIN, 10, |_| true).unwrap(),
        ra.index_page(i64::MIN, 10, |_| true).unwrap()
    );
    assert!(rc.purge_pending().unwrap().contains(&"b".repeat(64)));
    let _ = (&mut sm_b, &mut sm_a);
}

#[tokio::test]
async fn quarantined_versions_leave_the_feed_and_come_back_once_refilled() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = open(dir.path()).await;
    apply(
        &db,
        1,
        vec![
            put("example.com/a", "v1.0.0", 10),
            put("example.com/b", "v1.0.0", 11),
        ],
    );
    let reader = MetaReader::new(db.sm.clone());
    let quarantine = MetaCmd::Quarantine {
        module: "example.com/a".into(),
        version: "v1.0.0".into(),
        reason: "hash mismatch".into(),
    };
    apply(&db, 3, vec![quarantine]);
    let feed = reader.index_page(i64::MIN, 10, |_| true).unwrap();
    let names: Vec<&str> = feed.iter().map(|e| e.module.as_str()).collect();
    assert_eq!(names, ["example.com/b"], "not held, not listed");
    apply(&db, 4, vec![put("example.com/a", "v1.0.0", 12)]);
    let feed = reader.index_page(i64::MIN, 10, |_| true).unwrap();
    let names: Vec<&str> = feed.iter().map(|e| e.module.as_str()).collect();
    assert_eq!(
        names,
        ["example.com/b", "example.com/a"],
        "once, at its refill"
    );
}

#[tokio::test]
async fn backfill_lists_unindexed_versions_once_and_skips_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = open(dir.path()).await;
    apply(&db, 1, vec![put("example.com/new", "v1.0.0", 50)]);
    // Records from before the feed existed: in the state, not in the index.
    for (m, v, at) in [
        ("example.com/old", "v1.0.0", 10),
        ("example.com/old", "v1.1.0", 20),
    ] {
        let r = rec(m, v, at, None);
        let k = super::db::version_key(m, v);
        db.sm
            .versions
            .insert(k, serde_json::to_vec(&r).unwrap())
            .unwrap();
    }
    let reader = MetaReader::new(db.sm.clone());
    let left = reader.unindexed(10).unwrap();
    assert_eq!(
        left,
        [
            ("example.com/old".to_string(), "v1.0.0".to_string()),
            ("example.com/old".to_string(), "v1.1.0".to_string()),
        ]
    );
    assert_eq!(reader.unindexed(1).unwrap().len(), 1, "batches are bounded");
    let mut versions = left.clone();
    versions.push(("example.com/gone".into(), "v1.0.0".into()));
    versions.push(("example.com/new".into(), "v1.0.0".into()));
    let cmd = MetaCmd::IndexBackfill { versions };
    let r = apply(&db, 2, vec![cmd.clone(), cmd]);
    assert_eq!(r, [MetaResp::Applied, MetaResp::Unchanged]);
    assert!(reader.unindexed(10).unwrap().is_empty());
    let feed = reader.index_page(i64::MIN, 10, |_| true).unwrap();
    let order: Vec<String> = feed
        .iter()
        .map(|e| format!("{}@{}", e.module, e.version))
        .collect();
    assert_eq!(
        order,
        [
            "example.com/new@v1.0.0",
            "example.com/old@v1.0.0",
            "example.com/old@v1.1.0"
        ],
        "appended after what was listed, each once"
    );
    assert!(feed.windows(2).all(|w| w[0].ts_us < w[1].ts_us), "{feed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_backfills_the_feed_for_every_node() {
    use crate::admin::testing::{self, start_cluster, wait_for_leader, wait_until};
    use crate::policy::backfill::{step, Step};

    let nodes = start_cluster(3, &testing::settings()).await;
    let leader = wait_for_leader(&nodes).await;
    let leader = nodes.iter().find(|n| n.id == leader).unwrap();
    let follower = nodes.iter().find(|n| n.id != leader.id).unwrap();
    let r = leader
        .consensus
        .propose(put("example.com/new", "v1.0.0", 50))
        .await;
    assert_eq!(r.unwrap(), MetaResp::Applied);
    // The same pre-feed records on every node (they were replicated before the upgrade).
    for n in &nodes {
        for v in ["v1.0.0", "v1.1.0"] {
            let r = rec("example.com/old", v, 10, None);
            let k = super::db::version_key("example.com/old", v);
            let trees = n.consensus.reader();
            trees
                .trees()
                .versions
                .insert(k, serde_json::to_vec(&r).unwrap())
                .unwrap();
        }
    }
    wait_until("every node to apply the first version", || {
        nodes
            .iter()
            .all(|n| n.consensus.reader().unindexed(10).unwrap().len() == 2)
    })
    .await;
    assert_eq!(step(&follower.consensus).await.unwrap(), Step::Waiting);
    assert_eq!(step(&leader.consensus).await.unwrap(), Step::Proposed(2));
    assert_eq!(step(&leader.consensus).await.unwrap(), Step::Done);
    let feed = |n: &testing::TestNode| {
        n.consensus
            .reader()
            .index_page(i64::MIN, 10, |_| true)
            .unwrap()
    };
    wait_until("every node to list all three versions", || {
        nodes.iter().all(|n| feed(n).len() == 3)
    })
    .await;
    let first = feed(&nodes[0]);
    assert!(
        nodes.iter().all(|n| feed(n) == first),
        "the same feed everywhere"
    );
    assert_eq!(step(&follower.consensus).await.unwrap(), Step::Done);
}
