//! Issue 12, bounded disk: a node with a small `disk.blob_budget_bytes` receives more modules
//! than fit. Usage is brought back under the high watermark by evicting least recently served
//! blobs; evicted versions still download with identical hashes through the go command
//! (refilled from the upstream, or from a peer in a cluster); pinned versions are never
//! evicted; at flood the node serves hits, passes misses through uncached, says
//! `degraded: disk full` on `/readyz`, and recovers by itself once room returns (here: `cairn
//! unpin` lets the worker evict).

use std::collections::BTreeMap;
use std::path::PathBuf;

use cairn_tests::cluster::{run_cli, ClusterConfig};
use cairn_tests::corpus::{generated_versions, Corpus, Entry};
use cairn_tests::fixture::Fixture;
use cairn_tests::gocmd::{go, GoEnv};
use cairn_tests::h1::{sha256_hex, version_path};
use cairn_tests::node::CairnNode;
use cairn_tests::wait::{patience, wait_until};

use crate::cluster::{corpus, fixture};
use crate::common::{assert_maps_eq, get, start_node, sums, FAST_UPSTREAM};

fn entry<'a>(c: &'a Corpus, module: &str, version: &str) -> &'a Entry {
    c.entries
        .iter()
        .find(|e| e.module == module && e.version == version)
        .unwrap_or_else(|| panic!("{module}@{version} not in the corpus"))
}

fn mvs(list: &[(String, String)]) -> Vec<String> {
    list.iter().map(|(m, v)| format!("{m}@{v}")).collect()
}

fn expected(c: &Corpus, list: &[(String, String)]) -> BTreeMap<String, (String, String)> {
    list.iter()
        .map(|(m, v)| {
            let e = entry(c, m, v);
            (format!("{m}@{v}"), (e.zip_h1.clone(), e.mod_h1.clone()))
        })
        .collect()
}

fn blob_path(node: &CairnNode, sha256: &str) -> PathBuf {
    node.data_dir()
        .join("blobs")
        .join(&sha256[..2])
        .join(sha256)
}

async fn metric(node: &CairnNode, name: &str, filter: &[(&str, &str)]) -> f64 {
    node.metrics()
        .await
        .map(|m| m.sum(name, filter))
        .unwrap_or(-1.0)
}

/// `[disk]` with a budget and fast checks (no reserve: the test filesystem decides nothing).
fn disk_config(budget: u64, low: &str, high: &str, flood: &str) -> String {
    format!(
        "{FAST_UPSTREAM}[disk]\nblob_budget_bytes = {budget}\nlow_watermark = \"{low}\"\nhigh_watermark = \"{high}\"\nflood_watermark = \"{flood}\"\ncheck_interval_secs = 1\nmin_idle_secs = 0\nreserved_bytes = 0\nfilesystem_watermarks = false\n"
    )
}

