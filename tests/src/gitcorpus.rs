//! The git corpus: private repositories for the `direct` source, and what the go command should
//! make of them.
//!
//! Every repository lives at `<root>/team/<name>` (a bare repository; serve `<root>` with
//! [`crate::githttp::GitServer`]) and every module path has the form
//! `git.corp.example/team/<name>.git[/<subdir>]`. The `.git` element is what lets the go command
//! find the repository without any HTTP discovery: its generic rule (`cmd/go/internal/vcs`,
//! `vcsPaths`, last entry) takes `git.corp.example/team/<name>.git` as the repository root and
//! `git.corp.example/team/<name>` (without `.git`) as the repository, pings
//! `git ls-remote https://git.corp.example/team/<name>` (the `git://` and `http://` schemes are
//! skipped as insecure) and then fetches from that URL. [`insteadof_config`] writes the git config
//! that rewrites `https://git.corp.example/` to the server, so the requests arrive as
//! `/team/<name>/info/refs?service=git-upload-pack` and `POST /team/<name>/git-upload-pack`.
//!
//! Commit dates are fixed (see [`crate::gitrepo`]), so commit hashes and therefore the expected
//! pseudo-versions below are the same on every run. Each [`DirectModule`] says which case it
//! covers, the versions `go list -m -versions` must print, every version to download (with the
//! zip's file list where the file selection is the point), `@latest`, and revision queries
//! (`@main`, `@<short hash>`) with the version they resolve to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tempfile::TempDir;

use crate::gitrepo::{pseudo_timestamp, WorkRepo};

/// The host of every module path (and of the URLs the go command asks git for).
pub const HOST: &str = "git.corp.example";

/// The directory of every repository, under the served root and in module paths.
pub const TEAM: &str = "team";

/// The `GOPRIVATE`/`GONOSUMDB` pattern covering the corpus.
pub const PRIVATE_PATTERN: &str = "git.corp.example";

/// The module path of repository `name` (`git.corp.example/team/<name>.git`), plus `/<sub>`.
pub fn module_path(name: &str, sub: &str) -> String {
    let base = format!("{HOST}/{TEAM}/{name}.git");
    if sub.is_empty() {
        base
    } else {
        format!("{base}/{sub}")
    }
}

/// The URL the go command hands to git for repository `name`: `https://git.corp.example/team/<name>`.
pub fn git_url(name: &str) -> String {
    format!("https://{HOST}/{TEAM}/{name}")
}

/// Git config text rewriting `https://git.corp.example/` to `server` (e.g.
/// `http://127.0.0.1:PORT`, optionally with `user:password@`). Point `GIT_CONFIG_GLOBAL` at it.
pub fn insteadof_config(server: &str) -> String {
    format!(
        "[url \"{}/\"]\n\tinsteadOf = https://{HOST}/\n",
        server.trim_end_matches('/')
    )
}

/// One version the go command must download.
#[derive(Clone, Debug)]
pub struct DirectVersion {
    /// The version (canonical; pseudo-versions included).
    pub version: String,
    /// The zip's file names (relative to `module@version/`, sorted), when the case is about which
    /// files go in.
    pub files: Option<Vec<String>>,
}

