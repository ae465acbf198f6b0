//! The `direct` source's reference answers: what the real go command says about private git
//! repositories in its own direct mode.
//!
//! [`GitCorpus`] builds the repositories (plain tags, a subdirectory module, `/v2` as a directory
//! and as a branch, `+incompatible`, no go.mod, vendor rules under go 1.23 and 1.24, excluded files
//! and `.gitattributes`, twenty tags), [`GitServer`] serves them over smart HTTP on loopback, and
//! the go command reaches them with `GOPROXY=direct` through an `insteadOf` rule.
//! [`direct_baseline`] runs the same go commands through any [`GoEnv`] and returns a [`Baseline`];
//! the cairn half of the end-to-end test runs it once in direct mode and once with
//! `GOPROXY=<cairn>` and compares the two. Here the direct-mode baseline is checked against the
//! corpus's own predictions (versions, pseudo-versions, zip file lists, synthesized go.mod hashes)
//! and against an independent `h1:` computation of every zip.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cairn_tests::gitcorpus::{
    git_url, insteadof_config, module_path, zip_files, DirectModule, DirectVersion, GitCorpus,
    MANY_TAGS, PRIVATE_PATTERN,
};
use cairn_tests::githttp::{GitRequest, GitServer, Rpc};
use cairn_tests::gitrepo::pseudo_timestamp;
use cairn_tests::gocmd::{go, DirectMode, Download, Go, GoEnv, GoOutput};
use cairn_tests::h1;
use futures_util::future::join_all;

/// What the go command reported for the whole corpus through one [`GoEnv`].
#[derive(Clone, Debug, Default)]
pub struct Baseline {
    /// `module@version` → (`Sum`, `GoModSum`) of every successful download (queries included,
    /// under the version they resolved to).
    pub sums: BTreeMap<String, (String, String)>,
    /// `module@query` (`main`, a short hash, `latest`) → the version `go list -m -json` resolved.
    pub queries: BTreeMap<String, String>,
    /// `module@query` → the version `go mod download -json module@query` resolved.
    pub query_downloads: BTreeMap<String, String>,
    /// `module` → `go list -m -versions` (retracted versions hidden).
    pub versions: BTreeMap<String, Vec<String>>,
    /// `module` → `go list -m -retracted -versions`.
    pub all_versions: BTreeMap<String, Vec<String>>,
    /// `module@version` → the `Time` of its `.info`.
    pub times: BTreeMap<String, String>,
    /// `module@version` → the file names in its zip (relative to the module root, sorted).
    pub zip_files: BTreeMap<String, Vec<String>>,
    /// `module@arg` → the go command's error, for every download or query it refused.
    pub refusals: BTreeMap<String, String>,
    /// The raw download records, keyed by the `module@arg` asked for.
    pub downloads: BTreeMap<String, Download>,
    /// How long collecting the baseline took.
    pub elapsed: Duration,
}

/// A go environment in direct mode whose git reaches `server` for every corpus module.
pub fn direct_env(go: &Go, server_url: &str) -> GoEnv {
    GoEnv::direct(
        go,
        DirectMode {
            private: PRIVATE_PATTERN.to_string(),
            git_config: insteadof_config(server_url),
            insecure: String::new(),
        },
    )
    .unwrap()
}

/// Runs, through `env`, every go command the comparison needs: `go list -m -json` for each
/// revision query and `@latest`, `go list -m [-retracted] -versions`, and one
/// `go mod download -json` for every version and query of every module in `corpus`.
pub async fn direct_baseline(env: &GoEnv, corpus: &GitCorpus) -> anyhow::Result<Baseline> {
    let start = Instant::now();
    let mut b = Baseline::default();
    // Modules are independent; the go command locks its module cache, so running them side by
    // side is safe and cuts the wall time.
    let listed = join_all(corpus.modules.iter().map(|m| list_module(env, m))).await;
    for (m, listed) in corpus.modules.iter().zip(listed) {
        let listed = listed?;
        b.versions.insert(m.path.clone(), listed.versions);
        b.all_versions.insert(m.path.clone(), listed.all_versions);
        for (query, result) in listed.queries {
            let key = format!("{}@{query}", m.path);
            match result {
                Ok(v) => b.queries.insert(key, v),
                Err(e) => b.refusals.insert(key, e),
            };
        }
    }
    let args = download_args(corpus, &b);
    let (downloads, _) = env.mod_download(&args).await?;
    anyhow::ensure!(
        downloads.len() == args.len(),
        "go mod download answered {} records for {} arguments",
        downloads.len(),
        args.len()
    );
    for (arg, d) in args.into_iter().zip(downloads) {
        record_download(&mut b, arg, d)?;
    }
    b.elapsed = start.elapsed();
    Ok(b)
}

