//! [`Direct`]: the node's direct source. Resolves a module path to its repository, keeps one
//! [`Mirror`] per repository URL, and answers the GOPROXY files (`list`, `latest`, `.info`,
//! `.mod`, `.zip`) through the `coderepo` rules of [`super::repo`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use super::config::DirectConfig;
use super::credentials::{parse_remote, redact_url, Credentials};
use super::discover::{has_path_prefix, Discovery, RepoRoot};
use super::git::{mirror_dir_name, GitRunner, Mirror};
use super::netguard::NetGuard;
use super::repo::{rfc3339, CodeRepo, RepoError, RevInfo};

/// Mirrors kept open in memory at once; past this the map is cleared (mirrors stay on disk).
const MAX_OPEN_MIRRORS: usize = 4096;

/// Why the direct source could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DirectInitError {
    /// Configuration or credential problems, all of them.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The mirrors directory could not be created.
    #[error("cannot create the git mirrors directory {dir}: {source}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The direct source: resolves module paths to repositories and answers the GOPROXY files from
/// persistent bare mirrors. One per node, shared by every routing rule that lists `direct`.
pub struct Direct {
    root: PathBuf,
    scratch: PathBuf,
    runner: Arc<GitRunner>,
    discovery: Discovery,
    mirrors: Mutex<HashMap<String, Arc<Mirror>>>,
    refresh_min: Duration,
    seq: AtomicU64,
    /// `[[direct.hosts]]` prefixes: repositories the operator named, trusted with credentials.
    mapped: Vec<String>,
    /// `[[direct.hosts]]` base URLs: repositories under them are reached without the address
    /// guard (the operator named them; internal git servers live there).
    mapped_urls: Vec<String>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// `.info` as the go command writes it in direct mode.
#[derive(Serialize)]
struct InfoJson<'a> {
    #[serde(rename = "Version")]
    version: &'a str,
    #[serde(rename = "Time")]
    time: String,
    #[serde(rename = "Origin")]
    origin: OriginJson<'a>,
}

#[derive(Serialize)]
struct OriginJson<'a> {
    #[serde(rename = "VCS")]
    vcs: &'static str,
    #[serde(rename = "URL")]
    url: String,
    #[serde(rename = "Subdir", skip_serializing_if = "str::is_empty")]
    subdir: &'a str,
    #[serde(rename = "Hash")]
    hash: &'a str,
    #[serde(rename = "Ref", skip_serializing_if = "Option::is_none")]
    reference: Option<&'a str>,
}

impl Direct {
    /// Sets up the direct source from `[direct]`: mirrors under `cfg.dir` (else
    /// `<data_dir>/vcs`), credentials checked now, half-made clones from a crash removed; git and
    /// discovery trust and route as `egress` says.
    pub fn new(
        cfg: &DirectConfig,
        data_dir: &Path,
        egress: &crate::egress::Egress,
    ) -> Result<Arc<Direct>, DirectInitError> {
        let mut problems = cfg.problems();
        let creds = Credentials::load(cfg).map_err(|p| problems.extend(p)).ok();
        let timeout = Duration::from_secs(cfg.command_timeout_secs.max(1));
        let creds = match creds {
            Some(c) if problems.is_empty() => Arc::new(c),
            _ => return Err(DirectInitError::Invalid(problems)),
        };
        let discovery = Discovery::new(
            cfg,
            Arc::clone(&creds),
            timeout.min(Duration::from_secs(30)),
            egress,
        )
        .map_err(|e| DirectInitError::Invalid(vec![e.to_string()]))?;
        let root = cfg.dir.clone().unwrap_or_else(|| data_dir.join("vcs"));
        let scratch = root.join("tmp");
        for dir in [&root, &scratch] {
            std::fs::create_dir_all(dir).map_err(|source| DirectInitError::Dir {
                dir: dir.clone(),
                source,
            })?;
        }
        super::git::remove_partial_clones(&root);
        if let Ok(entries) = std::fs::read_dir(&scratch) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let anonymous_home = root.join("anonymous-home");
        std::fs::create_dir_all(&anonymous_home).map_err(|source| DirectInitError::Dir {
            dir: anonymous_home.clone(),
            source,
        })?;
        let bundle = egress
            .write_git_bundle(&root.join("ca-bundle.pem"))
            .map_err(|e| DirectInitError::Invalid(vec![e.to_string()]))?;
        let runner = Arc::new(
            GitRunner::new(&cfg.git, timeout, cfg.max_per_host, creds)
                .net_guard(Arc::new(NetGuard::new(cfg)))
                .proxies(egress.proxies().clone())
                .anonymous_home(anonymous_home)
                .egress_env(egress.git_env(bundle.as_deref())),
        );
        Ok(Arc::new(Direct {
            root,
            scratch,
            runner,
            discovery,
            mirrors: Mutex::new(HashMap::new()),
            refresh_min: Duration::from_secs(cfg.refresh_min_secs),
            seq: AtomicU64::new(0),
            mapped: cfg.hosts.iter().map(|h| h.prefix.clone()).collect(),
            mapped_urls: cfg.hosts.iter().map(|h| h.url.clone()).collect(),
        }))
    }

