//! Entry-name rules of a module zip: the `module@version/` prefix, clean relative paths, the file
//! path rules, case-fold collisions and go.mod placement (PROTOCOL.md §3.4). No data is read here.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use crate::module::{check_file_path, unicode::fold_key};

use super::ZipError;

/// What an entry name denotes once the prefix is stripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EntryKind {
    /// The bare `module@version/` entry (tolerated, hashed, otherwise ignored).
    Prefix,
    /// A directory entry (`…/dir/`), hashed as an empty file.
    Dir,
    /// A regular file.
    File,
}

/// Classifies entry names and remembers them for collision checks (Go's `collisionChecker`).
pub(super) struct NameChecker {
    /// `module@version/`.
    prefix: String,
    /// Fold key → (path as first seen, is a directory).
    seen: HashMap<String, (String, bool)>,
}

impl NameChecker {
    /// A checker for entries of `module@version`.
    pub(super) fn new(module: &str, version: &str) -> Self {
        NameChecker {
            prefix: format!("{module}@{version}/"),
            seen: HashMap::new(),
        }
    }

    /// Checks one entry name; returns its kind and the path inside the module (without a
    /// directory's trailing slash).
    pub(super) fn check<'a>(&mut self, entry: &'a str) -> Result<(EntryKind, &'a str), ZipError> {
        let Some(name) = entry.strip_prefix(self.prefix.as_str()) else {
            return Err(self.prefix_error(entry));
        };
        if name.is_empty() {
            return Ok((EntryKind::Prefix, name));
        }
        let (kind, name) = match name.strip_suffix('/') {
            Some(dir) => (EntryKind::Dir, dir),
            None => (EntryKind::File, name),
        };
        if !is_clean(name) {
            return Err(ZipError::NotClean {
                entry: entry.to_string(),
            });
        }
        check_file_path(name).map_err(|source| ZipError::InvalidFilePath {
            entry: entry.to_string(),
            source,
        })?;
        self.insert(entry, name, kind == EntryKind::Dir)?;
        if kind == EntryKind::File {
            check_gomod_placement(entry, name)?;
        }
        Ok((kind, name))
    }

    /// The error for an entry lacking the prefix (distinguishing the slash-less prefix itself).
    fn prefix_error(&self, entry: &str) -> ZipError {
        if Some(entry) == self.prefix.strip_suffix('/') {
            return ZipError::PrefixWithoutSlash {
                entry: entry.to_string(),
            };
        }
        ZipError::MissingPrefix {
            entry: entry.to_string(),
            prefix: self.prefix.clone(),
        }
    }

    /// Registers `path` and its parent directories, failing on case-fold collisions, duplicate
    /// files and file/directory conflicts.
    fn insert(&mut self, entry: &str, path: &str, is_dir: bool) -> Result<(), ZipError> {
        let (mut path, mut is_dir) = (path, is_dir);
        loop {
            match self.seen.entry(fold_key(path)) {
                Entry::Occupied(seen) => {
                    let (first, first_is_dir) = seen.get();
                    return conflict(entry, first, *first_is_dir, path, is_dir);
                }
                Entry::Vacant(slot) => {
                    slot.insert((path.to_string(), is_dir));
                }
            }
            match path.rfind('/') {
                Some(slash) => (path, is_dir) = (&path[..slash], true),
                None => return Ok(()),
            }
        }
    }
}

/// Decides whether meeting `path` again (same fold key as `first`) is an error. Meeting the same
/// directory again is fine, and its ancestors were registered the first time.
fn conflict(
    entry: &str,
    first: &str,
    first_is_dir: bool,
    path: &str,
    is_dir: bool,
) -> Result<(), ZipError> {
    let entry = entry.to_string();
    if first != path {
        return Err(ZipError::CaseCollision {
            entry,
            first: first.to_string(),
            second: path.to_string(),
        });
    }
    if first_is_dir != is_dir {
        return Err(ZipError::FileAndDirectory {
            entry,
            path: path.to_string(),
        });
    }
    if !is_dir {
        return Err(ZipError::DuplicateFile {
            entry,
            path: path.to_string(),
        });
    }
    Ok(())
}

/// Rejects a `go.mod` (any case) below the root and a root one not spelled `go.mod`. ASCII case
/// folding is exact here: no non-ASCII character folds to a letter of `go.mod`.
fn check_gomod_placement(entry: &str, name: &str) -> Result<(), ZipError> {
    let base = name.rsplit('/').next().unwrap_or(name);
    if !base.eq_ignore_ascii_case("go.mod") {
        return Ok(());
    }
    if base != name {
        return Err(ZipError::NestedGoMod {
            entry: entry.to_string(),
        });
    }
    if name != "go.mod" {
        return Err(ZipError::GoModCase {
            entry: entry.to_string(),
        });
    }
    Ok(())
}

/// Whether `path` equals Go's `path.Clean(path)`: non-empty, no empty or `.` elements, no
/// trailing slash, and `..` only as a leading run of a relative path (or the path is `/` or `.`).
pub(super) fn is_clean(path: &str) -> bool {
    if path == "/" || path == "." {
        return true;
    }
    let (rooted, body) = match path.strip_prefix('/') {
        Some(body) => (true, body),
        None => (false, path),
    };
    let mut leading_dotdots = !rooted;
    body.split('/').all(|elem| match elem {
        "" | "." => false,
        ".." => leading_dotdots,
        _ => {
            leading_dotdots = false;
            true
        }
    })
}
