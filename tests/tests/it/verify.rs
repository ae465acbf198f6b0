//! cairn as the checkpoint (issue 9): module versions are checked against the checksum
//! database before they are stored, exactly as the go command checks them — so even a client
//! with `GOSUMDB=off` never gets bytes the database disagrees with. The fake database logs
//! wrong hashes for some versions (as if the upstream were poisoned: the two disagree), goes
//! away, and forks; cairn must refuse, count, log, store nothing, fail closed in `require`,
//! store unverified in `best-effort` and check the zip once the database is back, and detect the
//! fork across a restart.

use cairn_tests::corpus::m;
use cairn_tests::fixture::{Fixture, Override};
use cairn_tests::gocmd::{go, GoEnv};
use cairn_tests::h1::escape;
use cairn_tests::node::CairnNode;
use cairn_tests::sumdb::{corpus_records, filler_records, FakeSumdb, Record};
use cairn_tests::wait::{patience, wait_until};

use crate::common::{corpus, corpus_fixture, get, start_node, FAST_UPSTREAM};

/// Filler records before the corpus (complete tiles, as in the proxy tests).
const FILLER: usize = 300;

/// `module@version` whose zip hash the database logs wrongly.
const BAD_ZIP: (&str, &str) = (m::SIMPLE, "v1.2.0");
/// `module@version` whose go.mod hash the database logs wrongly.
const BAD_MOD: (&str, &str) = (m::MODV2, "v2.1.0");

/// The honest log, with [`BAD_ZIP`] and [`BAD_MOD`] logged with wrong hashes.
fn log_with_lies(filler: usize) -> Vec<Record> {
    let mut records = filler_records(filler);
    for r in corpus_records(corpus()) {
        let key = (r.module.as_str(), r.version.as_str());
        records.push(if key == BAD_ZIP {
            r.with_wrong_zip_hash()
        } else if key == BAD_MOD {
            r.with_wrong_mod_hash()
        } else {
            r
        });
    }
    records
}

/// The node's config: fast upstream failures and no circuit breaker (the database is killed
/// and revived; a breaker would keep failing fast for its cooldown), and `db` in `mode`.
fn config(db: &FakeSumdb, mode: &str) -> String {
    format!(
        "{FAST_UPSTREAM}breaker_failures = 0\n\n[sumdb]\nrecheck_interval_secs = 1\n\n[[sumdb.databases]]\nname = \"{}\"\nurl = \"{}\"\nkey = \"{}\"\nverify = \"{mode}\"\n",
        db.name(),
        db.url(),
        db.verifier_key()
    )
}

fn zip_path((module, version): (&str, &str)) -> String {
    format!("/{}/@v/{}.zip", escape(module), escape(version))
}

fn info_path((module, version): (&str, &str)) -> String {
    format!("/{}/@v/{}.info", escape(module), escape(version))
}

/// The corpus upstream, an honest database and a node verifying against it in `mode`.
async fn honest_setup(mode: &str) -> (Fixture, FakeSumdb, CairnNode) {
    let fixture = corpus_fixture().await;
    let mut honest = filler_records(FILLER);
    honest.extend(corpus_records(corpus()));
    let db = FakeSumdb::start(honest).await.unwrap();
    let node = start_node(&fixture.url(), &config(&db, mode)).await;
    (fixture, db, node)
}

