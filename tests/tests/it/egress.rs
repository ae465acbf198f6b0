//! cairn on a corporate network (issue 9): an upstream whose certificate is signed by a CA that
//! exists only in a file, as behind a TLS-inspecting gateway, and an HTTP CONNECT proxy as the
//! only way out. Without the CA every answer names the host, the verification error and the
//! settings that fix it — also after the breaker's threshold; with the CA in `SSL_CERT_FILE` or
//! `egress.extra_ca_file` the go command gets the corpus's hashes; proxies from the environment
//! and the config file carry the traffic, `NO_PROXY` exempts hosts; git over HTTPS trusts the
//! same CA; `--check-upstream` prints the fix and exits non-zero.

use std::process::Stdio;

use cairn_tests::corpus::m;
use cairn_tests::fixture::Fixture;
use cairn_tests::gitcorpus::{GitCorpus, PRIVATE_PATTERN};
use cairn_tests::githttp::GitServer;
use cairn_tests::gocmd::{go, Go, GoEnv};
use cairn_tests::node::{node_bin, CairnNode, NodeOptions};
use cairn_tests::tls::TestCa;
use cairn_tests::tunnel::ConnectProxy;

use crate::common::{assert_maps_eq, corpus, expected_sums, get, sums, FAST_UPSTREAM};
use crate::direct::direct_env;
use crate::direct_cairn::link_dot_git;

/// Module versions downloaded in every scenario.
fn picks() -> Vec<String> {
    [
        (m::SIMPLE, "v1.0.0"),
        (m::UPPER, m::UPPER_RC),
        (m::PSEUDO, m::PSEUDO_VERSION),
    ]
    .iter()
    .map(|(m, v)| format!("{m}@{v}"))
    .collect()
}

/// No checksum database: these tests are about the transport.
const NO_SUMDB: &str = "[sumdb]\ndatabases = []\n";

async fn start(upstream: &str, config: &str, env: &[(&str, Option<&str>)]) -> CairnNode {
    let mut opts = NodeOptions::new(upstream).config(&format!("{FAST_UPSTREAM}{NO_SUMDB}{config}"));
    for (k, v) in env {
        opts = opts.env(k, *v);
    }
    CairnNode::start(opts)
        .await
        .unwrap_or_else(|e| panic!("starting cairn-node: {e:#}"))
}

