//! The repository `cairn-bench direct` fetches: one realistic private Go module in git.
//!
//! `git.corp.example/team/service.git` (a path the go command and cairn both resolve without
//! HTTP discovery, see `cairn_tests::gitcorpus`) with a root `go.mod`, a `LICENSE`, a `README.md`
//! and `--files` files in nested packages (`internal/…`, `pkg/…`, `cmd/…`, `api/…`): Go sources
//! and tests, a few Markdown documents and `testdata/*.json`. File sizes follow a log-normal
//! spread (many files of a few KiB, a few of 100 KiB and more) scaled so the first commit holds
//! about `--mbytes` MB of text that compresses like source code. The first commit adds
//! everything; each later commit appends a function to a handful of files, rewrites a comment
//! line in some, and every fifth commit adds a file, so the history is more than one snapshot
//! (cairn clones all of it, the go command fetches one tagged commit with `--depth=1`). Tags
//! `v1.0.0`…`v1.0.<n-1>` are spread evenly over the commits, the last on the last commit.
//!
//! Built with `cairn_tests::gitrepo::WorkRepo` (fixed dates and identities), so every run
//! produces the same commits; the bare repository is published under `<root>/team/service` and
//! linked as `<root>/team/service.git` (the URL a `[[direct.hosts]]` mapping builds).

use std::path::{Path, PathBuf};

use anyhow::Context;
use cairn_tests::gitcorpus::{module_path, TEAM};
use cairn_tests::gitrepo::WorkRepo;

/// The repository name (`team/<NAME>`), also the last element of the module path before `.git`.
pub const NAME: &str = "service";

/// Shape of the generated repository.
#[derive(Debug, Clone, Copy)]
pub struct RepoSpec {
    /// Files in the first commit besides `go.mod`, `LICENSE` and `README.md`.
    pub files: usize,
    /// Bytes of those files together (approximate).
    pub bytes: usize,
    /// Commits (at least 1).
    pub commits: usize,
    /// Tags `v1.0.0`… (at least 1, at most `commits`).
    pub tags: usize,
}

/// The built repository and its vital statistics.
#[derive(Debug)]
pub struct BuiltRepo {
    /// The directory to serve with `GitServer` (`<root>/team/service` is the bare repository).
    pub root: PathBuf,
    /// The module path.
    pub module: String,
    /// The tags, oldest first.
    pub tags: Vec<String>,
    /// Files at the last commit (`go.mod`, `LICENSE`, `README.md` included).
    pub head_files: usize,
    /// Bytes of those files.
    pub head_bytes: u64,
    /// Size of the bare repository on disk (objects, packs, refs).
    pub bare_bytes: u64,
    /// Wall time of building it, seconds.
    pub build_secs: f64,
}

/// Builds the repository under `dir` (created; `dir/srv` is the served root).
pub fn build(dir: &Path, spec: RepoSpec) -> anyhow::Result<BuiltRepo> {
    let started = std::time::Instant::now();
    let root = dir.join("srv");
    let bare = root.join(TEAM).join(NAME);
    let mut repo = WorkRepo::init(&dir.join("work"), &dir.join("home"), "main")?;
    repo.publish_to(&bare)?;
    let module = module_path(NAME, "");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut files = initial_files(&mut rng, &module, spec);
    for f in &files {
        repo.write(&f.path, &f.text)?;
    }
    let commits = spec.commits.max(1);
    let tags = spec.tags.clamp(1, commits);
    let tag_at: Vec<usize> = (0..tags).map(|j| (j + 1) * commits / tags - 1).collect();
    let mut tag_names = Vec::new();
    for c in 0..commits {
        if c > 0 {
            edit(&mut rng, &mut files, c)?;
            for f in files.iter_mut().filter(|f| f.dirty) {
                repo.write(&f.path, &f.text)?;
                f.dirty = false;
            }
        }
        repo.commit(&format!("change {c}"))
            .with_context(|| format!("commit {c}"))?;
        if let Some(j) = tag_at.iter().position(|&at| at == c) {
            let name = format!("v1.0.{j}");
            repo.tag(&name)?;
            tag_names.push(name);
        }
    }
    repo.publish().context("publishing the bare repository")?;
    std::os::unix::fs::symlink(&bare, root.join(TEAM).join(format!("{NAME}.git")))?;
    Ok(BuiltRepo {
        root,
        module,
        tags: tag_names,
        head_files: files.len(),
        head_bytes: files.iter().map(|f| f.text.len() as u64).sum(),
        bare_bytes: dir_bytes(&bare),
        build_secs: started.elapsed().as_secs_f64(),
    })
}

/// One file of the working tree, kept in memory so later commits can edit it.
struct File {
    path: String,
    /// The package clause of Go files (`None` for other files).
    package: Option<String>,
    text: String,
    dirty: bool,
}