    /// The `@v/list` body: the module's tagged versions, one per line.
    pub async fn list(&self, module: &str) -> Result<Vec<u8>, RepoError> {
        let repo = self.code_repo(module).await?;
        repo.refresh().await?;
        let versions = repo.versions().await?;
        let mut body = String::new();
        for v in versions {
            body.push_str(&v);
            body.push('\n');
        }
        Ok(body.into_bytes())
    }

    /// The `@latest` body: the default branch's head as a version.
    pub async fn latest(&self, module: &str) -> Result<Vec<u8>, RepoError> {
        let repo = self.code_repo(module).await?;
        let rev = repo.latest().await?;
        self.info_json(&repo, &rev)
    }

    /// The `.info` body for `query` (a canonical version, or a branch, tag, hash or `HEAD`).
    pub async fn info(&self, module: &str, query: &str) -> Result<Vec<u8>, RepoError> {
        let repo = self.code_repo(module).await?;
        let rev = repo.stat(query).await?;
        self.info_json(&repo, &rev)
    }

    /// The `.mod` body of a canonical version.
    pub async fn go_mod(&self, module: &str, version: &str) -> Result<Vec<u8>, RepoError> {
        let repo = self.code_repo(module).await?;
        repo.go_mod(version).await
    }

    /// Builds the zip of a canonical version into a new scratch file and returns its path; the
    /// caller removes it.
    pub async fn zip(&self, module: &str, version: &str) -> Result<ScratchFile, RepoError> {
        let repo = self.code_repo(module).await?;
        let out = self.scratch_file("zip");
        let archive = self.scratch_file("archive");
        let result = repo.zip(version, &out.0, &archive.0).await;
        drop(archive);
        result.map(|()| out)
    }

    fn scratch_file(&self, kind: &str) -> ScratchFile {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        ScratchFile(
            self.scratch
                .join(format!("{kind}-{}-{n}", std::process::id())),
        )
    }

    fn info_json(&self, repo: &CodeRepo, rev: &RevInfo) -> Result<Vec<u8>, RepoError> {
        let info = InfoJson {
            version: &rev.version,
            time: rfc3339(rev.time),
            origin: OriginJson {
                vcs: "git",
                url: redact_url(repo.url()),
                subdir: repo.code_dir(),
                hash: &rev.hash,
                reference: rev.tag_ref.as_deref(),
            },
        };
        serde_json::to_vec(&info).map_err(|e| RepoError::Failed(format!("encoding .info: {e}")))
    }

    /// The code repository of `module`: discovery, then the (possibly new) mirror.
    async fn code_repo(&self, module: &str) -> Result<CodeRepo, RepoError> {
        let root: RepoRoot = self.discovery.repo_root(module).await.map_err(|e| {
            // Network trouble may pass; a missing, malformed, `mod` or non-git answer is as
            // good as "no such module" and lets a `,` chain move on.
            if e.is_retryable() {
                RepoError::Failed(e.to_string())
            } else {
                RepoError::NotFound(e.to_string())
            }
        })?;
        let mirror = self.mirror(&root.url, self.trusted(module, &root.url));
        CodeRepo::new(module, &root.root, &root.subdir, mirror, self.refresh_min)
    }

