//! The go command's `coderepo` rules over a git mirror: which tags are versions of a module
//! (prefixed tags for subdirectories, major-version suffixes, `+incompatible`), how requested
//! pseudo-versions are validated, where the module's `go.mod` lives (`findDir`), and how the zip
//! is built from `git archive`. How a revision becomes a version (tags on the commit, else a
//! pseudo-version over the highest allowed ancestor tag) is the sibling `convert` module.
//!
//! Follows `cmd/go/internal/modfetch/coderepo.go` and `codehost/git.go` (Go 1.26) step by step;
//! comments name the Go function each piece mirrors.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::convert::{is_major, path_major_prefix, Converter};
use super::discover::has_path_prefix;
use super::git::{Commit, GitError, Mirror, Refs};
use super::gomod::{self, Retraction};
use crate::module::{self, semver};
use crate::modzip::create::{create_from_git_archive, CreateError, CreateLimits};

pub use super::timefmt::{rfc3339, timestamp};

/// Largest go.mod read from a repository (`codehost.MaxGoMod`).
pub(super) const MAX_GO_MOD: u64 = 16 << 20;
/// Largest LICENSE read from a repository root (`codehost.MaxLICENSE`).
const MAX_LICENSE: u64 = 16 << 20;
/// Largest `git archive` output accepted (`codehost.MaxZipFile`).
const MAX_ARCHIVE: u64 = 500 << 20;
/// Hash prefixes shorter than this are not looked up (`minHashDigits`).
const MIN_HASH_DIGITS: usize = 7;

/// Why a direct lookup produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The module, version or revision does not exist (HTTP 404 for the client).
    #[error("{0}")]
    NotFound(String),
    /// git or the repository failed (HTTP 502 for the client).
    #[error("{0}")]
    Failed(String),
}

impl From<GitError> for RepoError {
    fn from(e: GitError) -> Self {
        match e {
            // A refused host is as good as "no such repository" (404), like discovery's refusal.
            GitError::Refused(_) => RepoError::NotFound(e.to_string()),
            e => RepoError::Failed(e.to_string()),
        }
    }
}

/// A resolved version: what `.info` says, plus where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevInfo {
    /// The module version (tag-derived or pseudo-version).
    pub version: String,
    /// The commit.
    pub hash: String,
    /// Committer time, seconds since the epoch.
    pub time: i64,
    /// The ref the revision was resolved through (`refs/tags/v1.0.0`), when it was a tag.
    pub tag_ref: Option<String>,
}

/// What the code host knows of a revision (`codehost.RevInfo`).
#[derive(Debug, Clone)]
pub(super) struct CodeInfo {
    pub(super) commit: Commit,
    /// The tag name when the revision was asked for by tag, else the hash.
    pub(super) version: String,
    /// Tags on the commit, sorted.
    pub(super) tags: Vec<String>,
}

impl CodeInfo {
    pub(super) fn short(&self) -> &str {
        &self.commit.hash[..12]
    }
}

/// One module inside one repository (`codeRepo`).
pub struct CodeRepo {
    pub(super) module: String,
    pub(super) mirror: Arc<Mirror>,
    pub(super) code_dir: String,
    pub(super) path_major: String,
    pub(super) path_prefix: String,
    pub(super) pseudo_major: String,
    /// A fetch is attempted at most this often for unknown revisions and moving refs.
    refresh_min: Duration,
}