/// The `go list` half for one module.
struct Listed {
    versions: Vec<String>,
    all_versions: Vec<String>,
    /// (query, resolved version or the go command's error).
    queries: Vec<(String, Result<String, String>)>,
}

async fn list_module(env: &GoEnv, m: &DirectModule) -> anyhow::Result<Listed> {
    let versions = env.list_versions(&m.path).await?;
    let out = env
        .run(
            &env.workdir(),
            &["list", "-m", "-retracted", "-versions", &m.path],
        )
        .await?
        .ok()?;
    let all_versions = out
        .stdout
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect();
    let mut queries = Vec::new();
    let asked = m.queries.iter().map(|(q, _)| q.as_str());
    for query in asked.chain(["latest"]) {
        let arg = format!("{}@{query}", m.path);
        let out = env
            .run(&env.workdir(), &["list", "-m", "-json", &arg])
            .await?;
        let result = if out.success {
            let info: serde_json::Value = serde_json::from_str(&out.stdout)?;
            Ok(info["Version"].as_str().unwrap_or_default().to_string())
        } else {
            Err(out.stderr.trim().to_string())
        };
        queries.push((query.to_string(), result));
    }
    Ok(Listed {
        versions,
        all_versions,
        queries,
    })
}

/// Every `module@version` the corpus lists, every version `go list` resolved a query to, and
/// every revision query itself (so `go mod download module@main` is exercised too).
fn download_args(corpus: &GitCorpus, b: &Baseline) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    let mut push = |a: String| {
        if !args.contains(&a) {
            args.push(a);
        }
    };
    for m in &corpus.modules {
        for v in &m.downloads {
            push(format!("{}@{}", m.path, v.version));
        }
        for (q, _) in &m.queries {
            if let Some(v) = b.queries.get(&format!("{}@{q}", m.path)) {
                push(format!("{}@{v}", m.path));
            }
            push(format!("{}@{q}", m.path));
        }
        for (v, _) in &m.refused {
            push(format!("{}@{v}", m.path));
        }
    }
    args
}

fn record_download(b: &mut Baseline, arg: String, d: Download) -> anyhow::Result<()> {
    if !d.error.is_empty() {
        b.refusals.insert(arg.clone(), d.error.clone());
        b.downloads.insert(arg, d);
        return Ok(());
    }
    let key = format!("{}@{}", d.path, d.version);
    if key != arg {
        b.query_downloads.insert(arg.clone(), d.version.clone());
    }
    b.sums
        .insert(key.clone(), (d.sum.clone(), d.go_mod_sum.clone()));
    let info: serde_json::Value = serde_json::from_slice(&std::fs::read(&d.info)?)?;
    let time = info["Time"].as_str().unwrap_or_default().to_string();
    b.times.insert(key.clone(), time);
    b.zip_files.insert(key, zip_files(d.zip.as_ref())?);
    b.downloads.insert(arg, d);
    Ok(())
}

// === the test ===

/// RFC 3339 UTC (`2024-01-01T05:00:00Z`) of Unix seconds, as the go command writes `.info` Time.
fn rfc3339(secs: i64) -> String {
    let t = pseudo_timestamp(secs);
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &t[..4],
        &t[4..6],
        &t[6..8],
        &t[8..10],
        &t[10..12],
        &t[12..]
    )
}

/// Problems found while checking a baseline, reported all at once.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    /// Records `what()` unless `ok`.
    fn expect(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }
}

