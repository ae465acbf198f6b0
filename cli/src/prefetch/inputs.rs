//! What a prefetch must fetch: the `module@version`s named by `go.sum` and `go.mod` files,
//! directories holding them, and plain lists, merged into one plan (each version once).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use cairn_node::module;

/// What a build needs of one version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Want {
    /// Only the `.mod` (a `/go.mod` go.sum line: the version takes part in module graph
    /// resolution but none of its packages are built).
    Mod,
    /// The `.mod` and the `.zip`.
    Zip,
}

/// One version to fetch and the hashes it must have, where an input gave them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Module path, unescaped.
    pub module: String,
    /// Version, canonical.
    pub version: String,
    /// What to fetch.
    pub want: Want,
    /// go.sum's `h1:` of the zip, when known.
    pub zip_h1: Option<String>,
    /// go.sum's `h1:` of the go.mod, when known.
    pub mod_h1: Option<String>,
}

impl Item {
    fn new(module: &str, version: &str, want: Want) -> Item {
        Item {
            module: module.to_string(),
            version: version.to_string(),
            want,
            zip_h1: None,
            mod_h1: None,
        }
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.module, self.version)
    }
}

/// A line of an input that is not what its kind of file allows.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line does not parse.
    #[error("{origin}:{line}: {problem}")]
    Line {
        /// The file (or `-` for standard input).
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong, with the offending text.
        problem: String,
    },
    /// An argument is neither an existing path nor `module@version`.
    #[error("{0:?} is neither a file, a directory, nor module@version")]
    Argument(String),
    /// Two inputs give different hashes for the same thing: at least one of them is wrong.
    #[error("{what}: {first} in one input, {second} in another")]
    HashConflict {
        /// `module@version` (with `/go.mod` for the go.mod hash).
        what: String,
        /// The first hash seen.
        first: String,
        /// The other one.
        second: String,
    },
}

/// Every version to fetch, keyed by `(module, version)`.
#[derive(Debug, Default)]
pub struct Plan {
    items: BTreeMap<(String, String), Item>,
    /// How many input files were read.
    pub files: usize,
}