impl CodeRepo {
    /// The module `module` in the repository rooted at module path `root` (with the go-import
    /// `subdir`, usually empty), mirrored by `mirror` (`newCodeRepo`).
    pub fn new(
        module: &str,
        root: &str,
        subdir: &str,
        mirror: Arc<Mirror>,
        refresh_min: Duration,
    ) -> Result<CodeRepo, RepoError> {
        if !has_path_prefix(module, root) {
            return Err(RepoError::NotFound(format!(
                "mismatched repo: found {root} for {module}"
            )));
        }
        let (mut path_prefix, path_major) = module::split_path_version(module)
            .ok_or_else(|| RepoError::NotFound(format!("invalid module path {module:?}")))?;
        if root == module {
            path_prefix = module;
        }
        let pseudo_major = path_major_prefix(path_major);
        let mut code_dir = String::new();
        if root != module {
            if !has_path_prefix(path_prefix, root) {
                return Err(RepoError::NotFound(format!(
                    "repository rooted at {root} cannot contain module {module}"
                )));
            }
            code_dir = path_prefix[root.len()..].trim_matches('/').to_owned();
        }
        // `filepath.Join` cleans: `a//b/` is `a/b`. Discovery already refused `..`.
        let subdir = subdir
            .split('/')
            .filter(|e| !e.is_empty() && *e != ".")
            .collect::<Vec<_>>()
            .join("/");
        if !subdir.is_empty() {
            code_dir = join(&code_dir, &subdir);
        }
        Ok(CodeRepo {
            module: module.to_owned(),
            mirror,
            code_dir,
            path_major: path_major.to_owned(),
            path_prefix: path_prefix.to_owned(),
            pseudo_major,
            refresh_min,
        })
    }

    /// The directory of the module in the repository (`codeDir`).
    pub fn code_dir(&self) -> &str {
        &self.code_dir
    }

    /// The repository's remote URL.
    pub fn url(&self) -> &str {
        self.mirror.url()
    }

    pub(super) fn tag_prefix(&self) -> String {
        if self.code_dir.is_empty() {
            String::new()
        } else {
            format!("{}/", self.code_dir)
        }
    }

    /// Brings the mirror up to date (at most every `refresh_min`). A failing remote is tolerated
    /// when a mirror exists: what it holds is served, and the failure is returned so that a
    /// revision the mirror lacks is reported as a failure rather than as "not found".
    pub async fn refresh(&self) -> Result<Option<String>, RepoError> {
        match self.mirror.refresh(self.refresh_min).await {
            Ok(_) => Ok(None),
            Err(e) if self.mirror.exists() => {
                tracing::warn!(module = %self.module, error = %e, "git remote unreachable; serving the mirror as it is");
                Ok(Some(e.to_string()))
            }
            Err(e) if e.is_missing_repository() => Err(RepoError::NotFound(format!(
                "{}: repository not found: {e}",
                self.module
            ))),
            Err(e) => Err(e.into()),
        }
    }

    // === versions ===

    /// The module's versions from the repository's tags (`codeRepo.Versions("")`), sorted.
    pub async fn versions(&self) -> Result<Vec<String>, RepoError> {
        if self.module.starts_with("gopkg.in/") && self.module.ends_with("-unstable") {
            return Ok(Vec::new());
        }
        let refs = self.mirror.refs().await?;
        let prefix = self.tag_prefix();
        let mut list = Vec::new();
        let mut incompatible = Vec::new();
        for tag in refs.tags_with_prefix(&prefix) {
            let v = &tag[prefix.len()..];
            if v.is_empty() || v != semver::canonical(v) || module::is_pseudo_version(v) {
                continue;
            }
            if module::check_path_major(v, &self.path_major).is_err() {
                if self.code_dir.is_empty() && self.path_major.is_empty() && semver::major(v) > "v1"
                {
                    incompatible.push(v.to_owned());
                }
                continue;
            }
            list.push(v.to_owned());
        }
        semver::sort(&mut list);
        semver::sort(&mut incompatible);
        self.append_incompatible(&refs, list, incompatible).await
    }