/// The go command downloads [`picks`] through `node` with the corpus's hashes.
async fn assert_go_downloads(go: &Go, node: &CairnNode, what: &str) {
    let env = GoEnv::new(go, &node.url()).unwrap();
    let got = env
        .mod_download_ok(&picks())
        .await
        .unwrap_or_else(|e| panic!("{what}: {e:#}"));
    let all = expected_sums(corpus());
    let want = picks()
        .into_iter()
        .map(|k| (k.clone(), all[&k].clone()))
        .collect();
    assert_maps_eq(what, &want, &sums(&got));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r9_private_ca_in_ssl_cert_file_or_extra_ca_file_and_a_clear_error_without() {
    let Some(go) = go("r9_private_ca_in_ssl_cert_file_or_extra_ca_file_and_a_clear_error_without")
    else {
        return;
    };
    let ca = TestCa::new().unwrap();
    let upstream = Fixture::start_with_tls(Some(&corpus().root), Some(&ca))
        .await
        .unwrap();
    let host = upstream.addr().ip().to_string();

    let untrusting = start(&upstream.url(), "", &[]).await;
    // More requests than the breaker's threshold (5): every one still names the cause.
    for i in 0..8 {
        let resp = get(&untrusting, &format!("/{}/@v/list", m::SIMPLE)).await;
        let body = resp.text();
        assert_eq!(resp.status, 502, "request {i}: {body}");
        for want in [
            host.as_str(),
            "UnknownIssuer",
            "SSL_CERT_FILE",
            "egress.extra_ca_file",
        ] {
            assert!(
                body.contains(want),
                "request {i}: {want:?} missing from {body:?}"
            );
        }
    }
    assert_eq!(upstream.total(), 0, "no request got past the TLS handshake");

    let bundle = ca.bundle_with_system_roots().unwrap();
    let env_node = start(
        &upstream.url(),
        "",
        &[("SSL_CERT_FILE", Some(bundle.to_str().unwrap()))],
    )
    .await;
    assert_go_downloads(&go, &env_node, "SSL_CERT_FILE with the private CA").await;

    let extra = format!("[egress]\nextra_ca_file = {:?}\n", ca.ca_file());
    let config_node = start(&upstream.url(), &extra, &[]).await;
    assert_go_downloads(&go, &config_node, "egress.extra_ca_file").await;
}

/// Runs `cairn-node --check-upstream` with `config`; returns (exit ok, stdout).
async fn check_upstream(upstream: &str, config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, format!("{NO_SUMDB}{config}")).unwrap();
    let out = tokio::process::Command::new(node_bin())
        .arg("--check-upstream")
        .arg("--upstream")
        .arg(upstream)
        .arg("--config")
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("NO_PROXY", "*")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r9_check_upstream_prints_what_fails_with_the_fix() {
    let ca = TestCa::new().unwrap();
    let upstream = Fixture::start_with_tls(Some(&corpus().root), Some(&ca))
        .await
        .unwrap();
    let dead = "http://127.0.0.1:9";
    let (ok, out) = check_upstream(&format!("{},{dead}", upstream.url()), "").await;
    assert!(!ok, "exit status must say it failed:\n{out}");
    let fail_lines = out.lines().filter(|l| l.starts_with("FAIL")).count();
    assert_eq!(fail_lines, 2, "{out}");
    assert!(
        out.contains("UnknownIssuer") && out.contains("egress.extra_ca_file"),
        "{out}"
    );
    assert!(out.contains("2 checked, 2 failed"), "{out}");

    let extra = format!("[egress]\nextra_ca_file = {:?}\n", ca.ca_file());
    let (ok, out) = check_upstream(&upstream.url(), &extra).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("1 checked, 0 failed") && out.contains("extra_ca_file="),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r9_connect_proxy_from_env_or_config_and_no_proxy_exemptions() {
    let Some(go) = go("r9_connect_proxy_from_env_or_config_and_no_proxy_exemptions") else {
        return;
    };
    let ca = TestCa::new().unwrap();
    let upstream = Fixture::start_with_tls(Some(&corpus().root), Some(&ca))
        .await
        .unwrap();
    let proxy = ConnectProxy::start().await.unwrap();
    let target = upstream.addr().to_string();
    let extra = format!("[egress]\nextra_ca_file = {:?}\n", ca.ca_file());

    let via_env = start(
        &upstream.url(),
        &extra,
        &[("HTTPS_PROXY", Some(&proxy.url())), ("NO_PROXY", None)],
    )
    .await;
    assert_go_downloads(&go, &via_env, "through HTTPS_PROXY").await;
    let tunnels = proxy.seen();
    assert!(
        !tunnels.is_empty() && tunnels.iter().all(|t| *t == target),
        "{tunnels:?}"
    );

    let config_proxy = format!("{extra}https_proxy = \"{}\"\n", proxy.url());
    let via_config = start(&upstream.url(), &config_proxy, &[("NO_PROXY", None)]).await;
    let before = proxy.seen().len();
    assert_go_downloads(&go, &via_config, "through egress.https_proxy").await;
    assert!(
        proxy.seen().len() > before,
        "egress.https_proxy was not used"
    );

    let exempt = start(
        &upstream.url(),
        &extra,
        &[
            ("HTTPS_PROXY", Some(&proxy.url())),
            ("NO_PROXY", Some("localhost,127.0.0.1")),
        ],
    )
    .await;
    let before = proxy.seen().len();
    assert_go_downloads(&go, &exempt, "NO_PROXY exempts 127.0.0.1").await;
    assert_eq!(
        proxy.seen().len(),
        before,
        "NO_PROXY host went through the proxy"
    );

    let dead_proxy = format!("{extra}https_proxy = \"http://127.0.0.1:9\"\n");
    let broken = start(&upstream.url(), &dead_proxy, &[("NO_PROXY", None)]).await;
    let resp = get(&broken, &format!("/{}/@v/list", m::SIMPLE)).await;
    assert_eq!(resp.status, 502, "{}", resp.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r9_direct_git_over_https_trusts_the_private_ca_and_goes_through_the_proxy() {
    let Some(go) = go("r9_direct_git_over_https_trusts_the_private_ca_and_goes_through_the_proxy")
    else {
        return;
    };
    let corpus = GitCorpus::build().unwrap();
    link_dot_git(&corpus.root());
    let ca = TestCa::new().unwrap();
    let plain = GitServer::start(&corpus.root()).await.unwrap();
    let https = GitServer::start_with_tls(&corpus.root(), Some(&ca))
        .await
        .unwrap();
    let proxy = ConnectProxy::start().await.unwrap();
    let mvs: Vec<String> = corpus
        .modules
        .iter()
        .take(3)
        .filter_map(|m| {
            m.downloads
                .first()
                .map(|d| format!("{}@{}", m.path, d.version))
        })
        .collect();
    let reference = direct_env(&go, &plain.url())
        .mod_download_ok(&mvs)
        .await
        .unwrap();

    let config = format!(
        "[[routes]]\nname = \"corp\"\npatterns = \"{PRIVATE_PATTERN}\"\nupstream = \"direct\"\n\n\
         [egress]\nextra_ca_file = {:?}\nhttps_proxy = \"{}\"\n\n\
         [direct]\ncommand_timeout_secs = 60\n\n\
         [[direct.hosts]]\nprefix = \"{}/{}\"\nurl = \"{}/{}\"\n",
        ca.ca_file(),
        proxy.url(),
        cairn_tests::gitcorpus::HOST,
        cairn_tests::gitcorpus::TEAM,
        https.url(),
        cairn_tests::gitcorpus::TEAM,
    );
    // The proxy comes from the config file, so git can only know it from cairn.
    let node = start("off", &config, &[("NO_PROXY", None)]).await;
    let through = GoEnv::new(&go, &node.url())
        .unwrap()
        .with_nosumdb(PRIVATE_PATTERN)
        .mod_download_ok(&mvs)
        .await
        .unwrap();
    assert_maps_eq(
        "git over https through cairn",
        &sums(&reference),
        &sums(&through),
    );
    assert!(https.total() > 0, "the https git server was not used");
    assert!(
        proxy.seen().iter().any(|t| *t == https.addr().to_string()),
        "git did not use the proxy: {:?}",
        proxy.seen()
    );
}
