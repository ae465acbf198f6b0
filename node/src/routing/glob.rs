//! Go's pattern lists, as used by `GOPRIVATE`, `GONOPROXY` and `GONOSUMDB`: comma-separated
//! `path.Match` globs, each compared with the leading elements of the module path that have as
//! many elements as the glob (`module.MatchPrefixPatterns`). A trailing `/` on a glob and empty
//! globs are ignored.

/// A malformed glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GlobError {
    /// The glob does not parse as a `path.Match` pattern.
    #[error("bad pattern {glob:?}: {reason}")]
    Bad {
        /// The offending glob.
        glob: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The list holds no glob at all.
    #[error("the pattern list {0:?} holds no pattern")]
    Empty(String),
}

/// Whether any glob of the comma-separated `globs` matches a leading part of `target`.
/// Malformed globs never match (as in Go); [`validate_patterns`] reports them up front.
pub fn match_prefix_patterns(globs: &str, target: &str) -> bool {
    globs_of(globs).any(|glob| {
        let n = glob.matches('/').count();
        prefix_with_elements(target, n).is_some_and(|prefix| path_match(glob, prefix) == Ok(true))
    })
}

/// Checks every glob of a list and that there is at least one.
pub fn validate_patterns(globs: &str) -> Result<(), GlobError> {
    let mut any = false;
    for glob in globs_of(globs) {
        any = true;
        let chars: Vec<char> = glob.chars().collect();
        check_syntax(&chars).map_err(|reason| GlobError::Bad {
            glob: glob.to_string(),
            reason,
        })?;
    }
    if any {
        Ok(())
    } else {
        Err(GlobError::Empty(globs.to_string()))
    }
}

/// The non-empty globs of a list, with a trailing `/` removed.
fn globs_of(globs: &str) -> impl Iterator<Item = &str> {
    globs
        .split(',')
        .map(|g| g.strip_suffix('/').unwrap_or(g))
        .filter(|g| !g.is_empty())
}

/// The first `slashes + 1` elements of `target`, or `None` when it has fewer.
fn prefix_with_elements(target: &str, slashes: usize) -> Option<&str> {
    let mut left = slashes;
    for (i, b) in target.bytes().enumerate() {
        if b == b'/' {
            if left == 0 {
                return Some(&target[..i]);
            }
            left -= 1;
        }
    }
    (left == 0).then_some(target)
}

/// Go's `path.Match`: `*` matches any run of non-`/` characters, `?` one non-`/` character,
/// `[...]` a class (`^` negates, `a-z` ranges), `\` escapes.
pub fn path_match(pattern: &str, name: &str) -> Result<bool, &'static str> {
    let p: Vec<char> = pattern.chars().collect();
    check_syntax(&p)?;
    let n: Vec<char> = name.chars().collect();
    Ok(match_here(&p, &n))
}

fn match_here(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => {
            let rest = &p[1..];
            let run = n.iter().take_while(|c| **c != '/').count();
            (0..=run).any(|i| match_here(rest, &n[i..]))
        }
        Some('?') => n.first().is_some_and(|c| *c != '/') && match_here(&p[1..], &n[1..]),
        Some('[') => match (class_end(p), n.first()) {
            (Ok(end), Some(c)) => {
                class_matches(&p[1..end], *c) && match_here(&p[end + 1..], &n[1..])
            }
            _ => false,
        },
        Some('\\') => p.len() > 1 && n.first() == Some(&p[1]) && match_here(&p[2..], &n[1..]),
        Some(c) => n.first() == Some(c) && match_here(&p[1..], &n[1..]),
    }
}

/// Validates a whole pattern: every class closes and every escape has a character.
fn check_syntax(p: &[char]) -> Result<(), &'static str> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' if i + 1 >= p.len() => return Err("a trailing backslash escapes nothing"),
            '\\' => i += 2,
            '[' => i = class_end(&p[i..])? + i + 1,
            _ => i += 1,
        }
    }
    Ok(())
}

