//! The `go` directive of a module's root go.mod, read exactly as `golang.org/x/mod/zip.Create`
//! reads it to choose the vendor/ rules (PROTOCOL.md §3.3).
//!
//! `zip.Create` calls `modfile.ParseLax` and uses `mfile.Go.Version`, so a go.mod with *any*
//! error ParseLax reports (a syntax error anywhere, or a bad `module`, `go`, `require` or
//! `ignore` line) counts as having no `go` line. This is a port of that parser: the lexer and
//! line/block grammar of `modfile/read.go` and the lax checks of `modfile/rule.go`. Unknown
//! directives, blocks of other directives and `retract` errors are ignored, as in lax mode.

use crate::module::{canonical_version, check_path_major, split_path_version};

use super::gomod_tables::IDENT_RANGES;

/// Returns the `go` directive's version of a go.mod (`"1.24"`, `"1.21rc1"`), as
/// `modfile.ParseLax` records it (lax fix-ups applied: `go 1.21.x` gives `"1.21"`), or `None`
/// when there is no `go` line or the file does not parse in lax mode.
pub fn go_directive(gomod: &[u8]) -> Option<String> {
    let tokens = lex(gomod).ok()?;
    let stmts = Parser { tokens, at: 0 }.file().ok()?;
    let mut lax = Lax::default();
    for stmt in &stmts {
        lax.stmt(stmt).ok()?;
    }
    lax.go
}

/// Reports whether a root go.mod `go` version selects the Go 1.24+ vendor rules:
/// `version.Compare(version.Lang("go"+v), "go1.24") >= 0`, with a missing version (`None`)
/// comparing lower than any valid one. `"1.24rc1"` and `"1.24.0"` count as 1.24.
pub(super) fn vendor_rules_go124(go: Option<&str>) -> bool {
    let lang = go.map(gover_lang).unwrap_or_default();
    gover_compare(&lang, "1.24").is_ge()
}

/// An error: the go.mod does not parse (the reason does not matter to callers).
#[derive(Debug)]
struct Invalid;

// === lexer (modfile/read.go readToken) ===

/// What a token is; punctuation tokens carry their byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Eof,
    /// A `//` comment after other tokens on its line (ends the line).
    EolComment,
    /// A `//` comment alone on its line.
    Comment,
    /// `\n ( ) [ ] { } ,`.
    Punct(u8),
    /// A `"…"` or `` `…` `` string, quotes included.
    Str,
    Ident,
}

impl Kind {
    /// Whether the token ends a line (Go's `isEOL`).
    fn is_eol(self) -> bool {
        matches!(self, Kind::Eof | Kind::EolComment | Kind::Punct(b'\n'))
    }
}

/// One token: its kind and its exact text.
#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a [u8],
}

/// Splits a go.mod into tokens, ending with one `Eof`; fails where Go's lexer fails.
fn lex(data: &[u8]) -> Result<Vec<Token<'_>>, Invalid> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    loop {
        while matches!(data.get(pos), Some(b' ' | b'\t' | b'\r')) {
            pos += 1;
        }
        let (kind, end) = token_at(data, pos)?;
        tokens.push(Token {
            kind,
            text: &data[pos..end],
        });
        if kind == Kind::Eof {
            return Ok(tokens);
        }
        pos = end;
    }
}

/// Lexes the token starting at `pos` (spaces already skipped); returns its kind and end.
fn token_at(data: &[u8], pos: usize) -> Result<(Kind, usize), Invalid> {
    let rest = &data[pos..];
    if rest.starts_with(b"//") {
        // A comment runs through its newline. It is an end-of-line comment when a token precedes
        // it on its line: everything the lexer skipped there is ' ', '\t' or '\r'.
        let line_start = data[..pos]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let suffix = data[line_start..pos]
            .iter()
            .any(|b| !matches!(b, b' ' | b'\t' | b'\r'));
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |i| pos + i + 1);
        let kind = if suffix {
            Kind::EolComment
        } else {
            Kind::Comment
        };
        return Ok((kind, end));
    }
    if rest.starts_with(b"/*") {
        return Err(Invalid);
    }
    match rest.first() {
        None => Ok((Kind::Eof, pos)),
        Some(&c @ (b'\n' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b',')) => {
            Ok((Kind::Punct(c), pos + 1))
        }
        Some(&quote @ (b'"' | b'`')) => Ok((Kind::Str, pos + string_len(rest, quote)?)),
        Some(_) => Ok((Kind::Ident, pos + ident_len(rest)?)),
    }
}