    /// Whether credentials may be used for `url` when serving `module`: when the operator mapped
    /// the path, or the repository is on the module path's own host. A `?go-get=1` page of some
    /// other host naming a private repository must not get that repository served with cairn's
    /// credentials under its path.
    fn trusted(&self, module: &str, url: &str) -> bool {
        if self.mapped.iter().any(|p| has_path_prefix(module, p)) {
            return true;
        }
        let module_host = module.split('/').next().unwrap_or("");
        parse_remote(url).is_some_and(|r| r.host.eq_ignore_ascii_case(module_host))
    }

    /// Whether `url` is under a `[[direct.hosts]]` base URL, i.e. one a mapping would build.
    /// A property of the URL, not of the path that led to it, so one mirror serves both.
    fn operator_url(&self, url: &str) -> bool {
        self.mapped_urls.iter().any(|base| {
            url.strip_prefix(base.as_str()).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with('/') || base.ends_with(['/', ':'])
            })
        })
    }

    fn mirror(&self, url: &str, authenticate: bool) -> Arc<Mirror> {
        // Anonymous mirrors live apart: one must never answer from objects fetched with
        // credentials.
        let key = if authenticate {
            url.to_owned()
        } else {
            format!("anonymous:{url}")
        };
        let mut map = self.mirrors.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = map.get(&key) {
            return Arc::clone(m);
        }
        if map.len() >= MAX_OPEN_MIRRORS {
            // Forget only handles nobody holds: two live handles for one URL would run two
            // fetches into one repository.
            map.retain(|_, m| Arc::strong_count(m) > 1);
        }
        let dir = self.root.join(mirror_dir_name(&key));
        let runner = Arc::clone(&self.runner);
        let guarded = !self.operator_url(url);
        let mirror =
            Arc::new(Mirror::new(url.to_owned(), dir, runner, authenticate).guarded(guarded));
        map.insert(key, Arc::clone(&mirror));
        mirror
    }
}

/// A file in the scratch directory, removed when dropped.
#[derive(Debug)]
pub struct ScratchFile(pub PathBuf);

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_trusted_only_to_mapped_paths_and_same_host_repositories() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg: DirectConfig = toml::from_str(
            "discovery = false\n[[hosts]]\nprefix = \"corp.example.com\"\nurl = \"ssh://git@git.internal:7999\"\n",
        )
        .unwrap();
        let direct = Direct::new(&cfg, tmp.path(), &crate::egress::Egress::default()).unwrap();
        assert!(direct.trusted(
            "corp.example.com/team/x",
            "ssh://git@git.internal:7999/team"
        ));
        assert!(direct.trusted("github.com/corp/x", "https://github.com/corp/x"));
        assert!(direct.trusted("git.corp.example/r.git", "https://Git.Corp.Example:443/r"));
        // A go-import page elsewhere naming a private repository: anonymous.
        assert!(!direct.trusted("evil.example/x", "https://github.com/corp/private"));
        assert!(!direct.trusted("corp.example.community/x", "https://github.com/corp/x"));
        let trusted = direct.mirror("https://github.com/corp/private", true);
        let anonymous = direct.mirror("https://github.com/corp/private", false);
        assert!(!Arc::ptr_eq(&trusted, &anonymous));
        assert!(Arc::ptr_eq(
            &trusted,
            &direct.mirror("https://github.com/corp/private", true)
        ));
    }

    #[tokio::test]
    async fn client_named_internal_hosts_are_not_found_and_mapped_ones_are_tried() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg: DirectConfig = toml::from_str(
            "discovery = false\ncommand_timeout_secs = 10\n\
             [[hosts]]\nprefix = \"corp.example.com\"\nurl = \"http://127.0.0.1:9\"\n",
        )
        .unwrap();
        let direct = Direct::new(&cfg, tmp.path(), &crate::egress::Egress::default()).unwrap();
        let err = direct.list("127.0.0.1/x.git").await.unwrap_err();
        assert!(
            matches!(&err, RepoError::NotFound(m) if m.contains("discovery refused: 127.0.0.1 is a loopback address")),
            "{err}"
        );
        // The mapped repository is on loopback too: git is run (and fails: nothing listens).
        let err = direct.list("corp.example.com/r").await.unwrap_err();
        assert!(
            matches!(&err, RepoError::Failed(m) if !m.contains("discovery refused")),
            "{err}"
        );
        assert!(direct.operator_url("http://127.0.0.1:9/r"));
        assert!(!direct.operator_url("http://127.0.0.1:90/r"));
    }
}
