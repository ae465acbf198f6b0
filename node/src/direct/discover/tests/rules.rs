//! Host mappings and the go command's static rules: answers found without the network.

use super::*;

#[tokio::test]
async fn host_mappings_longest_prefix_wins() {
    let d = offline(
        r#"
        discovery = false
        [[hosts]]
        prefix = "corp.example"
        url = "https://git.corp.example/"
        depth = 2
        suffix = ".git"
        [[hosts]]
        prefix = "corp.example/legacy"
        url = "git@old.corp.example:"
        [[hosts]]
        prefix = "github.com/corp"
        url = "ssh://git@github.com/corp"
        "#,
    );
    let cases = [
        (
            "corp.example/team/repo/sub/v2",
            root(
                "corp.example/team/repo",
                "https://git.corp.example/team/repo.git",
                "",
            ),
        ),
        (
            "corp.example/legacy/tool",
            root("corp.example/legacy/tool", "git@old.corp.example:tool", ""),
        ),
        (
            "github.com/corp/lib/v3",
            root("github.com/corp/lib", "ssh://git@github.com/corp/lib", ""),
        ),
    ];
    for (module, want) in cases {
        assert_eq!(d.repo_root(module).await.unwrap(), want, "{module}");
    }
    // Not enough elements after the prefix for the mapping's depth.
    let err = d.repo_root("corp.example/team").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    // A prefix matches whole elements only: corp.example.org is not under corp.example.
    assert!(d
        .repo_root("corp.example.org/x")
        .await
        .unwrap_err()
        .is_not_found());
}

#[test]
fn static_rules_match_the_go_command() {
    let ok = |module: &str, want_root: &str, want_url: &str| {
        let got = static_rules::lookup(module, false).unwrap().unwrap();
        assert_eq!(got, root(want_root, want_url, ""), "{module}");
    };
    ok("github.com/o/r", "github.com/o/r", "https://github.com/o/r");
    ok(
        "github.com/o/r/sub/v2",
        "github.com/o/r",
        "https://github.com/o/r",
    );
    ok(
        "bitbucket.org/o/r/x",
        "bitbucket.org/o/r",
        "https://bitbucket.org/o/r",
    );
    ok(
        "hub.jazz.net/git/user1/proj/x",
        "hub.jazz.net/git/user1/proj",
        "https://hub.jazz.net/git/user1/proj",
    );
    ok(
        "git.apache.org/thrift.git/lib/go",
        "git.apache.org/thrift.git",
        "https://git.apache.org/thrift.git",
    );
    ok(
        "git.openstack.org/o/r/x",
        "git.openstack.org/o/r",
        "https://git.openstack.org/o/r",
    );
    ok(
        "corp.example/team/repo.git",
        "corp.example/team/repo.git",
        "https://corp.example/team/repo",
    );
    ok(
        "corp.example/a/repo.git/sub/v2",
        "corp.example/a/repo.git",
        "https://corp.example/a/repo",
    );
    ok(
        "corp.example/~user/r.git",
        "corp.example/~user/r.git",
        "https://corp.example/~user/r",
    );
    ok(
        "corp.example/a.git/b.git",
        "corp.example/a.git",
        "https://corp.example/a",
    );
    for bad in [
        "github.com/o",
        "github.com",
        "github.com/o/r.git",
        "bitbucket.org/o/r.hg/x",
        "git.apache.org/thrift",
    ] {
        let err = static_rules::lookup(bad, false).unwrap().unwrap_err();
        assert!(err.is_not_found(), "{bad}: {err}");
    }
    for other in [
        "corp.example/x.hg",
        "chiselapp.com/user/u/repository/r",
        "corp.example/x.svn/y",
    ] {
        let err = static_rules::lookup(other, false).unwrap().unwrap_err();
        assert!(
            matches!(err, DiscoverError::UnsupportedVcs { .. }),
            "{other}: {err}"
        );
    }
    for none in [
        "corp.example/x",
        "corp.example/x/.git",
        "gitlab.com/group/sub/repo",
        "golang.org/x/mod",
    ] {
        assert!(static_rules::lookup(none, false).is_none(), "{none}");
    }
    // GOINSECURE paths get plain http for the .git rule.
    let got = static_rules::lookup("corp.example/r.git", true)
        .unwrap()
        .unwrap();
    assert_eq!(got.url, "http://corp.example/r");
}

#[tokio::test]
async fn discovery_off_never_fetches() {
    let d = offline("discovery = false");
    let err = d.repo_root("corp.example/x").await.unwrap_err();
    assert!(err.to_string().contains("discovery is off"), "{err}");
    assert!(err.is_not_found());
    // Static rules still apply.
    assert!(d.repo_root("github.com/o/r").await.is_ok());
}
