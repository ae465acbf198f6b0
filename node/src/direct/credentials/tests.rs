//! Tests of credentials: loading and checking, the `git` environment, HTTP headers, netrc,
//! and that no secret reaches a `Debug`, an error or scrubbed output.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::*;
use crate::config::Env;
use crate::direct::config::DirectConfig;

/// An environment tests can change between calls.
#[derive(Default)]
struct TestEnv(Mutex<BTreeMap<String, String>>);

impl TestEnv {
    fn with(pairs: &[(&str, &str)]) -> Arc<TestEnv> {
        let env = TestEnv::default();
        for (k, v) in pairs {
            env.set(k, v);
        }
        Arc::new(env)
    }

    fn set(&self, k: &str, v: &str) {
        self.0.lock().unwrap().insert(k.to_owned(), v.to_owned());
    }
}

impl Env for TestEnv {
    fn vars(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().clone().into_iter().collect()
    }
}

fn config(text: &str) -> DirectConfig {
    let cfg: DirectConfig = toml::from_str(text).unwrap();
    assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
    cfg
}

fn load(text: &str, env: Arc<TestEnv>) -> Credentials {
    Credentials::load_with(&config(text), env).unwrap()
}

fn env_map(vars: Vec<(String, OsString)>) -> BTreeMap<String, String> {
    vars.into_iter()
        .map(|(k, v)| (k, v.into_string().unwrap()))
        .collect()
}

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

#[test]
fn secret_prints_redacted() {
    let s = Secret::new("hunter2");
    assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
    assert_eq!(s.expose(), "hunter2");
}

#[test]
fn token_from_file_becomes_a_host_scoped_extra_header() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "tok-123\n").unwrap();
    let creds = load(
        &format!(
            "[[credentials]]\nhost = \"git.example\"\nkind = \"token\"\nsecret_file = {:?}\n",
            file.to_str().unwrap()
        ),
        TestEnv::with(&[]),
    );
    let env = env_map(creds.git_env("https://git.example/team/repo.git").unwrap());
    let want: BTreeMap<String, String> = [
        ("GIT_TERMINAL_PROMPT", "0".to_owned()),
        ("GIT_CONFIG_COUNT", "1".to_owned()),
        (
            "GIT_CONFIG_KEY_0",
            "http.https://git.example/.extraHeader".to_owned(),
        ),
        (
            "GIT_CONFIG_VALUE_0",
            format!("Authorization: Basic {}", b64("x-access-token:tok-123")),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(env, want);
    // Other hosts get nothing but the prompt guard.
    let other = env_map(creds.git_env("https://elsewhere.example/x").unwrap());
    assert_eq!(other.len(), 1, "{other:?}");
}

#[test]
fn basic_and_bearer_from_env_with_ports() {
    let env = TestEnv::with(&[("CORP_PW", "pw"), ("BEARER", "bt\r\n")]);
    let creds = load(
        r#"
        [[credentials]]
        host = "git.example:8443"
        kind = "basic"
        username = "robot"
        secret_env = "CORP_PW"
        [[credentials]]
        host = "api.example"
        kind = "bearer"
        secret_env = "BEARER"
        "#,
        env,
    );
    let vars = env_map(creds.git_env("https://git.example:8443/r").unwrap());
    assert_eq!(
        vars["GIT_CONFIG_KEY_0"],
        "http.https://git.example:8443/.extraHeader"
    );
    assert_eq!(
        vars["GIT_CONFIG_VALUE_0"],
        format!("Authorization: Basic {}", b64("robot:pw"))
    );
    // The port-specific entry does not cover the default port.
    assert!(!env_map(creds.git_env("https://git.example/r").unwrap())
        .contains_key("GIT_CONFIG_VALUE_0"));
    let vars = env_map(creds.git_env("https://api.example/r").unwrap());
    assert_eq!(vars["GIT_CONFIG_VALUE_0"], "Authorization: Bearer bt");
    // An explicit entry also applies to plain http on its host.
    let vars = env_map(creds.git_env("http://api.example:8080/r").unwrap());
    assert_eq!(
        vars["GIT_CONFIG_KEY_0"],
        "http.http://api.example:8080/.extraHeader"
    );
}

#[test]
fn ssh_key_goes_into_a_quoted_ssh_command() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("it's key");
    let known = dir.path().join("known_hosts");
    std::fs::write(&key, "PRIVATE").unwrap();
    std::fs::write(&known, "git.example ssh-ed25519 AAAA").unwrap();
    let creds = load(
        &format!(
            "[[credentials]]\nhost = \"git.example\"\nkind = \"ssh\"\nkey_file = {:?}\nknown_hosts_file = {:?}\n",
            key.to_str().unwrap(),
            known.to_str().unwrap()
        ),
        TestEnv::with(&[]),
    );
    let want = format!(
        "ssh -i '{}' -o IdentitiesOnly=yes -o BatchMode=yes -o ControlMaster=no -o UserKnownHostsFile='{}' -o StrictHostKeyChecking=yes",
        key.to_str().unwrap().replace('\'', r"'\''"),
        known.to_str().unwrap()
    );
    for url in [
        "git@git.example:team/repo.git",
        "ssh://git@git.example/team/repo",
    ] {
        let vars = env_map(creds.git_env(url).unwrap());
        assert_eq!(vars["GIT_SSH_COMMAND"], want, "{url}");
        assert!(!vars.contains_key("GIT_CONFIG_COUNT"));
        assert!(!format!("{vars:?}").contains("PRIVATE"));
    }
    // ssh keys are never turned into HTTP headers.
    assert_eq!(creds.http_authorization("git.example").unwrap(), None);
    // No credential: batch mode only, unless the process brings its own ssh command.
    let vars = env_map(creds.git_env("git@other.example:x").unwrap());
    assert_eq!(
        vars["GIT_SSH_COMMAND"],
        "ssh -o BatchMode=yes -o ControlMaster=no"
    );
    let own = load("", TestEnv::with(&[("GIT_SSH_COMMAND", "ssh -F /etc/x")]));
    assert!(!env_map(own.git_env("git@other.example:x").unwrap()).contains_key("GIT_SSH_COMMAND"));
    // The key is checked at use: a removed key is an error naming the file.
    std::fs::remove_file(&key).unwrap();
    let err = creds.git_env("git@git.example:team/repo.git").unwrap_err();
    assert!(err.to_string().contains("it's key"), "{err}");
}