    /// `appendIncompatibleVersions`.
    async fn append_incompatible(
        &self,
        refs: &Refs,
        mut list: Vec<String>,
        incompatible: Vec<String>,
    ) -> Result<Vec<String>, RepoError> {
        if incompatible.is_empty() || !self.path_major.is_empty() {
            return Ok(list);
        }
        if let Some(last) = list.last() {
            if self.tag_has_go_mod(refs, last).await? {
                return Ok(list);
            }
        }
        let mut last_major = String::new();
        let mut last_major_has_go_mod = false;
        for (i, v) in incompatible.iter().enumerate() {
            let major = semver::major(v);
            if major != last_major {
                let rem = &incompatible[i..];
                let j = rem
                    .iter()
                    .position(|x| semver::major(x) != major)
                    .unwrap_or(rem.len());
                let latest_at_major = &rem[j.saturating_sub(1)];
                last_major = major.to_owned();
                last_major_has_go_mod = self.tag_has_go_mod(refs, latest_at_major).await?;
            }
            if !last_major_has_go_mod {
                list.push(format!("{v}+incompatible"));
            }
        }
        Ok(list)
    }

    /// Whether the root go.mod exists at tag `v` (the repository root: only called for
    /// modules at the root).
    async fn tag_has_go_mod(&self, refs: &Refs, v: &str) -> Result<bool, RepoError> {
        let Some(hash) = refs.map.get(&format!("refs/tags/{v}")) else {
            return Ok(false);
        };
        Ok(self
            .mirror
            .read_file(hash, "go.mod", MAX_GO_MOD)
            .await?
            .is_some())
    }

    // === stat ===

    /// Resolves `rev` (a version, branch, tag, hash prefix or `HEAD`) to a module version
    /// (`codeRepo.Stat`).
    pub async fn stat(&self, rev: &str) -> Result<RevInfo, RepoError> {
        if rev == "latest" {
            return self.latest().await;
        }
        let code_rev = self.rev_to_rev(rev);
        let info = self.code_stat(&code_rev).await?;
        self.convert(&info, rev).await
    }

    /// The version of the default branch's head (`codeRepo.Latest`).
    pub async fn latest(&self) -> Result<RevInfo, RepoError> {
        self.refresh().await?;
        let refs = self.mirror.refs().await?;
        let Some(head) = refs.head.clone() else {
            return Err(RepoError::NotFound(format!(
                "{}: no commits on the default branch",
                self.module
            )));
        };
        let info = self.code_stat(&head).await?;
        self.convert(&info, "").await
    }

    /// `revToRev`: the code-host revision for a module version.
    fn rev_to_rev(&self, rev: &str) -> String {
        if !semver::is_valid(rev) {
            return rev.to_owned();
        }
        if module::is_pseudo_version(rev) {
            return module::pseudo_version_rev(rev).unwrap_or_else(|_| rev.to_owned());
        }
        let rev = rev.strip_suffix("+incompatible").unwrap_or(rev);
        if self.code_dir.is_empty() {
            rev.to_owned()
        } else {
            format!("{}/{rev}", self.code_dir)
        }
    }

    /// `gitRepo.Stat`: resolves a code-host revision in the mirror, fetching when it is unknown
    /// or names a moving ref (branch, `HEAD`).
    async fn code_stat(&self, rev: &str) -> Result<CodeInfo, RepoError> {
        if !self.mirror.exists() {
            self.refresh().await?;
        }
        let refs = self.mirror.refs().await?;
        let known_tag = refs.map.contains_key(&format!("refs/tags/{rev}"));
        let moving = rev == "HEAD" || refs.map.contains_key(&format!("refs/heads/{rev}"));
        if !known_tag && !moving {
            if let Some(info) = self.stat_local(&refs, rev).await? {
                return Ok(info);
            }
        }
        let stale = if known_tag {
            None
        } else {
            self.refresh().await?
        };
        let refs = self.mirror.refs().await?;
        match (self.stat_local(&refs, rev).await?, stale) {
            (Some(info), _) => Ok(info),
            (None, Some(failure)) => Err(RepoError::Failed(format!(
                "{}: revision {rev} is not in the mirror and the git remote failed: {failure}",
                self.module
            ))),
            (None, None) => Err(RepoError::NotFound(format!(
                "{}: unknown revision {rev}",
                self.module
            ))),
        }
    }