impl Plan {
    /// The items in module, version order.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.items.values()
    }

    /// Number of distinct versions.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Adds `item`, merging it with what is planned for the same version (a zip subsumes the
    /// go.mod; hashes given twice must agree).
    pub fn add(&mut self, item: Item) -> Result<(), InputError> {
        let key = (item.module.clone(), item.version.clone());
        let Some(have) = self.items.get_mut(&key) else {
            self.items.insert(key, item);
            return Ok(());
        };
        have.want = have.want.max(item.want);
        merge_hash(&mut have.zip_h1, item.zip_h1, || {
            item_name(&item.module, &item.version)
        })?;
        merge_hash(&mut have.mod_h1, item.mod_h1, || {
            format!("{}/go.mod", item_name(&item.module, &item.version))
        })
    }

    /// Reads one command-line argument: `-` (a list on standard input), a directory (every
    /// `go.sum` and `go.mod` below it), a `go.sum`, a `go.mod`, another file (a list of
    /// `module@version` lines), or a `module@version`.
    pub fn add_argument(&mut self, arg: &str) -> Result<(), InputError> {
        if arg == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|source| {
                InputError::Read {
                    path: PathBuf::from("-"),
                    source,
                }
            })?;
            self.files += 1;
            return self.add_list(&text, "-");
        }
        let path = Path::new(arg);
        if path.is_dir() {
            return self.add_dir(path);
        }
        if path.is_file() {
            return self.add_file(path);
        }
        if let Some((m, v)) = arg.split_once('@') {
            if module::check_canonical(m, v).is_ok() {
                return self.add(Item::new(m, v, Want::Zip));
            }
        }
        Err(InputError::Argument(arg.to_string()))
    }

    /// Reads every `go.sum` and `go.mod` below `dir` (skipping `vendor`, `testdata` and hidden
    /// directories, as the go command does for packages).
    fn add_dir(&mut self, dir: &Path) -> Result<(), InputError> {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = std::fs::read_dir(&d).map_err(|source| InputError::Read {
                path: d.clone(),
                source,
            })?;
            let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if p.is_dir() {
                    if !(name.starts_with('.')
                        || name.starts_with('_')
                        || name == "vendor"
                        || name == "testdata")
                    {
                        stack.push(p);
                    }
                } else if name == "go.sum" || name == "go.mod" {
                    self.add_file(&p)?;
                }
            }
        }
        Ok(())
    }

    fn add_file(&mut self, path: &Path) -> Result<(), InputError> {
        let text = std::fs::read_to_string(path).map_err(|source| InputError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.files += 1;
        let origin = path.display().to_string();
        match path.file_name().and_then(|n| n.to_str()) {
            Some("go.sum") => self.add_go_sum(&text, &origin),
            Some("go.mod") => self.add_go_mod(&text, &origin),
            _ => self.add_list(&text, &origin),
        }
    }

    /// Adds every line of a go.sum: `module version h1:…` (zip) and
    /// `module version/go.mod h1:…` (go.mod only).
    pub fn add_go_sum(&mut self, text: &str, origin: &str) -> Result<(), InputError> {
        for (n, line) in meaningful_lines(text, None) {
            let bad = line_error(origin, n);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [m, v, hash] = fields[..] else {
                return Err(bad(format!(
                    "expected `module version h1:hash`, found {line:?}"
                )));
            };
            if !hash.starts_with("h1:") {
                return Err(bad(format!("unknown hash {hash:?} (only h1: exists)")));
            }
            let (version, want) = match v.strip_suffix("/go.mod") {
                Some(version) => (version, Want::Mod),
                None => (v, Want::Zip),
            };
            check(m, version).map_err(bad)?;
            let mut item = Item::new(m, version, want);
            match want {
                Want::Mod => item.mod_h1 = Some(hash.to_string()),
                Want::Zip => item.zip_h1 = Some(hash.to_string()),
            }
            self.add(item)?;
        }
        Ok(())
    }

    /// Adds the `require` (and versioned `replace` targets) of a go.mod: a build needs their
    /// zips. The go.sum next to it names the rest of the graph.
    pub fn add_go_mod(&mut self, text: &str, origin: &str) -> Result<(), InputError> {
        let mut block: Option<&str> = None;
        for (n, line) in meaningful_lines(text, Some("//")) {
            let bad = line_error(origin, n);
            if block.is_some() && line == ")" {
                block = None;
                continue;
            }
            let (verb, rest) = match block {
                Some(verb) => (verb, line),
                None => {
                    let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                    let rest = rest.trim();
                    if rest == "(" {
                        block = Some(verb);
                        continue;
                    }
                    (verb, rest)
                }
            };
            let pair = match verb {
                "require" => Some(rest),
                // `replace old [v] => new v`: only a module target has a version.
                "replace" => rest.split_once("=>").map(|(_, to)| to.trim()),
                _ => None,
            };
            let Some(pair) = pair else { continue };
            let fields: Vec<String> = pair.split_whitespace().map(unquote).collect();
            match fields.as_slice() {
                [m, v] => {
                    check(m, v).map_err(bad)?;
                    self.add(Item::new(m, v, Want::Zip))?;
                }
                // A replacement by a directory has no version.
                [_] if verb == "replace" => {}
                _ => return Err(bad(format!("expected `module version`, found {pair:?}"))),
            }
        }
        Ok(())
    }

    /// Adds a list: one `module@version` (or `module version`) per line; `#` starts a comment.
    pub fn add_list(&mut self, text: &str, origin: &str) -> Result<(), InputError> {
        for (n, line) in meaningful_lines(text, Some("#")) {
            let bad = line_error(origin, n);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let pair = match fields.as_slice() {
                [one] => one.split_once('@'),
                [m, v] if !m.contains('@') => Some((*m, *v)),
                _ => None,
            };
            let (m, v) = pair.ok_or_else(|| {
                bad(format!(
                    "expected module@version or \"module version\" (go.sum files must be named go.sum), found {line:?}"
                ))
            })?;
            check(m, v).map_err(bad)?;
            self.add(Item::new(m, v, Want::Zip))?;
        }
        Ok(())
    }
}

/// The non-blank lines of `text` with what follows `comment` (if the format has comments) cut
/// off, trimmed, with their 1-based numbers.
fn meaningful_lines<'a>(
    text: &'a str,
    comment: Option<&'a str>,
) -> impl Iterator<Item = (usize, &'a str)> + 'a {
    text.lines().enumerate().filter_map(move |(n, raw)| {
        let uncommented = comment.map_or(raw, |c| raw.split(c).next().unwrap_or(""));
        let line = uncommented.trim();
        (!line.is_empty()).then_some((n + 1, line))
    })
}

/// Builds the error for line `n` of `origin`.
fn line_error(origin: &str, n: usize) -> impl Fn(String) -> InputError + '_ {
    move |problem| InputError::Line {
        origin: origin.to_string(),
        line: n,
        problem,
    }
}

