//! The `?go-get=1` step against a scripted server: tag matching, status codes, redirects,
//! URL checks, credentials, caching and timeouts.

use super::*;

#[tokio::test]
async fn exact_match() {
    let s = PageServer::start(|_| {
        ok(page(&[
            "corp.example/repo git https://git.corp.example/repo.git",
        ]))
    })
    .await;
    let d = discovery(&s);
    let got = d.repo_root("corp.example/repo").await.unwrap();
    assert_eq!(
        got,
        root("corp.example/repo", "https://git.corp.example/repo.git", "")
    );
    assert_eq!(s.targets(), vec!["/repo?go-get=1"]);
}

#[tokio::test]
async fn prefix_match_is_confirmed_at_the_root() {
    let s = PageServer::start(|_| {
        ok(page(&[
            "corp.example/repo git https://git.corp.example/repo.git subdir/go",
        ]))
    })
    .await;
    let d = discovery(&s);
    let got = d.repo_root("corp.example/repo/sub/v2").await.unwrap();
    assert_eq!(
        got,
        root(
            "corp.example/repo",
            "https://git.corp.example/repo.git",
            "subdir/go"
        )
    );
    assert_eq!(s.targets(), vec!["/repo/sub/v2?go-get=1", "/repo?go-get=1"]);
}

#[tokio::test]
async fn prefix_page_must_agree() {
    let s = PageServer::start(|target| {
        if target.starts_with("/repo/sub") {
            ok(page(&[
                "corp.example/repo git https://evil.example/repo.git",
            ]))
        } else {
            ok(page(&[
                "corp.example/repo git https://git.corp.example/repo.git",
            ]))
        }
    })
    .await;
    let err = discovery(&s)
        .repo_root("corp.example/repo/sub")
        .await
        .unwrap_err();
    assert!(matches!(err, DiscoverError::BadMeta { .. }), "{err}");
    assert!(err.to_string().contains("disagree"), "{err}");
}

#[tokio::test]
async fn several_matching_tags_are_an_error() {
    let s = PageServer::start(|_| {
        ok(page(&[
            "corp.example/repo git https://a.example/repo.git",
            "corp.example/repo git https://b.example/repo.git",
            "corp.example/other git https://c.example/other.git",
        ]))
    })
    .await;
    let err = discovery(&s)
        .repo_root("corp.example/repo")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("multiple meta tags"), "{err}");
}

