//! Backup and restore (issue 12): a 3-node cluster is backed up with `cairn backup` while the go
//! command downloads in a loop; an incremental second backup copies only the new blobs; damaged
//! copies of the backup are caught by `cairn backup verify` and refused by `cairn restore`; the
//! cluster and its upstream are destroyed, and the backup restored into a new 1-node and a new
//! 3-node cluster (node 1 restored, nodes 2 and 3 started empty and added), from which the go
//! command gets every backed-up version with the corpus's hashes, upstream dead.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_tests::cluster::{run_cli, CliOutput, ClusterConfig, TestCluster};
use cairn_tests::corpus::generated_versions;
use cairn_tests::gocmd::{self, Go, GoEnv};
use cairn_tests::wait::{patience, wait_for};

use crate::cluster::{args, corpus, expected, fixture, mv, standard_versions, start, warm};
use crate::common::{assert_maps_eq, sums};

/// Offline commands still need some `--node`; nothing listens here.
fn nowhere() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9))
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `module@version` of every blob the manifest in `dir` says the backup holds, with its sha256.
fn backed_up(dir: &Path) -> BTreeMap<String, String> {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("backup.json")).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for b in m["blobs"].as_array().unwrap() {
        if b["included"].as_bool() == Some(true) {
            for v in b["versions"].as_array().unwrap() {
                out.insert(
                    v.as_str().unwrap().to_string(),
                    b["sha256"].as_str().unwrap().into(),
                );
            }
        }
    }
    out
}