/// The index of the `]` closing the class that starts at `p[0] == '['`, after checking it.
fn class_end(p: &[char]) -> Result<usize, &'static str> {
    let mut i = 1;
    if p.get(i) == Some(&'^') {
        i += 1;
    }
    let mut ranges = 0;
    loop {
        match p.get(i) {
            None => return Err("unclosed character class"),
            Some(']') if ranges > 0 => return Ok(i),
            _ => {}
        }
        i = class_char(p, i)?;
        if p.get(i) == Some(&'-') {
            i = class_char(p, i + 1)?;
        }
        ranges += 1;
    }
}

/// Steps over one (possibly escaped) class character at `p[i]`; returns the next index.
fn class_char(p: &[char], i: usize) -> Result<usize, &'static str> {
    match p.get(i) {
        None => Err("unclosed character class"),
        Some('-' | ']') => Err("misplaced '-' or ']' in a character class"),
        Some('\\') if i + 1 < p.len() => Ok(i + 2),
        Some('\\') => Err("a trailing backslash escapes nothing"),
        Some(_) => Ok(i + 1),
    }
}

/// Whether `c` is in the (already validated) class body `body` (between `[` and `]`).
fn class_matches(body: &[char], c: char) -> bool {
    let (negated, mut rest) = match body.split_first() {
        Some(('^', r)) => (true, r),
        _ => (false, body),
    };
    let mut found = false;
    while !rest.is_empty() {
        let (lo, r) = take_class_char(rest);
        let (hi, r) = match r.split_first() {
            Some(('-', r2)) => take_class_char(r2),
            _ => (lo, r),
        };
        found |= lo <= c && c <= hi;
        rest = r;
    }
    found != negated
}

fn take_class_char(s: &[char]) -> (char, &[char]) {
    match s {
        ['\\', c, rest @ ..] => (*c, rest),
        [c, rest @ ..] => (*c, rest),
        [] => ('\0', s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_patterns_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.corp.example.com", "git.corp.example.com/a/b", true),
            ("*.corp.example.com", "corp.example.com/a", false),
            ("rsc.io/private", "rsc.io/private/x", true),
            ("rsc.io/private", "rsc.io/private", true),
            ("rsc.io/private", "rsc.io/privateer", false),
            ("rsc.io/private/", "rsc.io/private/x", true),
            ("rsc.io/private/x/y", "rsc.io/private/x", false),
            (",,rsc.io/private,", "rsc.io/private/x", true),
            ("", "rsc.io/private/x", false),
            (",", "rsc.io/private/x", false),
            ("corp.example.com/*", "corp.example.com/x/y", true),
            ("corp.example.com/*", "corp.example.com", false),
            ("corp.example.com", "corp.example.com/x/y", true),
            ("github.com/corp-*/*", "github.com/corp-infra/tool/v2", true),
            ("github.com/corp-*/*", "github.com/corporate/tool", false),
            ("example.com/a,github.com/c?rp", "github.com/corp/x", true),
            ("github.com/[a-c]orp", "github.com/corp/x", true),
            ("github.com/[^a-c]orp", "github.com/corp/x", false),
            ("github.com/\\corp", "github.com/corp", true),
            ("github.com/[", "github.com/[", false),
        ];
        for (globs, target, want) in cases {
            assert_eq!(
                match_prefix_patterns(globs, target),
                *want,
                "{globs:?} vs {target:?}"
            );
        }
    }

    #[test]
    fn star_does_not_cross_slashes() {
        assert_eq!(path_match("a/*", "a/b/c"), Ok(false));
        assert_eq!(path_match("a/*/c", "a/b/c"), Ok(true));
        assert_eq!(path_match("*", ""), Ok(true));
        assert_eq!(path_match("a?c", "a/c"), Ok(false));
    }

    #[test]
    fn bad_globs_are_reported() {
        for bad in ["a[", "a[]", "a[b-]", "x\\", "a[-b]", "[^]"] {
            assert!(validate_patterns(bad).is_err(), "{bad:?} accepted");
        }
        for empty in ["", ",", "/,/"] {
            assert!(
                matches!(validate_patterns(empty), Err(GlobError::Empty(_))),
                "{empty:?}"
            );
        }
        for good in ["corp.example.com/*", "*.x,y/[a-z]*", "a\\*b", "[\\]]"] {
            assert_eq!(validate_patterns(good), Ok(()), "{good:?}");
        }
    }
}