/// go.mod, LICENSE, README.md and `spec.files` generated files.
fn initial_files(rng: &mut Rng, module: &str, spec: RepoSpec) -> Vec<File> {
    let mut files = vec![
        plain_file("go.mod", format!("module {module}\n\ngo 1.22\n")),
        plain_file("LICENSE", license()),
        plain_file("README.md", markdown(rng, 3000)),
    ];
    let packages = package_dirs(rng, (spec.files / 8).max(1));
    let sizes = sizes(rng, spec.files, spec.bytes);
    let mut used = std::collections::BTreeSet::new();
    for size in sizes {
        let dir = &packages[rng.below(packages.len())];
        let pkg = dir.rsplit('/').next().unwrap_or("x").to_owned();
        let kind = rng.below(100);
        let (path, text, package) = loop {
            let stem = format!("{}_{}", rng.word(), rng.word());
            let (path, is_go) = match kind {
                0..=3 => (format!("docs/{stem}.md"), false),
                4..=8 => (format!("{dir}/testdata/{stem}.json"), false),
                9..=20 => (format!("{dir}/{stem}_test.go"), true),
                _ => (format!("{dir}/{stem}.go"), true),
            };
            if used.insert(path.clone()) {
                let text = match (is_go, kind) {
                    (true, _) => go_source(rng, &pkg, size),
                    (false, 0..=3) => markdown(rng, size),
                    (false, _) => json(rng, size),
                };
                break (path, text, is_go.then(|| pkg.clone()));
            }
        };
        files.push(File {
            path,
            package,
            text,
            dirty: false,
        });
    }
    files
}

fn plain_file(path: &str, text: String) -> File {
    File {
        path: path.to_owned(),
        package: None,
        text,
        dirty: false,
    }
}

/// Commit `c`'s edits: a function appended to about one Go file in 40, a comment line
/// rewritten in a few more, and a new file every fifth commit.
fn edit(rng: &mut Rng, files: &mut Vec<File>, c: usize) -> anyhow::Result<()> {
    let go: Vec<usize> = (0..files.len())
        .filter(|&i| files[i].package.is_some())
        .collect();
    anyhow::ensure!(!go.is_empty(), "the repository has no Go files to edit");
    for _ in 0..(go.len() / 40).max(1) {
        let f = &mut files[go[rng.below(go.len())]];
        let n = 1 + rng.below(4);
        let func = function(rng, n);
        f.text.push_str(&func);
        f.dirty = true;
    }
    for _ in 0..(go.len() / 80).max(1) {
        let f = &mut files[go[rng.below(go.len())]];
        let n = 6 + rng.below(8);
        let comment = format!("// {}.", rng.words(n));
        let lines: Vec<&str> = f.text.lines().collect();
        let at: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].starts_with("// "))
            .collect();
        if let Some(&i) = at.get(rng.below(at.len().max(1))) {
            let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
            out[i] = comment;
            f.text = out.join("\n") + "\n";
            f.dirty = true;
        }
    }
    if c.is_multiple_of(5) {
        let template = &files[go[rng.below(go.len())]];
        let dir = template.path.rsplit_once('/').map_or("", |(d, _)| d);
        let pkg = template.package.clone().unwrap_or_default();
        let path = format!("{dir}/added_{c}.go");
        let size = 2000 + rng.below(6000);
        let text = go_source(rng, &pkg, size);
        files.push(File {
            path,
            package: Some(pkg),
            text,
            dirty: true,
        });
    }
    Ok(())
}

/// `n` distinct package directories, one to three elements under a top-level directory.
fn package_dirs(rng: &mut Rng, n: usize) -> Vec<String> {
    const TOP: [&str; 4] = ["internal", "pkg", "cmd", "api"];
    let mut dirs = std::collections::BTreeSet::new();
    while dirs.len() < n {
        let mut d = TOP[rng.below(TOP.len())].to_owned();
        for _ in 0..1 + rng.below(3) {
            d.push('/');
            d.push_str(rng.word());
        }
        dirs.insert(d);
    }
    dirs.into_iter().collect()
}

/// `n` log-normally spread sizes summing to about `total` (each at least 200 bytes).
fn sizes(rng: &mut Rng, n: usize, total: usize) -> Vec<usize> {
    let weights: Vec<f64> = (0..n)
        .map(|_| {
            // The sum of four uniforms, centred and scaled: close enough to a standard normal.
            let z = ((0..4).map(|_| rng.unit()).sum::<f64>() - 2.0) * 3f64.sqrt();
            (1.1 * z).exp()
        })
        .collect();
    let sum: f64 = weights.iter().sum();
    weights
        .iter()
        .map(|w| ((w / sum) * total as f64).max(200.0) as usize)
        .collect()
}

