//! The address guard in discovery: module paths, names, go-import repository URLs and redirects
//! that lead to loopback, link-local or private addresses are refused before anything is sent,
//! unless `direct.allow_networks` allows them; mapped and `resolve` hosts stay trusted.

use super::*;
use crate::direct::netguard::NetGuard;

/// A discovery whose `corp.example` is `server` (trusted: `resolve`), with `extra` config and
/// the name `rebind.example` answering with `server`'s loopback address, as a rebinding DNS
/// server would.
fn guarded(server: &PageServer, extra: &str) -> Discovery {
    let cfg: DirectConfig = toml::from_str(&format!(
        "insecure = \"corp.example,rebind.example\"\n{extra}"
    ))
    .unwrap();
    assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
    let mut opts = DiscoveryOptions::new(&cfg, Duration::from_secs(5));
    opts.resolve = vec![("corp.example".to_owned(), server.addr)];
    opts.system_proxy = false;
    opts.guard = Arc::new(NetGuard::new(&cfg).fixed_answer("rebind.example", vec![server.addr]));
    Discovery::with_options(&cfg, Arc::new(Credentials::none()), opts).unwrap()
}

fn assert_refused(result: Result<RepoRoot, DiscoverError>, what: &str, addr: &str) {
    match result {
        Err(DiscoverError::Refused { refused, .. }) => {
            assert_eq!(refused.addr.to_string(), addr, "{what}");
            let msg = refused.to_string();
            assert!(msg.starts_with("discovery refused: "), "{msg}");
            assert!(msg.ends_with("allow it with direct.allow_networks if this is intended"));
        }
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn module_paths_naming_internal_addresses_are_refused() {
    let d = offline("insecure = \"*\"");
    for (module, addr) in [
        ("127.0.0.1/x", "127.0.0.1"),
        ("169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("10.1.2.3/x", "10.1.2.3"),
        ("100.64.0.1/x", "100.64.0.1"),
        // The URL parser's shorthand and hex forms are the same addresses.
        ("127.1/x", "127.0.0.1"),
        ("0x7f.0.0.1/x", "127.0.0.1"),
    ] {
        assert_refused(d.repo_root(module).await, module, addr);
    }
    // The `.git` rule reaches its host without a page: checked too.
    assert_refused(d.repo_root("127.0.0.1/x.git").await, "x.git", "127.0.0.1");
    let allowed = offline("allow_networks = [\"10.0.0.0/8\"]");
    assert_eq!(
        allowed.repo_root("10.1.2.3/x.git").await.unwrap().url,
        "https://10.1.2.3/x"
    );
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_unless_allowed() {
    let s = PageServer::start(|_| ok(page(&["rebind.example/x git https://git.example/x"]))).await;
    let err = guarded(&s, "").repo_root("rebind.example/x").await;
    assert_refused(err, "rebind.example", "127.0.0.1");
    assert!(s.targets().is_empty(), "{:?}", s.targets());
    // The same setup with loopback allowed reaches the server.
    let got = guarded(&s, "allow_networks = [\"127.0.0.0/8\"]")
        .repo_root("rebind.example/x")
        .await
        .unwrap();
    assert_eq!(got.url, "https://git.example/x");
    assert_eq!(s.targets(), vec!["/x?go-get=1"]);
}

#[tokio::test]
async fn go_import_pages_naming_internal_repositories_are_refused() {
    let s = PageServer::start(|target| {
        let content = match target {
            t if t.starts_with("/meta") => "corp.example/meta git http://169.254.169.254/latest",
            t if t.starts_with("/private") => "corp.example/private git https://10.1.2.3/r",
            t if t.starts_with("/v6") => "corp.example/v6 git https://[::1]/r",
            _ => "corp.example/ssh git ssh://git@127.0.0.1/r",
        };
        ok(page(&[content]))
    })
    .await;
    let d = guarded(&s, "");
    for (module, addr) in [
        ("corp.example/meta", "169.254.169.254"),
        ("corp.example/private", "10.1.2.3"),
        ("corp.example/v6", "::1"),
        ("corp.example/ssh", "127.0.0.1"),
    ] {
        assert_refused(d.repo_root(module).await, module, addr);
    }
    let allowed = guarded(&s, "allow_networks = [\"10.0.0.0/8\"]");
    assert_eq!(
        allowed.repo_root("corp.example/private").await.unwrap().url,
        "https://10.1.2.3/r"
    );
    assert_refused(
        allowed.repo_root("corp.example/meta").await,
        "meta",
        "169.254.169.254",
    );
}

#[tokio::test]
async fn redirects_to_internal_addresses_are_refused() {
    let s = PageServer::start(|_| ok(page(&["corp.example/x git https://git.example/x"]))).await;
    let port = s.addr.port();
    let r = PageServer::start(move |target| {
        let to = if target.starts_with("/literal") {
            format!("http://127.0.0.1:{port}/landing?go-get=1")
        } else {
            format!("http://rebind.example:{port}/landing?go-get=1")
        };
        (302, vec![("location", to)], String::new())
    })
    .await;
    // `r` redirects to `s` by its literal address, or by a name that resolves to it.
    let d = guarded(&r, "");
    assert_refused(
        d.repo_root("corp.example/literal").await,
        "literal",
        "127.0.0.1",
    );
    let d = {
        let cfg: DirectConfig =
            toml::from_str("insecure = \"corp.example,rebind.example\"").unwrap();
        let mut opts = DiscoveryOptions::new(&cfg, Duration::from_secs(5));
        opts.resolve = vec![("corp.example".to_owned(), r.addr)];
        opts.system_proxy = false;
        opts.guard = Arc::new(NetGuard::new(&cfg).fixed_answer("rebind.example", vec![s.addr]));
        Discovery::with_options(&cfg, Arc::new(Credentials::none()), opts).unwrap()
    };
    assert_refused(d.repo_root("corp.example/name").await, "name", "127.0.0.1");
    assert!(s.targets().is_empty(), "{:?}", s.targets());
    assert_eq!(r.targets(), vec!["/literal?go-get=1", "/name?go-get=1"]);
}

#[tokio::test]
async fn operator_mappings_and_resolve_hosts_stay_trusted() {
    let d = offline(
        "[[hosts]]\nprefix = \"corp.example\"\nurl = \"http://127.0.0.1:9\"\n\n\
         [[hosts]]\nprefix = \"meta.example\"\nurl = \"http://169.254.169.254\"\n",
    );
    assert_eq!(
        d.repo_root("corp.example/r").await.unwrap().url,
        "http://127.0.0.1:9/r"
    );
    assert!(d.repo_root("meta.example/r").await.is_ok());
    // `resolve` pins corp.example to loopback: discovery reaches it (every other test here
    // relies on that too).
    let s = PageServer::start(|_| ok(page(&["corp.example/r git https://git.example/r"]))).await;
    assert!(guarded(&s, "").repo_root("corp.example/r").await.is_ok());
}