async fn metric(node: &CairnNode, name: &str, filter: &[(&str, &str)]) -> f64 {
    node.metrics().await.unwrap().sum(name, filter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r9_require_refuses_what_the_database_disagrees_with_and_stores_nothing() {
    let Some(go) = go("r9_require_refuses_what_the_database_disagrees_with_and_stores_nothing")
    else {
        return;
    };
    let fixture = corpus_fixture().await;
    let db = FakeSumdb::start(log_with_lies(FILLER)).await.unwrap();
    let node = start_node(&fixture.url(), &config(&db, "require")).await;

    // An honest version: a GOSUMDB=off client gets it, verified by cairn.
    let env = GoEnv::new(&go, &node.url()).unwrap();
    let good = format!("{}@v1.0.0", m::SIMPLE);
    env.mod_download_ok(std::slice::from_ref(&good))
        .await
        .unwrap();

    // The zip the database disagrees with: refused with both hashes, every time.
    let e = corpus().entry(BAD_ZIP.0, BAD_ZIP.1);
    let wrong = cairn_tests::sumdb::wrong_h1(&e.zip_h1);
    for attempt in 0..2 {
        let r = get(&node, &zip_path(BAD_ZIP)).await;
        let body = r.text();
        assert_eq!(r.status, 502, "attempt {attempt}: {body}");
        assert!(
            body.contains(&e.zip_h1) && body.contains(&wrong),
            "attempt {attempt}: both hashes must be named: {body}"
        );
    }
    let bad_zip = format!("{}@{}", BAD_ZIP.0, BAD_ZIP.1);
    let (downloads, out) = env
        .mod_download(std::slice::from_ref(&bad_zip))
        .await
        .unwrap();
    assert!(
        downloads.iter().all(|d| d.sum.is_empty()),
        "the go command got a poisoned zip: {downloads:?}\n{out:?}"
    );

    // The go.mod the database disagrees with: not even .info is stored or served.
    let r = get(&node, &info_path(BAD_MOD)).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("checksum mismatch"), "{}", r.text());

    assert!(metric(&node, "cairn_sumdb_mismatches_total", &[]).await >= 3.0);
    assert_eq!(
        metric(&node, "cairn_blob_objects", &[]).await,
        1.0,
        "only the honest zip is stored"
    );
    let errors = node.error_lines();
    for (module, version) in [BAD_ZIP, BAD_MOD] {
        assert!(
            errors
                .iter()
                .any(|l| l.contains("SECURITY") && l.contains(module) && l.contains(version)),
            "no error log names {module}@{version}:\n{}",
            errors.join("\n")
        );
    }

    // The database goes away: what was verified is still served; nothing new is (fail closed).
    db.kill().await;
    let again = GoEnv::new(&go, &node.url()).unwrap();
    again
        .mod_download_ok(std::slice::from_ref(&good))
        .await
        .unwrap();
    let r = get(&node, &info_path((m::GOPKG, "v1.1.0"))).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("could not be reached"), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r9_best_effort_stores_unverified_and_checks_the_zip_when_the_database_returns() {
    let fixture = corpus_fixture().await;
    let db = FakeSumdb::start(log_with_lies(FILLER)).await.unwrap();
    let node = start_node(&fixture.url(), &config(&db, "best-effort")).await;
    db.kill().await;

    // Database away: .info/.mod are stored unverified.
    let r = get(&node, &info_path(BAD_ZIP)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        metric(
            &node,
            "cairn_sumdb_verifications_total",
            &[("result", "unverified")]
        )
        .await
            >= 1.0
    );

    // Back, and disagreeing about the zip: the zip is checked before it is stored.
    db.revive().await.unwrap();
    let r = get(&node, &zip_path(BAD_ZIP)).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("checksum mismatch"), "{}", r.text());
    let r = get(&node, &zip_path((m::SIMPLE, "v1.0.0"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r9_a_forked_database_is_detected_after_a_restart_and_stays_refused() {
    let fixture = corpus_fixture().await;
    let honest = FakeSumdb::start(log_with_lies(FILLER)).await.unwrap();
    let mut node = start_node(&fixture.url(), &config(&honest, "require")).await;
    let r = get(&node, &zip_path((m::SIMPLE, "v1.0.0"))).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Same key, another history: a tree that does not extend the one cairn recorded.
    let forked = FakeSumdb::start(log_with_lies(FILLER + 7)).await.unwrap();
    node.options_mut().config = Some(config(&forked, "require"));
    node.kill9().await;
    node.restart().await.unwrap();
    let r = get(&node, &info_path((m::GOPKG, "v1.1.0"))).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("forked"), "{}", r.text());
    assert_eq!(metric(&node, "cairn_sumdb_forked", &[]).await, 1.0);
    assert!(
        node.error_lines().iter().any(|l| l.contains("FORKED")),
        "no error log of the fork"
    );

    // The verdict is in the replicated state: it survives another restart, while what was
    // verified before the fork is still served.
    node.kill9().await;
    node.restart().await.unwrap();
    let r = get(&node, &info_path((m::PSEUDO, m::PSEUDO_VERSION))).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("forked"), "{}", r.text());
    let r = get(&node, &zip_path((m::SIMPLE, "v1.0.0"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// `cairn verify` over a corpus: a go.mod poisoned by the upstream while the database was away
/// (stored unverified in `best-effort`) and a zip altered on disk after it was verified are
/// exactly what it reports; honest versions, verified or not, are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r9_cairn_verify_finds_exactly_the_tampered_versions() {
    let (fixture, db, node) = honest_setup("best-effort").await;

    db.kill().await;
    let poisoned = (m::GOPKG, "v1.1.0");
    let mod_path = info_path(poisoned).replace(".info", ".mod");
    let evil = format!(
        "module {}\n\n// poisoned while the database was away\n",
        poisoned.0
    );
    fixture.set_override(&mod_path, Override::Body(evil.clone().into()));
    let r = get(&node, &mod_path).await;
    assert_eq!((r.status, r.text()), (200, evil), "stored unverified");
    let honest_unverified = (m::SIMPLE, "v1.1.0");
    assert_eq!(get(&node, &zip_path(honest_unverified)).await.status, 200);

    db.revive().await.unwrap();
    let altered = (m::PSEUDO, m::PSEUDO_VERSION);
    assert_eq!(get(&node, &zip_path(altered)).await.status, 200);
    let e = corpus().entry(altered.0, altered.1);
    let blob = node
        .data_dir()
        .join("blobs")
        .join(&e.zip_sha256[..2])
        .join(&e.zip_sha256);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 30;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();

    let out = std::process::Command::new(cairn_tests::cluster::cli_bin())
        .args([
            "--node",
            &node.addrs().cluster.to_string(),
            "--json",
            "verify",
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        out.status.code(),
        Some(1),
        "problems make exit status 1: {report}"
    );
    let mut found: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["module"].as_str().unwrap().to_owned(),
                f["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    found.dedup();
    let mut want = vec![
        (poisoned.0.to_owned(), poisoned.1.to_owned()),
        (altered.0.to_owned(), altered.1.to_owned()),
    ];
    want.sort();
    assert_eq!(found, want, "{report:#}");
    assert_eq!(report["checked"], 3, "{report:#}");
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress.contains("verified 3/3 versions (100%)"),
        "progress: {progress}"
    );
}

/// `best-effort`: versions stored unverified while the database was away are checked again in
/// the background once it is back: the honest one is marked verified, the one whose go.mod the
/// upstream poisoned meanwhile is quarantined — never served again, and refetched and verified
/// afresh once the upstream is honest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r9_best_effort_quarantines_in_the_background_what_the_database_disagrees_with() {
    let (fixture, db, node) = honest_setup("best-effort").await;
    db.kill().await;
    let poisoned = (m::GOPKG, "v1.1.0");
    let mod_path = info_path(poisoned).replace(".info", ".mod");
    let evil = format!("module {}\n\n// poisoned\n", poisoned.0);
    fixture.set_override(&mod_path, Override::Body(evil.clone().into()));
    assert_eq!(get(&node, &mod_path).await.text(), evil);
    assert_eq!(
        get(&node, &info_path((m::SIMPLE, "v1.1.0"))).await.status,
        200
    );

    db.revive().await.unwrap();
    let quarantined = || async {
        metric(&node, "cairn_sumdb_quarantined_total", &[]).await == 1.0
            && metric(
                &node,
                "cairn_sumdb_verifications_total",
                &[("result", "verified")],
            )
            .await
                >= 2.0
    };
    wait_until(
        "the recheck worker quarantined one version",
        patience(10.0),
        quarantined,
    )
    .await
    .unwrap();
    let r = get(&node, &mod_path).await;
    assert_eq!(
        r.status,
        502,
        "a quarantined version is refetched and refused: {}",
        r.text()
    );
    assert!(r.text().contains("checksum mismatch"), "{}", r.text());
    assert!(node
        .error_lines()
        .iter()
        .any(|l| l.contains("quarantined") && l.contains(poisoned.0)));

    fixture.clear_override(&mod_path);
    let r = get(&node, &mod_path).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), corpus().entry(poisoned.0, poisoned.1).go_mod);
}

/// The `sumdb-recheck pass` log lines of `node`, as (unsettled, stopped).
fn recheck_passes(node: &CairnNode) -> Vec<(u64, bool)> {
    node.log()
        .lines()
        .filter(|l| l.contains("\"sumdb-recheck pass\""))
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let f = &v["fields"];
            Some((f["unsettled"].as_u64()?, f["stopped"].as_bool()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r9_an_unreachable_database_stops_recheck_passes_early_and_they_resume() {
    let (_fixture, db, node) = honest_setup("best-effort").await;
    db.kill().await;
    let stored: Vec<(String, String)> = corpus()
        .entries
        .iter()
        .filter(|e| e.listed)
        .take(12)
        .map(|e| (e.module.clone(), e.version.clone()))
        .collect();
    for (module, version) in &stored {
        let r = get(&node, &info_path((module, version))).await;
        assert_eq!(r.status, 200, "{module}@{version}: {}", r.text());
    }
    let unverified_warnings = || {
        node.log()
            .lines()
            .filter(|l| l.contains("stored unverified (best-effort)"))
            .count()
    };
    let warned_while_storing = unverified_warnings();

    // Passes run every second with the database down: each stops after the first failures.
    wait_until(
        "three recheck passes with the database down",
        patience(10.0),
        || async { recheck_passes(&node).len() >= 3 },
    )
    .await
    .unwrap();
    let passes = recheck_passes(&node);
    // The node's `sumdb::recheck::UNREACHABLE_IN_A_ROW` (this crate drives the binary only).
    let limit = 5;
    assert!(
        passes.iter().all(|p| *p == (limit, true)),
        "every pass should stop after {limit} unreachable lookups of the {} unverified \
         versions: {passes:?}",
        stored.len()
    );
    assert_eq!(
        unverified_warnings(),
        warned_while_storing,
        "rechecks log no line per version"
    );
    let outage_lines = node
        .log()
        .lines()
        .filter(|l| l.contains("passes stop at the first failures"))
        .count();
    assert_eq!(outage_lines, 1, "one WARN per outage, not one per pass");

    // Back: the passes resume where they stopped, wrap around, and verify every version.
    db.revive().await.unwrap();
    let verified = || async {
        metric(
            &node,
            "cairn_sumdb_verifications_total",
            &[("result", "verified")],
        )
        .await
            >= stored.len() as f64
    };
    wait_until(
        "every stored version verified by the recheck",
        patience(10.0),
        verified,
    )
    .await
    .unwrap();
    assert!(node.log().contains("the checksum database answers again"));
}