async fn cli(node: &CairnNode, args: &[&str]) -> String {
    let out = run_cli(node.addrs().cluster, args).await.unwrap();
    out.ok().unwrap().stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_evicts_lru_keeps_pins_and_refills_identically() {
    let Some(go) = go("budget_evicts_lru_keeps_pins_and_refills_identically") else {
        return;
    };
    let c = corpus();
    let fixture: Fixture = fixture().await;
    let all: Vec<(String, String)> = generated_versions().into_iter().take(36).collect();
    let total: u64 = all.iter().map(|(m, v)| entry(c, m, v).zip_len).sum();
    let budget = total / 2;
    let node = start_node(&fixture.url(), &disk_config(budget, "40%", "60%", "95%")).await;
    let pinned_module = &all[0].0;
    let out = cli(&node, &["pin", pinned_module]).await;
    assert!(out.contains("pinned"), "{out}");
    let listed = cli(&node, &["--json", "pin", "list"]).await;
    assert!(listed.contains(pinned_module.as_str()), "{listed}");

    // Fill in batches, so the worker runs between them (it is also woken at the high mark).
    let env = GoEnv::new(&go, &node.url()).unwrap();
    let mut got = Vec::new();
    for batch in all.chunks(6) {
        got.extend(env.mod_download_ok(&mvs(batch)).await.unwrap());
    }
    assert_maps_eq("first download", &expected(c, &all), &sums(&got));
    // The zips went through the hot-blob cache (issue 13): an evicted one must still be
    // refilled below, not answered from memory.
    assert!(
        metric(&node, "cairn_blob_hot_fills_total", &[]).await > 0.0,
        "no zip entered the hot-blob cache"
    );

    let high = budget * 60 / 100;
    wait_until(
        format!("blob store under the high watermark ({high} bytes)"),
        patience(2.0),
        || async {
            node.metrics()
                .await
                .is_ok_and(|m| m.sum("cairn_blob_bytes", &[]) < high as f64)
        },
    )
    .await
    .unwrap();
    let evicted = metric(&node, "cairn_disk_evictions_total", &[]).await;
    assert!(evicted > 0.0, "nothing was evicted");
    assert!(metric(&node, "cairn_disk_evicted_bytes_total", &[]).await > 0.0);
    // The pinned module's versions are all still here.
    for (m, v) in all.iter().filter(|(m, _)| m == pinned_module) {
        let sha = &entry(c, m, v).zip_sha256;
        assert!(
            blob_path(&node, sha).is_file(),
            "pinned {m}@{v} was evicted"
        );
    }
    // Which versions are gone now; they must come back from the upstream, byte-identical.
    let gone: Vec<&(String, String)> = all
        .iter()
        .filter(|(m, v)| !blob_path(&node, &entry(c, m, v).zip_sha256).is_file())
        .collect();
    assert!(!gone.is_empty());
    let (gm, gv) = gone[0];
    let zip_path = version_path(gm, gv, "zip");
    let before = fixture.count(&zip_path);
    let fresh = GoEnv::new(&go, &node.url()).unwrap();
    let again = fresh.mod_download_ok(&mvs(&all)).await.unwrap();
    assert_maps_eq("after eviction", &expected(c, &all), &sums(&again));
    assert!(
        fixture.count(&zip_path) > before,
        "the evicted zip of {gm}@{gv} was not refilled from the upstream"
    );
    let m = node.metrics().await.unwrap();
    assert!(
        m.sum("cairn_disk_refills_total", &[("from", "upstream")]) > 0.0,
        "{}",
        m.dump("cairn_disk")
    );
    // A direct GET of an evicted zip answers its exact bytes too.
    let r = get(&node, &zip_path).await;
    assert_eq!(r.status, 200);
    assert_eq!(sha256_hex(&r.body), entry(c, gm, gv).zip_sha256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_serves_hits_passes_misses_through_and_recovers() {
    let Some(go) = go("flood_serves_hits_passes_misses_through_and_recovers") else {
        return;
    };
    let c = corpus();
    let fixture: Fixture = fixture().await;
    let all: Vec<(String, String)> = generated_versions().into_iter().skip(60).take(12).collect();
    let avg = all.iter().map(|(m, v)| entry(c, m, v).zip_len).sum::<u64>() / all.len() as u64;
    let budget = avg * 4;
    // The generated zips are all about `avg` bytes: two of them are 50 % of the budget, so the
    // high watermark sits above that. At exactly 50 % the refill after recovery landed on the
    // high mark and started an eviction pass of its own (see the issue 12 note).
    let node = start_node(&fixture.url(), &disk_config(budget, "30%", "55%", "70%")).await;
    cli(&node, &["pin", "*"]).await;

    // Fill one version at a time until the node floods (pins keep everything).
    let env = GoEnv::new(&go, &node.url()).unwrap();
    let mut stored = Vec::new();
    for mv in &all {
        let (status, body) = readyz(&node).await;
        assert_eq!(status, 200, "{body}");
        if body.contains("disk full") {
            break;
        }
        env.mod_download_ok(&mvs(std::slice::from_ref(mv)))
            .await
            .unwrap();
        stored.push(mv.clone());
    }
    wait_until(
        "/readyz to say degraded: disk full",
        patience(2.0),
        || async { readyz(&node).await.1.contains("degraded: disk full") },
    )
    .await
    .unwrap();
    let (status, _) = readyz(&node).await;
    assert_eq!(status, 200, "a flooded node stays ready");
    let status_out = cli(&node, &["--json", "status"]).await;
    assert!(status_out.contains("degraded: disk full"), "{status_out}");

    // A hit is served from the disk: the upstream is not asked.
    let (hm, hv) = &stored[0];
    let hit_path = version_path(hm, hv, "zip");
    let before = fixture.count(&hit_path);
    let r = get(&node, &hit_path).await;
    assert_eq!(r.status, 200);
    assert_eq!(sha256_hex(&r.body), entry(c, hm, hv).zip_sha256);
    assert_eq!(fixture.count(&hit_path), before, "a hit went upstream");

    // A miss passes through: served right (the go command judges), fetched each time, not stored.
    let miss = all[stored.len()..]
        .first()
        .expect("the node flooded before the last version")
        .clone();
    let miss_path = version_path(&miss.0, &miss.1, "zip");
    let miss_sha = entry(c, &miss.0, &miss.1).zip_sha256.clone();
    let fresh = GoEnv::new(&go, &node.url()).unwrap();
    let got = fresh
        .mod_download_ok(&mvs(std::slice::from_ref(&miss)))
        .await
        .unwrap();
    assert_maps_eq(
        "miss at flood",
        &expected(c, std::slice::from_ref(&miss)),
        &sums(&got),
    );
    let n1 = fixture.count(&miss_path);
    assert!(n1 >= 1);
    let r = get(&node, &miss_path).await;
    assert_eq!(r.status, 200);
    assert_eq!(sha256_hex(&r.body), miss_sha);
    assert!(
        fixture.count(&miss_path) > n1,
        "the second miss was not passed through"
    );
    assert!(
        !blob_path(&node, &miss_sha).is_file(),
        "a blob was stored at flood"
    );
    assert!(
        metric(
            &node,
            "cairn_disk_flood_passthrough_total",
            &[("kind", "zip")]
        )
        .await
            > 0.0
    );
    assert_eq!(metric(&node, "cairn_disk_watermark_state", &[]).await, 3.0);

    // Room returns (the pin goes, the worker evicts): the node recovers by itself.
    cli(&node, &["unpin", "*"]).await;
    wait_until("the node to leave flood", patience(2.0), || async {
        !readyz(&node).await.1.contains("disk full")
    })
    .await
    .unwrap();
    let r = get(&node, &miss_path).await;
    assert_eq!(r.status, 200);
    assert!(
        blob_path(&node, &miss_sha).is_file(),
        "a miss after recovery is stored again"
    );
}

async fn readyz(node: &CairnNode) -> (u16, String) {
    let r = get(node, "/readyz").await;
    (r.status, r.text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_evicts_under_budget_and_refills_from_peers_or_upstream() {
    let Some(go) = go("cluster_evicts_under_budget_and_refills_from_peers_or_upstream") else {
        return;
    };
    let c = corpus();
    let fixture = fixture().await;
    let all: Vec<(String, String)> = generated_versions().into_iter().skip(75).take(30).collect();
    let total: u64 = all.iter().map(|(m, v)| entry(c, m, v).zip_len).sum();
    let budget = total / 2;
    let config = ClusterConfig::fast()
        .set("disk", "blob_budget_bytes", budget)
        .set("disk", "low_watermark", "\"40%\"")
        .set("disk", "high_watermark", "\"60%\"")
        .set("disk", "check_interval_secs", 1)
        .set("disk", "min_idle_secs", 0)
        .set("disk", "reserved_bytes", 0)
        .set("disk", "filesystem_watermarks", false);
    let cl = crate::cluster::start(3, &fixture.url(), &config).await;
    let env = GoEnv::new(&go, &cl.url(1)).unwrap();
    let mut got = Vec::new();
    for batch in all.chunks(6) {
        got.extend(env.mod_download_ok(&mvs(batch)).await.unwrap());
    }
    assert_maps_eq("first download", &expected(c, &all), &sums(&got));
    let high = (budget * 60 / 100) as f64;
    for id in cl.ids() {
        wait_until(
            format!("node {id} under the high watermark"),
            patience(3.0),
            || async {
                cl.metrics(id).await.is_ok_and(|m| {
                    m.sum("cairn_blob_bytes", &[]) < high
                        && m.sum("cairn_disk_evictions_total", &[]) > 0.0
                })
            },
        )
        .await
        .unwrap();
    }
    // Every node still answers every version with the same hashes.
    for id in cl.ids() {
        let fresh = GoEnv::new(&go, &cl.url(id)).unwrap();
        let again = fresh.mod_download_ok(&mvs(&all)).await.unwrap();
        assert_maps_eq(
            &format!("node {id} after eviction"),
            &expected(c, &all),
            &sums(&again),
        );
    }
    let mut refills = 0.0;
    for id in cl.ids() {
        let m = cl.metrics(id).await.unwrap();
        refills += m.sum("cairn_disk_refills_total", &[]);
        eprintln!(
            "node {id}: blob bytes {} (budget {budget}), evictions {}, refills from peer {} / upstream {}",
            m.sum("cairn_blob_bytes", &[]),
            m.sum("cairn_disk_evictions_total", &[]),
            m.sum("cairn_disk_refills_total", &[("from", "peer")]),
            m.sum("cairn_disk_refills_total", &[("from", "upstream")]),
        );
    }
    assert!(refills > 0.0, "no evicted blob was refilled");
}

/// Versions from `direct` (git) cannot be fetched again once the repository is gone: with a
/// budget that evicts everything else, each blob stays on at least `min_copies` nodes (its
/// keepers), the other node drops its copy, and with the git server dead every node still
/// serves every version (from its keepers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_copies_stay_on_min_copies_nodes_under_pressure() {
    use cairn_tests::gitcorpus::{module_path, GitCorpus, HOST, PRIVATE_PATTERN, TEAM};
    use cairn_tests::githttp::GitServer;
    let Some(go) = go("direct_copies_stay_on_min_copies_nodes_under_pressure") else {
        return;
    };
    let corpus = GitCorpus::build().unwrap();
    crate::direct_cairn::link_dot_git(&corpus.root());
    let server = GitServer::start(&corpus.root()).await.unwrap();
    let hosts = format!(
        "[{{ prefix = \"{HOST}/{TEAM}\", url = \"{}/{TEAM}\" }}]",
        server.url()
    );
    // Byte watermarks on a large budget: anything stored is "above high", nothing floods.
    let config = ClusterConfig::fast()
        .set("direct", "refresh_min_secs", 0)
        .set("direct", "hosts", hosts)
        .set("disk", "blob_budget_bytes", 1u64 << 30)
        .set("disk", "low_watermark", "\"1\"")
        .set("disk", "high_watermark", "\"2\"")
        .set("disk", "flood_watermark", "\"3GiB\"")
        .set("disk", "check_interval_secs", 1)
        .set("disk", "min_idle_secs", 0)
        .set("disk", "reserved_bytes", 0)
        .set("disk", "filesystem_watermarks", false);
    let cl = crate::cluster::start(3, "direct", &config).await;
    cl.wait_liveness_agrees().await.unwrap();
    let args: Vec<String> = [
        ("plain", "", "v1.0.0"),
        ("plain", "", "v1.1.0"),
        ("mono", "sub", "v1.2.3"),
        ("legacy", "", "v0.2.0"),
    ]
    .iter()
    .map(|(repo, sub, v)| format!("{}@{v}", module_path(repo, sub)))
    .collect();
    let via = |id: u64| {
        GoEnv::new(&go, &cl.url(id))
            .unwrap()
            .with_nosumdb(PRIVATE_PATTERN)
    };
    let reference = sums(&via(1).mod_download_ok(&args).await.unwrap());
    // Every node gets every blob (repair), then the non-keeper drops it: exactly 2 copies each.
    let copies = || {
        let mut by_blob: BTreeMap<String, usize> = BTreeMap::new();
        for id in cl.ids() {
            for sha in cl.blob_set(id) {
                *by_blob.entry(sha).or_default() += 1;
            }
        }
        by_blob
    };
    wait_until(
        "every direct blob on exactly min_copies = 2 nodes",
        patience(4.0),
        || async {
            let c = copies();
            c.len() == args.len() && c.values().all(|&n| n == 2)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}: {:?}", copies()));
    let mut evicted = 0.0;
    for id in cl.ids() {
        evicted += cl
            .metrics(id)
            .await
            .unwrap()
            .sum("cairn_disk_evictions_total", &[]);
    }
    // Each blob has one non-keeper, which drops it at most once (if repair copied it there).
    assert!(
        (1.0..=args.len() as f64).contains(&evicted),
        "{evicted} evictions"
    );
    // The repair worker does not pull them back (several repair intervals later, still 2).
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        assert!(copies().values().all(|&n| n == 2), "{:?}", copies());
    }
    server.kill().await;
    for id in cl.ids() {
        let got = sums(&via(id).mod_download_ok(&args).await.unwrap());
        assert_eq!(got, reference, "through node {id} with the git server dead");
    }
}
