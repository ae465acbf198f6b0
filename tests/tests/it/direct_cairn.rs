//! The `direct` source judged by the go command: the same commands that [`direct_baseline`] runs
//! in the go command's own direct mode are run through cairn (a rule sending
//! `git.corp.example` to `direct`, reaching the local git server through a host mapping), and
//! every `Sum`, `GoModSum`, version list, query answer, `.info` time and zip file list must be
//! identical. Around that: a recording public upstream and checksum database must never hear of
//! a private path (healthy, failing and dead git server); twenty versions of one repository
//! clone it once; a new tag appears after the list TTL while old versions keep their bytes; and
//! credentials authenticate without ever showing up in logs, metrics, status or error bodies.

use std::collections::BTreeSet;
use std::path::Path;

use cairn_tests::cluster::cli_bin;
use cairn_tests::fixture::Fixture;
use cairn_tests::gitcorpus::{module_path, GitCorpus, HOST, MANY_TAGS, PRIVATE_PATTERN, TEAM};
use cairn_tests::githttp::GitServer;
use cairn_tests::gocmd::{go, Go, GoEnv};
use cairn_tests::node::CairnNode;
use cairn_tests::sumdb::{corpus_records, FakeSumdb};
use cairn_tests::wait::{patience, wait_until};

use crate::common::{assert_maps_eq, get, start_node, FAST_UPSTREAM};
use crate::direct::{direct_baseline, direct_env, Baseline};

/// Makes every bare repository `team/<name>` also reachable as `team/<name>.git`, the URL a host
/// mapping builds from the module path's `<name>.git` element.
pub fn link_dot_git(root: &Path) {
    let team = root.join(TEAM);
    for entry in std::fs::read_dir(&team).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".git") {
            let link = team.join(format!("{name}.git"));
            if !link.exists() {
                std::os::unix::fs::symlink(entry.path(), link).unwrap();
            }
        }
    }
}

/// Node configuration: public traffic to `public` and `db`, `git.corp.example` to `direct`
/// through a host mapping to `server`; `extra` is appended.
fn node_config(server: &GitServer, db: &FakeSumdb, extra: &str) -> String {
    format!(
        "{FAST_UPSTREAM}\n[cache]\nlist_ttl_secs = 1\nlatest_ttl_secs = 1\n\n\
         [sumdb]\nlatest_ttl_secs = 60\n\n[[sumdb.databases]]\nname = \"{}\"\nurl = \"{}\"\n\n\
         [[routes]]\nname = \"corp\"\npatterns = \"{PRIVATE_PATTERN}\"\nupstream = \"direct\"\n\n\
         [direct]\nrefresh_min_secs = 0\ncommand_timeout_secs = 60\n\n\
         [[direct.hosts]]\nprefix = \"{HOST}/{TEAM}\"\nurl = \"{}/{TEAM}\"\n\n{extra}",
        db.name(),
        db.url(),
        server.url()
    )
}

struct Setup {
    corpus: GitCorpus,
    server: GitServer,
    public: Fixture,
    db: FakeSumdb,
    node: CairnNode,
}

async fn setup(extra: &str) -> Setup {
    let corpus = GitCorpus::build().unwrap();
    link_dot_git(&corpus.root());
    let server = GitServer::start(&corpus.root()).await.unwrap();
    let public = Fixture::start(None).await.unwrap();
    let db = FakeSumdb::start(corpus_records(crate::common::corpus()))
        .await
        .unwrap();
    let node = start_node(&public.url(), &node_config(&server, &db, extra)).await;
    Setup {
        corpus,
        server,
        public,
        db,
        node,
    }
}

/// A go environment using cairn as its only proxy, with the private patterns off the
/// checksum database (what the README tells developers to set).
fn cairn_env(go: &Go, node: &CairnNode) -> GoEnv {
    GoEnv::new(go, &node.url())
        .unwrap()
        .with_nosumdb(PRIVATE_PATTERN)
}

/// Requests of the public upstream or the checksum database that mention a private path.
fn leaks(public: &Fixture, db: &FakeSumdb) -> Vec<String> {
    let upstream = public.requests().into_iter().map(|r| r.path);
    let database = db.requests().into_iter().map(|r| r.path);
    upstream
        .chain(database)
        .filter(|p| p.to_ascii_lowercase().contains("corp.example"))
        .collect()
}

