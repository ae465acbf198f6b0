//! The discovery address guard end to end: a node whose default upstream is `direct` refuses
//! module paths, go-import pages and `.git` paths that lead to link-local, private or loopback
//! addresses with a 404 saying why, and still serves a repository on a network the operator
//! allowed (`direct.allow_networks`).

use cairn_tests::gitcorpus::GitCorpus;
use cairn_tests::githttp::GitServer;

use crate::common::{get, start_node, FAST_UPSTREAM};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_refuses_internal_addresses_unless_allowed() {
    let corpus = GitCorpus::build().unwrap();
    let server = GitServer::start(&corpus.root()).await.unwrap();
    let url = server.url();
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    server.add_go_import("corp.example/plain", "git", &format!("{url}/team/plain"));
    server.add_go_import("corp.example/meta", "git", "http://169.254.169.254/latest");
    server.add_go_import("corp.example/private", "git", "http://10.1.2.3/r");
    // corp.example is the local git server through `resolve` (trusted); only 127.0.0.1 itself
    // is allowed for the repositories its pages name.
    let config = format!(
        "{FAST_UPSTREAM}\n[direct]\nrefresh_min_secs = 0\ninsecure = \"corp.example\"\n\
         resolve = [\"corp.example={addr}\"]\nallow_networks = [\"127.0.0.1/32\"]\n"
    );
    let node = start_node("direct", &config).await;

    let allowed = get(&node, "/corp.example/plain/@v/list").await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    for (path, why) in [
        (
            "/corp.example/meta/@v/list",
            "169.254.169.254 is a link-local address",
        ),
        (
            "/corp.example/private/@v/list",
            "10.1.2.3 is a private address",
        ),
        (
            "/169.254.169.254/latest/@v/list",
            "169.254.169.254 is a link-local address",
        ),
        (
            "/127.0.0.2/x.git/@v/list",
            "127.0.0.2 is a loopback address",
        ),
    ] {
        let resp = get(&node, path).await;
        assert_eq!(resp.status, 404, "{path}: {}", resp.text());
        assert!(
            resp.text().contains(why) && resp.text().contains("direct.allow_networks"),
            "{path}: {}",
            resp.text()
        );
    }
}
