//! Static tokens: `.netrc` with the go command, the group rule in front of a recording upstream,
//! and rotation of the tokens file.

use cairn_tests::corpus::m;
use cairn_tests::gocmd::go;
use cairn_tests::h1::{latest_path, list_path, version_path};
use cairn_tests::wait::{patience, wait_until};

use super::{assert_401, expected, write_netrc, write_tokens, Token, World};
use crate::common::{assert_maps_eq, assert_zip_body, corpus, sums};

#[tokio::test]
async fn netrc_tokens_let_go_download_and_wrong_ones_get_401() {
    let Some(go) = go("netrc_tokens_let_go_download_and_wrong_ones_get_401") else {
        return;
    };
    let w = World::start().await;
    let mvs = vec![
        format!("{}@v1.0.0", m::SIMPLE),
        format!("{}@{}", m::UPPER, m::UPPER_RC),
        format!("{}@v2.1.0", m::MODV2),
    ];
    let env = w.go_env(&go);
    write_netrc(&w, &env, &w.pat.name, &w.pat.secret);
    let got = sums(&env.mod_download_ok(&mvs).await.unwrap());
    assert_maps_eq("go mod download with pat's .netrc", &expected(&mvs), &got);

    // olga is authenticated: everything outside the private pattern is hers to read.
    let env = w.go_env(&go);
    write_netrc(&w, &env, &w.olga.name, &w.olga.secret);
    let public = vec![format!("{}@v1.1.0", m::SIMPLE)];
    let got = sums(&env.mod_download_ok(&public).await.unwrap());
    assert_maps_eq(
        "go mod download with olga's .netrc",
        &expected(&public),
        &got,
    );

    let env = w.go_env(&go);
    write_netrc(&w, &env, &w.pat.name, &format!("{}x", w.pat.secret));
    // Without -json, as a developer runs it: the error goes to stderr.
    let target = format!("{}@v1.2.0", m::SIMPLE);
    let out = env
        .run(&env.workdir(), &["mod", "download", &target])
        .await
        .unwrap();
    assert!(!out.success, "a wrong password downloaded: {}", out.stdout);
    assert!(
        out.stderr.contains("401 Unauthorized") && out.stderr.contains("wrong login or token"),
        "the go command should show the 401 and why:\n{}",
        out.stderr
    );

    let anonymous = w
        .get(&version_path(m::SIMPLE, "v1.0.0", "info"), None)
        .await;
    assert_401(&anonymous, "no credentials");
    assert!(anonymous.text().contains(".netrc"), "{}", anonymous.text());
}

// === 2. group rule, recording upstream ===

#[tokio::test]
async fn group_rule_refuses_others_alike_and_never_asks_upstream() {
    let w = World::start().await;
    let (rc, olga) = (m::UPPER_RC, w.olga.basic());
    let existing = [
        version_path(m::UPPER, rc, "info"),
        version_path(m::UPPER, rc, "zip"),
        list_path(m::UPPER),
        latest_path(m::UPPER),
    ];
    let missing = [
        version_path(m::UPPER, "v9.9.9", "zip"),
        version_path("example.com/Upper/Nothing", "v1.0.0", "info"),
        list_path("example.com/Upper/Nothing"),
    ];
    let refused = |label: &'static str| {
        let (w, olga) = (&w, &olga);
        let paths = existing.iter().chain(&missing);
        async move {
            let mut bodies = Vec::new();
            for path in paths {
                let r = w.get(path, Some(olga)).await;
                assert_eq!(r.status, 403, "{label}: olga {path}: {}", r.text());
                bodies.push((path.clone(), r.text()));
            }
            bodies
        }
    };
    let before = refused("before any fill").await;
    let anonymous = w.get(&existing[1], None).await;
    assert_401(&anonymous, "anonymous on the private pattern");
    let asked: Vec<String> = w
        .upstream
        .requests()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| p.to_ascii_lowercase().contains("upper"))
        .collect();
    assert!(
        asked.is_empty(),
        "refused paths reached the upstream: {asked:?}"
    );

    // The group member reads it, and learns what exists; the upstream records the fill.
    let pat = w.pat.basic();
    let zip = w.get(&existing[1], Some(&pat)).await;
    assert_zip_body(&zip, corpus(), m::UPPER, rc);
    // What needed credentials must not be stored by a shared cache for others.
    assert!(
        zip.header("cache-control").starts_with("private"),
        "{:?}",
        zip.header("cache-control")
    );
    assert_eq!(zip.header("vary"), "Authorization");
    // Letter case does not get past the rule (git hosts resolve paths case-insensitively).
    let shouted = existing[1].replacen("!upper", "!u!p!p!e!r", 1);
    assert_ne!(shouted, existing[1], "{}", existing[1]);
    let r = w.get(&shouted, Some(&w.olga.basic())).await;
    assert_eq!(r.status, 403, "{shouted}: {}", r.text());
    assert_eq!(w.get(&missing[0], Some(&pat)).await.status, 404);
    assert!(
        w.upstream.count(&existing[1]) > 0,
        "{}",
        w.upstream.log_tail(20)
    );

    // Now that it is cached, olga is still refused, with the same words.
    let after = refused("after the fill").await;
    let body = &before[0].1;
    assert_eq!(body, "forbidden: olga may not read this path\n");
    for (path, text) in before.iter().chain(&after) {
        assert_eq!(text, body, "{path}: the 403 body differs");
    }
}

#[tokio::test]
async fn a_rewritten_tokens_file_takes_effect_without_a_restart() {
    let w = World::start().await;
    let list = list_path(m::SIMPLE);
    let nina = Token::new("nina", &[]);
    assert_eq!(w.get(&list, Some(&w.olga.basic())).await.status, 200);
    assert_401(
        &w.get(&list, Some(&nina.basic())).await,
        "nina before rotation",
    );
    let pid = w.node.pid();

    write_tokens(&w.tokens_file(), &[&w.pat, &nina]);
    let (olga, nina_auth) = (w.olga.basic(), nina.basic());
    wait_until(
        "olga's token refused and nina's accepted",
        patience(1.0),
        || {
            let (w, olga, nina, list) = (&w, &olga, &nina_auth, &list);
            async move {
                w.get(list, Some(olga)).await.status == 401
                    && w.get(list, Some(nina)).await.status == 200
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(
        w.get(&list, Some(&w.pat.basic())).await.status,
        200,
        "pat kept"
    );
    assert_eq!(w.get(&list, Some(&nina.bearer())).await.status, 200);
    assert_eq!(w.node.pid(), pid, "the node restarted");
    assert!(
        w.node.log().contains("tokens file reloaded"),
        "{}",
        w.node.log_tail(30)
    );
}
