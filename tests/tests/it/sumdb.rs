//! Checksum-database proxying (PROTOCOL §5.8), judged by the real go command with verification ON.
//!
//! A fake database (`cairn_tests::sumdb::FakeSumdb`, name `sum.cairn.test`, fixed Ed25519 key)
//! logs the corpus's go.sum lines. The go command gets `GOPROXY=<cairn>` only and
//! `GOSUMDB=<verifier key>`: it can reach the database solely through cairn's `/sumdb/…` (its
//! default URL `https://sum.cairn.test` does not resolve), so every successful download here was
//! verified against lookups and tiles cairn forwarded, and every failure is the client rejecting
//! bytes cairn passed through unaltered.
//!
//! - a download verifies through cairn; cairn's bytes equal the database's; lookups reach the
//!   database once (then cairn's cache answers);
//! - a record logged with a wrong hash → `SECURITY ERROR` checksum mismatch (zip and go.mod); a
//!   lookup that is not in the log → the client's inclusion check fails;
//! - with the database dead, cached lookups and tiles still verify a fresh client; uncached
//!   lookups fail (not 404);
//! - the log grows between runs: the client's consistency check passes through cairn;
//! - edges without go: `supported` for other names → 404, malformed tiles → 400 (not forwarded),
//!   404s passed through, `%21`-encoded lookups.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cairn_tests::corpus::{m, Corpus};
use cairn_tests::gocmd::{go, Download, Go, GoEnv, GoOutput};
use cairn_tests::h1::escape;
use cairn_tests::node::CairnNode;
use cairn_tests::sumdb::{
    corpus_records, filler_records, wrong_h1, FakeSumdb, NoteKey, Record, DB_NAME,
};
use cairn_tests::wait::{patience, wait_until};

use crate::common::{
    assert_maps_eq, corpus, corpus_fixture, expected_sums, get, start_node, sums, FAST_UPSTREAM,
};

/// Filler records logged before the corpus: 300 puts the corpus in the second level-0 tile and
/// needs a level-1 tile for every tree head.
const FILLER: usize = 300;

/// The module versions the scenarios download (escaping, `+incompatible`, `/v2`, gopkg.in,
/// pseudo-version).
fn picks() -> Vec<(&'static str, &'static str)> {
    vec![
        (m::SIMPLE, "v1.0.0"),
        (m::SIMPLE, "v1.2.0"),
        (m::UPPER, m::UPPER_RC),
        (m::LEGACY, m::LEGACY_INCOMPATIBLE),
        (m::MODV2, "v2.1.0"),
        (m::GOPKG, "v1.1.0"),
        (m::PSEUDO, m::PSEUDO_VERSION),
    ]
}

fn mvs(list: &[(&str, &str)]) -> Vec<String> {
    list.iter().map(|(m, v)| format!("{m}@{v}")).collect()
}

/// The database's decoded lookup path for `module@version`.
fn lookup_path(module: &str, version: &str) -> String {
    format!("/lookup/{}@{}", escape(module), escape(version))
}

/// cairn's URL path for a database path.
fn via_cairn(db_path: &str) -> String {
    format!("/sumdb/{DB_NAME}{db_path}")
}

/// The node's config: fast upstream failures, and `db` as the only proxied database.
fn node_config(db: &FakeSumdb) -> String {
    format!(
        "{FAST_UPSTREAM}\n[sumdb]\nlatest_ttl_secs = 60\n\n[[sumdb.databases]]\nname = \"{}\"\n\
         url = \"{}\"\n",
        db.name(),
        db.url()
    )
}

/// The filler plus every corpus record (the honest log).
fn honest_log(c: &Corpus) -> Vec<Record> {
    let mut records = filler_records(FILLER);
    records.extend(corpus_records(c));
    records
}

/// The corpus's predicted (zip, go.mod) hashes for `list`.
fn expected_for(c: &Corpus, list: &[(&str, &str)]) -> BTreeMap<String, (String, String)> {
    let all = expected_sums(c);
    mvs(list)
        .into_iter()
        .map(|k| (k.clone(), all[&k].clone()))
        .collect()
}

/// The go command with checksum verification against the fake database ([`GoEnv`] with
/// `GOSUMDB` set), plus what only these tests look at.
pub(crate) struct SumGo(GoEnv);

