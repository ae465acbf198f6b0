//! `codeRepo.convert`: the module version a resolved revision gets. A tag on the commit gives a
//! release (with `+incompatible` where the go command allows it), else a pseudo-version over the
//! highest allowed, unretracted ancestor tag; a requested pseudo-version is checked by
//! `CodeRepo::validate_pseudo`, and every answer goes through `checkCanonical`.
//!
//! Follows `cmd/go/internal/modfetch/coderepo.go` (Go 1.26), as [`super::repo`] does.

use super::gomod::{self, Retraction};
use super::repo::{join, CodeInfo, CodeRepo, RepoError, RevInfo, MAX_GO_MOD};
use super::timefmt::timestamp;
use crate::module::{self, semver};

/// State of one `convert` call: the lazily computed answers the go command memoizes.
pub(super) struct Converter<'a> {
    repo: &'a CodeRepo,
    info: &'a CodeInfo,
    stat_vers: &'a str,
    /// `incompatibleOk` cache: ("" or a major) → whether +incompatible may be used.
    incompatible_ok: Vec<(String, bool)>,
    retracted: Option<Vec<Retraction>>,
}

impl<'a> Converter<'a> {
    /// A conversion of `info` in `repo`; `stat_vers` is what the client asked for ("" for
    /// latest).
    pub(super) fn new(repo: &'a CodeRepo, info: &'a CodeInfo, stat_vers: &'a str) -> Self {
        Converter {
            repo,
            info,
            stat_vers,
            incompatible_ok: Vec::new(),
            retracted: None,
        }
    }

    /// The module version (`convert`'s body, before the tag ref is recorded).
    pub(super) async fn run(&mut self) -> Result<RevInfo, RepoError> {
        let repo = self.repo;
        let info = self.info;
        let stat_vers = self.stat_vers;
        if module::is_pseudo_version(stat_vers) {
            let rev = self.check_canonical(stat_vers).await?;
            repo.validate_pseudo(info, stat_vers).await?;
            return Ok(rev);
        }
        let prefix = repo.tag_prefix();
        if let (v, true) = tag_to_version(&prefix, &info.version) {
            if let Ok(rev) = self.check_canonical(&v).await {
                return Ok(rev);
            }
        }
        let mut highest = String::new();
        let mut pseudo_base = String::new();
        for tag in &info.tags {
            let (v, canonical) = tag_to_version(&prefix, tag);
            if !stat_vers.is_empty() && semver::compare(&v, stat_vers).is_eq() {
                if canonical {
                    return self.check_canonical(&v).await;
                }
                pseudo_base = v.clone();
            }
            if canonical
                && semver::compare(&highest, &v).is_lt()
                && !self.is_retracted(&v).await
                && (match_path_major(&v, &repo.path_major) || self.can_use_incompatible(&v).await?)
            {
                highest = v;
            }
        }
        if !highest.is_empty() {
            return self.check_canonical(&highest).await;
        }
        if pseudo_base.is_empty() {
            let mut best = String::new();
            for tag in repo.mirror.merged_tags(&info.commit.hash).await? {
                if !tag.starts_with(&prefix) || !self.tag_allowed(&prefix, &tag).await? {
                    continue;
                }
                let semtag = &tag[prefix.len()..];
                if semver::compare(semtag, &best).is_gt() {
                    best = semtag.to_owned();
                }
            }
            if !best.is_empty() {
                pseudo_base = tag_to_version(&prefix, &format!("{prefix}{best}")).0;
            }
        }
        let version = module::pseudo_version(
            &repo.pseudo_major,
            &pseudo_base,
            &timestamp(info.commit.time),
            info.short(),
        );
        self.check_canonical(&version).await
    }

    async fn tag_allowed(&mut self, prefix: &str, tag: &str) -> Result<bool, RepoError> {
        let (v, _) = tag_to_version(prefix, tag);
        if v.is_empty() {
            return Ok(false);
        }
        if !match_path_major(&v, &self.repo.path_major) && !self.can_use_incompatible(&v).await? {
            return Ok(false);
        }
        Ok(!self.is_retracted(&v).await)
    }

    async fn is_retracted(&mut self, v: &str) -> bool {
        if self.retracted.is_none() {
            self.retracted = Some(self.repo.retractions().await);
        }
        self.retracted
            .as_deref()
            .is_some_and(|r| gomod::is_retracted(r, v))
    }