/// A Go file of about `size` bytes in package `pkg`.
fn go_source(rng: &mut Rng, pkg: &str, size: usize) -> String {
    let mut s = format!(
        "// Package {pkg} {}.\npackage {pkg}\n\nimport (\n\t\"errors\"\n\t\"fmt\"\n\t\"strings\"\n)\n\n\
         var err{} = errors.New(\"{}\")\n",
        rng.words(8),
        capital(rng.word()),
        rng.words(3)
    );
    while s.len() < size {
        let n = 1 + rng.below(5);
        s.push_str(&function(rng, n));
    }
    s
}

/// A documented function (or type with a method) with `n` statements.
fn function(rng: &mut Rng, n: usize) -> String {
    let name = format!("{}{}", capital(rng.word()), capital(rng.word()));
    let (a, b) = (rng.word(), rng.word());
    let mut body = String::new();
    for _ in 0..n {
        let line = match rng.below(4) {
            0 => format!(
                "\tif len({b}) > {} {{\n\t\treturn \"\", fmt.Errorf(\"{}: %d\", {a})\n\t}}\n",
                rng.below(500),
                rng.words(4)
            ),
            1 => format!("\t{b} = strings.TrimSpace({b} + \"{}\")\n", rng.words(2)),
            2 => format!(
                "\tfor i := 0; i < {a}%{}; i++ {{\n\t\t{b} += strings.Repeat(\"{}\", i)\n\t}}\n",
                1 + rng.below(64),
                rng.word()
            ),
            _ => format!("\t// {}.\n\t{a} += {}\n", rng.words(7), rng.below(1000)),
        };
        body.push_str(&line);
    }
    if rng.below(3) == 0 {
        format!(
            "\n// {name} {}.\ntype {name} struct {{\n\t{} int\n\t{} string\n}}\n\n\
             // Run {}.\nfunc (x *{name}) Run({a} int, {b} string) (string, error) {{\n{body}\
             \treturn {b}, nil\n}}\n",
            rng.words(9),
            capital(a),
            capital(b),
            rng.words(6),
        )
    } else {
        format!(
            "\n// {name} {}.\nfunc {name}({a} int, {b} string) (string, error) {{\n{body}\
             \tif {a} < 0 {{\n\t\treturn \"\", fmt.Errorf(\"{}: negative\")\n\t}}\n\treturn {b}, nil\n}}\n",
            rng.words(10),
            rng.word(),
        )
    }
}

fn markdown(rng: &mut Rng, size: usize) -> String {
    let mut s = format!("# {}\n", capital(rng.word()));
    while s.len() < size {
        let n = 40 + rng.below(60);
        s.push_str(&format!("\n## {}\n\n{}.\n", rng.words(3), rng.words(n)));
    }
    s
}

fn json(rng: &mut Rng, size: usize) -> String {
    let mut s = String::from("[\n");
    while s.len() < size {
        s.push_str(&format!(
            "  {{\"name\": \"{}\", \"count\": {}, \"tags\": [\"{}\", \"{}\"]}},\n",
            rng.words(2),
            rng.below(100_000),
            rng.word(),
            rng.word()
        ));
    }
    s.push_str("  {}\n]\n");
    s
}

fn license() -> String {
    "Copyright 2024 Corp Example Inc.\n\nLicensed under the Apache License, Version 2.0 (the \
     \"License\");\nyou may not use this file except in compliance with the License.\n"
        .to_owned()
}

fn capital(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// Bytes of every regular file under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// xorshift64*: deterministic, dependency-free randomness for the generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn word(&mut self) -> &'static str {
        WORDS[self.below(WORDS.len())]
    }

    fn words(&mut self, n: usize) -> String {
        (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }
}

/// Identifier-safe lower-case words (also used as package and file names).
const WORDS: [&str; 64] = [
    "account", "agent", "alert", "audit", "batch", "billing", "bucket", "cache", "catalog",
    "client", "cluster", "config", "cursor", "deploy", "digest", "event", "export", "feature",
    "filter", "gateway", "graph", "handler", "health", "index", "invoice", "job", "journal",
    "ledger", "limit", "lease", "metric", "mirror", "order", "owner", "packet", "parser",
    "payment", "policy", "queue", "quota", "record", "region", "report", "request", "route",
    "schema", "search", "secret", "session", "shard", "signal", "snapshot", "store", "stream",
    "tenant", "ticket", "token", "trace", "upload", "user", "vault", "webhook", "window", "worker",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_sum_to_about_the_total() {
        let mut rng = Rng(7);
        let s = sizes(&mut rng, 400, 4_000_000);
        let total: usize = s.iter().sum();
        assert!((3_900_000..4_200_000).contains(&total), "{total}");
        assert!(s.iter().any(|&x| x > 40_000) && s.iter().any(|&x| x < 4_000));
    }
}