impl SumGo {
    pub(crate) fn new(go: &Go, goproxy: &str, gosumdb: &str) -> SumGo {
        SumGo(GoEnv::new(go, goproxy).unwrap().with_sumdb(gosumdb))
    }

    /// The same environment with `GONOSUMDB=patterns`.
    pub(crate) fn with_nosumdb(self, patterns: &str) -> SumGo {
        SumGo(self.0.with_nosumdb(patterns))
    }

    /// Same settings, empty GOPATH and module cache (no trusted tree head, no cached tiles).
    fn fresh(&self) -> SumGo {
        SumGo(self.0.fresh().unwrap())
    }

    /// `go mod download -json` → one entry per argument, and the raw output.
    async fn download(&self, mvs: &[String]) -> (Vec<Download>, GoOutput) {
        self.0.mod_download(mvs).await.unwrap()
    }

    /// Like [`SumGo::download`], but everything must succeed.
    pub(crate) async fn download_ok(&self, mvs: &[String]) -> anyhow::Result<Vec<Download>> {
        self.0.mod_download_ok(mvs).await
    }

    /// The tree head the go command trusts (`$GOPATH/pkg/sumdb/<name>/latest`), if any.
    fn trusted_tree(&self) -> Option<String> {
        let p = self
            .0
            .gopath()
            .join("pkg/sumdb")
            .join(DB_NAME)
            .join("latest");
        std::fs::read_to_string(p).ok()
    }

    /// The extracted module directory in the module cache.
    fn extracted(&self, module: &str, version: &str) -> PathBuf {
        self.0
            .modcache()
            .join(format!("{}@{}", escape(module), escape(version)))
    }
}

/// Everything the go command needs is up: fixture, fake database, node.
struct Setup {
    c: &'static Corpus,
    _fixture: cairn_tests::fixture::Fixture,
    db: FakeSumdb,
    node: CairnNode,
}

async fn setup(records: Vec<Record>) -> Setup {
    let c = corpus();
    let fixture = corpus_fixture().await;
    let db = FakeSumdb::start(records).await.unwrap();
    let node = start_node(&fixture.url(), &node_config(&db)).await;
    Setup {
        c,
        _fixture: fixture,
        db,
        node,
    }
}

/// Every lookup and tile the database answered 200 is served by cairn with exactly the same bytes
/// (from its cache: the database sees no new request). The log must not have grown since.
async fn assert_cairn_bytes_equal_database_bytes(node: &CairnNode, db: &FakeSumdb) {
    let before = db.total();
    let mut paths: Vec<String> = db
        .requests()
        .into_iter()
        .filter(|r| {
            r.status == 200 && (r.path.starts_with("/lookup/") || r.path.starts_with("/tile/"))
        })
        .map(|r| r.path)
        .collect();
    paths.sort();
    paths.dedup();
    assert!(
        !paths.is_empty(),
        "the database answered nothing:\n{}",
        db.describe_requests()
    );
    for p in &paths {
        let r = get(node, &via_cairn(p)).await;
        let (status, body) = db.answer(p);
        assert_eq!(
            (r.status, status),
            (200, 200),
            "GET {} via cairn: {}",
            p,
            r.text()
        );
        assert!(
            r.body == body,
            "cairn altered the bytes of {p}:\n{:?}\nvs\n{:?}",
            r.body,
            body
        );
    }
    assert_eq!(
        db.total(),
        before,
        "re-reading cached lookups/tiles reached the database:\n{}",
        db.describe_requests()
    );
}