#[test]
fn netrc_parsing_follows_the_go_command() {
    let lines = netrc::parse(
        "machine a.example login ua password pa\n\
         machine incomplete.example login x\n\
         macdef init\n  machine m.example login um password pm\n\n\
         machine b.example\n  login ub\n  password pb\n\
         machine A.EXAMPLE login second password p2\n\
         machine port.example:8443 login up password pp\n\
         default login ud password pd\n\
         machine after.example login x password y\n",
    );
    let got: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| (l.machine.as_str(), l.login.as_str(), l.password.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a.example", "ua", "pa"),
            ("b.example", "ub", "pb"),
            ("A.EXAMPLE", "second", "p2"),
            ("port.example:8443", "up", "pp"),
        ]
    );
    // The first entry for a host wins, case-insensitively; host:port entries need the port.
    assert_eq!(
        netrc::lookup(&lines, "a.example", Some(443)).unwrap().login,
        "ua"
    );
    assert!(netrc::lookup(&lines, "port.example", Some(443)).is_none());
    assert_eq!(
        netrc::lookup(&lines, "port.example", Some(8443))
            .unwrap()
            .login,
        "up"
    );
    assert!(netrc::lookup(&lines, "m.example", Some(443)).is_none());
    assert!(netrc::lookup(&lines, "after.example", Some(443)).is_none());
}

#[test]
fn explicit_entry_beats_netrc_and_netrc_is_https_only() {
    let dir = tempfile::tempdir().unwrap();
    let netrc = dir.path().join("netrc");
    std::fs::write(
        &netrc,
        "machine git.example login n password netrc-pw\nmachine other.example login o password other-pw\n",
    )
    .unwrap();
    let creds = load(
        &format!(
            "netrc = {:?}\n[[credentials]]\nhost = \"git.example\"\nkind = \"token\"\nsecret_env = \"TOK\"\n",
            netrc.to_str().unwrap()
        ),
        TestEnv::with(&[("TOK", "explicit")]),
    );
    let auth = |h: &str| {
        creds
            .http_authorization(h)
            .unwrap()
            .map(|s| s.expose().to_owned())
    };
    assert_eq!(
        auth("git.example"),
        Some(format!("Basic {}", b64("x-access-token:explicit")))
    );
    assert_eq!(
        auth("other.example"),
        Some(format!("Basic {}", b64("o:other-pw")))
    );
    assert_eq!(auth("none.example"), None);
    let vars = env_map(creds.git_env("https://other.example/r").unwrap());
    assert_eq!(
        vars["GIT_CONFIG_VALUE_0"],
        format!("Authorization: Basic {}", b64("o:other-pw"))
    );
    assert_eq!(
        env_map(creds.git_env("http://other.example/r").unwrap()).len(),
        1
    );
}