    /// The resolution part of `gitRepo.stat` + `statLocal`, against the mirror's refs.
    async fn stat_local(&self, refs: &Refs, rev: &str) -> Result<Option<CodeInfo>, RepoError> {
        let hex = rev.len() >= MIN_HASH_DIGITS
            && rev.len() <= 40
            && rev
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        let tag_ref = format!("refs/tags/{rev}");
        let head_ref = format!("refs/heads/{rev}");
        let (target, version) = if hex {
            (rev.to_owned(), rev.to_owned())
        } else if let Some(hash) = refs.map.get(&tag_ref) {
            (hash.clone(), rev.to_owned())
        } else if let Some(hash) = refs.map.get(&head_ref) {
            (hash.clone(), hash.clone())
        } else if rev == "HEAD" {
            match &refs.head {
                Some(hash) => (hash.clone(), hash.clone()),
                None => return Ok(None),
            }
        } else {
            return Ok(None);
        };
        let Some(commit) = self.mirror.commit(&target).await? else {
            return Ok(None);
        };
        let mut version = version;
        if hex && commit.hash.starts_with(&version) {
            version = commit.hash.clone();
        }
        let mut tags = refs.tags_at(&commit.hash);
        tags.sort();
        if !tags.contains(&version) {
            version = commit.hash.clone();
        }
        Ok(Some(CodeInfo {
            version,
            tags,
            commit,
        }))
    }

    // === convert ===

    /// `codeRepo.convert`: the module version for a resolved revision; `stat_vers` is what the
    /// client asked for ("" for latest).
    async fn convert(&self, info: &CodeInfo, stat_vers: &str) -> Result<RevInfo, RepoError> {
        let mut rev = Converter::new(self, info, stat_vers).run().await?;
        if rev.tag_ref.is_none() && !module::is_pseudo_version(&rev.version) {
            let tag = format!(
                "{}{}",
                self.tag_prefix(),
                rev.version.trim_end_matches("+incompatible")
            );
            if info.tags.contains(&tag) {
                rev.tag_ref = Some(format!("refs/tags/{tag}"));
            }
        }
        Ok(rev)
    }

    /// `retractedVersions`: the retractions declared by the go.mod of the highest release (else
    /// highest pre-release) tag. Errors mean no retractions, as in the go command.
    pub(super) async fn retractions(&self) -> Vec<Retraction> {
        let Ok(mut versions) = self.versions().await else {
            return Vec::new();
        };
        if let Some(i) = versions.iter().position(|v| v.ends_with("+incompatible")) {
            versions.truncate(i);
        }
        let highest = versions
            .iter()
            .rev()
            .find(|v| semver::prerelease(v).is_empty())
            .or(versions.last());
        let Some(highest) = highest.cloned() else {
            return Vec::new();
        };
        // Not `go_mod`: `highest` is never a pseudo-version, and going through `stat` would
        // make `convert` recursive.
        let Ok(info) = self.code_stat(&self.rev_to_rev(&highest)).await else {
            return Vec::new();
        };
        match self.find_dir(&info.commit.hash, &highest).await {
            Ok((_, Some(data))) => gomod::retractions(&data),
            _ => Vec::new(),
        }
    }