/// Length of the string token at the start of `rest`, through its closing quote. A newline ends
/// it with an error, except right after a backslash in a `"` string, which skips any character.
fn string_len(rest: &[u8], quote: u8) -> Result<usize, Invalid> {
    let mut i = 1;
    loop {
        let c = *rest.get(i).ok_or(Invalid)?;
        if c == b'\n' {
            return Err(Invalid);
        }
        i += 1;
        if c == quote {
            return Ok(i);
        }
        if c == b'\\' && quote != b'`' {
            // Skipping one byte rather than one rune is the same here: a continuation byte is
            // never a quote, a backslash or a newline.
            rest.get(i).ok_or(Invalid)?;
            i += 1;
        }
    }
}

/// Length of the identifier at the start of `rest`; its first character must be an identifier
/// character, and it stops before a non-identifier character or a `//` comment.
fn ident_len(rest: &[u8]) -> Result<usize, Invalid> {
    let mut i = 0;
    loop {
        let (c, size) = decode_rune(&rest[i..]);
        if size == 0 || !is_ident(c) {
            return if i == 0 { Err(Invalid) } else { Ok(i) };
        }
        if i > 0 && rest[i..].starts_with(b"//") {
            return Ok(i);
        }
        if rest[i..].starts_with(b"/*") {
            return Err(Invalid);
        }
        i += size;
    }
}

/// Go's `utf8.DecodeRune`: the first character and its length, `(U+FFFD, 1)` for an invalid
/// byte and `(U+FFFD, 0)` at the end.
fn decode_rune(b: &[u8]) -> (char, usize) {
    let len = match b.first() {
        None => return (char::REPLACEMENT_CHARACTER, 0),
        Some(0x00..=0x7f) => 1,
        Some(0xc2..=0xdf) => 2,
        Some(0xe0..=0xef) => 3,
        Some(0xf0..=0xf4) => 4,
        Some(_) => return (char::REPLACEMENT_CHARACTER, 1),
    };
    match b
        .get(..len)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.chars().next())
    {
        Some(c) => (c, len),
        None => (char::REPLACEMENT_CHARACTER, 1),
    }
}

/// Go's modfile `isIdent`: printable, not a space, not one of `( ) [ ] { } ,`.
fn is_ident(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_graphic() && !matches!(c, '(' | ')' | '[' | ']' | '{' | '}' | ',');
    }
    let c = u32::from(c);
    let i = IDENT_RANGES.partition_point(|&(lo, _)| lo <= c);
    i > 0 && c <= IDENT_RANGES[i - 1].1
}

// === parser (modfile/read.go parseFile, parseStmt, parseLineBlock, parseLine) ===

/// A statement: a line's tokens, or a block's header tokens and lines.
#[derive(Debug)]
enum Stmt<'a> {
    Line(Vec<&'a [u8]>),
    Block(Vec<&'a [u8]>, Vec<Vec<&'a [u8]>>),
}

/// The statement parser over a token list that ends in `Eof`.
struct Parser<'a> {
    tokens: Vec<Token<'a>>,
    at: usize,
}

impl<'a> Parser<'a> {
    /// The next token, without consuming it (`Eof` for ever at the end).
    fn peek(&self) -> Kind {
        self.tokens.get(self.at).map_or(Kind::Eof, |t| t.kind)
    }