fn item_name(module: &str, version: &str) -> String {
    format!("{module}@{version}")
}

fn merge_hash(
    have: &mut Option<String>,
    new: Option<String>,
    what: impl FnOnce() -> String,
) -> Result<(), InputError> {
    match (have.as_ref(), new) {
        (_, None) => Ok(()),
        (None, Some(n)) => {
            *have = Some(n);
            Ok(())
        }
        (Some(h), Some(n)) if *h == n => Ok(()),
        (Some(h), Some(n)) => Err(InputError::HashConflict {
            what: what(),
            first: h.clone(),
            second: n,
        }),
    }
}

/// A module path and version the proxy protocol can carry.
fn check(m: &str, v: &str) -> Result<(), String> {
    module::check_canonical(m, v).map_err(|e| format!("{m}@{v}: {e}"))
}

fn unquote(s: &str) -> String {
    s.trim_matches('"').to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn go_sum_lines_become_zips_and_go_mods_once() {
        let mut plan = Plan::default();
        let sum = "example.com/a v1.0.0 h1:zip=\nexample.com/a v1.0.0/go.mod h1:mod=\n\
                   example.com/b v1.2.0/go.mod h1:bmod=\n";
        plan.add_go_sum(sum, "go.sum").unwrap();
        plan.add_go_sum(sum, "other/go.sum").unwrap();
        let items: Vec<&Item> = plan.items().collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].want, Want::Zip);
        assert_eq!(items[0].zip_h1.as_deref(), Some("h1:zip="));
        assert_eq!(items[0].mod_h1.as_deref(), Some("h1:mod="));
        assert_eq!(items[1].want, Want::Mod);
    }

    #[test]
    fn conflicting_hashes_are_refused() {
        let mut plan = Plan::default();
        plan.add_go_sum("example.com/a v1.0.0 h1:one=\n", "x")
            .unwrap();
        let err = plan
            .add_go_sum("example.com/a v1.0.0 h1:two=\n", "y")
            .unwrap_err();
        assert!(err.to_string().contains("h1:one="), "{err}");
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let mut plan = Plan::default();
        let err = plan
            .add_go_sum(
                "example.com/a v1.0.0 h1:x=\nnot a go.sum line here\n",
                "g/go.sum",
            )
            .unwrap_err();
        assert!(err.to_string().starts_with("g/go.sum:2:"), "{err}");
        let err = plan.add_list("example.com/a@1.0\n", "list").unwrap_err();
        assert!(err.to_string().starts_with("list:1:"), "{err}");
        let err = plan
            .add_go_sum("../evil v1.0.0 h1:x=\n", "go.sum")
            .unwrap_err();
        assert!(err.to_string().contains("go.sum:1"), "{err}");
        assert!(plan.len() == 1, "a refused line adds nothing");
    }

    #[test]
    fn go_mod_requires_and_versioned_replacements() {
        let mut plan = Plan::default();
        let gomod =
            "module example.com/me\n\ngo 1.22\n\nrequire (\n\texample.com/a v1.0.0 // indirect\n\
                     \t\"example.com/q\" v0.1.0\n)\nrequire example.com/b v2.0.0+incompatible\n\
                     replace example.com/c => example.com/d v1.1.0\nreplace example.com/e => ../e\n\
                     exclude example.com/z v0.0.1\n";
        plan.add_go_mod(gomod, "go.mod").unwrap();
        let names: Vec<String> = plan.items().map(|i| i.to_string()).collect();
        assert_eq!(
            names,
            [
                "example.com/a@v1.0.0",
                "example.com/b@v2.0.0+incompatible",
                "example.com/d@v1.1.0",
                "example.com/q@v0.1.0"
            ]
        );
    }

    #[test]
    fn lists_take_both_spellings_and_comments() {
        let mut plan = Plan::default();
        plan.add_list(
            "# warm-up\nexample.com/a@v1.0.0\nexample.com/b v0.2.0 # pinned\n\n",
            "l",
        )
        .unwrap();
        assert_eq!(plan.len(), 2);
        let e = plan
            .add_list("example.com/a v1.0.0 h1:x=\n", "l")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("l:1: expected module@version"), "{e}");
    }
}