fn assert_same(direct: &Baseline, cairn: &Baseline) {
    assert_maps_eq("Sum/GoModSum", &direct.sums, &cairn.sums);
    assert_maps_eq("go list -m -versions", &direct.versions, &cairn.versions);
    assert_maps_eq(
        "go list -m -retracted -versions",
        &direct.all_versions,
        &cairn.all_versions,
    );
    assert_maps_eq("queries (go list)", &direct.queries, &cairn.queries);
    assert_maps_eq(
        "queries (go mod download)",
        &direct.query_downloads,
        &cairn.query_downloads,
    );
    assert_maps_eq(".info Time", &direct.times, &cairn.times);
    assert_maps_eq("zip file lists", &direct.zip_files, &cairn.zip_files);
    let refused = |b: &Baseline| b.refusals.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(
        refused(direct),
        refused(cairn),
        "different refusals:\ndirect: {:#?}\ncairn: {:#?}",
        direct.refusals,
        cairn.refusals
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cairn_direct_matches_the_go_command_byte_for_byte() {
    let Some(go) = go("cairn_direct_matches_the_go_command_byte_for_byte") else {
        return;
    };
    let s = setup("").await;
    let reference = direct_baseline(&direct_env(&go, &s.server.url()), &s.corpus)
        .await
        .unwrap();
    s.server.reset_log();
    let through = direct_baseline(&cairn_env(&go, &s.node), &s.corpus)
        .await
        .unwrap();
    eprintln!(
        "go direct: {:?}; through cairn (cold): {:?}; {} versions compared",
        reference.elapsed,
        through.elapsed,
        through.sums.len()
    );
    assert_same(&reference, &through);
    assert!(reference.sums.len() >= 40, "{:?}", reference.sums.keys());

    // Each repository was cloned once and fetched at most a few times (list refreshes).
    let metrics = s.node.metrics().await.unwrap();
    let clones = metrics.sum("cairn_direct_clones_total", &[]);
    let repos = s
        .corpus
        .modules
        .iter()
        .map(|m| &m.repo)
        .collect::<BTreeSet<_>>();
    assert_eq!(
        clones as usize,
        repos.len(),
        "clones vs repositories {repos:?}"
    );
    assert!(
        leaks(&s.public, &s.db).is_empty(),
        "{:?}",
        leaks(&s.public, &s.db)
    );
    assert_eq!(
        s.public.total(),
        0,
        "the public upstream was asked: {}",
        s.public.log_tail(5)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_versions_clone_once_new_tags_appear_and_failures_never_leak() {
    let Some(go) = go("twenty_versions_clone_once_new_tags_appear_and_failures_never_leak") else {
        return;
    };
    let mut s = setup("").await;
    let many = module_path("many", "");
    let repo = format!("{TEAM}/many.git");
    let versions: Vec<String> = (0..MANY_TAGS).map(|i| format!("v1.0.{i}")).collect();
    let args: Vec<String> = versions.iter().map(|v| format!("{many}@{v}")).collect();
    let env = cairn_env(&go, &s.node);
    let first = env.mod_download_ok(&args).await.unwrap();
    assert_eq!(first.len(), MANY_TAGS);
    assert_eq!(s.server.fetches(&repo), 1, "{}", s.server.log_tail(30));
    let metrics = s.node.metrics().await.unwrap();
    assert_eq!(metrics.sum("cairn_direct_clones_total", &[]), 1.0);

    // A new tag shows up once the list TTL has passed; old versions keep their bytes.
    let work = s.corpus.repo_mut("many");
    work.write("late.go", "package many\n\nconst Late = 1\n")
        .unwrap();
    work.commit("late").unwrap();
    work.tag("v1.0.99").unwrap();
    work.publish().unwrap();
    let list_path = "/git.corp.example/team/many.git/@v/list";
    wait_until("v1.0.99 listed", patience(2.0), || async {
        get(&s.node, list_path).await.text().contains("v1.0.99")
    })
    .await
    .unwrap();
    let listed = env.fresh().unwrap().list_versions(&many).await.unwrap();
    assert!(listed.contains(&"v1.0.99".to_owned()), "{listed:?}");
    let again = env
        .fresh()
        .unwrap()
        .mod_download_ok(&args[..3])
        .await
        .unwrap();
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(
            (&a.sum, &a.go_mod_sum),
            (&b.sum, &b.go_mod_sum),
            "{}",
            a.version
        );
    }

    // Failing git server: cached versions and lists still served, unknown versions are an
    // upstream failure (not a cached not-found), nothing reaches a public party.
    s.server.set_fail(Some(500));
    let unknown = "/git.corp.example/team/many.git/@v/v1.0.98.info";
    assert_eq!(get(&s.node, unknown).await.status, 502);
    assert_eq!(get(&s.node, list_path).await.status, 200);
    let fresh_client = env.fresh().unwrap();
    assert_eq!(
        fresh_client
            .mod_download_ok(&args[5..7])
            .await
            .unwrap()
            .len(),
        2
    );
    let plain_private = [
        "/git.corp.example/team/plain.git/@v/list",
        "/git.corp.example/team/plain.git/@latest",
        "/git.corp.example/team/plain.git/@v/v1.0.0.info",
        "/git.corp.example/team/plain.git/@v/v1.0.0.zip",
        "/git.corp.example/team/nosuch.git/@v/list",
        "/sumdb/sum.golang.org/lookup/git.corp.example/team/plain.git@v1.0.0",
    ];
    for path in plain_private {
        let st = get(&s.node, path).await.status;
        assert!(st >= 400, "{path}: {st}");
    }
    // Dead git server: the same.
    s.server.set_fail(None);
    s.server.kill().await;
    assert_eq!(get(&s.node, unknown).await.status, 502);
    for path in plain_private {
        let st = get(&s.node, path).await.status;
        assert!(st >= 400, "{path}: {st}");
    }
    let dead_client = env.fresh().unwrap();
    assert_eq!(
        dead_client
            .mod_download_ok(&args[8..10])
            .await
            .unwrap()
            .len(),
        2
    );
    s.server.revive().await.unwrap();
    assert!(
        leaks(&s.public, &s.db).is_empty(),
        "{:?}",
        leaks(&s.public, &s.db)
    );
    assert_eq!(s.public.total(), 0, "{}", s.public.log_tail(5));
    s.node.check_alive().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_authenticate_and_never_show() {
    let Some(go) = go("credentials_authenticate_and_never_show") else {
        return;
    };
    const SECRET: &str = "s3cret-6f1d2c";
    const WRONG: &str = "wr0ng-9a8b7c";
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("git-password");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    // The host is known only once the server runs: start it first, then the node.
    let corpus = GitCorpus::build().unwrap();
    link_dot_git(&corpus.root());
    let server = GitServer::start(&corpus.root()).await.unwrap();
    server.require_basic_auth(Some(("alice", SECRET)));
    let public = Fixture::start(None).await.unwrap();
    let db = FakeSumdb::start(corpus_records(crate::common::corpus()))
        .await
        .unwrap();
    let creds = format!(
        "[[direct.credentials]]\nhost = \"{}\"\nkind = \"basic\"\nusername = \"alice\"\n\
         secret_file = \"{}\"\n",
        server.addr(),
        secret_file.display()
    );
    let node = start_node(&public.url(), &node_config(&server, &db, &creds)).await;

    let plain = module_path("plain", "");
    let env = cairn_env(&go, &node);
    let got = env
        .mod_download_ok(&[format!("{plain}@v1.1.0")])
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert!(server
        .requests()
        .iter()
        .any(|r| r.user.as_deref() == Some("alice")));

    // A rotated (wrong) secret is picked up without a restart and its failure names no secret.
    std::fs::write(&secret_file, WRONG).unwrap();
    let mono = "/git.corp.example/team/mono.git/@v/v0.1.0.info";
    let resp = get(&node, mono).await;
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert!(
        !resp.text().contains(WRONG) && !resp.text().contains(SECRET),
        "{}",
        resp.text()
    );
    std::fs::write(&secret_file, SECRET).unwrap();
    assert_eq!(get(&node, mono).await.status, 200);

    let status = std::process::Command::new(cli_bin())
        .args([
            "--node",
            &node.addrs().cluster.to_string(),
            "status",
            "--json",
        ])
        .output()
        .unwrap();
    let metrics = get(&node, "/metrics").await.text();
    let log = node.log();
    for (what, text) in [
        ("log", log.as_str()),
        ("metrics", metrics.as_str()),
        ("status", &String::from_utf8_lossy(&status.stdout)),
        ("status stderr", &String::from_utf8_lossy(&status.stderr)),
    ] {
        for secret in [SECRET, WRONG] {
            assert!(!text.contains(secret), "{what} contains a secret");
        }
    }
    assert!(leaks(&public, &db).is_empty());
}
