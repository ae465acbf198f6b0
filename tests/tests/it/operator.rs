//! Operator actions against a compromised release (issue 12): `cairn deny`, `cairn purge` and
//! the `/index` feed, on a three-node cluster in front of the recording fixture upstream.

use std::collections::BTreeSet;

use cairn_tests::cluster::{ClusterConfig, TestCluster};
use cairn_tests::corpus::gen_module;
use cairn_tests::gocmd::{go, GoEnv};
use cairn_tests::h1::version_path;
use cairn_tests::wait::{patience, wait_until};

use crate::cluster::{corpus, fixture, mv, start, warm};

const EXTS: [&str; 3] = ["info", "mod", "zip"];

/// Status and body of `path` on node `id`.
async fn status(cl: &TestCluster, id: u64, path: &str) -> (u16, String) {
    let r = cl
        .node(id)
        .get(path)
        .await
        .unwrap_or_else(|e| panic!("GET {path} on node {id}: {e:#}"));
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

/// Waits until every node answers `want` for `.info`, `.mod` and `.zip` of `module@version`.
async fn wait_status_everywhere(cl: &TestCluster, module: &str, version: &str, want: u16) {
    for id in cl.ids() {
        for ext in EXTS {
            let path = version_path(module, version, ext);
            let what = format!("node {id} to answer {want} for {path}");
            wait_until(what, patience(4.0), || {
                let path = path.clone();
                async move { status(cl, id, &path).await.0 == want }
            })
            .await
            .unwrap();
        }
    }
}

async fn cli_ok(cl: &TestCluster, args: &[&str]) -> cairn_tests::cluster::CliOutput {
    cl.cli(args)
        .await
        .unwrap_or_else(|e| panic!("cairn {args:?}: {e:#}"))
        .ok()
        .unwrap_or_else(|e| panic!("{e:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_deny_refuses_everywhere_and_hides_from_lists_until_lifted() {
    let Some(go) = go("operator_deny") else {
        return;
    };
    let fx = fixture().await;
    let config = ClusterConfig::fast().set("audit", "target", "\"stdout\"");
    let cl = start(3, &fx.url(), &config).await;
    let module = gen_module(0);
    let versions: Vec<(String, String)> = ["v1.0.0", "v1.1.0", "v1.2.0"]
        .iter()
        .map(|v| (module.clone(), v.to_string()))
        .collect();
    warm(&cl.url(1), &versions).await;
    let env = GoEnv::new(&go, &cl.url(2)).unwrap();
    assert_eq!(
        env.list_versions(&module).await.unwrap(),
        ["v1.0.0", "v1.1.0", "v1.2.0"]
    );

    // Deny one version through node 3 (a follower or the leader: either proposes).
    let target = mv(&module, "v1.2.0");
    cl.cli_at(3, &["deny", &target, "--reason", "CVE-2099-1"])
        .await
        .unwrap()
        .ok()
        .unwrap();
    wait_status_everywhere(&cl, &module, "v1.2.0", 410).await;
    let (_, body) = status(&cl, 2, &version_path(&module, "v1.2.0", "zip")).await;
    assert!(
        body.contains("CVE-2099-1") && body.contains(&target),
        "the refusal names the rule and reason: {body}"
    );
    for id in cl.ids() {
        let env = GoEnv::new(&go, &cl.url(id)).unwrap();
        assert_eq!(
            env.list_versions(&module).await.unwrap(),
            ["v1.0.0", "v1.1.0"],
            "go list -m -versions through node {id}"
        );
        let latest = env.list_query(&module, "latest").await.unwrap();
        assert_eq!(latest.version, "v1.1.0", "@latest through node {id}");
    }
    // Other versions are untouched.
    assert_eq!(
        status(&cl, 3, &version_path(&module, "v1.1.0", "zip"))
            .await
            .0,
        200
    );
    let listed = cli_ok(&cl, &["--json", "deny", "list"])
        .await
        .json()
        .unwrap();
    assert_eq!(listed[0]["target"], target.as_str(), "{listed:#}");
    assert_eq!(listed[0]["reason"], "CVE-2099-1");
    assert!(
        !listed[0]["by"].as_str().unwrap_or("").is_empty(),
        "{listed:#}"
    );
    // The operator action is in the audit trail of the node that took it, once.
    let log = std::fs::read_to_string(cl.node(3).log_path()).unwrap();
    let denies: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "admin" && v["action"] == "deny")
        .collect();
    assert_eq!(denies.len(), 1, "{denies:#?}");
    assert_eq!(denies[0]["result"], "ok", "{denies:#?}");
    let line = denies[0].to_string();
    assert!(
        line.contains(&target) && line.contains("CVE-2099-1"),
        "{line}"
    );
    assert!(
        !denies[0]["identity"].as_str().unwrap_or("").is_empty(),
        "{line}"
    );
    let route = cli_ok(&cl, &["route", &module]).await;
    assert!(route.stdout.contains("CVE-2099-1"), "{}", route.stdout);

    // Bad input is refused with a clear message and changes nothing.
    let bad = cl.cli(&["deny", "bad[", "--reason", "x"]).await.unwrap();
    assert_ne!(bad.code, Some(0));
    assert!(bad.stderr.contains("bad pattern"), "{bad}");
    let bad = cl
        .cli(&["deny", &mv(&module, "latest"), "--reason", "x"])
        .await
        .unwrap();
    assert!(bad.stderr.contains("bad version"), "{bad}");
    let listed = cli_ok(&cl, &["--json", "deny", "list"])
        .await
        .json()
        .unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed:#}");

    // Lifting restores it.
    cli_ok(&cl, &["deny", "--lift", &target]).await;
    wait_status_everywhere(&cl, &module, "v1.2.0", 200).await;
    let env = GoEnv::new(&go, &cl.url(1)).unwrap();
    assert_eq!(
        env.list_versions(&module).await.unwrap(),
        ["v1.0.0", "v1.1.0", "v1.2.0"]
    );

    // A module-wide rule (a glob) takes the list and @latest too.
    cli_ok(
        &cl,
        &["deny", "example.com/gen/*", "--reason", "vendor breach"],
    )
    .await;
    for id in cl.ids() {
        let list = format!("/{module}/@v/list");
        let what = format!("node {id} to refuse {list}");
        wait_until(what, patience(4.0), || {
            let list = list.clone();
            let cl = &cl;
            async move { status(cl, id, &list).await.0 == 410 }
        })
        .await
        .unwrap();
        assert_eq!(status(&cl, id, &format!("/{module}/@latest")).await.0, 410);
    }
    wait_status_everywhere(&cl, &module, "v1.0.0", 410).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_deny_status_403_is_configurable() {
    let fx = fixture().await;
    let config = ClusterConfig::fast().set("policy", "deny_status", 403);
    let cl = start(3, &fx.url(), &config).await;
    let module = gen_module(2);
    warm(&cl.url(1), &[(module.clone(), "v1.0.0".to_string())]).await;
    cli_ok(&cl, &["deny", &mv(&module, "v1.0.0"), "--reason", "policy"]).await;
    wait_status_everywhere(&cl, &module, "v1.0.0", 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_purge_removes_blobs_and_is_not_refilled_until_lifted() {
    let Some(go) = go("operator_purge") else {
        return;
    };
    let fx = fixture().await;
    let cl = start(3, &fx.url(), &ClusterConfig::fast()).await;
    let module = gen_module(1);
    let version = "v1.0.0";
    let entry = corpus().entry(&module, version);
    let sha = entry.zip_sha256.clone();
    warm(&cl.url(1), &[(module.clone(), version.to_string())]).await;
    cl.wait_blobs_everywhere(&BTreeSet::from([sha.clone()]))
        .await
        .unwrap();
    fx.reset_log();

    let target = mv(&module, version);
    let out = cli_ok(&cl, &["purge", &target, "--reason", "malware in init()"]).await;
    assert!(out.stdout.contains("purged"), "{out}");
    for id in cl.ids() {
        let path = cl.blob_path(id, &sha);
        wait_until(
            format!("node {id} to delete {}", path.display()),
            patience(4.0),
            || {
                let gone = !path.exists();
                async move { gone }
            },
        )
        .await
        .unwrap();
    }
    // A fill that raced the purge may leave the zip on a disk: it is deleted too.
    let raced = cl.blob_path(2, &sha);
    std::fs::create_dir_all(raced.parent().unwrap()).unwrap();
    std::fs::write(&raced, b"written by a fill that raced the purge").unwrap();
    wait_until("node 2 to delete the raced zip", patience(4.0), || {
        let gone = !raced.exists();
        async move { gone }
    })
    .await
    .unwrap();
    wait_status_everywhere(&cl, &module, version, 410).await;
    let (_, body) = status(&cl, 3, &version_path(&module, version, "mod")).await;
    assert!(body.contains("malware in init()"), "{body}");
    // Asking again, through every node, never reaches the upstream.
    for id in cl.ids() {
        for ext in EXTS {
            assert_eq!(
                status(&cl, id, &version_path(&module, version, ext))
                    .await
                    .0,
                410
            );
        }
    }
    // The go command sees neither the version in lists nor a way to download it.
    for id in cl.ids() {
        let env = GoEnv::new(&go, &cl.url(id)).unwrap();
        assert_eq!(
            env.list_versions(&module).await.unwrap(),
            ["v1.1.0", "v1.2.0"],
            "go list -m -versions through node {id}"
        );
        let (got, out) = env
            .mod_download(std::slice::from_ref(&target))
            .await
            .unwrap();
        assert!(!out.success, "go mod download of a purged version: {out:?}");
        let said = format!("{got:?} {}", out.stderr);
        assert!(said.contains("410"), "node {id}: {said}");
    }
    let fetched: Vec<_> = fx
        .requests()
        .into_iter()
        .filter(|r| r.path.contains(&format!("@v/{version}.")))
        .collect();
    assert!(
        fetched.is_empty(),
        "tombstoned version fetched: {fetched:?}"
    );
    let listed = cli_ok(&cl, &["--json", "purge", "list"])
        .await
        .json()
        .unwrap();
    assert_eq!(listed[0]["target"], target.as_str(), "{listed:#}");

    // Unknown versions and malformed input are refused; the state is untouched.
    let bad = cl
        .cli(&["purge", &mv(&module, "v9.9.9"), "--reason", "x"])
        .await
        .unwrap();
    assert!(bad.stderr.contains("not held"), "{bad}");
    let bad = cl.cli(&["purge", &module, "--reason", "x"]).await.unwrap();
    assert_ne!(bad.code, Some(0), "{bad}");
    let listed = cli_ok(&cl, &["--json", "purge", "list"])
        .await
        .json()
        .unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed:#}");

    // Lifted: the next request refills it from the upstream, once, with the same hashes.
    cli_ok(&cl, &["purge", "--lift", &target]).await;
    let info = version_path(&module, version, "info");
    wait_until("node 2 to serve the lifted version", patience(4.0), || {
        let (cl, info) = (&cl, info.clone());
        async move { status(cl, 2, &info).await.0 == 200 }
    })
    .await
    .unwrap();
    let env = GoEnv::new(&go, &cl.url(2)).unwrap();
    let got = env
        .mod_download_ok(std::slice::from_ref(&target))
        .await
        .unwrap();
    assert_eq!(got[0].sum, entry.zip_h1);
    assert_eq!(got[0].go_mod_sum, entry.mod_h1);
    let zip_path = version_path(&module, version, "zip");
    assert_eq!(fx.count(&zip_path), 1, "{}", fx.log_tail(20));
    wait_status_everywhere(&cl, &module, version, 200).await;
    cl.wait_blobs_everywhere(&BTreeSet::from([sha]))
        .await
        .unwrap();
}

/// Every line of `/index` on node `id`, paged `limit` at a time like an index.golang.org
/// follower: `since` = the last line's Timestamp (inclusive), dropping that line once.
async fn feed(cl: &TestCluster, id: u64, limit: usize) -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> = Vec::new();
    let mut since: Option<String> = None;
    loop {
        let q = match &since {
            Some(s) => format!("/index?since={s}&limit={limit}"),
            None => format!("/index?limit={limit}"),
        };
        let (code, body) = status(cl, id, &q).await;
        assert_eq!(code, 200, "{q}: {body}");
        let mut page: Vec<serde_json::Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{q}: {l}: {e}")))
            .collect();
        if out.last().is_some() && page.first() == out.last() {
            page.remove(0);
        }
        let Some(last) = page.last() else { return out };
        since = Some(last["Timestamp"].as_str().unwrap().to_string());
        out.extend(page);
    }
}

/// An RFC 3339 UTC timestamp (`…:52Z`, `…:52.5Z`, `…:52.997264Z`: Go's `RFC3339Nano`
/// trims the fraction, so the strings themselves do not sort) as a sortable key.
fn stamp(ts: &str) -> (String, u64) {
    let t = ts
        .strip_suffix('Z')
        .unwrap_or_else(|| panic!("not UTC: {ts}"));
    let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
    assert!(
        frac.len() <= 9 && frac.bytes().all(|b| b.is_ascii_digit()),
        "{ts}"
    );
    let nanos = format!("{frac:0<9}").parse().unwrap();
    (secs.to_string(), nanos)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_index_pages_in_commit_order_on_every_node_and_across_restarts() {
    let fx = fixture().await;
    let mut cl = start(3, &fx.url(), &ClusterConfig::fast()).await;
    let versions: Vec<(String, String)> = (3..9)
        .flat_map(|i| ["v1.0.0", "v1.1.0"].map(|v| (gen_module(i), v.to_string())))
        .collect();
    for chunk in versions.chunks(4) {
        warm(&cl.url(1), chunk).await;
    }
    cl.wait_converged().await.unwrap();
    let first = feed(&cl, 1, 3).await;
    let held: BTreeSet<String> = first
        .iter()
        .map(|l| mv(l["Path"].as_str().unwrap(), l["Version"].as_str().unwrap()))
        .collect();
    let want: BTreeSet<String> = versions.iter().map(|(m, v)| mv(m, v)).collect();
    assert_eq!(held, want, "every version exactly once");
    // The chunks were committed one after the other: the feed keeps that order.
    let chunk_of = |l: &serde_json::Value| {
        let key = (
            l["Path"].as_str().unwrap().to_string(),
            l["Version"].as_str().unwrap().to_string(),
        );
        versions.iter().position(|x| *x == key).unwrap() / 4
    };
    let chunks: Vec<usize> = first.iter().map(chunk_of).collect();
    assert!(
        chunks.windows(2).all(|w| w[0] <= w[1]),
        "commit order: {chunks:?}"
    );
    assert_eq!(first.len(), want.len(), "no duplicates: {first:#?}");
    let stamps: Vec<(String, u64)> = first
        .iter()
        .map(|l| stamp(l["Timestamp"].as_str().unwrap()))
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        stamps, sorted,
        "timestamps strictly increase in commit order"
    );
    for id in [2, 3] {
        assert_eq!(
            feed(&cl, id, 3).await,
            first,
            "node {id} serves the same feed"
        );
    }
    assert_eq!(feed(&cl, 1, 2000).await, first, "one big page is the same");
    cl.kill9(2).await;
    cl.restart(2).await.unwrap();
    cl.wait_caught_up(2).await.unwrap();
    assert_eq!(feed(&cl, 2, 4).await, first, "the same after a restart");

    // Versions committed after the restart continue the feed where a follower left off.
    let later: Vec<(String, String)> = (9..11)
        .map(|i| (gen_module(i), "v1.0.0".to_string()))
        .collect();
    warm(&cl.url(2), &later).await;
    cl.wait_converged().await.unwrap();
    let last = first.last().unwrap()["Timestamp"].as_str().unwrap();
    let (code, body) = status(&cl, 3, &format!("/index?since={last}")).await;
    assert_eq!(code, 200, "{body}");
    let next: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(next.first(), first.last(), "since is inclusive: {body}");
    let new: BTreeSet<String> = next[1..]
        .iter()
        .map(|l| mv(l["Path"].as_str().unwrap(), l["Version"].as_str().unwrap()))
        .collect();
    let want_new: BTreeSet<String> = later.iter().map(|(m, v)| mv(m, v)).collect();
    assert_eq!(new, want_new, "exactly the later versions: {body}");
    let mut all = first.clone();
    all.extend(next[1..].iter().cloned());
    for id in cl.ids() {
        assert_eq!(feed(&cl, id, 5).await, all, "node {id}: the whole feed");
    }
    for bad in [
        "/index?since=yesterday",
        "/index?limit=0",
        "/index?limit=x",
        "/index?page=2",
    ] {
        let (code, body) = status(&cl, 1, bad).await;
        assert_eq!(code, 400, "{bad}: {body}");
    }
}