    /// `canUseIncompatible`.
    async fn can_use_incompatible(&mut self, v: &str) -> Result<bool, RepoError> {
        let repo = self.repo;
        if !repo.code_dir.is_empty() || !repo.path_major.is_empty() {
            return Ok(false);
        }
        if !self.no_go_mod_at("").await? {
            return Ok(false);
        }
        if !v.is_empty() && !self.stat_vers.ends_with("+incompatible") {
            let major = semver::major(v).to_owned();
            if !self.no_go_mod_at(&major).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether `<dir>/go.mod` is absent at the commit (memoized per dir).
    async fn no_go_mod_at(&mut self, dir: &str) -> Result<bool, RepoError> {
        if let Some((_, ok)) = self.incompatible_ok.iter().find(|(d, _)| d == dir) {
            return Ok(*ok);
        }
        let file = join(dir, "go.mod");
        let ok = self
            .repo
            .mirror
            .read_file(&self.info.commit.hash, &file, MAX_GO_MOD)
            .await?
            .is_none();
        self.incompatible_ok.push((dir.to_owned(), ok));
        Ok(ok)
    }

    /// `checkCanonical`.
    async fn check_canonical(&mut self, v: &str) -> Result<RevInfo, RepoError> {
        let repo = self.repo;
        let info = self.info;
        let stat_vers = self.stat_vers;
        repo.find_dir(&info.commit.hash, v).await?;
        let invalid = |msg: String| {
            RepoError::NotFound(format!("{}@{v}: invalid version: {msg}", repo.module))
        };
        let mut v = v.to_owned();
        if v == stat_vers.trim_end_matches("+incompatible") {
            v = stat_vers.to_owned();
        }
        let base = v.trim_end_matches("+incompatible").to_owned();
        let mut err = None;
        if !match_path_major(&base, &repo.path_major) {
            if self.can_use_incompatible(&base).await? {
                v = format!("{base}+incompatible");
            } else if !repo.path_major.is_empty() {
                err = Some(invalid(
                    "module path includes a major version suffix, so major version must match"
                        .to_owned(),
                ));
            } else {
                err = Some(invalid(format!(
                    "module contains a go.mod file, so module path must match major version (\"{}/{}\")",
                    repo.path_prefix,
                    semver::major(&v)
                )));
            }
        } else if v.ends_with("+incompatible") {
            err = Some(invalid(format!(
                "+incompatible suffix not allowed: major version {} is compatible",
                semver::major(&v)
            )));
        }
        if !stat_vers.is_empty() && stat_vers == module::canonical_version(stat_vers) {
            let stat_base = stat_vers.trim_end_matches("+incompatible");
            if stat_base != base {
                return Err(RepoError::NotFound(format!(
                    "{}@{stat_vers}: invalid version: resolves to version {v} ({stat_base} is not a tag)",
                    repo.module
                )));
            }
        }
        if let Some(err) = err {
            return Err(err);
        }
        Ok(RevInfo {
            version: v,
            hash: info.commit.hash.clone(),
            time: info.commit.time,
            tag_ref: None,
        })
    }
}

/// `tagToVersion`: the version a tag names for a module with tag prefix `prefix`, and whether
/// the tag is exactly canonical.
fn tag_to_version(prefix: &str, tag: &str) -> (String, bool) {
    let Some(trimmed) = tag.strip_prefix(prefix) else {
        return (String::new(), false);
    };
    if module::is_pseudo_version(tag) {
        return (String::new(), false);
    }
    let v = semver::canonical(trimmed);
    if v.is_empty() || !trimmed.starts_with(&v) {
        return (String::new(), false);
    }
    let canonical = v == trimmed;
    (v, canonical)
}

/// `module.MatchPathMajor`.
fn match_path_major(v: &str, path_major: &str) -> bool {
    module::check_path_major(v, path_major).is_ok()
}

/// `module.PathMajorPrefix`: `/v2` → `v2`, `.v2-unstable` → `v2`, `""` → `""`.
pub(super) fn path_major_prefix(path_major: &str) -> String {
    if path_major.is_empty() {
        return String::new();
    }
    let m = path_major.strip_suffix("-unstable").unwrap_or(path_major);
    m.get(1..).unwrap_or("").to_owned()
}

/// `isMajor` from coderepo.go.
pub(super) fn is_major(mpath: &str, path_major: &str) -> bool {
    if mpath.is_empty() {
        return false;
    }
    let Some((_, mpath_major)) = module::split_path_version(mpath) else {
        return false;
    };
    if path_major.is_empty() {
        return matches!(path_major_prefix(mpath_major).as_str(), "" | "v0" | "v1");
    }
    if mpath_major.is_empty() {
        return false;
    }
    path_major.get(1..) == mpath_major.get(1..)
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