/// (module, version) pairs of `mvs` (`module@version`).
fn pairs(mvs: &BTreeSet<String>) -> Vec<(String, String)> {
    mvs.iter()
        .map(|mv| {
            let (m, v) = mv.split_once('@').unwrap();
            (m.to_string(), v.to_string())
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Runs `cairn backup --json --out dir` against node `id`; returns the output and its JSON.
async fn backup(cl: &TestCluster, id: u64, dir: &Path) -> (CliOutput, serde_json::Value) {
    let out = cl
        .cli_at(id, &["--json", "backup", "--out", &s(dir)])
        .await
        .unwrap()
        .ok()
        .unwrap();
    let json = out.json().unwrap();
    (out, json)
}

/// `go mod download` of `versions` through `url` with a fresh module cache, checked against
/// the corpus.
async fn download_all(go: &Go, url: &str, versions: &[(String, String)], what: &str) {
    let env = GoEnv::new(go, url).unwrap();
    let got = env.mod_download_ok(&args(versions)).await.unwrap();
    assert_maps_eq(what, &expected(versions), &sums(&got));
}

/// Restores `backup` into a fresh data directory for node 1 listening at `grpc`.
async fn restore_into(backup: PathBuf, data: PathBuf, grpc: SocketAddr) -> anyhow::Result<()> {
    let args = [
        "restore",
        "--from",
        &s(&backup),
        "--data-dir",
        &s(&data),
        "--node-id",
        "1",
        "--cluster-addr",
        &grpc.to_string(),
    ];
    let out = run_cli(nowhere(), &args).await?.ok()?;
    println!("{}", out.stdout.trim());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_then_restore_into_new_one_and_three_node_clusters() {
    let Some(go) = gocmd::go("backup_under_load_then_restore") else {
        return;
    };
    let fixture = fixture().await;
    let config = ClusterConfig::fast().set("audit", "target", "\"stdout\"");
    let cl = start(3, &fixture.url(), &config).await;
    let base = standard_versions(false);
    download_all(&go, &cl.url(1), &base, "go mod download before the backup").await;

    // A download loop through node 2: new versions (Raft writes) in chunks, then hits.
    let generated = generated_versions();
    let chunks: Vec<Vec<(String, String)>> =
        generated[..40].chunks(10).map(<[_]>::to_vec).collect();
    let first_chunk = chunks[0].clone();
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let looper = {
        let (go, url, stop, rounds) = (go.clone(), cl.url(2), stop.clone(), rounds.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Acquire) {
                download_all(&go, &url, &chunks[i % chunks.len()], "download loop").await;
                i += 1;
                rounds.store(i as u64, Ordering::Release);
            }
        })
    };
    while rounds.load(Ordering::Acquire) == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("backup");
    let before = rounds.load(Ordering::Acquire);
    let (first, j1) = backup(&cl, 3, &out_dir).await;
    let during = rounds.load(Ordering::Acquire) - before;
    // The round in flight while the backup ran must finish too: serving never paused (a
    // failed download panics the loop, which the `await` below reports).
    let deadline = Instant::now() + Duration::from_secs(60);
    while rounds.load(Ordering::Acquire) <= before && !looper.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the download loop stalled after the backup"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Release);
    looper.await.unwrap();
    println!("first backup (loop rounds finished meanwhile: {during}): {j1}");
    // The backup is an audited operator action on the node that served it (the trail is
    // written by a background thread: wait for the line).
    let node3 = cl.node(3);
    let audited = wait_for("the backup's audit line", patience(10.0), || async {
        let lines: Vec<serde_json::Value> = node3
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["type"] == "admin" && v["action"] == "backup")
            .collect();
        (!lines.is_empty()).then_some(lines)
    })
    .await
    .unwrap();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0]["result"], "ok", "{audited:?}");
    assert_ne!(audited[0]["identity"], "anonymous", "{audited:?}");
    if cl.leader().await != Some(3) {
        let log = cl.node(3).log();
        assert!(
            log.contains("backup: applied up to the leader's index"),
            "the follower did not catch up with the leader before its backup:\n{}",
            cl.node(3).log_tail(40)
        );
    }
    let progress: Vec<&str> = first.stderr.lines().collect();
    assert!(
        progress
            .iter()
            .any(|l| l.starts_with("backup: state at log index "))
            && progress
                .iter()
                .any(|l| l.contains(" blobs, ") && l.contains("done in")),
        "non-terminal progress lines expected on stderr:\n{}",
        first.stderr
    );
    assert!(
        !first.stderr.contains('\r'),
        "no redrawn line when not on a terminal"
    );
    let held1 = backed_up(&out_dir);
    // Everything downloaded before the backup started is in it.
    for (m, v) in base.iter().chain(&first_chunk) {
        assert!(
            held1.contains_key(&mv(m, v)),
            "{m}@{v} missing from the first backup"
        );
    }
    assert_eq!(j1["blobs_copied"], j1["blobs_included"], "{j1}");

    // Incremental: three versions nobody had, then a second run copies exactly the new blobs
    // and leaves the files of the first run alone (same inode: not rewritten or renamed over).
    let inodes = |held: &BTreeMap<String, String>| -> BTreeMap<String, u64> {
        held.values()
            .map(|sha| {
                let p = out_dir.join("blobs").join(&sha[..2]).join(sha);
                (sha.clone(), std::fs::metadata(p).unwrap().ino())
            })
            .collect()
    };
    let first_inodes = inodes(&held1);
    let extra = generated[40..43].to_vec();
    warm(&cl.url(1), &extra).await;
    let (_, j2) = backup(&cl, 1, &out_dir).await;
    println!("second backup: {j2}");
    let included = |j: &serde_json::Value| j["blobs_included"].as_u64().unwrap();
    assert_eq!(j2["blobs_present"].as_u64().unwrap(), included(&j1), "{j2}");
    assert_eq!(
        j2["blobs_copied"].as_u64().unwrap(),
        included(&j2) - included(&j1),
        "{j2}"
    );
    assert!(j2["blobs_copied"].as_u64().unwrap() >= 3, "{j2}");
    let held = backed_up(&out_dir);
    for (m, v) in &extra {
        assert!(
            held.contains_key(&mv(m, v)),
            "{m}@{v} missing from the second backup"
        );
    }
    let second_inodes = inodes(&held);
    for (sha, ino) in &first_inodes {
        assert_eq!(
            second_inodes.get(sha),
            Some(ino),
            "blob {sha} was copied again"
        );
    }
    let verify = run_cli(nowhere(), &["backup", "verify", &s(&out_dir)])
        .await
        .unwrap();
    let verify = verify.ok().unwrap();
    assert!(verify.stdout.contains("0 problem(s)"), "{verify}");

    // The same backup as one file (`--out FILE.zip`): it verifies clean, a flipped byte in it
    // is caught by verify and restore, and the 1-node cluster below is restored from it.
    let zip = dir.path().join("backup.zip");
    let (_, jz) = backup(&cl, 2, &zip).await;
    assert_eq!(jz["blobs_copied"], jz["blobs_included"], "{jz}");
    assert!(zip.is_file() && !dir.path().join("backup.zip.partial").exists());
    let verify = run_cli(nowhere(), &["backup", "verify", &s(&zip)])
        .await
        .unwrap();
    assert!(verify.ok().unwrap().stdout.contains("0 problem(s)"));
    let bad_zip = dir.path().join("damaged.zip");
    let mut bytes = std::fs::read(&zip).unwrap();
    let sha = held.values().next().unwrap();
    let blob = std::fs::read(out_dir.join("blobs").join(&sha[..2]).join(sha)).unwrap();
    let at = bytes
        .windows(blob.len())
        .position(|w| w == blob.as_slice())
        .unwrap();
    bytes[at + blob.len() / 2] ^= 1;
    std::fs::write(&bad_zip, bytes).unwrap();
    let v = run_cli(nowhere(), &["backup", "verify", &s(&bad_zip)])
        .await
        .unwrap();
    assert_ne!(v.code, Some(0), "{v}");
    assert!(
        v.stderr
            .contains(&format!("blobs/{}/{sha}: damaged", &sha[..2])),
        "{v}"
    );
    let target = dir.path().join("restored-from-damaged-zip");
    let args = ["restore", "--from", &s(&bad_zip), "--data-dir", &s(&target)];
    let r = run_cli(nowhere(), &args).await.unwrap();
    assert_ne!(r.code, Some(0), "{r}");
    assert!(!target.exists(), "restore wrote {}", target.display());

    // A refetchable blob that no live node holds any more (lost on every disk; the upstream is
    // dead, so nothing refills it) is left out with a warning instead of failing the backup.
    fixture.kill().await;
    let lost = held[&mv(&extra[0].0, &extra[0].1)].clone();
    for id in [1, 2, 3] {
        std::fs::remove_file(cl.blob_path(id, &lost)).unwrap();
    }
    let lost_dir = dir.path().join("backup-lost-blob");
    let (third, j3) = backup(&cl, 2, &lost_dir).await;
    assert_eq!(j3["blobs_unavailable"], 1, "{j3}");
    assert!(
        third
            .stderr
            .contains(&format!("no live node holds blob {lost}")),
        "{third}"
    );
    assert!(!backed_up(&lost_dir).values().any(|sha| *sha == lost));
    let verify = run_cli(nowhere(), &["backup", "verify", &s(&lost_dir)])
        .await
        .unwrap();
    assert!(verify.ok().unwrap().stdout.contains("0 problem(s)"));

    // `--prune` on a re-run deletes blob files the backup does not include (a stray blob, a
    // temp file of an interrupted run) and nothing else.
    let stray = "ff".repeat(32);
    let shard = lost_dir.join("blobs").join("ff");
    std::fs::create_dir_all(&shard).unwrap();
    std::fs::write(shard.join(&stray), b"stray").unwrap();
    std::fs::write(shard.join(format!(".{stray}.tmp00000001")), b"half").unwrap();
    let pruned = cl
        .cli_at(2, &["--json", "backup", "--prune", "--out", &s(&lost_dir)])
        .await
        .unwrap()
        .ok()
        .unwrap();
    let j4 = pruned.json().unwrap();
    assert_eq!(j4["blobs_pruned"], 2, "{j4}");
    assert_eq!(j4["blobs_present"], j3["blobs_copied"], "{j4}");
    assert!(!shard.exists(), "the emptied shard is removed");
    let verify = run_cli(nowhere(), &["backup", "verify", &s(&lost_dir)])
        .await
        .unwrap();
    assert!(verify.ok().unwrap().stdout.contains("0 problem(s)"));

    // `--state-only`: the state and a manifest listing every blob, none included.
    let state_dir = dir.path().join("backup-state-only");
    let only = cl
        .cli_at(
            1,
            &["--json", "backup", "--state-only", "--out", &s(&state_dir)],
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    let j5 = only.json().unwrap();
    assert_eq!(
        (j5["mode"].as_str(), j5["blobs_included"].as_u64()),
        (Some("state-only"), Some(0)),
        "{j5}"
    );
    assert!(j5["blobs_total"].as_u64().unwrap() >= included(&j2), "{j5}");
    let verify = run_cli(nowhere(), &["backup", "verify", &s(&state_dir)])
        .await
        .unwrap();
    assert!(verify.ok().unwrap().stdout.contains("0 problem(s)"));

    // The cluster and its upstream are gone.
    drop(cl);

    check_damage_is_caught(&out_dir, dir.path()).await;

    let versions = pairs(&held.keys().cloned().collect());
    let shas: BTreeSet<String> = held.values().cloned().collect();
    assert_eq!(
        shas,
        versions
            .iter()
            .map(|(m, v)| corpus().entry(m, v).zip_sha256.clone())
            .collect::<BTreeSet<String>>(),
        "the manifest's sha256s are the corpus zips'"
    );

    let backup_file = zip.clone();
    let one = TestCluster::start_prepared(&fixture.url(), &config, move |data, grpc| {
        restore_into(backup_file, data, grpc)
    })
    .await
    .unwrap();
    assert_members(&one, &[1]).await;
    download_all(
        &go,
        &one.url(1),
        &versions,
        "1-node restored cluster, upstream dead",
    )
    .await;
    drop(one);

    let backup_dir = out_dir.clone();
    let mut three = TestCluster::start_prepared(&fixture.url(), &config, move |data, grpc| {
        restore_into(backup_dir, data, grpc)
    })
    .await
    .unwrap();
    for id in [2, 3] {
        three.start_joiner(id).await.unwrap();
        let addr = three.grpc_addr(id).to_string();
        three
            .cli_at(1, &["members", "add", &id.to_string(), &addr])
            .await
            .unwrap()
            .ok()
            .unwrap();
    }
    assert_members(&three, &[1, 2, 3]).await;
    three.wait_blobs_everywhere(&shas).await.unwrap();
    for id in [1, 2, 3] {
        let what = format!("node {id} of the 3-node restored cluster, upstream dead");
        download_all(&go, &three.url(id), &versions, &what).await;
    }
}