#[tokio::test]
async fn mod_entries_win_and_are_reported() {
    let s = PageServer::start(|_| {
        ok(page(&[
            "corp.example/repo git https://git.corp.example/repo.git",
            "corp.example/repo mod https://proxy.corp.example",
        ]))
    })
    .await;
    let err = discovery(&s)
        .repo_root("corp.example/repo")
        .await
        .unwrap_err();
    match err {
        DiscoverError::ModProxy { url, .. } => assert_eq!(url, "https://proxy.corp.example"),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn other_vcs_is_unsupported() {
    let s = PageServer::start(|_| ok(page(&["corp.example/repo hg https://hg.corp.example/repo"])))
        .await;
    let err = discovery(&s)
        .repo_root("corp.example/repo")
        .await
        .unwrap_err();
    assert!(
        matches!(err, DiscoverError::UnsupportedVcs { ref vcs, .. } if vcs == "hg"),
        "{err}"
    );
}

#[tokio::test]
async fn tags_after_head_are_ignored() {
    let s = PageServer::start(|_| {
        ok("<html><head><title>x</title></head><body>\
            <meta name=\"go-import\" content=\"corp.example/repo git https://x.example/r\">\
            </body></html>"
            .to_owned())
    })
    .await;
    let err = discovery(&s)
        .repo_root("corp.example/repo")
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn status_codes_decide_only_without_tags() {
    let s = PageServer::start(|target| match target {
        t if t.starts_with("/found404") => (
            404,
            Vec::new(),
            page(&["corp.example/found404 git https://git.corp.example/f.git"]),
        ),
        t if t.starts_with("/gone") => (410, Vec::new(), "gone".to_owned()),
        t if t.starts_with("/broken") => (503, Vec::new(), "busy".to_owned()),
        _ => ok("<html><head></head></html>".to_owned()),
    })
    .await;
    let d = discovery(&s);
    assert_eq!(
        d.repo_root("corp.example/found404").await.unwrap().url,
        "https://git.corp.example/f.git"
    );
    let gone = d.repo_root("corp.example/gone").await.unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
    let broken = d.repo_root("corp.example/broken").await.unwrap_err();
    assert!(
        broken.is_retryable() && broken.to_string().contains("503"),
        "{broken}"
    );
    let empty = d.repo_root("corp.example/empty").await.unwrap_err();
    assert!(
        empty.is_not_found() && empty.to_string().contains("no go-import meta tags"),
        "{empty}"
    );
}

#[tokio::test]
async fn redirects_are_followed() {
    let s = PageServer::start(|target| {
        if target.starts_with("/old") {
            (
                302,
                vec![("location", "/new?go-get=1".to_owned())],
                String::new(),
            )
        } else {
            ok(page(&[
                "corp.example/old git https://git.corp.example/old.git",
            ]))
        }
    })
    .await;
    let got = discovery(&s).repo_root("corp.example/old").await.unwrap();
    assert_eq!(got.url, "https://git.corp.example/old.git");
    assert_eq!(s.targets(), vec!["/old?go-get=1", "/new?go-get=1"]);
}

#[tokio::test]
async fn bad_subdirs_and_urls_are_refused() {
    let s = PageServer::start(|target| {
        let content = match target {
            t if t.starts_with("/dotdot") => "corp.example/dotdot git https://x.example/r ../etc",
            t if t.starts_with("/file") => "corp.example/file git file:///etc/passwd",
            t if t.starts_with("/pw") => "corp.example/pw git https://u:hunter2@x.example/r",
            _ => "corp.example/plain git http://x.example/r",
        };
        ok(page(&[content]))
    })
    .await;
    let d = discovery(&s);
    for module in [
        "corp.example/dotdot",
        "corp.example/file",
        "corp.example/pw",
    ] {
        let err = d.repo_root(module).await.unwrap_err();
        assert!(
            matches!(err, DiscoverError::BadMeta { .. }),
            "{module}: {err}"
        );
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
    // Plain http is fine for an insecure path, refused otherwise.
    assert_eq!(
        d.repo_root("corp.example/plain").await.unwrap().url,
        "http://x.example/r"
    );
    assert!(offline("")
        .check_repo_url("corp.example/plain", "http://x.example/r")
        .is_err());
    assert!(offline("")
        .check_repo_url("m.example/x", "ssh://git@x.example/r")
        .is_ok());
}

#[tokio::test]
async fn credentials_are_sent_and_never_shown() {
    let s = PageServer::start(|_| (500, Vec::new(), "no".to_owned())).await;
    let cfg: DirectConfig = toml::from_str(
        "[[credentials]]\nhost = \"corp.example\"\nkind = \"bearer\"\nsecret_env = \"TOK\"\n",
    )
    .unwrap();
    let env = BTreeMap::from([("TOK".to_owned(), "s3cret-token".to_owned())]);
    let creds = Credentials::load_with(&cfg, Arc::new(env)).unwrap();
    let d = discovery_with(
        &s,
        "[[credentials]]\nhost = \"corp.example\"\nkind = \"bearer\"\nsecret_env = \"TOK\"\n",
        creds,
    );
    let err = d.repo_root("corp.example/repo").await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("s3cret"), "{err:?}");
    let seen = s.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].auth.as_deref(), Some("Bearer s3cret-token"));
}

#[tokio::test]
async fn answers_are_cached() {
    let s = PageServer::start(|target| {
        if target.starts_with("/repo") {
            ok(page(&[
                "corp.example/repo git https://git.corp.example/repo.git",
            ]))
        } else {
            (404, Vec::new(), String::new())
        }
    })
    .await;
    let d = discovery(&s);
    for _ in 0..3 {
        d.repo_root("corp.example/repo").await.unwrap();
        assert!(d
            .repo_root("corp.example/missing")
            .await
            .unwrap_err()
            .is_not_found());
    }
    assert_eq!(s.targets(), vec!["/repo?go-get=1", "/missing?go-get=1"]);

    // With caching off every call asks again.
    let cfg: DirectConfig = toml::from_str("insecure = \"corp.example\"").unwrap();
    let mut opts = DiscoveryOptions::new(&cfg, Duration::from_secs(5));
    opts.resolve = vec![("corp.example".to_owned(), s.addr)];
    opts.system_proxy = false;
    opts.success_ttl = Duration::ZERO;
    let d = Discovery::with_options(&cfg, Arc::new(Credentials::none()), opts).unwrap();
    d.repo_root("corp.example/repo").await.unwrap();
    d.repo_root("corp.example/repo").await.unwrap();
    assert_eq!(s.targets().len(), 4);
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let s = PageServer::start(|_| (404, Vec::new(), String::new())).await;
    let cfg: DirectConfig = toml::from_str("insecure = \"corp.example\"").unwrap();
    let mut opts = DiscoveryOptions::new(&cfg, Duration::from_secs(5));
    opts.resolve = vec![("corp.example".to_owned(), s.addr)];
    opts.system_proxy = false;
    opts.max_entries = 2;
    let d = Discovery::with_options(&cfg, Arc::new(Credentials::none()), opts).unwrap();
    for m in ["corp.example/a", "corp.example/b", "corp.example/c"] {
        d.repo_root(m).await.unwrap_err();
    }
    assert_eq!(d.cache.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn timeouts_are_retryable_failures() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let cfg: DirectConfig = toml::from_str("insecure = \"corp.example\"").unwrap();
    let mut opts = DiscoveryOptions::new(&cfg, Duration::from_millis(200));
    opts.resolve = vec![("corp.example".to_owned(), addr)];
    opts.system_proxy = false;
    let d = Discovery::with_options(&cfg, Arc::new(Credentials::none()), opts).unwrap();
    let err = d.repo_root("corp.example/slow").await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
}
