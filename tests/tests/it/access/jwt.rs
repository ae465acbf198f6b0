//! JWTs from the identity provider: as Bearer and as a Basic password, through a GOAUTH helper,
//! and the ways one can be wrong; `/whoami` for JWT and token identities.

use cairn_tests::corpus::m;
use cairn_tests::gocmd::go;
use cairn_tests::h1::{list_path, version_path};
use serde_json::{json, Value};

use super::{assert_401, basic, claims, expected, Idp, World, AUDIENCE, ISSUER, PAYMENTS};
use crate::common::{assert_maps_eq, assert_zip_body, corpus, sums};

#[tokio::test]
async fn jwts_from_the_idp_read_and_bad_ones_get_401() {
    let w = World::start().await;
    let zip = version_path(m::UPPER, m::UPPER_RC, "zip");
    let jwt = w.jwt("jay", &[PAYMENTS]);
    let bearer = format!("Bearer {jwt}");
    assert_zip_body(
        &w.get(&zip, Some(&bearer)).await,
        corpus(),
        m::UPPER,
        m::UPPER_RC,
    );
    let as_password = basic("anything", &jwt);
    assert_zip_body(
        &w.get(&zip, Some(&as_password)).await,
        corpus(),
        m::UPPER,
        m::UPPER_RC,
    );

    let whoami = |auth: String| {
        let w = &w;
        async move {
            let r = w.get("/whoami", Some(&auth)).await;
            assert_eq!(r.status, 200, "/whoami: {}", r.text());
            serde_json::from_slice::<Value>(&r.body).unwrap()
        }
    };
    let seen = whoami(bearer.clone()).await;
    assert_eq!(seen["identity"], "jay", "{seen}");
    assert_eq!(seen["groups"], json!([PAYMENTS]), "{seen}");
    assert_eq!(seen["method"], "bearer_jwt", "{seen}");
    assert_eq!(whoami(as_password).await["method"], "basic_jwt");
    let seen = whoami(w.pat.basic()).await;
    assert_eq!(seen["identity"], "pat", "{seen}");
    assert_eq!(seen["groups"], json!([PAYMENTS]), "{seen}");
    assert_eq!(seen["method"], "basic_token", "{seen}");
    let seen = whoami(w.olga.bearer()).await;
    assert_eq!(
        (&seen["identity"], &seen["groups"]),
        (&json!("olga"), &json!([]))
    );

    let stranger = Idp::new(w.idp.kid);
    let bad = [
        (
            "expired",
            w.idp.sign(&claims("jay", &[], ISSUER, AUDIENCE, -600)),
            "token expired",
        ),
        (
            "foreign key",
            stranger.sign(&claims("jay", &[], ISSUER, AUDIENCE, 600)),
            "bad signature",
        ),
        (
            "wrong issuer",
            w.idp
                .sign(&claims("jay", &[], "https://evil.test", AUDIENCE, 600)),
            "wrong issuer",
        ),
        (
            "wrong audience",
            w.idp.sign(&claims("jay", &[], ISSUER, "someone-else", 600)),
            "wrong audience",
        ),
    ];
    let list = list_path(m::SIMPLE);
    for (what, token, reason) in &bad {
        for auth in [format!("Bearer {token}"), basic("jay", token)] {
            let r = w.get(&list, Some(&auth)).await;
            assert_401(&r, what);
            assert!(r.text().contains(reason), "{what}: {}", r.text());
            assert_401(&w.get("/whoami", Some(&auth)).await, what);
        }
    }
}

#[tokio::test]
async fn go_reads_with_a_goauth_helper_that_prints_a_jwt() {
    let Some(go) = go("go_reads_with_a_goauth_helper_that_prints_a_jwt") else {
        return;
    };
    let w = World::start().await;
    let helper = w.dir.path().join("goauth.sh");
    let jwt = w.jwt("jay", &[PAYMENTS]);
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n\\n%s\\n\\n' '{}' 'Authorization: Bearer {jwt}'\n",
        w.node.url()
    );
    std::fs::write(&helper, script).unwrap();
    let mut perms = std::fs::metadata(&helper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&helper, perms).unwrap();
    let env = w.go_env(&go).with_env("GOAUTH", helper.to_str().unwrap());
    let mvs = vec![
        format!("{}@{}", m::UPPER, m::UPPER_RC),
        format!("{}@v1.2.0", m::SIMPLE),
    ];
    let got = sums(&env.mod_download_ok(&mvs).await.unwrap());
    assert_maps_eq("go mod download with a GOAUTH JWT", &expected(&mvs), &got);
    // The helper is run before the first fetch, so every request carried the JWT.
    let zips = |lines: &[Value]| lines.iter().filter(|l| l["kind"] == "zip").count() == mvs.len();
    let trail = w.audit_until("a zip line per module", zips).await;
    for line in &trail {
        assert_eq!(line["identity"], "jay", "{line}");
        assert_eq!(line["auth_method"], "bearer_jwt", "{line}");
        assert_eq!(line["status"], 200, "{line}");
    }
}