/// A module of the corpus and what the go command should report for it.
#[derive(Clone, Debug)]
pub struct DirectModule {
    /// Module path.
    pub path: String,
    /// Repository path relative to the served root (`team/<name>`).
    pub repo: String,
    /// The repository name (`<name>`).
    pub name: String,
    /// What this module covers.
    pub covers: &'static str,
    /// `go list -m -versions` (sorted as go sorts; retracted versions are absent).
    pub versions: Vec<String>,
    /// Every version to download: tags (retracted ones too) and pseudo-versions.
    pub downloads: Vec<DirectVersion>,
    /// `go list -m <path>@latest`.
    pub latest: String,
    /// Queries (`main`, a 12-hex short hash, a version missing its `+incompatible`) and the version
    /// each resolves to.
    pub queries: Vec<(String, String)>,
    /// No go.mod in the repository: the `.mod` is synthesized as `module <path>\n`.
    pub legacy: bool,
    /// Versions the go command refuses to download, each with the reason (cairn must refuse
    /// them too; error texts may differ).
    pub refused: Vec<(String, &'static str)>,
}

impl DirectModule {
    /// Module `sub` of repository `name`, with nothing expected yet.
    fn new(name: &str, sub: &str) -> DirectModule {
        DirectModule {
            path: module_path(name, sub),
            repo: format!("{TEAM}/{name}"),
            name: name.to_string(),
            covers: "",
            versions: Vec::new(),
            downloads: Vec::new(),
            latest: String::new(),
            queries: Vec::new(),
            legacy: false,
            refused: Vec::new(),
        }
    }
}

/// The built corpus: bare repositories under [`GitCorpus::root`] plus the working repositories
/// that produced them (to add tags later).
pub struct GitCorpus {
    dir: TempDir,
    repos: BTreeMap<String, WorkRepo>,
    /// Every module, in build order.
    pub modules: Vec<DirectModule>,
}

impl GitCorpus {
    /// Builds every repository in a fresh temp directory (about a hundred git commands).
    pub fn build() -> anyhow::Result<GitCorpus> {
        let dir = tempfile::Builder::new().prefix("cairn-git-").tempdir()?;
        let mut c = GitCorpus {
            dir,
            repos: BTreeMap::new(),
            modules: Vec::new(),
        };
        plain(&mut c).context("repository plain")?;
        mono(&mut c).context("repository mono")?;
        v2sub(&mut c).context("repository v2sub")?;
        v2branch(&mut c).context("repository v2branch")?;
        incompat(&mut c).context("repository incompat")?;
        legacy(&mut c).context("repository legacy")?;
        untagged(&mut c).context("repository untagged")?;
        vendor(&mut c, "vendor123", "1.23").context("repository vendor123")?;
        vendor(&mut c, "vendor124", "1.24").context("repository vendor124")?;
        attrs(&mut c).context("repository attrs")?;
        many(&mut c).context("repository many")?;
        Ok(c)
    }

    /// The directory to serve: `<root>/team/<name>` are the bare repositories.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("srv")
    }

    /// The bare repository of `name`.
    pub fn bare(&self, name: &str) -> PathBuf {
        self.root().join(TEAM).join(name)
    }

    /// The working repository `name` (commit, tag, then [`WorkRepo::publish`]).
    pub fn repo_mut(&mut self, name: &str) -> &mut WorkRepo {
        self.repos
            .get_mut(name)
            .unwrap_or_else(|| panic!("no repository {name} in the git corpus"))
    }

    /// The working repository `name`.
    pub fn repo(&self, name: &str) -> &WorkRepo {
        self.repos
            .get(name)
            .unwrap_or_else(|| panic!("no repository {name} in the git corpus"))
    }

    /// The module with path `path`.
    pub fn module(&self, path: &str) -> &DirectModule {
        self.modules
            .iter()
            .find(|m| m.path == path)
            .unwrap_or_else(|| panic!("no module {path} in the git corpus"))
    }

    /// Starts repository `name` on branch `main`, publishing to `<root>/team/<name>`.
    fn start(&self, name: &str) -> anyhow::Result<WorkRepo> {
        let work = self.dir.path().join("work").join(name);
        let mut r = WorkRepo::init(&work, &self.dir.path().join("home"), "main")?;
        r.publish_to(&self.bare(name))?;
        Ok(r)
    }

    /// Publishes `repo` as `name` and records it.
    fn finish(&mut self, name: &str, repo: WorkRepo) -> anyhow::Result<()> {
        repo.publish()?;
        self.repos.insert(name.to_string(), repo);
        Ok(())
    }
}

// === helpers ===

/// `pseudo(r, rev, "v1.1.1-0.")` = `v1.1.1-0.<commit time>-<12 hex>`.
fn pseudo(r: &WorkRepo, rev: &str, base: &str) -> anyhow::Result<String> {
    let hash = r.rev_parse(rev)?;
    let ts = pseudo_timestamp(r.commit_time(rev)?);
    Ok(format!("{base}{ts}-{}", &hash[..12]))
}