    /// `validatePseudoVersion`.
    pub(super) async fn validate_pseudo(
        &self,
        info: &CodeInfo,
        version: &str,
    ) -> Result<(), RepoError> {
        let invalid = |msg: String| {
            RepoError::NotFound(format!(
                "{}@{version}: invalid pseudo-version: {msg}",
                self.module
            ))
        };
        let rev = module::pseudo_version_rev(version).map_err(|e| invalid(e.to_string()))?;
        let short = info.short();
        if rev != short {
            let msg = if rev.starts_with(short) {
                format!("revision is longer than canonical (expected {short})")
            } else if short.starts_with(&rev) {
                format!("revision is shorter than canonical (expected {short})")
            } else {
                format!("does not match short name of revision (expected {short})")
            };
            return Err(invalid(msg));
        }
        let t = module::pseudo_version_time(version).map_err(|e| invalid(e.to_string()))?;
        let expected = timestamp(info.commit.time);
        if t != expected {
            return Err(invalid(format!(
                "does not match version-control timestamp (expected {expected})"
            )));
        }
        let prefix = self.tag_prefix();
        let base = module::pseudo_version_base(version.trim_end_matches("+incompatible"))
            .map_err(|e| invalid(e.to_string()))?;
        if base.is_empty() {
            if self.pseudo_major.is_empty() && semver::major(version) == "v1" {
                return Err(invalid(
                    "major version without preceding tag must be v0, not v1".to_owned(),
                ));
            }
            return Ok(());
        }
        for tag in &info.tags {
            if tag.strip_prefix(&prefix).unwrap_or(tag) == base {
                return Err(invalid(format!(
                    "tag ({tag}) found on revision {rev} is already canonical, so should not be replaced with a pseudo-version derived from that tag"
                )));
            }
        }
        let refs = self.mirror.refs().await?;
        let mut last_tag = String::new();
        let mut found = false;
        for tag in refs.tags_with_prefix(&format!("{prefix}{base}")) {
            let only = tag.strip_prefix(&prefix).unwrap_or(&tag);
            if semver::compare(only, &base).is_eq() {
                last_tag = tag.clone();
                if self.mirror.descends_from(&info.commit.hash, &tag).await? {
                    found = true;
                    break;
                }
            }
        }
        if last_tag.is_empty() {
            return Err(invalid(format!("preceding tag ({base}) not found")));
        }
        if !found {
            return Err(invalid(format!(
                "revision {rev} is not a descendent of preceding tag ({last_tag})"
            )));
        }
        Ok(())
    }

    // === findDir, go.mod, zip ===

    /// `findDir` at commit `hash` for `version`: the module directory and its go.mod (None for a
    /// legacy module without one).
    pub(super) async fn find_dir(
        &self,
        hash: &str,
        version: &str,
    ) -> Result<(String, Option<Vec<u8>>), RepoError> {
        let nf = |msg: String| RepoError::NotFound(format!("{}@{version}: {msg}", self.module));
        let file1 = join(&self.code_dir, "go.mod");
        let gomod1 = self.mirror.read_file(hash, &file1, MAX_GO_MOD).await?;
        let mpath1 = gomod1
            .as_deref()
            .map(gomod::module_path)
            .unwrap_or_default();
        let found1 = gomod1.is_some()
            && (is_major(&mpath1, &self.path_major)
                || (self.path_major.is_empty() && mpath1.starts_with("gopkg.in/")));
        let short = &hash[..hash.len().min(12)];
        let mut file2 = String::new();
        if !self.path_major.is_empty()
            && self.path_prefix != self.module
            && !self.path_major.starts_with('.')
        {
            let dir2 = join(&self.code_dir, &self.path_major[1..]);
            file2 = join(&dir2, "go.mod");
            let gomod2 = self.mirror.read_file(hash, &file2, MAX_GO_MOD).await?;
            let mpath2 = gomod2
                .as_deref()
                .map(gomod::module_path)
                .unwrap_or_default();
            let found2 = gomod2.is_some() && is_major(&mpath2, &self.path_major);
            if found1 && found2 {
                return Err(nf(format!(
                    "{}/{file1} and ...{}/go.mod both have ...{} module paths at revision {short}",
                    self.path_prefix, self.path_major, self.path_major
                )));
            }
            if found2 {
                return Ok((dir2, gomod2));
            }
            if gomod2.is_some() {
                return Err(nf(format!(
                    "{file2} has non-...{} module path {mpath2:?} at revision {short}",
                    self.path_major
                )));
            }
        }
        if found1 {
            return Ok((self.code_dir.clone(), gomod1));
        }
        if gomod1.is_some() {
            if mpath1.is_empty() {
                return Err(nf(format!(
                    "{file1} is missing module path at revision {short}"
                )));
            }
            return Err(nf(format!(
                "{file1} has post-{} module path {mpath1:?} at revision {short}",
                semver::major(version)
            )));
        }
        if self.code_dir.is_empty()
            && (self.path_major.is_empty() || self.path_major.starts_with('.'))
        {
            return Ok((String::new(), None));
        }
        if !file2.is_empty() {
            return Err(nf(format!(
                "missing {}/go.mod and ...{}/go.mod at revision {short}",
                self.path_prefix, self.path_major
            )));
        }
        Err(nf(format!(
            "missing {}/go.mod at revision {short}",
            self.path_prefix
        )))
    }