/// Checks one module's listing and queries against the corpus's predictions.
fn check_listing(p: &mut Problems, b: &Baseline, m: &DirectModule) {
    let listed = b.versions.get(&m.path);
    p.expect(listed == Some(&m.versions), || {
        format!("{}: versions {listed:?}, want {:?}", m.path, m.versions)
    });
    let latest = b.queries.get(&format!("{}@latest", m.path));
    p.expect(latest == Some(&m.latest), || {
        format!("{}@latest: {latest:?}, want {}", m.path, m.latest)
    });
    for (q, want) in &m.queries {
        let got = b.queries.get(&format!("{}@{q}", m.path));
        p.expect(got == Some(want), || {
            format!("{}@{q}: {got:?}, want {want}", m.path)
        });
        let got = b.query_downloads.get(&format!("{}@{q}", m.path));
        p.expect(got == Some(want), || {
            format!("go mod download {}@{q}: {got:?}, want {want}", m.path)
        });
    }
}

/// Checks one downloaded version: hashes present, the zip hashes to `Sum` by our own `h1:`
/// code, a legacy module's `.mod` is the synthesized module line, and the zip holds the
/// predicted files.
fn check_download(p: &mut Problems, b: &Baseline, m: &DirectModule, v: &DirectVersion) {
    let key = format!("{}@{}", m.path, v.version);
    let Some((sum, mod_sum)) = b.sums.get(&key) else {
        p.expect(false, || {
            format!("{key}: not downloaded ({:?})", b.refusals.get(&key))
        });
        return;
    };
    p.expect(sum.starts_with("h1:"), || format!("{key}: Sum {sum:?}"));
    p.expect(mod_sum.starts_with("h1:"), || {
        format!("{key}: GoModSum {mod_sum:?}")
    });
    if m.legacy {
        let want = h1::mod_h1(format!("module {}\n", m.path).as_bytes());
        p.expect(*mod_sum == want, || {
            format!("{key}: GoModSum {mod_sum} is not h1(module line) {want}")
        });
    }
    let zip = &b.downloads[&key].zip;
    let recomputed = h1::zip_h1(&std::fs::read(zip).unwrap()).unwrap();
    p.expect(*sum == recomputed, || {
        format!("{key}: Sum {sum} but the zip hashes to {recomputed}")
    });
    if let Some(files) = &v.files {
        let got = b.zip_files.get(&key);
        p.expect(got == Some(files), || {
            format!("{key}: zip files {got:?}, want {files:?}")
        });
    }
}

/// The `.gitattributes` cases, read from the zip: eol and ident apply, export-subst and
/// export-ignore do not.
fn check_attrs(p: &mut Problems, b: &Baseline, c: &GitCorpus) {
    let key = format!("{}@v1.0.0", module_path("attrs", ""));
    let Some(d) = b.downloads.get(&key) else {
        return p.expect(false, || format!("{key}: not downloaded"));
    };
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&d.zip).unwrap()).unwrap();
    let blob = c.repo("attrs").git(["rev-parse", "v1.0.0:ident.txt"]);
    let checks = [
        ("crlf.txt", "line one\r\nline two\r\n".to_string()),
        ("subst.txt", "commit $Format:%H$\n".to_string()),
        ("ident.txt", format!("$Id: {} $\n", blob.unwrap())),
        ("README.md", "# attrs\ncommitted with CRLF\n".to_string()),
        ("ignored.txt", "export-ignore is neutralised\n".to_string()),
    ];
    for (name, want) in checks {
        let mut got = String::new();
        let mut f = archive.by_name(&format!("{key}/{name}")).unwrap();
        std::io::Read::read_to_string(&mut f, &mut got).unwrap();
        p.expect(got == want, || {
            format!("{key}/{name}: {got:?}, want {want:?}")
        });
    }
}

/// `.info` Time is the commit's committer time, also for an annotated tag made an hour later.
fn check_times(p: &mut Problems, b: &Baseline, c: &GitCorpus) {
    let plain = c.repo("plain");
    for tag in ["v1.0.0", "v1.1.0", "v1.2.0-rc.1"] {
        let key = format!("{}@{tag}", module_path("plain", ""));
        let want = rfc3339(plain.commit_time(tag).unwrap());
        let got = b.times.get(&key);
        p.expect(got == Some(&want), || {
            format!("{key}: Time {got:?}, want {want}")
        });
    }
}