#[test]
fn netrc_location_follows_netrc_then_home() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".netrc"),
        "machine h.example login a password b\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("other"),
        "machine h.example login c password d\n",
    )
    .unwrap();
    let home = dir.path().to_str().unwrap();
    let login = |env: Arc<TestEnv>| {
        let creds = load("", env);
        creds
            .http_authorization("h.example")
            .unwrap()
            .map(|s| s.expose().to_owned())
    };
    assert_eq!(
        login(TestEnv::with(&[("HOME", home)])),
        Some(format!("Basic {}", b64("a:b")))
    );
    let other = dir.path().join("other");
    let env = TestEnv::with(&[("HOME", home), ("NETRC", other.to_str().unwrap())]);
    assert_eq!(login(env), Some(format!("Basic {}", b64("c:d"))));
    // An absent default file is no error; an absent configured one is.
    let missing = dir.path().join("missing");
    assert_eq!(
        login(TestEnv::with(&[("NETRC", missing.to_str().unwrap())])),
        None
    );
    let cfg = config(&format!("netrc = {:?}", missing.to_str().unwrap()));
    let err = Credentials::load_with(&cfg, TestEnv::with(&[])).unwrap_err();
    assert!(
        err[0].starts_with("direct.netrc: ") && err[0].contains("missing"),
        "{err:?}"
    );
}

#[test]
fn load_names_every_unusable_file_and_variable() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let cfg = config(&format!(
        r#"
        [[credentials]]
        host = "a.example"
        kind = "token"
        secret_file = "/no/such/secret"
        [[credentials]]
        host = "b.example"
        kind = "token"
        secret_env = "NO_SUCH_VAR"
        [[credentials]]
        host = "c.example"
        kind = "token"
        secret_file = {:?}
        [[credentials]]
        host = "d.example"
        kind = "ssh"
        key_file = "/no/such/key"
        "#,
        empty.to_str().unwrap()
    ));
    let errs = Credentials::load_with(&cfg, TestEnv::with(&[])).unwrap_err();
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(errs[0].starts_with("direct.credentials[0]: ") && errs[0].contains("/no/such/secret"));
    assert!(errs[1].contains("NO_SUCH_VAR is not set"), "{}", errs[1]);
    assert!(errs[2].contains("empty"), "{}", errs[2]);
    assert!(errs[3].contains("/no/such/key"), "{}", errs[3]);
}

#[test]
fn secrets_are_reread_on_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "first").unwrap();
    let env = TestEnv::with(&[("B_TOKEN", "one")]);
    let creds = load(
        &format!(
            "[[credentials]]\nhost = \"a.example\"\nkind = \"bearer\"\nsecret_file = {:?}\n\
             [[credentials]]\nhost = \"b.example\"\nkind = \"bearer\"\nsecret_env = \"B_TOKEN\"\n",
            file.to_str().unwrap()
        ),
        env.clone(),
    );
    let auth = |h: &str| {
        creds
            .http_authorization(h)
            .map(|s| s.map(|s| s.expose().to_owned()))
    };
    assert_eq!(auth("a.example").unwrap().unwrap(), "Bearer first");
    assert_eq!(auth("b.example").unwrap().unwrap(), "Bearer one");
    // A Kubernetes secret update replaces the file (atomically, through a symlink swap).
    std::fs::write(dir.path().join("new"), "second\n").unwrap();
    std::fs::rename(dir.path().join("new"), &file).unwrap();
    env.set("B_TOKEN", "two");
    assert_eq!(auth("a.example").unwrap().unwrap(), "Bearer second");
    assert_eq!(auth("b.example").unwrap().unwrap(), "Bearer two");
    std::fs::remove_file(&file).unwrap();
    let err = auth("a.example").unwrap_err();
    assert!(
        matches!(err, CredentialError::File { ref path, .. } if *path == file),
        "{err}"
    );
    assert!(!err.to_string().contains("second"));
}