    /// The commit a canonical version names (`versionToRev` + `Stat`): pseudo-versions are
    /// validated through [`CodeRepo::stat`] first.
    async fn version_commit(&self, version: &str) -> Result<String, RepoError> {
        if module::canonical_version(version) != version {
            return Err(RepoError::NotFound(format!(
                "{}: version {version} is not canonical",
                self.module
            )));
        }
        if module::is_pseudo_version(version) {
            return Ok(self.stat(version).await?.hash);
        }
        let rev = self.rev_to_rev(version);
        Ok(self.code_stat(&rev).await?.commit.hash)
    }

    /// The go.mod of a canonical version (`codeRepo.GoMod`), synthesized for legacy modules.
    pub async fn go_mod(&self, version: &str) -> Result<Vec<u8>, RepoError> {
        let hash = self.version_commit(version).await?;
        let (_, gomod) = self.find_dir(&hash, version).await?;
        Ok(gomod.unwrap_or_else(|| gomod::legacy(&self.module)))
    }

    /// Builds the zip of a canonical version into `out` (`codeRepo.Zip`), using `scratch` for
    /// the intermediate `git archive`.
    pub async fn zip(&self, version: &str, out: &Path, scratch: &Path) -> Result<(), RepoError> {
        let hash = self.version_commit(version).await?;
        let (dir, _) = self.find_dir(&hash, version).await?;
        let found = self
            .mirror
            .archive(&hash, &dir, scratch, MAX_ARCHIVE)
            .await?;
        if !found {
            return Err(RepoError::NotFound(format!(
                "{}@{version}: no files in {dir}",
                self.module
            )));
        }
        let license = if dir.is_empty() {
            None
        } else {
            self.mirror.read_file(&hash, "LICENSE", MAX_LICENSE).await?
        };
        let (module, owned_version) = (self.module.clone(), version.to_owned());
        let (scratch, out) = (scratch.to_owned(), out.to_owned());
        tokio::task::spawn_blocking(move || {
            create_from_git_archive(
                &module,
                &owned_version,
                &scratch,
                &dir,
                license.as_deref(),
                &out,
                &CreateLimits::default(),
            )
        })
        .await
        .map_err(|e| RepoError::Failed(format!("zip builder panicked: {e}")))?
        .map_err(|e| {
            let msg = format!("{}@{version}: {e}", self.module);
            // The tree's content decides these; the others are this node's trouble (disk, I/O).
            match e {
                CreateError::Io(_)
                | CreateError::Archive(_)
                | CreateError::OpenEntry { .. }
                | CreateError::ReadEntry { .. }
                | CreateError::Write(_) => RepoError::Failed(msg),
                _ => RepoError::NotFound(msg),
            }
        })?;
        Ok(())
    }
}

/// `path.Join` for two relative slash paths, either possibly empty.
pub(super) fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{}/{}", a.trim_end_matches('/'), b),
    }
}