/// Waits until connecting to `db` is refused.
async fn wait_refused(db: &FakeSumdb) {
    let addr = db.addr();
    wait_until(
        format!("{addr} refuses connections"),
        patience(1.0),
        || async move { tokio::net::TcpStream::connect(addr).await.is_err() },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_verifies_downloads_against_the_database_through_cairn() {
    let Some(go) = go("go_verifies_downloads_against_the_database_through_cairn") else {
        return;
    };
    let s = setup(honest_log(corpus())).await;
    let list = picks();
    let args = mvs(&list);

    let reference = GoEnv::new(&go, &s.c.file_url())
        .unwrap()
        .mod_download_ok(&args)
        .await
        .unwrap();
    let env = SumGo::new(&go, &s.node.url(), &s.db.verifier_key());
    let verified = env.download_ok(&args).await.unwrap();

    assert_maps_eq(
        "file:// (GOSUMDB=off) vs the corpus",
        &expected_for(s.c, &list),
        &sums(&reference),
    );
    assert_maps_eq(
        "cairn (GOSUMDB on) vs file://",
        &sums(&reference),
        &sums(&verified),
    );
    // The go command adopted the database's signed tree head: it verified what cairn forwarded.
    assert_eq!(
        env.trusted_tree().as_deref(),
        Some(s.db.signed_tree().as_str()),
        "the go command's trusted tree head"
    );
    for (module, version) in &list {
        let p = lookup_path(module, version);
        assert_eq!(
            s.db.count(&p),
            1,
            "database requests for {p}:\n{}",
            s.db.describe_requests()
        );
    }
    let tiles: Vec<String> =
        s.db.requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/tile/"))
            .map(|r| r.path)
            .collect();
    for want in ["/tile/8/1/000.p/1", "/tile/8/0/001.p/"] {
        assert!(
            tiles.iter().any(|t| t.starts_with(want)),
            "no {want}… among the forwarded tiles {tiles:?}"
        );
    }
    assert!(
        s.db.requests().iter().all(|r| r.status == 200),
        "cairn forwarded requests the database refused:\n{}",
        s.db.describe_requests()
    );
    let metrics = s.node.metrics().await.unwrap();
    assert!(
        metrics.sum(
            "cairn_http_requests_total",
            &[("endpoint", "sumdb"), ("status", "200")]
        ) > 0.0,
        "cairn served no /sumdb/ requests:\n{}",
        metrics.dump("cairn_http_requests_total")
    );

    // The key is really used: a client trusting another key for the same name rejects the notes.
    let stranger = NoteKey::from_seed(DB_NAME, &[7u8; 32]).verifier_key();
    let wrong_key = SumGo::new(&go, &s.node.url(), &stranger);
    let (downloads, out) = wrong_key.download(&args[..1]).await;
    assert!(
        !out.success
            && !downloads.is_empty()
            && downloads
                .iter()
                .all(|d| d.error.contains("no verifiable signatures")),
        "{} accepted notes signed by another key:\n{}",
        out.describe,
        out.stdout
    );
    assert!(!wrong_key.extracted(list[0].0, list[0].1).exists());

    // A second fresh client verifies from cairn's cache alone.
    let before = s.db.total();
    let again = env.fresh().download_ok(&args).await.unwrap();
    assert_maps_eq(
        "second fresh client vs file://",
        &sums(&reference),
        &sums(&again),
    );
    assert_eq!(
        s.db.total(),
        before,
        "cached lookups/tiles reached the database:\n{}",
        s.db.describe_requests()
    );
    assert_cairn_bytes_equal_database_bytes(&s.node, &s.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_records_fail_verification_through_cairn() {
    let Some(go) = go("tampered_records_fail_verification_through_cairn") else {
        return;
    };
    let c = corpus();
    let bad_zip = (m::SIMPLE, "v1.1.0");
    let bad_mod = (m::GOPKG, "v1.0.0");
    let lied_to = (m::MODV2, "v2.0.0");
    let good = (m::SIMPLE, "v1.0.0");
    let mut records = filler_records(FILLER);
    for r in corpus_records(c) {
        records.push(if (r.module.as_str(), r.version.as_str()) == bad_zip {
            r.with_wrong_zip_hash()
        } else if (r.module.as_str(), r.version.as_str()) == bad_mod {
            r.with_wrong_mod_hash()
        } else {
            r
        });
    }
    let s = setup(records).await;
    let honest = corpus_records(c);
    let lie = honest
        .iter()
        .find(|r| (r.module.as_str(), r.version.as_str()) == lied_to)
        .unwrap()
        .with_wrong_zip_hash();
    s.db.set_lookup_lie(&lie.lookup_key(), &lie.text);

    let env = SumGo::new(&go, &s.node.url(), &s.db.verifier_key());
    let (downloads, out) = env.download(&mvs(&[good, bad_zip, bad_mod, lied_to])).await;
    assert!(
        !out.success,
        "{} succeeded despite tampered records",
        out.describe
    );
    let by_mv: BTreeMap<(String, String), Download> = downloads
        .into_iter()
        .map(|d| ((d.path.clone(), d.version.clone()), d))
        .collect();
    let error_of = |(module, version): (&str, &str)| -> String {
        let d = by_mv
            .get(&(module.to_string(), version.to_string()))
            .unwrap_or_else(|| {
                panic!(
                    "no JSON for {module}@{version}:\n{}\n{}",
                    out.stdout, out.stderr
                )
            });
        d.error.clone()
    };
    assert_eq!(
        error_of(good),
        "",
        "the honest record must verify:\n{}",
        out.stderr
    );
    assert!(env.extracted(good.0, good.1).is_dir());

    let zip_err = error_of(bad_zip);
    assert!(
        zip_err.contains("SECURITY ERROR") && zip_err.contains("checksum mismatch"),
        "{}@{} with a wrong logged zip hash: {zip_err:?}\n{}",
        bad_zip.0,
        bad_zip.1,
        out.stderr
    );
    let mod_err = error_of(bad_mod);
    assert!(
        mod_err.contains("SECURITY ERROR")
            && mod_err.contains("go.mod")
            && mod_err.contains("checksum mismatch"),
        "{}@{} with a wrong logged go.mod hash: {mod_err:?}\n{}",
        bad_mod.0,
        bad_mod.1,
        out.stderr
    );
    for ((module, version), err, kind) in
        [(bad_zip, &zip_err, "zip"), (bad_mod, &mod_err, "go.mod")]
    {
        let e = c.entry(module, version);
        let real = if kind == "zip" { &e.zip_h1 } else { &e.mod_h1 };
        assert!(
            err.contains(&format!("downloaded: {real}"))
                && err.contains(&format!("{DB_NAME}: {}", wrong_h1(real))),
            "the {kind} mismatch report must name the real and the logged hash: {err:?}"
        );
    }
    let lie_err = error_of(lied_to);
    assert!(
        lie_err.contains("cannot authenticate record data"),
        "{}@{} answered with a record that is not in the log: {lie_err:?}\n{}",
        lied_to.0,
        lied_to.1,
        out.stderr
    );
    for (module, version) in [bad_zip, bad_mod, lied_to] {
        assert!(
            !env.extracted(module, version).exists(),
            "{module}@{version} was installed despite failing verification"
        );
    }
    // cairn passed the lies through unaltered (the client, not the proxy, caught them).
    assert_cairn_bytes_equal_database_bytes(&s.node, &s.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_lookups_and_tiles_verify_a_fresh_client_when_the_database_is_dead() {
    let Some(go) = go("cached_lookups_and_tiles_verify_a_fresh_client_when_the_database_is_dead")
    else {
        return;
    };
    let s = setup(honest_log(corpus())).await;
    let list = picks();
    let args = mvs(&list);
    let env = SumGo::new(&go, &s.node.url(), &s.db.verifier_key());
    let first = env.download_ok(&args).await.unwrap();
    let latest = get(&s.node, &via_cairn("/latest")).await;
    assert_eq!(latest.status, 200, "latest via cairn: {}", latest.text());
    assert_eq!(latest.text(), s.db.signed_tree());

    s.db.kill().await;
    wait_refused(&s.db).await;

    let fresh = env.fresh();
    let second = fresh.download_ok(&args).await.unwrap();
    assert_maps_eq(
        "dead database: fresh client vs first run",
        &sums(&first),
        &sums(&second),
    );
    assert_maps_eq(
        "dead database: fresh client vs the corpus",
        &expected_for(s.c, &list),
        &sums(&second),
    );
    assert_eq!(
        fresh.trusted_tree().as_deref(),
        Some(latest.text().as_str())
    );
    let cached_latest = get(&s.node, &via_cairn("/latest")).await;
    assert_eq!(
        (cached_latest.status, cached_latest.body.clone()),
        (200, latest.body.clone()),
        "latest within its TTL while the database is dead"
    );

    // Never fetched, so nothing to serve: cairn must fail the lookup, not call it missing.
    let uncached = (m::SIMPLE, "v1.1.0");
    let r = get(&s.node, &via_cairn(&lookup_path(uncached.0, uncached.1))).await;
    assert!(
        r.status >= 500,
        "uncached lookup with the database dead: {} {}",
        r.status,
        r.text()
    );
    let (downloads, out) = fresh.download(&mvs(&[uncached])).await;
    assert!(
        !out.success && downloads.iter().all(|d| !d.error.is_empty()),
        "{} succeeded without a reachable database:\n{}",
        out.describe,
        out.stdout
    );
    assert!(!fresh.extracted(uncached.0, uncached.1).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_checks_log_growth_through_cairn() {
    let Some(go) = go("the_client_checks_log_growth_through_cairn") else {
        return;
    };
    let c = corpus();
    let list = picks();
    let (early, late) = list.split_at(3);
    let in_early = |r: &Record| early.iter().any(|(m, v)| r.module == *m && r.version == *v);
    let (first, rest): (Vec<Record>, Vec<Record>) =
        corpus_records(c).into_iter().partition(in_early);
    // 250 + 3 records: one partial level-0 tile. After growth: a full tile, a second one, level 1.
    let mut records = filler_records(250);
    records.extend(first);
    let s = setup(records).await;
    let env = SumGo::new(&go, &s.node.url(), &s.db.verifier_key());
    env.download_ok(&mvs(early)).await.unwrap();
    let old_tree = env.trusted_tree().unwrap();
    assert!(old_tree.contains("\n253\n"), "{old_tree}");

    s.db.publish(rest);
    let (late_res, _) = env.download(&mvs(late)).await;
    assert!(
        late_res.iter().all(|d| d.error.is_empty()),
        "after the log grew to {}: {late_res:#?}\n{}",
        s.db.size(),
        s.db.describe_requests()
    );
    assert_maps_eq(
        "after growth vs the corpus",
        &expected_for(c, late),
        &sums(&late_res),
    );
    let new_tree = env.trusted_tree().unwrap();
    assert_eq!(
        new_tree,
        s.db.signed_tree(),
        "the client moved to the grown tree"
    );
    assert!(
        s.db.count("/tile/8/0/000") >= 1 && s.db.count("/tile/8/1/000.p/1") >= 1,
        "the consistency check used the grown tree's tiles:\n{}",
        s.db.describe_requests()
    );
    // Old lookups come from cairn's cache with the old tree head; the client accepts them.
    let old = env.fresh();
    old.download_ok(&mvs(&list)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sumdb_endpoint_edges() {
    let s = setup(honest_log(corpus())).await;
    let ok = get(&s.node, &format!("/sumdb/{DB_NAME}/supported")).await;
    assert_eq!(ok.status, 200, "supported: {}", ok.text());
    for other in [
        "/sumdb/other.name/supported",
        "/sumdb/other.name/lookup/example.com/simple@v1.0.0",
        "/sumdb/sum.cairn.test.evil/supported",
    ] {
        let r = get(&s.node, other).await;
        assert_eq!(r.status, 404, "{other}: {}", r.text());
    }
    for bad in [
        "/tile/8/0/0000",
        "/tile/8/x/000",
        "/tile/8/0/x1/000",
        "/tile/99/0/000",
        "/tile/8/0/000.p/",
        "/tile/8/0",
    ] {
        let r = get(&s.node, &via_cairn(bad)).await;
        assert_eq!(r.status, 400, "malformed {bad}: {}", r.text());
    }
    assert_eq!(
        s.db.total(),
        0,
        "cairn forwarded malformed paths:\n{}",
        s.db.describe_requests()
    );

    // 404s from the database pass through: an unlogged version, a tile beyond the tree.
    let size = s.db.size();
    for missing in [
        lookup_path(m::SIMPLE, "v9.9.9"),
        "/tile/8/0/002".to_string(),
        format!("/tile/8/0/001.p/{}", size - 256 + 1),
    ] {
        let r = get(&s.node, &via_cairn(&missing)).await;
        assert_eq!(
            (r.status, s.db.answer(&missing).0),
            (404, 404),
            "{missing}: {}",
            r.text()
        );
        assert_eq!(s.db.count(&missing), 1, "{missing} reached the database");
    }

    // `!` sent as %21 still names the escaped path; the body is the database's, byte for byte.
    let p = lookup_path(m::UPPER, m::UPPER_RC);
    let r = get(&s.node, &via_cairn(&p.replace('!', "%21"))).await;
    assert_eq!(r.status, 200, "{p}: {}", r.text());
    assert!(
        r.body == s.db.answer(&p).1,
        "lookup {p} via cairn differs from the database"
    );
    let id = s.db.id_of(m::UPPER, m::UPPER_RC).unwrap();
    assert!(
        r.text()
            .starts_with(&format!("{id}\n{} {} h1:", m::UPPER, m::UPPER_RC)),
        "{}",
        r.text()
    );
    let data = get(&s.node, &via_cairn("/tile/8/data/000")).await;
    assert_eq!(data.status, 200);
    assert!(data.body == s.db.answer("/tile/8/data/000").1);
}
