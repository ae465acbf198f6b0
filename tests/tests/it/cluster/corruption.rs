//! A blob corrupted on one node's disk is never served as a complete wrong body; the scrub (or a
//! verifying read) quarantines it and the repair worker refetches it from a peer (the upstream is
//! dead by then).

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use cairn_tests::cluster::{ClusterConfig, TestCluster};
use cairn_tests::corpus::m;
use cairn_tests::h1::{sha256_hex, version_path};
use cairn_tests::wait::{patience, wait_until};

use super::{corpus, fixture, start, warm};

/// What one GET of the corrupted zip got.
#[derive(Debug, Default)]
struct Outcomes {
    correct: usize,
    aborted: usize,
    statuses: Vec<u16>,
    wrong: Vec<String>,
}

/// Flips 64 bytes in the middle of `path`, in place (same inode, same length).
fn corrupt_in_place(path: &std::path::Path) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let len = f.metadata().unwrap().len();
    let at = len / 2;
    let mut buf = vec![0u8; 64.min(len as usize)];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut buf).unwrap();
    for b in &mut buf {
        *b ^= 0x5a;
    }
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&buf).unwrap();
    f.sync_all().unwrap();
}

/// Waits until node `id` has quarantined `sha256` (quarantine file or counter above `before`)
/// and holds a good copy under its name again; `on_poll` runs first on every poll.
async fn wait_detected_and_repaired<F, Fut>(
    cl: &TestCluster,
    id: u64,
    sha256: &str,
    before: f64,
    mut on_poll: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let path = cl.blob_path(id, sha256);
    let detected = AtomicBool::new(false);
    let r = wait_until(
        format!("node {id} to quarantine its corrupt copy of {sha256} and repair it from a peer"),
        patience(3.0),
        || {
            let polled = on_poll();
            let (path, detected) = (&path, &detected);
            async move {
                polled.await;
                if !detected.load(Ordering::SeqCst) {
                    let metric = cl
                        .metrics(id)
                        .await
                        .map(|m| m.sum("cairn_blob_quarantined_total", &[]))
                        .unwrap_or(before);
                    if metric > before || !cl.quarantined(id).is_empty() {
                        detected.store(true, Ordering::SeqCst);
                    }
                }
                let repaired = std::fs::read(path).is_ok_and(|b| sha256_hex(&b) == sha256);
                detected.load(Ordering::SeqCst) && repaired
            }
        },
    )
    .await;
    r.map_err(|e| {
        e.context(format!(
            "quarantine of node {id}: {:?}; copy hashes to its name: {}",
            cl.quarantined(id),
            std::fs::read(&path).is_ok_and(|b| sha256_hex(&b) == sha256)
        ))
    })
}

async fn quarantined_total(cl: &TestCluster, id: u64) -> f64 {
    cl.metrics(id)
        .await
        .unwrap()
        .sum("cairn_blob_quarantined_total", &[])
        + 0.0 // an empty sum is -0.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_corrupted_blob_is_never_served_and_is_repaired_from_a_peer() {
    let fixture = fixture().await;
    let config = ClusterConfig::fast().set("cluster", "scrub_interval_secs", 2);
    let cl = start(3, &fixture.url(), &config).await;
    let (module, version) = (m::MANY, "v1.0.0");
    let (scrub_module, scrub_version) = (m::MODV2, "v2.1.0");
    let sha = corpus().entry(module, version).zip_sha256.clone();
    let scrub_sha = corpus()
        .entry(scrub_module, scrub_version)
        .zip_sha256
        .clone();
    let shas = warm(
        &cl.url(1),
        &[
            (module.to_string(), version.to_string()),
            (scrub_module.to_string(), scrub_version.to_string()),
        ],
    )
    .await;
    cl.wait_blobs_everywhere(&shas).await.unwrap();
    fixture.kill().await; // any repair must come from a peer

    // Node 2: its copy of the MANY zip is corrupted and then asked for over and over.
    // Node 3: its copy of another zip is corrupted and never asked for; only the scrub finds it.
    let (victim, scrubbed) = (2, 3);
    let before = quarantined_total(&cl, victim).await;
    let scrub_before = quarantined_total(&cl, scrubbed).await;
    corrupt_in_place(&cl.blob_path(victim, &sha));
    corrupt_in_place(&cl.blob_path(scrubbed, &scrub_sha));
    assert_ne!(
        sha256_hex(&std::fs::read(cl.blob_path(victim, &sha)).unwrap()),
        sha
    );

    let url = format!("{}{}", cl.url(victim), version_path(module, version, "zip"));
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(patience(1.0))
        .build()
        .unwrap();
    let outcomes = Mutex::new(Outcomes::default());
    let get_once = || async {
        let r = match client.get(&url).send().await {
            Ok(r) => r,
            Err(_) => {
                outcomes.lock().unwrap().aborted += 1;
                return;
            }
        };
        let status = r.status().as_u16();
        let body = r.bytes().await;
        let mut o = outcomes.lock().unwrap();
        match (status, body) {
            (200, Ok(b)) if sha256_hex(&b) == sha => o.correct += 1,
            (200, Ok(b)) => o.wrong.push(format!(
                "200 with a complete {}-byte body, sha256 {}",
                b.len(),
                sha256_hex(&b)
            )),
            (200, Err(_)) => o.aborted += 1,
            (s, _) => o.statuses.push(s),
        }
    };
    let waited = wait_detected_and_repaired(&cl, victim, &sha, before, get_once).await;
    if let Err(e) = waited {
        panic!("{e:#}\nGETs so far: {:?}", outcomes.lock().unwrap());
    }
    get_once().await;
    let o = outcomes.into_inner().unwrap();
    let m = cl.metrics(victim).await.unwrap();
    println!(
        "GETs of the corrupted zip from node {victim}: {} correct, {} aborted, statuses {:?}; \
         quarantine {:?}; cairn_blob_quarantined_total {} -> {}; peer fetches:\n{}",
        o.correct,
        o.aborted,
        o.statuses,
        cl.quarantined(victim),
        before,
        m.sum("cairn_blob_quarantined_total", &[]),
        m.dump("cairn_peer_fetches_total")
    );
    assert!(
        o.wrong.is_empty(),
        "node {victim} served the corrupted zip as a complete body: {:?}",
        o.wrong
    );
    assert!(o.correct >= 1, "the repaired zip was never served: {o:?}");

    wait_detected_and_repaired(&cl, scrubbed, &scrub_sha, scrub_before, || async {})
        .await
        .unwrap();
    println!(
        "node {scrubbed}: the scrub quarantined {:?} and the copy was repaired from a peer",
        cl.quarantined(scrubbed)
    );
    let d = cl
        .node(scrubbed)
        .get(&version_path(scrub_module, scrub_version, "zip"))
        .await
        .unwrap();
    assert_eq!(d.status, 200);
    assert_eq!(
        sha256_hex(&d.body),
        scrub_sha,
        "node {scrubbed} after repair"
    );
}