/// Every check of a direct-mode baseline against the corpus's predictions; returns the problems.
fn check_baseline(b: &Baseline, c: &GitCorpus) -> Vec<String> {
    let mut p = Problems::default();
    for m in &c.modules {
        check_listing(&mut p, b, m);
        for v in &m.downloads {
            check_download(&mut p, b, m, v);
        }
    }
    check_attrs(&mut p, b, c);
    check_times(&mut p, b, c);
    // The go command refuses exactly what the corpus says it refuses.
    let expected: BTreeMap<String, &str> = c
        .modules
        .iter()
        .flat_map(|m| {
            m.refused
                .iter()
                .map(|(v, why)| (format!("{}@{v}", m.path), *why))
        })
        .collect();
    for (arg, e) in &b.refusals {
        p.expect(expected.contains_key(arg), || format!("refused {arg}: {e}"));
    }
    for (arg, why) in &expected {
        p.expect(b.refusals.contains_key(arg), || {
            format!("{arg} was accepted, but should be refused ({why})")
        });
    }
    let plain = module_path("plain", "");
    let all = b.all_versions.get(&plain).cloned().unwrap_or_default();
    p.expect(all.iter().any(|v| v == "v1.0.1"), || {
        format!("{plain}: -retracted -versions {all:?} lacks v1.0.1")
    });
    let many = module_path("many", "");
    let n = b.versions.get(&many).map_or(0, Vec::len);
    p.expect(n == MANY_TAGS, || format!("{many}: {n} versions"));
    p.0
}

/// The server saw the go command's git traffic, and only for corpus repositories.
fn assert_traffic(server: &GitServer, c: &GitCorpus) {
    let reqs = server.requests();
    assert!(
        reqs.iter().any(|r| r.rpc == Some(Rpc::Fetch)),
        "no fetch reached the server"
    );
    let known = |r: &GitRequest| c.modules.iter().any(|m| r.repo.as_ref() == Some(&m.repo));
    let strays: Vec<_> = reqs.iter().filter(|r| !known(r)).collect();
    assert!(
        strays.is_empty(),
        "requests outside the corpus: {strays:#?}"
    );
}

