//! Tests of the git runner: URL hosts, deadlines that kill the whole process group, per-host
//! caps and scrubbed failures, against a fake `git` script.

use super::*;

#[test]
fn url_hosts() {
    assert_eq!(url_host("https://u:p@Git.Corp:8443/a/b"), "git.corp:8443");
    assert_eq!(url_host("ssh://git@git.corp/a"), "git.corp");
    assert_eq!(url_host("git@git.corp:team/repo.git"), "git.corp");
}

fn fake_git(dir: &Path, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("git");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_string_lossy().into_owned()
}

fn pid_alive(pid: i32) -> bool {
    // Signal 0 probes; a zombie would still count, so also check /proc state.
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    alive && !state.contains(") Z ")
}

#[tokio::test]
async fn an_overrunning_command_is_killed_with_its_children() {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("child.pid");
    // git that starts a helper (like git-remote-https) and hangs.
    let git = fake_git(
        tmp.path(),
        &format!("sleep 300 & echo $! > {}\nwait", pidfile.display()),
    );
    let runner = GitRunner::new(
        &git,
        Duration::from_millis(500),
        2,
        Arc::new(Credentials::none()),
    );
    let start = std::time::Instant::now();
    let err = runner
        .run(
            tmp.path(),
            &["fetch"],
            Some(Remote {
                url: "https://h/x",
                authenticate: true,
                guarded: false,
            }),
            Out::Memory(100),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::Timeout { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));
    let child: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while pid_alive(child) {
        assert!(
            std::time::Instant::now() < deadline,
            "helper {child} survived the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn network_commands_are_capped_per_host() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let git = fake_git(
        tmp.path(),
        &format!(
            "echo start >> {0}\nsleep 0.2\necho end >> {0}",
            log.display()
        ),
    );
    let runner = Arc::new(GitRunner::new(
        &git,
        Duration::from_secs(10),
        2,
        Arc::new(Credentials::none()),
    ));
    let mut tasks = Vec::new();
    for i in 0..6 {
        let runner = Arc::clone(&runner);
        let dir = tmp.path().to_owned();
        let host = if i < 5 {
            "https://a.example/x"
        } else {
            "https://b.example/x"
        };
        tasks.push(tokio::spawn(async move {
            runner
                .run(
                    &dir,
                    &["fetch"],
                    Some(Remote {
                        url: host,
                        authenticate: true,
                        guarded: false,
                    }),
                    Out::Memory(100),
                )
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut running = 0;
    let mut peak = 0;
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        running += if line == "start" { 1 } else { -1 };
        peak = peak.max(running);
    }
    // Two for a.example plus one for b.example at most.
    assert!(peak <= 3, "peak {peak}");
    assert!(peak >= 2, "commands did not overlap at all: {peak}");
}

#[tokio::test]
async fn failures_carry_scrubbed_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let git = fake_git(
        tmp.path(),
        "echo 'fatal: unable to access https://user:hunter2@h/x: 403' >&2\nexit 128",
    );
    let runner = GitRunner::new(
        &git,
        Duration::from_secs(10),
        2,
        Arc::new(Credentials::none()),
    );
    let err = runner
        .run(
            tmp.path(),
            &["ls-remote"],
            Some(Remote {
                url: "https://h/x",
                authenticate: true,
                guarded: false,
            }),
            Out::Memory(100),
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("403") && !text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn an_ssh_credential_reaches_git_and_is_not_overridden() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("deploy key");
    std::fs::write(&key, "not really a key").unwrap();
    let cfg: crate::direct::config::DirectConfig = toml::from_str(&format!(
        "[[credentials]]\nhost = \"git.corp\"\nkind = \"ssh\"\nkey_file = \"{}\"\n",
        key.display()
    ))
    .unwrap();
    let creds = Arc::new(Credentials::load(&cfg).unwrap());
    let git = fake_git(tmp.path(), "printf '%s' \"$GIT_SSH_COMMAND\"");
    let runner = GitRunner::new(&git, Duration::from_secs(10), 2, creds);
    let out = runner
        .run(
            tmp.path(),
            &["ls-remote"],
            Some(Remote {
                url: "ssh://git@git.corp/team/repo",
                authenticate: true,
                guarded: false,
            }),
            Out::Memory(4096),
        )
        .await
        .unwrap();
    let ssh = String::from_utf8(out).unwrap();
    assert!(ssh.contains("-i") && ssh.contains("deploy key"), "{ssh}");
    assert!(
        ssh.contains("IdentitiesOnly=yes") && ssh.contains("BatchMode=yes"),
        "{ssh}"
    );
    // A host without a credential gets the non-interactive default.
    let out = runner
        .run(
            tmp.path(),
            &["ls-remote"],
            Some(Remote {
                url: "ssh://git@other.corp/x",
                authenticate: true,
                guarded: false,
            }),
            Out::Memory(4096),
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), DEFAULT_SSH);
}

#[tokio::test]
async fn output_over_the_cap_is_too_large_not_a_git_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let git = fake_git(tmp.path(), "yes | head -c 1000000");
    let runner = GitRunner::new(
        &git,
        Duration::from_secs(10),
        2,
        Arc::new(Credentials::none()),
    );
    let err = runner
        .run(tmp.path(), &["cat-file"], None, Out::Memory(1000))
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn anonymous_remotes_get_no_credentials_of_any_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("token");
    std::fs::write(&secret, "tok-123").unwrap();
    let cfg: crate::direct::config::DirectConfig = toml::from_str(&format!(
        "[[credentials]]\nhost = \"github.com\"\nkind = \"token\"\nsecret_file = \"{}\"\n",
        secret.display()
    ))
    .unwrap();
    let creds = Arc::new(Credentials::load(&cfg).unwrap());
    let git = fake_git(
        tmp.path(),
        "printf '%s|%s|%s|%s' \"$HOME\" \"$GIT_CONFIG_KEY_0\" \"$GIT_CONFIG_VALUE_0\" \"$GIT_SSH_COMMAND\"",
    );
    let home = tmp.path().join("anon");
    let runner =
        GitRunner::new(&git, Duration::from_secs(10), 2, creds).anonymous_home(home.clone());
    let url = "https://github.com/corp/private";
    let run = |authenticate| {
        let runner = &runner;
        async move {
            let remote = Remote {
                url,
                authenticate,
                guarded: false,
            };
            let out = runner
                .run(
                    Path::new("/"),
                    &["ls-remote"],
                    Some(remote),
                    Out::Memory(4096),
                )
                .await
                .unwrap();
            String::from_utf8(out).unwrap()
        }
    };
    let with = run(true).await;
    assert!(
        with.contains("extraHeader") && with.contains("Authorization"),
        "{with}"
    );
    let without = run(false).await;
    let fields: Vec<&str> = without.split('|').collect();
    assert_eq!(fields[0], home.to_str().unwrap());
    assert_eq!((fields[1], fields[2]), ("credential.helper", ""));
    assert!(fields[3].contains("IdentityFile=/dev/null"), "{without}");
    assert!(!without.contains("Authorization"), "{without}");
}

#[tokio::test]
async fn guarded_remotes_are_cleared_before_git_runs_and_pinned() {
    let tmp = tempfile::tempdir().unwrap();
    let args_file = tmp.path().join("args");
    let git = fake_git(
        tmp.path(),
        &format!("echo \"$@\" > {}", args_file.display()),
    );
    let guard = crate::direct::netguard::NetGuard::default()
        .fixed_answer("evil.example", vec!["127.0.0.1:0".parse().unwrap()])
        .fixed_answer("pub.example", vec!["93.184.216.34:0".parse().unwrap()]);
    let runner = GitRunner::new(
        &git,
        Duration::from_secs(5),
        2,
        Arc::new(Credentials::none()),
    )
    .net_guard(Arc::new(guard));
    let run = |url: &'static str, guarded: bool| {
        let runner = &runner;
        async move {
            let remote = Remote {
                url,
                authenticate: false,
                guarded,
            };
            runner
                .run(
                    Path::new("/nonexistent"),
                    &["ls-remote", url],
                    Some(remote),
                    Out::Memory(100),
                )
                .await
        }
    };
    for url in [
        "https://evil.example/r",
        "http://169.254.169.254/r",
        "git@10.0.0.1:r",
    ] {
        let err = run(url, true).await.unwrap_err();
        assert!(matches!(err, GitError::Refused(_)), "{url}: {err}");
        assert!(!args_file.exists(), "git ran for {url}");
    }
    // A refusal is "not found" for the client, not a git failure.
    let err = run("https://evil.example/r", true).await.unwrap_err();
    assert!(matches!(
        crate::direct::repo::RepoError::from(err),
        crate::direct::repo::RepoError::NotFound(m) if m.contains("discovery refused")
    ));
    run("https://pub.example/r", true).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&args_file).unwrap().trim(),
        "-c http.followRedirects=false -c http.curloptResolve=pub.example:443:93.184.216.34 \
         ls-remote https://pub.example/r"
    );
    // Operator-mapped remotes are neither checked nor pinned.
    run("https://evil.example/r", false).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&args_file).unwrap().trim(),
        "ls-remote https://evil.example/r"
    );
}

#[tokio::test]
async fn an_unresolvable_guarded_host_fails_closed_unless_a_proxy_resolves_it() {
    let tmp = tempfile::tempdir().unwrap();
    let git = fake_git(tmp.path(), "exit 0");
    let runner = || {
        GitRunner::new(
            &git,
            Duration::from_secs(5),
            2,
            Arc::new(Credentials::none()),
        )
    };
    let url = "https://cairn-test.invalid/r";
    let remote = Some(Remote {
        url,
        authenticate: false,
        guarded: true,
    });
    let err = runner()
        .run(tmp.path(), &["ls-remote", url], remote, Out::Memory(100))
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::Unresolved { .. }), "{err}");
    let proxies = crate::egress::Proxies {
        https: Some(crate::egress::ProxyUrl {
            url: "http://proxy.corp:3128".parse().unwrap(),
            from: "egress.https_proxy".to_owned(),
        }),
        ..Default::default()
    };
    runner()
        .proxies(proxies)
        .run(tmp.path(), &["ls-remote", url], remote, Out::Memory(100))
        .await
        .unwrap();
}