/// The restored cluster's membership is its own: exactly `ids`, at the new cluster's
/// addresses (none of the destroyed cluster's).
async fn assert_members(cl: &TestCluster, ids: &[u64]) {
    let out = cl
        .cli_at(1, &["--json", "members", "list"])
        .await
        .unwrap()
        .ok()
        .unwrap();
    let j = out.json().unwrap();
    let got: BTreeMap<u64, String> = j["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_u64().unwrap(),
                m["addr"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeMap<u64, String> = ids
        .iter()
        .map(|id| (*id, cl.grpc_addr(*id).to_string()))
        .collect();
    assert_eq!(got, want, "membership of the restored cluster: {j}");
}

/// Damages a copy of a backup directory.
type Damage<'a> = Box<dyn Fn(&Path) + 'a>;

/// Damaged copies of the backup in `dir`: `backup verify` exits non-zero naming the problem,
/// `restore` refuses and writes nothing.
async fn check_damage_is_caught(dir: &Path, scratch: &Path) {
    let held = backed_up(dir);
    let mut blobs = held.values();
    let (flip, gone) = (blobs.next().unwrap().clone(), blobs.next().unwrap().clone());
    let blob = |d: &Path, sha: &str| d.join("blobs").join(&sha[..2]).join(sha);
    let cases: [(&str, Damage<'_>, String); 3] = [
        (
            "flipped",
            Box::new(|d: &Path| {
                let p = blob(d, &flip);
                let mut bytes = std::fs::read(&p).unwrap();
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0x01;
                std::fs::write(&p, bytes).unwrap();
            }),
            format!("blobs/{}/{flip}: content hashes to", &flip[..2]),
        ),
        (
            "truncated",
            Box::new(|d: &Path| {
                let p = d.join("state.json");
                let len = std::fs::metadata(&p).unwrap().len();
                let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
                f.set_len(len / 2).unwrap();
            }),
            "state.json: ".to_string(),
        ),
        (
            "deleted",
            Box::new(|d: &Path| std::fs::remove_file(blob(d, &gone)).unwrap()),
            format!("blobs/{}/{gone}: missing", &gone[..2]),
        ),
    ];
    for (name, damage, expect) in cases {
        let copy = scratch.join(format!("damaged-{name}"));
        copy_dir(dir, &copy);
        damage(&copy);
        let v = run_cli(nowhere(), &["backup", "verify", &s(&copy)])
            .await
            .unwrap();
        assert_ne!(v.code, Some(0), "{name}: verify must fail\n{v}");
        assert!(
            v.stdout.contains(&expect),
            "{name}: expected {expect:?} in\n{v}"
        );
        assert!(
            v.stdout.contains("1 problem(s)"),
            "{name}: one problem\n{v}"
        );
        let target = scratch.join(format!("restored-{name}"));
        let r = run_cli(
            nowhere(),
            &["restore", "--from", &s(&copy), "--data-dir", &s(&target)],
        )
        .await
        .unwrap();
        assert_ne!(r.code, Some(0), "{name}: restore must refuse\n{r}");
        assert!(
            r.stderr.contains("damaged") && r.stderr.contains(&expect),
            "{name}:\n{r}"
        );
        assert!(
            !target.exists(),
            "{name}: restore wrote {}",
            target.display()
        );
    }
}
