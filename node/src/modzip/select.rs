//! Which files go into a module zip: a port of `golang.org/x/mod/zip`'s `checkFiles` and
//! `isVendoredPackage` as `zip.Create` applies them (PROTOCOL.md §3.2, §3.3). Pure: it sees
//! paths, kinds and declared sizes, never contents.
//!
//! Paths stay raw bytes until the file path check, because git can store names that are not
//! UTF-8 and Go compares them byte-wise (such a file is invalid unless an earlier rule omits it).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use crate::module::{check_file_path, unicode::fold_key};

use super::create::{CreateError, CreateLimits, FileProblem, InvalidFile, Source};
use super::names::is_clean;

/// A file's type as Go's `zip.FileHeader.Mode()` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FileKind {
    /// A regular file (also any mode Go does not recognise).
    Regular,
    /// A directory (without a trailing slash in its name).
    Dir,
    /// A symbolic link.
    Symlink,
    /// A device, pipe or socket.
    Other,
}

/// One file offered to `zip.Create`, in input order.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    /// Slash-separated path relative to the module root, as stored.
    pub path: Vec<u8>,
    /// Its type from the archive's mode bits.
    pub kind: FileKind,
    /// Declared uncompressed size.
    pub size: u64,
    /// Where the contents come from.
    pub source: Source,
}

/// The outcome of a successful selection.
#[derive(Debug)]
pub(super) struct Selection {
    /// Indices of the files to write, in input order, with their paths.
    pub valid: Vec<(usize, String)>,
    /// How many files were left out (vendored, nested module, symlink, irregular, ...).
    pub omitted: usize,
}

/// The index of the root `go.mod` whose `go` line decides the vendor rules: the last regular
/// file named exactly `go.mod` at the root (Go reads each one and keeps the last).
pub(super) fn root_gomod(files: &[Candidate]) -> Option<usize> {
    files
        .iter()
        .rposition(|f| f.path == b"go.mod" && f.kind == FileKind::Regular)
}

/// Applies the `checkFiles` rules to `files`, with `go` the root go.mod's `go` version. Fails
/// with the total-size error if the kept files exceed `max_total`, else with every invalid file.
pub(super) fn select(
    files: &[Candidate],
    go: Option<&str>,
    limits: &CreateLimits,
) -> Result<Selection, CreateError> {
    let go124 = super::gomod::vendor_rules_go124(go);
    let modules = nested_module_dirs(files);
    let mut state = State::default();
    let mut room = limits.max_total;
    let mut too_large = false;
    for (index, file) in files.iter().enumerate() {
        let verdict = match classify(file, go124, &modules, &mut state.collisions) {
            Verdict::Keep(path) => {
                match room.checked_sub(file.size) {
                    Some(left) => room = left,
                    None => too_large = true,
                }
                match size_problem(&path, file.size, limits) {
                    Some(problem) => Verdict::Invalid(problem),
                    None => Verdict::Keep(path),
                }
            }
            other => other,
        };
        state.record(index, &file.path, verdict);
    }
    if too_large {
        return Err(CreateError::TooLarge {
            limit: limits.max_total,
        });
    }
    if !state.invalid.is_empty() {
        return Err(CreateError::InvalidFiles(state.invalid));
    }
    let omitted = files.len() - state.valid.len();
    Ok(Selection {
        valid: state.valid,
        omitted,
    })
}

/// What the rules decided for one file.
enum Verdict {
    /// Goes into the zip, under this (valid UTF-8) path.
    Keep(String),
    /// Left out silently.
    Omit,
    /// Makes the whole zip fail.
    Invalid(FileProblem),
}

/// The lists being built, Go's `cf.Valid`/`cf.Invalid` plus `errPaths`.
#[derive(Default)]
struct State {
    valid: Vec<(usize, String)>,
    invalid: Vec<InvalidFile>,
    /// Paths already reported as omitted or invalid: Go reports each path once.
    reported: HashSet<Vec<u8>>,
    collisions: Collisions,
}

impl State {
    /// Files a verdict, reporting each omitted or invalid path only once (as Go's `addError`).
    fn record(&mut self, index: usize, path: &[u8], verdict: Verdict) {
        match verdict {
            Verdict::Keep(path) => self.valid.push((index, path)),
            Verdict::Omit => {
                self.reported.insert(path.to_vec());
            }
            Verdict::Invalid(problem) => {
                if self.reported.insert(path.to_vec()) {
                    self.invalid.push(InvalidFile {
                        path: String::from_utf8_lossy(path).into_owned(),
                        problem,
                    });
                }
            }
        }
    }
}

