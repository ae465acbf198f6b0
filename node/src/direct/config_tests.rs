//! Tests of the `[direct]` section: parsing, defaults, and every problem `problems()` reports.

use super::*;

fn parse(text: &str) -> Result<DirectConfig, String> {
    toml::from_str::<DirectConfig>(text).map_err(|e| e.to_string())
}

fn problems_of(text: &str) -> Vec<String> {
    parse(text).unwrap().problems()
}

fn assert_problem(problems: &[String], want: &str) {
    assert!(
        problems.iter().any(|p| p.contains(want)),
        "{want:?} missing from {problems:#?}"
    );
}

#[test]
fn defaults_are_valid() {
    let cfg = DirectConfig::default();
    assert_eq!(cfg, parse("").unwrap());
    assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
    assert_eq!(cfg.git, "git");
    assert_eq!(cfg.max_per_host, 4);
    assert_eq!(cfg.command_timeout_secs, 600);
    assert_eq!(cfg.refresh_min_secs, 5);
    assert!(cfg.discovery);
    assert_eq!(cfg.dir, None);
    assert_eq!(cfg.netrc, None);
    assert!(cfg.insecure.is_empty() && cfg.hosts.is_empty() && cfg.credentials.is_empty());
}

#[test]
fn a_full_section_parses() {
    let cfg = parse(
        r#"
        dir = "/var/lib/cairn/vcs"
        git = "/usr/bin/git"
        max_per_host = 2
        insecure = "*.lan,corp.example.com/legacy"
        netrc = "/etc/cairn/netrc"
        resolve = ["corp.example.com=127.0.0.1:8443"]

        [[hosts]]
        prefix = "corp.example.com"
        url = "https://git.corp.example.com"
        depth = 2
        suffix = ".git"

        [[hosts]]
        prefix = "github.com/corp"
        url = "git@github.com:corp"

        [[credentials]]
        host = "git.corp.example.com"
        kind = "token"
        secret_file = "/run/secrets/corp-token"

        [[credentials]]
        host = "github.com"
        kind = "ssh"
        key_file = "/run/secrets/id_ed25519"
        known_hosts_file = "/etc/cairn/known_hosts"
        "#,
    )
    .unwrap();
    assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
    assert_eq!(cfg.hosts[0].depth, 2);
    assert_eq!(cfg.hosts[1].depth, 1);
    assert_eq!(cfg.hosts[1].suffix, "");
    assert_eq!(cfg.credentials[0].kind, CredentialKind::Token);
    assert_eq!(cfg.credentials[1].kind, CredentialKind::Ssh);
    assert_eq!(
        cfg.resolve_entries(),
        vec![(
            "corp.example.com".to_owned(),
            "127.0.0.1:8443".parse().unwrap()
        )]
    );
    // The section survives a serialize round trip.
    let again = parse(&toml::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(again, cfg);
}

#[test]
fn unknown_keys_and_kinds_are_rejected() {
    assert!(parse("max_per_hosts = 1")
        .unwrap_err()
        .contains("max_per_hosts"));
    let err = parse("[[credentials]]\nhost = \"h\"\nkind = \"oauth\"").unwrap_err();
    assert!(err.contains("oauth"), "{err}");
    let err =
        parse("[[hosts]]\nprefix = \"a.b\"\nurl = \"https://x\"\nbranch = \"x\"").unwrap_err();
    assert!(err.contains("branch"), "{err}");
}

#[test]
fn inline_secrets_are_refused_and_never_kept() {
    for key in ["password", "token", "secret"] {
        let text = format!(
            "[[credentials]]\nhost = \"h.example\"\nkind = \"basic\"\nusername = \"u\"\n{key} = \"hunter2-{key}\"\n"
        );
        let cfg = parse(&text).unwrap();
        let problems = cfg.problems();
        assert_problem(
            &problems,
            "direct.credentials[0]: secrets cannot be written in the config file; use secret_file or secret_env",
        );
        let shown = format!("{cfg:?} {problems:?} {}", toml::to_string(&cfg).unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
    }
    let problems = problems_of(
        "[[hosts]]\nprefix = \"a.example\"\nurl = \"https://u:hunter2@git.a.example\"\n",
    );
    assert_problem(&problems, "direct.hosts[0].url: secrets cannot be written");
    assert!(!format!("{problems:?}").contains("hunter2"));
}

#[test]
fn scalar_problems_are_reported() {
    let problems = problems_of(
        "git = \"\"\nmax_per_host = 0\ncommand_timeout_secs = 0\ndir = \"\"\ninsecure = \"a[\"\nresolve = [\"nohost\", \"h=1.2.3.4\", \"h/x=127.0.0.1:1\"]\n",
    );
    for want in [
        "direct.git:",
        "direct.max_per_host: must be at least 1",
        "direct.command_timeout_secs: must be at least 1",
        "direct.dir:",
        "direct.insecure: bad pattern \"a[\"",
        "direct.resolve[0]:",
        "direct.resolve[1]:",
        "direct.resolve[2]:",
    ] {
        assert_problem(&problems, want);
    }
    assert_eq!(problems.len(), 8, "{problems:#?}");
    // An empty glob list is simply "nothing is insecure".
    assert!(problems_of("insecure = \",\"").is_empty());
}

#[test]
fn host_mapping_problems_are_reported() {
    let problems = problems_of(
        r#"
        [[hosts]]
        prefix = "https://corp.example.com"
        url = "ftp://x.example/"
        depth = 0
        [[hosts]]
        prefix = "corp.example.com/"
        url = "file://relative/path"
        suffix = "/x"
        [[hosts]]
        prefix = "nodot/x"
        url = "not a url"
        [[hosts]]
        prefix = "ok.example"
        url = "ssh://git@git.example:2222/base"
        [[hosts]]
        prefix = "ok2.example"
        url = "file:///srv/git"
        "#,
    );
    for want in [
        "direct.hosts[0].prefix: \"https://corp.example.com\" is a URL",
        "direct.hosts[0].url: \"ftp://x.example/\": scheme not allowed",
        "direct.hosts[0].depth: must be at least 1",
        "direct.hosts[1].prefix: \"corp.example.com/\" must not end with '/'",
        "direct.hosts[1].url:",
        "direct.hosts[1].suffix:",
        "direct.hosts[2].prefix: not a module path prefix",
        "direct.hosts[2].url:",
    ] {
        assert_problem(&problems, want);
    }
    assert_eq!(problems.len(), 8, "{problems:#?}");
}

#[test]
fn credential_problems_are_reported() {
    let problems = problems_of(
        r#"
        [[credentials]]
        host = "https://git.example"
        kind = "token"
        [[credentials]]
        host = "b.example"
        kind = "basic"
        secret_file = "/f"
        secret_env = "E"
        key_file = "/k"
        [[credentials]]
        host = "c.example"
        kind = "ssh"
        secret_env = "E"
        [[credentials]]
        host = "d.example:0"
        kind = "bearer"
        username = "u"
        secret_env = "A=B"
        [[credentials]]
        host = "B.example"
        kind = "token"
        username = "a:b"
        secret_env = "T"
        "#,
    );
    for want in [
        "direct.credentials[0].host: \"https://git.example\"",
        "direct.credentials[0]: kind \"token\" needs exactly one of secret_file and secret_env",
        "direct.credentials[1]: kind \"basic\" needs exactly one",
        "direct.credentials[1]: key_file and known_hosts_file apply only to kind \"ssh\"",
        "direct.credentials[1].username: kind \"basic\" needs a username",
        "direct.credentials[2].key_file: kind \"ssh\" needs a private key file",
        "direct.credentials[2]: kind \"ssh\" takes no secret_file",
        "direct.credentials[3].host:",
        "direct.credentials[3].username: kind \"bearer\" takes no username",
        "direct.credentials[3].secret_env: not an environment variable name",
        "direct.credentials[4].username: must be non-empty",
        "direct.credentials[4].host: \"B.example\" already has a credential",
    ] {
        assert_problem(&problems, want);
    }
    assert_eq!(problems.len(), 12, "{problems:#?}");
}

#[test]
fn allow_networks_are_validated() {
    let cfg = parse("allow_networks = [\"10.0.0.0/8\", \"127.0.0.1\", \"fd00::/8\"]").unwrap();
    assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
    let nets: Vec<String> = cfg
        .allowed_networks()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(nets, ["10.0.0.0/8", "127.0.0.1/32", "fd00::/8"]);
    assert!(DirectConfig::default().allow_networks.is_empty());
    let problems =
        problems_of("allow_networks = [\"10.0.0.1/8\", \"10.0.0.0/33\", \"corp.lan\", \"\"]");
    assert_problem(
        &problems,
        "direct.allow_networks[0]: \"10.0.0.1/8\" has host bits set; write the network, 10.0.0.0/8",
    );
    assert_problem(
        &problems,
        "direct.allow_networks[1]: \"10.0.0.0/33\": the prefix length must be 0 to 32",
    );
    assert_problem(
        &problems,
        "direct.allow_networks[2]: \"corp.lan\" is not a network",
    );
    assert_problem(&problems, "direct.allow_networks[3]:");
    assert_eq!(problems.len(), 4, "{problems:#?}");
}