fn go_mod(path: &str, go: &str) -> String {
    format!("module {path}\n\ngo {go}\n")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Versions without a file-list expectation.
fn plain_versions(v: &[&str]) -> Vec<DirectVersion> {
    v.iter()
        .map(|s| DirectVersion {
            version: s.to_string(),
            files: None,
        })
        .collect()
}

fn with_files(version: &str, files: &[&str]) -> DirectVersion {
    let mut files = strings(files);
    files.sort();
    DirectVersion {
        version: version.to_string(),
        files: Some(files),
    }
}

const LICENSE: &str = "Copyright 2024 Corp. All rights reserved.\n";

// === the repositories ===

/// `plain`: semver tags on `main` — `v1.0.0` (lightweight), `v1.0.1` (retracted by the go.mod of
/// `v1.1.0`, so downloadable but not listed), `v1.1.0` (annotated, tagged an hour after its
/// commit: `.info` Time must be the commit's), an untagged commit (`@<short hash>` →
/// `v1.1.1-0.…`), `v1.2.0-rc.1`, and a commit after it (`@main` → `v1.2.0-rc.1.0.…`). Noise tags
/// `v1.0` and `release-1` must be ignored. `@latest` prefers the release `v1.1.0` over the
/// pre-release.
fn plain(c: &mut GitCorpus) -> anyhow::Result<()> {
    let path = module_path("plain", "");
    let mut r = c.start("plain")?;
    r.write("go.mod", go_mod(&path, "1.21"))?
        .write("plain.go", "package plain\n\nconst V = 1\n")?
        .write("README.md", "# plain\n")?;
    r.commit("v1.0.0")?;
    r.tag("v1.0.0")?;
    r.tag("v1.0")?;
    r.tag("release-1")?;
    r.write("plain.go", "package plain\n\nconst V = 101 // oops\n")?;
    r.commit("v1.0.1")?;
    r.tag("v1.0.1")?;
    let retract = format!(
        "{}\nretract v1.0.1 // published by mistake\n",
        go_mod(&path, "1.21")
    );
    r.write("go.mod", retract)?
        .write("plain.go", "package plain\n\nconst V = 110\n")?;
    let v110 = r.commit("v1.1.0")?;
    r.annotated_tag("v1.1.0", "release v1.1.0")?;
    r.write("plain.go", "package plain\n\nconst V = 111\n")?;
    let mid = r.commit("work in progress")?;
    let mid_v = pseudo(&r, &mid, "v1.1.1-0.")?;
    let unknown_rev = format!("{}000000000000", &mid_v[..mid_v.len() - 12]);
    r.write("plain.go", "package plain\n\nconst V = 120\n")?;
    r.commit("v1.2.0-rc.1")?;
    r.tag("v1.2.0-rc.1")?;
    r.write("extra.go", "package plain\n\nconst Extra = true\n")?;
    let tip = r.commit("after the release candidate")?;
    let tip_v = pseudo(&r, &tip, "v1.2.0-rc.1.0.")?;
    let versions = ["v1.0.0", "v1.0.1", "v1.1.0", "v1.2.0-rc.1"];
    let mut downloads = plain_versions(&versions);
    downloads.extend(plain_versions(&[&mid_v, &tip_v]));
    c.modules.push(DirectModule {
        covers: "semver tags, annotated tag, retraction, branch and hash pseudo-versions",
        versions: strings(&["v1.0.0", "v1.1.0", "v1.2.0-rc.1"]),
        downloads,
        latest: "v1.1.0".into(),
        queries: vec![
            ("main".into(), tip_v),
            (mid[..12].to_string(), mid_v),
            (v110[..12].to_string(), "v1.1.0".into()),
        ],
        refused: vec![
            ("v9.9.9".into(), "no such tag"),
            (
                format!("v1.1.1-0.20240101000000-{}", &mid[..12]),
                "pseudo-version timestamp differs from the commit time",
            ),
            (unknown_rev, "pseudo-version names an unknown revision"),
            (
                "v1.0.0+incompatible".into(),
                "+incompatible on a v1 version",
            ),
        ],
        ..DirectModule::new("plain", "")
    });
    c.finish("plain", r)
}

/// `mono`: a root module (`v0.1.0`, `v0.2.0`) and a module in `sub/` with prefixed tags
/// (`sub/v1.2.3`, `sub/v1.3.0`). `LICENSE` exists only at the repository root and must appear in
/// the `sub` zips; the root zips must leave out `sub/` and `internal/nested/` (nested modules).
/// `sub@main` resolves to a pseudo-version based on `sub/v1.3.0`, not on the root's `v0.2.0`.
fn mono(c: &mut GitCorpus) -> anyhow::Result<()> {
    let (root, sub) = (module_path("mono", ""), module_path("mono", "sub"));
    let mut r = c.start("mono")?;
    r.write("LICENSE", LICENSE)?
        .write("go.mod", go_mod(&root, "1.21"))?
        .write("root.go", "package mono\n")?
        .write("sub/go.mod", go_mod(&sub, "1.21"))?
        .write("sub/sub.go", "package sub\n\nconst V = 123\n")?
        .write(
            "internal/nested/go.mod",
            go_mod(&format!("{root}/internal/nested"), "1.21"),
        )?
        .write("internal/nested/n.go", "package nested\n")?;
    r.commit("root v0.1.0, sub v1.2.3")?;
    r.tag("v0.1.0")?;
    r.tag("sub/v1.2.3")?;
    r.write("sub/sub.go", "package sub\n\nconst V = 130\n")?;
    r.commit("sub v1.3.0")?;
    r.tag("sub/v1.3.0")?;
    r.write("root.go", "package mono\n\nconst V = 2\n")?;
    let tip = r.commit("root v0.2.0")?;
    r.tag("v0.2.0")?;
    let sub_tip = pseudo(&r, &tip, "v1.3.1-0.")?;
    let root_files = ["LICENSE", "go.mod", "root.go"];
    let sub_files = ["LICENSE", "go.mod", "sub.go"];
    c.modules.push(DirectModule {
        covers: "root module next to nested modules (excluded from its zip)",
        versions: strings(&["v0.1.0", "v0.2.0"]),
        downloads: vec![
            with_files("v0.1.0", &root_files),
            with_files("v0.2.0", &root_files),
        ],
        latest: "v0.2.0".into(),
        queries: vec![("main".into(), "v0.2.0".into())],
        ..DirectModule::new("mono", "")
    });
    let mut downloads = vec![
        with_files("v1.2.3", &sub_files),
        with_files("v1.3.0", &sub_files),
    ];
    downloads.push(with_files(&sub_tip, &sub_files));
    c.modules.push(DirectModule {
        covers: "module in a subdirectory: prefixed tags, LICENSE from the repository root",
        versions: strings(&["v1.2.3", "v1.3.0"]),
        downloads,
        latest: "v1.3.0".into(),
        queries: vec![("main".into(), sub_tip)],
        refused: vec![("v0.1.0".into(), "a root-module tag is not a sub/ tag")],
        ..DirectModule::new("mono", "sub")
    });
    c.finish("mono", r)
}

/// `v2sub`: major version in a subdirectory. The root module has `v1.0.0`; `v2/go.mod` declares
/// `…/v2sub.git/v2` and the tags `v2.0.0`, `v2.0.1` serve it from `v2/` (plus the root
/// `LICENSE`). The root module's version list must not contain the `v2.*` tags (its go.mod rules
/// out `+incompatible`).
fn v2sub(c: &mut GitCorpus) -> anyhow::Result<()> {
    let (v1, v2) = (module_path("v2sub", ""), module_path("v2sub", "v2"));
    let mut r = c.start("v2sub")?;
    r.write("LICENSE", LICENSE)?
        .write("go.mod", go_mod(&v1, "1.21"))?
        .write("a.go", "package v2sub\n")?;
    r.commit("v1.0.0")?;
    r.tag("v1.0.0")?;
    r.write("v2/go.mod", go_mod(&v2, "1.21"))?
        .write("v2/a.go", "package v2sub\n\nconst Major = 2\n")?;
    r.commit("v2.0.0 in v2/")?;
    r.tag("v2.0.0")?;
    r.write("v2/a.go", "package v2sub\n\nconst Major, Patch = 2, 1\n")?;
    r.commit("v2.0.1")?;
    r.tag("v2.0.1")?;
    c.modules.push(DirectModule {
        covers: "v1 module whose repository also holds a v2 subdirectory",
        versions: strings(&["v1.0.0"]),
        downloads: vec![with_files("v1.0.0", &["LICENSE", "a.go", "go.mod"])],
        latest: "v1.0.0".into(),
        refused: vec![(
            "v2.0.0+incompatible".into(),
            "+incompatible where the root go.mod exists",
        )],
        ..DirectModule::new("v2sub", "")
    });
    let files = ["LICENSE", "a.go", "go.mod"];
    c.modules.push(DirectModule {
        covers: "/v2 as a major subdirectory (v2/go.mod), LICENSE from the root",
        versions: strings(&["v2.0.0", "v2.0.1"]),
        downloads: vec![with_files("v2.0.0", &files), with_files("v2.0.1", &files)],
        latest: "v2.0.1".into(),
        ..DirectModule::new("v2sub", "v2")
    });
    c.finish("v2sub", r)
}

/// `v2branch`: major version on a branch. `main` holds the v1 module (`v1.0.0`, `v1.0.1`); branch
/// `v2` rewrites the root go.mod to `…/v2branch.git/v2` and is tagged `v2.0.0` and `v2.1.0`
/// (annotated), followed by an untagged commit (`@<short hash>` → `v2.1.1-0.…`).
fn v2branch(c: &mut GitCorpus) -> anyhow::Result<()> {
    let (v1, v2) = (module_path("v2branch", ""), module_path("v2branch", "v2"));
    let mut r = c.start("v2branch")?;
    r.write("go.mod", go_mod(&v1, "1.21"))?
        .write("b.go", "package b\n")?;
    r.commit("v1.0.0")?;
    r.tag("v1.0.0")?;
    r.branch("v2")?;
    r.write("go.mod", go_mod(&v2, "1.21"))?
        .write("b.go", "package b\n\nconst Major = 2\n")?;
    r.commit("v2.0.0")?;
    r.tag("v2.0.0")?;
    r.write("b.go", "package b\n\nconst Major, Minor = 2, 1\n")?;
    r.commit("v2.1.0")?;
    r.annotated_tag("v2.1.0", "release v2.1.0")?;
    r.write("next.go", "package b\n")?;
    let next = r.commit("v2 work in progress")?;
    let next_v = pseudo(&r, &next, "v2.1.1-0.")?;
    r.checkout("main")?;
    r.write("b.go", "package b\n\nconst Patch = 1\n")?;
    r.commit("v1.0.1")?;
    r.tag("v1.0.1")?;
    c.modules.push(DirectModule {
        covers: "v1 module on main next to a v2 branch",
        versions: strings(&["v1.0.0", "v1.0.1"]),
        downloads: plain_versions(&["v1.0.0", "v1.0.1"]),
        latest: "v1.0.1".into(),
        queries: vec![("main".into(), "v1.0.1".into())],
        refused: vec![(
            "v2.0.0+incompatible".into(),
            "+incompatible where the tag's go.mod says /v2",
        )],
        ..DirectModule::new("v2branch", "")
    });
    let mut downloads = plain_versions(&["v2.0.0", "v2.1.0"]);
    downloads.push(with_files(&next_v, &["b.go", "go.mod", "next.go"]));
    c.modules.push(DirectModule {
        covers: "/v2 as a major branch (root go.mod says /v2)",
        versions: strings(&["v2.0.0", "v2.1.0"]),
        downloads,
        latest: "v2.1.0".into(),
        queries: vec![(next[..12].to_string(), next_v)],
        ..DirectModule::new("v2branch", "v2")
    });
    c.finish("v2branch", r)
}

/// `incompat`: no go.mod, tags `v1.0.0`, `v2.0.0`, `v3.1.0` → `v2.0.0+incompatible`,
/// `v3.1.0+incompatible`; `@latest` is `v3.1.0+incompatible`, and the query `@v2.0.0` resolves to
/// `v2.0.0+incompatible`.
fn incompat(c: &mut GitCorpus) -> anyhow::Result<()> {
    let mut r = c.start("incompat")?;
    for (tag, n) in [("v1.0.0", 1), ("v2.0.0", 2), ("v3.1.0", 3)] {
        r.write("i.go", format!("package incompat\n\nconst V = {n}\n"))?;
        r.commit(tag)?;
        r.tag(tag)?;
    }
    let versions = ["v1.0.0", "v2.0.0+incompatible", "v3.1.0+incompatible"];
    c.modules.push(DirectModule {
        covers: "+incompatible: v2+ tags in a repository without go.mod",
        versions: strings(&versions),
        downloads: plain_versions(&versions),
        latest: "v3.1.0+incompatible".into(),
        legacy: true,
        // Asked for without the suffix, v2.0.0 resolves to the +incompatible version.
        queries: vec![("v2.0.0".into(), "v2.0.0+incompatible".into())],
        ..DirectModule::new("incompat", "")
    });
    c.finish("incompat", r)
}

/// `legacy`: a pre-modules repository (no go.mod anywhere) with `v0.1.0`, `v0.2.0` and a later
/// commit (`@main` → `v0.2.1-0.…`); every `.mod` is the synthesized `module <path>\n`.
fn legacy(c: &mut GitCorpus) -> anyhow::Result<()> {
    let mut r = c.start("legacy")?;
    r.write("legacy.go", "package legacy\n")?
        .write("cmd/tool/main.go", "package main\n\nfunc main() {}\n")?;
    r.commit("v0.1.0")?;
    r.tag("v0.1.0")?;
    r.write("legacy.go", "package legacy\n\nconst V = 2\n")?;
    r.commit("v0.2.0")?;
    r.tag("v0.2.0")?;
    r.write(
        "doc.go",
        "// Package legacy predates modules.\npackage legacy\n",
    )?;
    let tip = r.commit("docs")?;
    let tip_v = pseudo(&r, &tip, "v0.2.1-0.")?;
    let mut downloads = plain_versions(&["v0.1.0", "v0.2.0"]);
    downloads.push(with_files(
        &tip_v,
        &["cmd/tool/main.go", "doc.go", "legacy.go"],
    ));
    c.modules.push(DirectModule {
        covers: "no go.mod at all: synthesized module line",
        versions: strings(&["v0.1.0", "v0.2.0"]),
        downloads,
        latest: "v0.2.0".into(),
        queries: vec![("main".into(), tip_v)],
        legacy: true,
        ..DirectModule::new("legacy", "")
    });
    c.finish("legacy", r)
}

/// `untagged`: a module with a go.mod and no tags at all: no versions, and `@latest` is the
/// `v0.0.0-<time>-<hash>` pseudo-version of `main`.
fn untagged(c: &mut GitCorpus) -> anyhow::Result<()> {
    let path = module_path("untagged", "");
    let mut r = c.start("untagged")?;
    r.write("go.mod", go_mod(&path, "1.21"))?
        .write("u.go", "package untagged\n")?;
    r.commit("first")?;
    r.write("u.go", "package untagged\n\nconst V = 2\n")?;
    let tip = r.commit("second")?;
    let tip_v = pseudo(&r, &tip, "v0.0.0-")?;
    c.modules.push(DirectModule {
        covers: "no tags: @latest is a v0.0.0 pseudo-version",
        versions: Vec::new(),
        downloads: vec![with_files(&tip_v, &["go.mod", "u.go"])],
        latest: tip_v.clone(),
        queries: vec![("main".into(), tip_v)],
        ..DirectModule::new("untagged", "")
    });
    c.finish("untagged", r)
}

/// `vendor123` / `vendor124`: the same vendor files under `go 1.23` (old, bug-compatible
/// exclusion: `pkg/vendor/x.go` dropped, `vendor/modules.txt` kept) and `go 1.24` (the reverse).
fn vendor(c: &mut GitCorpus, name: &str, go: &str) -> anyhow::Result<()> {
    let path = module_path(name, "");
    let mut r = c.start(name)?;
    r.write("go.mod", go_mod(&path, go))?
        .write("main.go", "package main\n\nfunc main() {}\n")?
        .write(
            "vendor/modules.txt",
            "# example.com/a v1.0.0\n## explicit\nexample.com/a/b\n",
        )?
        .write("vendor/a/b.go", "package b\n")?
        .write("vendor/top.txt", "kept in both\n")?
        .write("pkg/vendor/x.go", "package vendor\n")?;
    r.commit("v1.0.0")?;
    r.tag("v1.0.0")?;
    let files: &[&str] = if go == "1.23" {
        &["go.mod", "main.go", "vendor/modules.txt", "vendor/top.txt"]
    } else {
        &["go.mod", "main.go", "pkg/vendor/x.go", "vendor/top.txt"]
    };
    c.modules.push(DirectModule {
        covers: if go == "1.23" {
            "vendor/ exclusion before go 1.24"
        } else {
            "vendor/ exclusion from go 1.24 on"
        },
        versions: strings(&["v1.0.0"]),
        downloads: vec![with_files("v1.0.0", files)],
        latest: "v1.0.0".into(),
        ..DirectModule::new(name, "")
    });
    c.finish(name, r)
}

/// `attrs`: files the zip must leave out (a symlink, the root `.hg_archival.txt`, a nested module
/// in `nested/`) and a `.gitattributes` whose `export-ignore`/`export-subst` the go command
/// neutralises (`ignored.txt` is kept, `subst.txt` keeps its literal `$Format:%H$`) while
/// `eol=crlf` (`crlf.txt` gets CRLF line endings) and `ident` (`ident.txt` gets its blob hash)
/// still apply; `README.md` is committed with CRLF under `text` and archived with LF. `script.sh`
/// is executable (modes are not hashed).
fn attrs(c: &mut GitCorpus) -> anyhow::Result<()> {
    let path = module_path("attrs", "");
    let mut r = c.start("attrs")?;
    let attributes = "ignored.txt export-ignore\nsubst.txt export-subst\ncrlf.txt eol=crlf\n\
                      *.md text\nident.txt ident\n";
    r.write("go.mod", go_mod(&path, "1.21"))?
        .write("attrs.go", "package attrs\n")?
        .write(".gitattributes", attributes)?
        .write("ignored.txt", "export-ignore is neutralised\n")?
        .write("subst.txt", "commit $Format:%H$\n")?
        .write("crlf.txt", "line one\nline two\n")?
        .write("ident.txt", "$Id$\n")?
        .write("README.md", "# attrs\r\ncommitted with CRLF\r\n")?
        .write(".hg_archival.txt", "repo: 0123\nnode: 4567\n")?
        .write("nested/go.mod", go_mod(&format!("{path}/nested"), "1.21"))?
        .write("nested/n.go", "package nested\n")?
        .write_exec("script.sh", "#!/bin/sh\necho hi\n")?
        .symlink("link", "README.md")?;
    r.commit("v1.0.0")?;
    r.tag("v1.0.0")?;
    let files = [
        ".gitattributes",
        "README.md",
        "attrs.go",
        "crlf.txt",
        "go.mod",
        "ident.txt",
        "ignored.txt",
        "script.sh",
        "subst.txt",
    ];
    c.modules.push(DirectModule {
        covers: "excluded files (symlink, .hg_archival.txt, nested module) and .gitattributes",
        versions: strings(&["v1.0.0"]),
        downloads: vec![with_files("v1.0.0", &files)],
        latest: "v1.0.0".into(),
        ..DirectModule::new("attrs", "")
    });
    c.finish("attrs", r)
}

/// The number of tags of `many`.
pub const MANY_TAGS: usize = 20;

/// `many`: `v1.0.0` … `v1.0.19`, one commit each ("fetching 20 versions clones once").
fn many(c: &mut GitCorpus) -> anyhow::Result<()> {
    let path = module_path("many", "");
    let mut r = c.start("many")?;
    let versions: Vec<String> = (0..MANY_TAGS).map(|i| format!("v1.0.{i}")).collect();
    for (i, v) in versions.iter().enumerate() {
        r.write("go.mod", go_mod(&path, "1.21"))?
            .write("m.go", format!("package many\n\nconst N = {i}\n"))?;
        r.commit(v)?;
        r.tag(v)?;
    }
    let refs: Vec<&str> = versions.iter().map(String::as_str).collect();
    c.modules.push(DirectModule {
        covers: "20 tags in one repository",
        versions: versions.clone(),
        downloads: plain_versions(&refs),
        latest: format!("v1.0.{}", MANY_TAGS - 1),
        ..DirectModule::new("many", "")
    });
    c.finish("many", r)
}

/// Reads the file names (relative to `module@version/`, sorted) of a module zip on disk.
pub fn zip_files(zip_path: &Path) -> anyhow::Result<Vec<String>> {
    let file =
        std::fs::File::open(zip_path).with_context(|| format!("opening {}", zip_path.display()))?;
    let archive = zip::ZipArchive::new(file)?;
    let mut names: Vec<String> = archive
        .file_names()
        .map(|n| {
            // `<module>@<version>/<file>`: module paths contain `/` but never `@`.
            let rest = n.split_once('@').map_or(n, |(_, rest)| rest);
            rest.split_once('/')
                .map_or(rest, |(_, file)| file)
                .to_string()
        })
        .collect();
    names.sort();
    Ok(names)
}