/// The per-file rules of `checkFiles`, in Go's order, up to but excluding the size rules.
fn classify(
    file: &Candidate,
    go124: bool,
    modules: &HashSet<&[u8]>,
    collisions: &mut Collisions,
) -> Verdict {
    let p = file.path.as_slice();
    // Cleanliness only depends on '/' and '.', which a lossy conversion keeps.
    if !is_clean(&String::from_utf8_lossy(p)) {
        return Verdict::Invalid(FileProblem::NotClean);
    }
    if p.starts_with(b"/") {
        return Verdict::Invalid(FileProblem::NotRelative);
    }
    if is_vendored(p, go124) || in_nested_module(p, modules) || p == b".hg_archival.txt" {
        return Verdict::Omit;
    }
    let Ok(path) = std::str::from_utf8(p) else {
        let quoted = go_quote(p);
        return Verdict::Invalid(FileProblem::InvalidUtf8 { quoted });
    };
    if let Err(err) = check_file_path(path) {
        return Verdict::Invalid(FileProblem::Path(err));
    }
    // ASCII folding is exact here: no non-ASCII character lowercases into "go.mod".
    if path.eq_ignore_ascii_case("go.mod") && path != "go.mod" {
        return Verdict::Invalid(FileProblem::GoModCase);
    }
    if let Err(problem) = collisions.check(path, file.kind == FileKind::Dir) {
        return Verdict::Invalid(problem);
    }
    match file.kind {
        FileKind::Regular => Verdict::Keep(path.to_string()),
        // Symlinks (golang.org/issue/27093) and every other non-regular file are left out.
        FileKind::Symlink | FileKind::Dir | FileKind::Other => Verdict::Omit,
    }
}

/// `bytes` quoted for a message, invalid UTF-8 bytes as `\xNN` (as Go's `%q` shows them).
fn go_quote(bytes: &[u8]) -> String {
    let mut quoted = String::from("\"");
    for chunk in bytes.utf8_chunks() {
        let valid = format!("{:?}", chunk.valid());
        quoted.push_str(&valid[1..valid.len() - 1]);
        for byte in chunk.invalid() {
            quoted.push_str(&format!("\\x{byte:02x}"));
        }
    }
    quoted.push('"');
    quoted
}

/// The root `go.mod` and `LICENSE` size limits.
fn size_problem(path: &str, size: u64, limits: &CreateLimits) -> Option<FileProblem> {
    match path {
        "go.mod" if size > limits.max_go_mod => Some(FileProblem::GoModTooLarge {
            limit: limits.max_go_mod,
        }),
        "LICENSE" if size > limits.max_license => Some(FileProblem::LicenseTooLarge {
            limit: limits.max_license,
        }),
        _ => None,
    }
}

/// Directories (with their trailing slash; `""` for the root) holding a regular file whose base
/// name is `go.mod` in any case (ASCII folding is exact: no other character folds to these
/// letters). Whatever the file's path looks like otherwise, as in Go's pre-pass.
fn nested_module_dirs(files: &[Candidate]) -> HashSet<&[u8]> {
    files
        .iter()
        .filter(|f| f.kind == FileKind::Regular)
        .filter_map(|f| {
            let (dir, base) = split(&f.path);
            base.eq_ignore_ascii_case(b"go.mod").then_some(dir)
        })
        .collect()
}

/// Go's `path.Split`: everything through the last slash, and the rest.
fn split(p: &[u8]) -> (&[u8], &[u8]) {
    let at = p.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    p.split_at(at)
}

/// Whether `p` lies below a directory that holds a go.mod, other than the root.
fn in_nested_module(mut p: &[u8], modules: &HashSet<&[u8]>) -> bool {
    loop {
        let (dir, _) = split(p);
        if dir.is_empty() {
            return false;
        }
        if modules.contains(dir) {
            return true;
        }
        p = &dir[..dir.len() - 1];
    }
}

/// Go's `isVendoredPackage`. With the Go 1.24+ rules `vendor/modules.txt` is vendored too and a
/// nested `x/vendor/` is judged from after it; the older rules keep `vendor/modules.txt` and, by a
/// bug kept for old checksums (golang.org/issue/37397), judge a nested `/vendor/` from byte 8 of
/// the whole path, so `pkg/vendor/vendor.go` counts as vendored.
fn is_vendored(name: &[u8], go124: bool) -> bool {
    if go124 && name == b"vendor/modules.txt" {
        return true;
    }
    let start = if name.starts_with(b"vendor/") {
        "vendor/".len()
    } else if let Some(j) = find(name, b"/vendor/") {
        if go124 {
            j + "/vendor/".len()
        } else {
            "/vendor/".len()
        }
    } else {
        return false;
    };
    name[start..].contains(&b'/')
}

/// The first index of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Go's `collisionChecker`: fold key → (path as first seen, is a directory). Entries stay when
/// a later check fails, as in Go, so the error list matches the go command's.
#[derive(Default)]
struct Collisions(HashMap<String, (String, bool)>);

impl Collisions {
    /// Registers `path` and its parent directories, failing on a case-fold collision, a
    /// duplicate file, or a path used both as a file and as a directory.
    fn check(&mut self, path: &str, is_dir: bool) -> Result<(), FileProblem> {
        let (mut path, mut is_dir) = (path, is_dir);
        loop {
            match self.0.entry(fold_key(path)) {
                Entry::Occupied(seen) => {
                    let (first, first_is_dir) = seen.get();
                    if first != path {
                        return Err(FileProblem::CaseCollision {
                            first: first.clone(),
                            second: path.to_string(),
                        });
                    }
                    if *first_is_dir != is_dir {
                        return Err(FileProblem::FileAndDirectory {
                            path: path.to_string(),
                        });
                    }
                    if !is_dir {
                        return Err(FileProblem::DuplicateFile {
                            path: path.to_string(),
                        });
                    }
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
