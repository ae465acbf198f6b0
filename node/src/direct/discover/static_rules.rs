//! The go command's `vcsPaths` (`cmd/go/internal/vcs/vcs.go`): repositories on well-known hosts
//! and paths with a `.git` element, found without a network round trip.

use super::error::not_found;
use super::{DiscoverError, RepoRoot};

/// The suffixes of the generic rule, in the go command's order.
const VCS_SUFFIXES: [&str; 5] = ["bzr", "fossil", "git", "hg", "svn"];

type Answer = Option<Result<RepoRoot, DiscoverError>>;

/// The answer of the first rule whose host prefix covers `module`; `None` when no rule does
/// (discovery decides). `insecure` picks `http` for the generic `.git` rule.
pub(super) fn lookup(module: &str, insecure: bool) -> Answer {
    let elems: Vec<&str> = module.split('/').collect();
    match elems[0] {
        host @ ("github.com" | "bitbucket.org") => {
            Some(https_root(module, host, &elems, 3, true, |e| {
                e.len() >= 3 && e[1..].iter().all(|x| is_word(x))
            }))
        }
        "hub.jazz.net" if elems.get(1) == Some(&"git") => Some(https_root(
            module,
            "hub.jazz.net/git",
            &elems,
            4,
            true,
            |e| e.len() >= 4 && is_lower_alnum(e[2]) && e[3..].iter().all(|x| is_word(x)),
        )),
        "git.apache.org" => Some(https_root(
            module,
            "git.apache.org",
            &elems,
            2,
            false,
            |e| {
                e.len() >= 2
                    && e[1].strip_suffix(".git").is_some_and(|stem| {
                        !stem.is_empty()
                            && stem.bytes().all(|b| {
                                b.is_ascii_lowercase()
                                    || b.is_ascii_digit()
                                    || matches!(b, b'_' | b'.' | b'-')
                            })
                    })
                    && e[2..].iter().all(|x| is_word(x))
            },
        )),
        "git.openstack.org" => Some(https_root(
            module,
            "git.openstack.org",
            &elems,
            3,
            false,
            |e| e.len() >= 3 && e[1..].iter().all(|x| is_word(x)),
        )),
        "chiselapp.com" => Some(chiselapp(module, &elems)),
        _ => generic(module, &elems, insecure),
    }
}

/// A rule of the form `https://{root}` where root is the first `n` elements; `valid` is the
/// rule's regexp and `no_vcs_suffix` its `noVCSSuffix` check; `prefix` names the rule.
fn https_root(
    module: &str,
    prefix: &str,
    elems: &[&str],
    n: usize,
    no_vcs_suffix: bool,
    valid: impl Fn(&[&str]) -> bool,
) -> Result<RepoRoot, DiscoverError> {
    if elems.len() < n || !valid(elems) {
        return Err(not_found(module, &format!("invalid {prefix} import path")));
    }
    let root = elems[..n].join("/");
    if no_vcs_suffix
        && VCS_SUFFIXES
            .iter()
            .any(|v| root.ends_with(&format!(".{v}")))
    {
        return Err(not_found(
            module,
            &format!("invalid version control suffix in {prefix}/ path"),
        ));
    }
    Ok(RepoRoot {
        url: format!("https://{root}"),
        root,
        subdir: String::new(),
    })
}

/// chiselapp.com hosts fossil repositories only.
fn chiselapp(module: &str, e: &[&str]) -> Result<RepoRoot, DiscoverError> {
    let valid = e.len() == 5
        && e[1] == "user"
        && e[2].bytes().all(|b| b.is_ascii_alphanumeric())
        && !e[2].is_empty()
        && e[3] == "repository"
        && is_word(e[4]);
    if valid {
        Err(DiscoverError::UnsupportedVcs {
            module: module.to_owned(),
            vcs: "fossil".to_owned(),
        })
    } else {
        Err(not_found(module, "invalid chiselapp.com import path"))
    }
}

/// The last rule: `host/…/name.vcs[/…]` — the first element ending in a VCS suffix ends the
/// root; the repository is the root without the suffix (go pings schemes; cairn uses https,
/// or http for `insecure` paths).
fn generic(module: &str, elems: &[&str], insecure: bool) -> Answer {
    let host = elems[0];
    let dotted = host
        .char_indices()
        .any(|(i, c)| c == '.' && i >= 1 && i + 1 < host.len());
    let host_ok = dotted
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'));
    let tail_ok = |e: &&str| is_word(e.strip_prefix('~').unwrap_or(e));
    if !host_ok || elems.len() < 2 || !elems[1..].iter().all(tail_ok) {
        return None;
    }
    let (i, vcs) = elems.iter().enumerate().skip(1).find_map(|(i, e)| {
        let e = e.strip_prefix('~').unwrap_or(e);
        VCS_SUFFIXES.iter().find_map(|v| {
            e.strip_suffix(*v)
                .and_then(|s| s.strip_suffix('.'))
                .filter(|stem| !stem.is_empty())
                .map(|_| (i, *v))
        })
    })?;
    if vcs != "git" {
        return Some(Err(DiscoverError::UnsupportedVcs {
            module: module.to_owned(),
            vcs: vcs.to_owned(),
        }));
    }
    let root = elems[..=i].join("/");
    let repo = &root[..root.len() - ".git".len()];
    let scheme = if insecure { "http" } else { "https" };
    Some(Ok(RepoRoot {
        url: format!("{scheme}://{repo}"),
        root,
        subdir: String::new(),
    }))
}

/// `[\w.\-]+`.
fn is_word(e: &str) -> bool {
    !e.is_empty()
        && e.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `[a-z0-9]+`.
fn is_lower_alnum(e: &str) -> bool {
    !e.is_empty()
        && e.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}