fn print_summary(b: &Baseline, c: &GitCorpus, server: &GitServer) {
    eprintln!(
        "direct baseline: {:?}, {} downloads",
        b.elapsed,
        b.sums.len()
    );
    for m in &c.modules {
        eprintln!(
            "  {} ({}): versions {:?}, latest {:?}, {} fetch(es) / {} requests for {} ({})",
            m.path,
            m.covers,
            b.versions.get(&m.path).unwrap_or(&Vec::new()),
            b.queries.get(&format!("{}@latest", m.path)),
            server.fetches(&m.repo),
            server.count(&m.repo),
            m.repo,
            git_url(&m.name),
        );
    }
    for (query, v) in &b.queries {
        eprintln!("  query {query} -> {v}");
    }
    for (arg, e) in &b.refusals {
        eprintln!("  refused {arg}: {}", e.lines().last().unwrap_or_default());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn go_direct_mode_baseline() {
    let Some(go) = go("go_direct_mode_baseline") else {
        return;
    };
    let built = Instant::now();
    let corpus = GitCorpus::build().unwrap();
    eprintln!("git corpus built in {:?}", built.elapsed());
    let server = GitServer::start(&corpus.root()).await.unwrap();
    let env = direct_env(&go, &server.url());
    let b = direct_baseline(&env, &corpus).await.unwrap();
    print_summary(&b, &corpus, &server);

    let problems = check_baseline(&b, &corpus);
    assert!(
        problems.is_empty(),
        "{} problem(s) with the direct-mode baseline:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    assert_traffic(&server, &corpus);
}

/// `go list -m -versions <module>` in a fresh copy of `env` (empty module cache), whatever its
/// exit status.
async fn list_versions_fresh(env: &GoEnv, module: &str) -> GoOutput {
    let env = env.fresh().unwrap();
    let args = ["list", "-m", "-versions", module];
    env.run(&env.workdir(), &args).await.unwrap()
}

/// The git server itself: credentials, a repository gaining a tag, failing and dead modes, and
/// `?go-get=1` pages, judged by the go command in direct mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_server_auth_new_tags_failure_and_go_get() {
    let Some(go) = go("git_server_auth_new_tags_failure_and_go_get") else {
        return;
    };
    let mut corpus = GitCorpus::build().unwrap();
    let server = GitServer::start(&corpus.root()).await.unwrap();
    let plain = module_path("plain", "");
    let env = check_credentials(&go, &server, &plain).await;

    // The repository gains a tag: the next listing shows it.
    let repo = corpus.repo_mut("plain");
    repo.write("new.go", "package plain\n\nconst New = true\n")
        .unwrap();
    repo.commit("v1.3.0").unwrap();
    repo.tag("v1.3.0").unwrap();
    repo.publish().unwrap();
    assert_eq!(
        env.list_versions(&plain).await.unwrap(),
        ["v1.0.0", "v1.1.0", "v1.2.0-rc.1", "v1.3.0"]
    );
    assert_eq!(
        env.list_query(&plain, "latest").await.unwrap().version,
        "v1.3.0"
    );

    check_failure_modes(&env, &server, &plain).await;
    check_go_get(&server).await;
}

/// With Basic auth required, git without credentials is refused (401, nothing fetched) and git
/// with credentials in the `insteadOf` URL succeeds. Returns the credentialed environment (auth
/// is switched off again).
async fn check_credentials(go: &Go, server: &GitServer, module: &str) -> GoEnv {
    server.require_basic_auth(Some(("alice", "s3cret")));
    let anonymous = direct_env(go, &server.url());
    assert!(!list_versions_fresh(&anonymous, module).await.success);
    let refused = server.requests();
    assert!(
        !refused.is_empty() && refused.iter().all(|r| r.status == 401),
        "{refused:#?}"
    );
    let env = direct_env(go, &server.url_with_credentials("alice", "s3cret"));
    let out = list_versions_fresh(&env, module).await.ok().unwrap();
    assert_eq!(
        out.stdout.trim(),
        format!("{module} v1.0.0 v1.1.0 v1.2.0-rc.1")
    );
    let requests = server.requests();
    assert!(requests.iter().any(|r| r.user.as_deref() == Some("alice")));
    server.require_basic_auth(None);
    env
}

/// A failing server (500) and a dead one (connection refused) fail the go command; revived, it
/// serves again.
async fn check_failure_modes(env: &GoEnv, server: &GitServer, module: &str) {
    server.set_fail(Some(500));
    server.reset_log();
    assert!(!list_versions_fresh(env, module).await.success);
    let failed = server.requests();
    assert!(
        !failed.is_empty() && failed.iter().all(|r| r.status == 500),
        "{failed:#?}"
    );
    server.set_fail(None);
    server.kill().await;
    server.reset_log();
    assert!(!list_versions_fresh(env, module).await.success);
    assert_eq!(server.total(), 0, "a dead server saw requests");
    server.revive().await.unwrap();
    assert!(list_versions_fresh(env, module).await.success);
    // Listing takes a ref advertisement and, to read the retractions of the latest version, a
    // fetch.
    assert!(server.ref_adverts("team/plain") > 0 && server.fetches("team/plain") > 0);
}

/// `?go-get=1` pages: the configured prefix for the root and any path below it, 404 without a
/// meta tag elsewhere.
async fn check_go_get(server: &GitServer) {
    let url = server.repo_url("team/plain");
    server.add_go_import("git.corp.example/team/plain", "git", &url);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let page = |path: &str| {
        let req = client.get(format!("{}{path}?go-get=1", server.url()));
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let want =
        format!("<meta name=\"go-import\" content=\"git.corp.example/team/plain git {url}\">");
    for path in ["/team/plain", "/team/plain/sub/pkg"] {
        let (status, body) = page(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.contains(&want), "{path}: {body}");
    }
    let (status, body) = page("/team/plainer").await;
    assert_eq!(status, 404);
    assert!(!body.contains("go-import"), "{body}");
}