    /// Consumes the next token.
    fn lex(&mut self) -> Token<'a> {
        let eof = Token {
            kind: Kind::Eof,
            text: b"",
        };
        let token = self.tokens.get(self.at).copied().unwrap_or(eof);
        self.at += 1;
        token
    }

    /// The whole file: statements, skipping blank lines and whole-line comments.
    fn file(mut self) -> Result<Vec<Stmt<'a>>, Invalid> {
        let mut stmts = Vec::new();
        loop {
            match self.peek() {
                Kind::Punct(b'\n') | Kind::Comment => {
                    self.lex();
                }
                Kind::Eof => return Ok(stmts),
                _ => stmts.push(self.stmt()?),
            }
        }
    }

    /// A line, or a block when the line ends in `(`; `( )` closing the line is an empty block.
    fn stmt(&mut self) -> Result<Stmt<'a>, Invalid> {
        let mut tokens = vec![self.lex().text];
        loop {
            let token = self.lex();
            if token.kind.is_eol() {
                return Ok(Stmt::Line(tokens));
            }
            if token.kind != Kind::Punct(b'(') {
                tokens.push(token.text);
                continue;
            }
            let next = self.peek();
            if next.is_eol() {
                let lines = self.block()?;
                return Ok(Stmt::Block(tokens, lines));
            }
            if next != Kind::Punct(b')') {
                tokens.push(token.text);
                continue;
            }
            let rparen = self.lex();
            if self.peek().is_eol() {
                self.lex();
                return Ok(Stmt::Block(tokens, Vec::new()));
            }
            tokens.extend([token.text, rparen.text]);
        }
    }

    /// The lines of a block up to its `)`, which must end its line.
    fn block(&mut self) -> Result<Vec<Vec<&'a [u8]>>, Invalid> {
        let mut lines = Vec::new();
        loop {
            match self.peek() {
                Kind::EolComment | Kind::Punct(b'\n') | Kind::Comment => {
                    self.lex();
                }
                Kind::Eof => return Err(Invalid),
                Kind::Punct(b')') => {
                    self.lex();
                    if !self.peek().is_eol() {
                        return Err(Invalid);
                    }
                    self.lex();
                    return Ok(lines);
                }
                _ => lines.push(self.line()),
            }
        }
    }

    /// One line inside a block (its first token is not an end of line).
    fn line(&mut self) -> Vec<&'a [u8]> {
        let mut tokens = vec![self.lex().text];
        loop {
            let token = self.lex();
            if token.kind.is_eol() {
                return tokens;
            }
            tokens.push(token.text);
        }
    }
}

// === lax directive checks (modfile/rule.go parseToFile and add with strict = false) ===

/// What the lax checks have seen so far.
#[derive(Debug, Default)]
struct Lax {
    /// The `go` version, once a valid `go` line was seen.
    go: Option<String>,
    /// Whether a `module` line was seen (a second one is an error).
    module: bool,
}

impl Lax {
    /// Checks one statement. Blocks with a multi-token header or of a verb outside Go's list
    /// are skipped (so a `go ( … )` block is not a `go` line).
    fn stmt(&mut self, stmt: &Stmt<'_>) -> Result<(), Invalid> {
        match stmt {
            Stmt::Line(tokens) => match tokens.split_first() {
                Some((verb, args)) => self.directive(verb, args),
                None => Ok(()),
            },
            Stmt::Block(header, lines) => {
                let [verb] = header.as_slice() else {
                    return Ok(());
                };
                let block_verbs: [&[u8]; 8] = [
                    b"module", b"godebug", b"require", b"exclude", b"replace", b"retract", b"tool",
                    b"ignore",
                ];
                if !block_verbs.contains(verb) {
                    return Ok(());
                }
                lines.iter().try_for_each(|line| self.directive(verb, line))
            }
        }
    }