#[test]
fn debug_shows_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "file-secret-value").unwrap();
    let netrc = dir.path().join("netrc");
    std::fs::write(
        &netrc,
        "machine n.example login l password netrc-secret-value\n",
    )
    .unwrap();
    let creds = load(
        &format!(
            "netrc = {:?}\n[[credentials]]\nhost = \"a.example\"\nkind = \"token\"\nsecret_file = {:?}\n\
             [[credentials]]\nhost = \"b.example\"\nkind = \"token\"\nsecret_env = \"T\"\n",
            netrc.to_str().unwrap(),
            file.to_str().unwrap()
        ),
        TestEnv::with(&[("T", "env-secret-value")]),
    );
    let shown = format!(
        "{creds:?} {:?}",
        creds.http_authorization("a.example").unwrap()
    );
    for secret in [
        "file-secret-value",
        "netrc-secret-value",
        "env-secret-value",
    ] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(
        shown.contains("a.example") && shown.contains("<redacted>"),
        "{shown}"
    );
}

#[test]
fn redact_url_drops_passwords_only() {
    let cases = [
        (
            "https://user:pw@host.example/x",
            "https://user@host.example/x",
        ),
        (
            "https://user:p%40w@host.example:8443",
            "https://user@host.example:8443",
        ),
        ("https://host.example/a:b@c", "https://host.example/a:b@c"),
        ("ssh://git@host.example/x", "ssh://git@host.example/x"),
        ("git@host.example:x/y.git", "git@host.example:x/y.git"),
        ("https://:tok@host.example/", "https://@host.example/"),
    ];
    for (url, want) in cases {
        assert_eq!(redact_url(url), want, "{url}");
    }
}

#[test]
fn scrub_removes_urls_headers_and_literal_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let netrc = dir.path().join("netrc");
    std::fs::write(&netrc, "machine n.example login l password netrcpass\n").unwrap();
    let creds = load(
        &format!(
            "netrc = {:?}\n[[credentials]]\nhost = \"a.example\"\nkind = \"token\"\nsecret_env = \"T\"\n",
            netrc.to_str().unwrap()
        ),
        TestEnv::with(&[("T", "ghp_live")]),
    );
    let stderr = format!(
        "fatal: unable to access 'https://bot:pa55@a.example/r.git/': 403\n\
         > Authorization: Basic {}\n\
         header was Bearer abcdefghijkl here\n\
         echo ghp_live and netrcpass and {}\n\
         fatal: repository 'https://a.example/r' not found",
        b64("x-access-token:ghp_live"),
        b64("l:netrcpass")
    );
    let clean = scrub(&stderr, &creds);
    for leaked in [
        "pa55",
        "ghp_live",
        "netrcpass",
        "abcdefghijkl",
        &b64("l:netrcpass"),
    ] {
        assert!(!clean.contains(leaked), "{leaked} in {clean}");
    }
    assert!(clean.contains("https://bot@a.example/r.git/"), "{clean}");
    assert!(clean.contains("> Authorization: <redacted>"), "{clean}");
    assert!(
        clean.contains("fatal: repository 'https://a.example/r' not found"),
        "{clean}"
    );
    assert_eq!(clean.lines().count(), 5);
}

#[test]
fn remotes_are_told_apart_like_git() {
    let r = parse_remote("https://Git.Example:8443/x").unwrap();
    assert_eq!(
        (r.scheme, r.host.as_str(), r.port),
        (RemoteScheme::Https, "git.example", Some(8443))
    );
    let r = parse_remote("git+ssh://git@git.example/x").unwrap();
    assert_eq!((r.scheme, r.port), (RemoteScheme::Ssh, Some(22)));
    let r = parse_remote("git@git.example:team/x.git").unwrap();
    assert_eq!(
        (r.scheme, r.host.as_str()),
        (RemoteScheme::Scp, "git.example")
    );
    assert_eq!(
        parse_remote("file:///srv/git/x").unwrap().scheme,
        RemoteScheme::File
    );
    assert_eq!(
        parse_remote("git://h.example/x").unwrap().scheme,
        RemoteScheme::Other
    );
    assert!(
        parse_remote("https://u:p@h.example/x")
            .unwrap()
            .has_password
    );
    assert_eq!(parse_remote("/srv/git/x"), None);
    assert_eq!(parse_remote("./a:b"), None);
    // Local paths and file URLs need no credentials.
    let vars = Credentials::none().git_env("/srv/git/x").unwrap();
    assert_eq!(vars.len(), 1);
}