    /// Checks one directive the way lax mode does: only `go`, `module`, `require` and `ignore`
    /// can fail (`retract` errors are ignored, every other verb is skipped).
    fn directive(&mut self, verb: &[u8], args: &[&[u8]]) -> Result<(), Invalid> {
        match verb {
            b"go" => {
                let ([version], None) = (args, &self.go) else {
                    return Err(Invalid); // wrong argument count, or a repeated go line
                };
                self.go = Some(go_version(version).ok_or(Invalid)?);
            }
            b"module" => {
                let repeated = std::mem::replace(&mut self.module, true);
                let ([path], false) = (args, repeated) else {
                    return Err(Invalid);
                };
                parse_string(path)?;
            }
            b"require" => {
                let [path, version] = args else {
                    return Err(Invalid);
                };
                check_require(&parse_string(path)?, &parse_string(version)?)?;
            }
            b"ignore" => {
                let [path] = args else {
                    return Err(Invalid);
                };
                parse_string(path)?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// A `go` argument matching `GoVersionRE`, or else fixed by `laxGoVersionRE` to its
/// `major.minor` (`v1.21x`, `1.21.x`, `1.21-foo` give `1.21`; `v1.21` matches neither).
fn go_version(arg: &[u8]) -> Option<String> {
    // GoVersionRE: ^([1-9][0-9]*)\.(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))?([a-z]+[0-9]+)?$
    let strict = || {
        let rest = number(arg, false)?.strip_prefix(b".")?;
        let mut rest = number(rest, true)?;
        if let Some(patch) = rest.strip_prefix(b".") {
            rest = number(patch, true)?;
        }
        let letters = rest.iter().take_while(|b| b.is_ascii_lowercase()).count();
        let digits = rest[letters..].iter().all(u8::is_ascii_digit);
        (rest.is_empty() || (letters > 0 && letters < rest.len() && digits)).then_some(())
    };
    if strict().is_some() {
        return Some(String::from_utf8_lossy(arg).into_owned());
    }
    // laxGoVersionRE: ^v?(([1-9][0-9]*)\.(0|[1-9][0-9]*))([^0-9].*)$, keeping group 1.
    let body = arg.strip_prefix(b"v").unwrap_or(arg);
    let rest = number(number(body, false)?.strip_prefix(b".")?, true)?;
    if rest.first().is_some_and(|b| !b.is_ascii_digit()) {
        let lang = &body[..body.len() - rest.len()];
        return Some(String::from_utf8_lossy(lang).into_owned());
    }
    None
}

/// Strips a decimal number without a leading zero (`zero_ok`: or exactly `0`) from the start of
/// `s`, taking the whole run of digits; `None` if there is no such number.
fn number(s: &[u8], zero_ok: bool) -> Option<&[u8]> {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let ok = match s.first() {
        Some(b'0') => zero_ok && n == 1,
        _ => n > 0,
    };
    ok.then(|| &s[n..])
}

/// The `require` checks: a canonicalizable version whose major fits the path's suffix.
fn check_require(path: &str, version: &str) -> Result<(), Invalid> {
    let version = canonical_version(version);
    if version.is_empty() {
        return Err(Invalid);
    }
    let (_, major) = split_path_version(path).ok_or(Invalid)?;
    check_path_major(&version, major).map_err(|_| Invalid)
}

/// modfile's `parseString`: a `"` token is unquoted, any other token must hold no quote
/// character. Invalid UTF-8 becomes U+FFFD, which changes no check made on the result.
fn parse_string(token: &[u8]) -> Result<String, Invalid> {
    if token.first() == Some(&b'"') {
        return unquote(token).map(|b| String::from_utf8_lossy(&b).into_owned());
    }
    if token.iter().any(|b| matches!(b, b'"' | b'\'' | b'`')) {
        return Err(Invalid);
    }
    Ok(String::from_utf8_lossy(token).into_owned())
}

/// Go's `strconv.Unquote` for a double-quoted token (the lexer guarantees the quotes).
fn unquote(token: &[u8]) -> Result<Vec<u8>, Invalid> {
    let mut rest = token.get(1..).ok_or(Invalid)?;
    let mut out = Vec::with_capacity(rest.len());
    while let Some(&c) = rest.first() {
        if c == b'"' {
            return if rest.len() == 1 {
                Ok(out)
            } else {
                Err(Invalid)
            };
        }
        if c == b'\n' {
            return Err(Invalid);
        }
        rest = &rest[unquote_char(rest, &mut out)?..];
    }
    Err(Invalid)
}

/// Go's `strconv.UnquoteChar` with `"` quotes: appends one (possibly escaped) character of `s`
/// to `out` and returns how many bytes it took.
fn unquote_char(s: &[u8], out: &mut Vec<u8>) -> Result<usize, Invalid> {
    let c = *s.first().ok_or(Invalid)?;
    if c >= 0x80 {
        let (r, size) = decode_rune(s);
        out.extend_from_slice(r.encode_utf8(&mut [0; 4]).as_bytes());
        return Ok(size);
    }
    if c != b'\\' {
        out.push(c);
        return Ok(1);
    }
    let escape = *s.get(1).ok_or(Invalid)?;
    let args = &s[2..];
    let simple = match escape {
        b'a' => Some(7),
        b'b' => Some(8),
        b'f' => Some(12),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(11),
        b'\\' | b'"' => Some(escape),
        _ => None,
    };
    if let Some(byte) = simple {
        out.push(byte);
        return Ok(2);
    }
    match escape {
        b'x' | b'u' | b'U' => {
            let n = match escape {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            let digits = std::str::from_utf8(args.get(..n).ok_or(Invalid)?).map_err(|_| Invalid)?;
            if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Invalid);
            }
            let v = u32::from_str_radix(digits, 16).map_err(|_| Invalid)?;
            if escape == b'x' {
                out.push(u8::try_from(v).map_err(|_| Invalid)?);
            } else {
                let r = char::from_u32(v).ok_or(Invalid)?;
                out.extend_from_slice(r.encode_utf8(&mut [0; 4]).as_bytes());
            }
            Ok(2 + n)
        }
        b'0'..=b'7' => {
            let digits = args.get(..2).ok_or(Invalid)?;
            if !digits.iter().all(|b| (b'0'..=b'7').contains(b)) {
                return Err(Invalid);
            }
            let v = digits.iter().fold(u32::from(escape - b'0'), |v, d| {
                v << 3 | u32::from(d - b'0')
            });
            out.push(u8::try_from(v).map_err(|_| Invalid)?);
            Ok(4)
        }
        _ => Err(Invalid),
    }
}

// === Go versions (internal/gover Parse, Lang, Compare) ===

/// A parsed Go version; all fields empty for an invalid one.
#[derive(Debug, Default, PartialEq, Eq)]
struct GoVersion<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    /// `""`, `alpha`, `beta`, `rc` (any lowercase word is accepted).
    kind: &'a str,
    pre: &'a str,
}

/// Go's `gover.Parse` (`1`, `1.21`, `1.21.3`, `1.21rc1`; `1.20` has patch `0`, `1.21` none).
fn gover_parse(x: &str) -> GoVersion<'_> {
    gover_parse_opt(x).unwrap_or_default()
}

/// [`gover_parse`] with `None` for an invalid version.
fn gover_parse_opt(x: &str) -> Option<GoVersion<'_>> {
    let mut v = GoVersion::default();
    let (major, rest) = cut_int(x)?;
    v.major = major;
    if rest.is_empty() {
        (v.minor, v.patch) = ("0", "0");
        return Some(v);
    }
    let (minor, rest) = cut_int(rest.strip_prefix('.')?)?;
    v.minor = minor;
    if rest.is_empty() {
        if cmp_int(minor, "21").is_lt() {
            v.patch = "0";
        }
        return Some(v);
    }
    if let Some(patch) = rest.strip_prefix('.') {
        let (patch, tail) = cut_int(patch)?;
        v.patch = patch;
        return tail.is_empty().then_some(v);
    }
    // A prerelease: lowercase letters, then optionally a number.
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    let tail = &rest[letters..];
    if letters == 0 || tail.starts_with(|c: char| !c.is_ascii_digit()) {
        return None;
    }
    v.kind = &rest[..letters];
    if tail.is_empty() {
        return Some(v);
    }
    let (pre, tail) = cut_int(tail)?;
    v.pre = pre;
    tail.is_empty().then_some(v)
}

/// Go's `gover.cutInt`: a leading decimal without unnecessary leading zero, and the rest.
fn cut_int(x: &str) -> Option<(&str, &str)> {
    let n = x.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 || (x.starts_with('0') && n != 1) {
        return None;
    }
    Some(x.split_at(n))
}

/// Go's `gover.CmpInt`: compares decimal strings without leading zeros.
fn cmp_int(x: &str, y: &str) -> std::cmp::Ordering {
    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
}

/// Go's `gover.Lang`: the language version (`1.21rc1` → `1.21`, `1.2.3` → `1.2`, invalid → ``).
fn gover_lang(x: &str) -> String {
    let v = gover_parse(x);
    if v.minor.is_empty() || (v.major == "1" && v.minor == "0") {
        return v.major.to_string();
    }
    format!("{}.{}", v.major, v.minor)
}

/// Go's `gover.Compare`; invalid versions are equal to each other and lower than valid ones.
fn gover_compare(x: &str, y: &str) -> std::cmp::Ordering {
    let (x, y) = (gover_parse(x), gover_parse(y));
    cmp_int(x.major, y.major)
        .then_with(|| cmp_int(x.minor, y.minor))
        .then_with(|| cmp_int(x.patch, y.patch))
        .then_with(|| x.kind.cmp(y.kind))
        .then_with(|| cmp_int(x.pre, y.pre))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_directive_cases() {
        let cases: &[(&str, Option<&str>)] = &[
            ("module example.com/m\n\ngo 1.24\n", Some("1.24")),
            ("module m\ngo 1.13", Some("1.13")),
            (
                "// comment\nmodule m // trailing\n\ngo 1.21rc1 // x\n",
                Some("1.21rc1"),
            ),
            ("go 1.25.0\r\n", Some("1.25.0")),
            ("module m\n", None),
            ("", None),
            // Lax fix-ups of the go version.
            ("go v1.21x\n", Some("1.21")),
            ("go 1.21.x\n", Some("1.21")),
            ("go v1.21\n", None),
            ("go 1.21-pre\n", Some("1.21")),
            // Invalid go lines make the whole file invalid.
            ("go 1\n", None),
            ("go 1.021\n", None),
            ("go \"1.21\"\n", None),
            ("go 1.21 1.22\n", None),
            ("go 1.21\ngo 1.22\n", None),
            // A go block is not a go line.
            ("go (\n\t1.21\n)\n", None),
            // Unknown verbs and main-module-only directives are ignored.
            (
                "go 1.24\nmodules.txt is excluded in 1.24+. See golang.org/issue/63395\n",
                Some("1.24"),
            ),
            (
                "go 1.24\nreplace x => y\nexclude bad\ntoolchain nonsense\n",
                Some("1.24"),
            ),
            ("go 1.24\nretract [v1.0.0\n", Some("1.24")),
            // But errors in module, require and ignore lines are not.
            ("go 1.24\nmodule a b\n", None),
            ("go 1.24\nmodule a\nmodule b\n", None),
            ("go 1.24\nmodule `a`\n", None),
            ("go 1.24\nrequire example.com/x\n", None),
            ("go 1.24\nrequire example.com/x 1.0.0\n", None), // needs the v
            ("go 1.24\nrequire example.com/x master\n", None),
            ("go 1.24\nrequire example.com/x/v2 v1.0.0\n", None),
            (
                "go 1.24\nrequire (\n\texample.com/x v1.0.0 // indirect\n)\n",
                Some("1.24"),
            ),
            ("go 1.24\nrequire (\n\texample.com/x\n)\n", None),
            ("go 1.24\nrequire \"example.com/x\\q\" v1.0.0\n", None),
            (
                "go 1.24\nrequire \"example.com/\\x41\" v1.0.0\n",
                Some("1.24"),
            ),
            ("go 1.24\nignore ./a ./b\n", None),
            // Syntax errors anywhere.
            ("go 1.24\n/* no */\n", None),
            ("go 1.24\nrequire (\n", None),
            ("go 1.24\nrequire (\n) x\n", None),
            ("go 1.24\nx \"unterminated\n", None),
            ("\u{feff}go 1.24\n", None),
            ("go 1.24\nx \u{a0}\n", None),
            ("go 1.24\nx \u{1}\n", None),
            // Empty blocks, parens mid-line, invalid UTF-8 in identifiers are fine.
            (
                "go 1.24\nrequire ()\nfoo ( ) bar\nbar ( baz\n",
                Some("1.24"),
            ),
        ];
        for (gomod, want) in cases {
            assert_eq!(
                go_directive(gomod.as_bytes()).as_deref(),
                *want,
                "{gomod:?}"
            );
        }
        assert_eq!(
            go_directive(b"go 1.24\nx \xff\xfe\n").as_deref(),
            Some("1.24")
        );
    }

    #[test]
    fn vendor_rules_by_version() {
        let cases: &[(Option<&str>, bool)] = &[
            (None, false),
            (Some("1.13"), false),
            (Some("1.23.9"), false),
            (Some("1.24"), true),
            (Some("1.24rc1"), true),
            (Some("1.24.0"), true),
            (Some("1.25.0"), true),
            (Some("1.100"), true),
            (Some("2.0"), true),
            (Some("1.9"), false),
        ];
        for (go, want) in cases {
            assert_eq!(vendor_rules_go124(*go), *want, "{go:?}");
        }
    }

    #[test]
    fn gover_matches_go() {
        assert_eq!(gover_lang("1.21rc2"), "1.21");
        assert_eq!(gover_lang("1.21.2"), "1.21");
        assert_eq!(gover_lang("1"), "1");
        assert_eq!(gover_lang("1.0"), "1");
        assert_eq!(gover_lang("bad"), "");
        assert!(gover_compare("1.21", "1.21rc1").is_lt());
        assert!(gover_compare("1.21rc1", "1.21.0").is_lt());
        assert!(gover_compare("1.20", "1.20.0").is_eq());
        assert!(gover_compare("", "1.0").is_lt());
        assert!(gover_compare("1.21beta1", "1.21rc1").is_lt());
    }
}
