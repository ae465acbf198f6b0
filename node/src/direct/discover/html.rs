//! `<meta name="go-import">` parsing as `cmd/go/internal/vcs/discovery.go` does it (a
//! non-strict XML tokenizer that stops at `<body>` or `</head>`), and `matchGoImport`.

use super::lookup::has_path_prefix;

/// One `content="prefix vcs repo-root [subdir]"` tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MetaImport {
    pub(super) prefix: String,
    pub(super) vcs: String,
    pub(super) repo_root: String,
    pub(super) subdir: String,
}

/// A tag's attributes, (local name, value) in document order.
type Attrs = Vec<(String, String)>;

/// Why no tag was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MatchError {
    /// No tag's prefix is a path prefix of the module.
    Mismatch,
    /// Several are (and the first is not a `mod` entry ahead of VCS entries).
    Multiple,
}

/// The go-import tags of `page`, `mod` entries first; a VCS entry with the same prefix as a
/// `mod` entry is dropped (`PreferMod`, the module-mode behaviour).
pub(super) fn parse_meta_go_imports(page: &str) -> Vec<MetaImport> {
    let mut all = Vec::new();
    for attrs in meta_tags(page) {
        if attr(&attrs, "name") != Some("go-import") {
            continue;
        }
        let content = attr(&attrs, "content").unwrap_or("");
        let f: Vec<&str> = content.split_whitespace().collect();
        if f.len() == 3 || f.len() == 4 {
            all.push(MetaImport {
                prefix: f[0].to_owned(),
                vcs: f[1].to_owned(),
                repo_root: f[2].to_owned(),
                subdir: f.get(3).copied().unwrap_or("").to_owned(),
            });
        }
    }
    let (mods, vcs): (Vec<_>, Vec<_>) = all.into_iter().partition(|m| m.vcs == "mod");
    let mut list = mods.clone();
    list.extend(
        vcs.into_iter()
            .filter(|m| !mods.iter().any(|x| x.prefix == m.prefix)),
    );
    list
}

/// `matchGoImport`: the one tag whose prefix is a path prefix of `module`.
pub(super) fn match_go_import<'a>(
    imports: &'a [MetaImport],
    module: &str,
) -> Result<&'a MetaImport, MatchError> {
    let mut found: Option<&MetaImport> = None;
    for im in imports {
        if !has_path_prefix(module, &im.prefix) {
            continue;
        }
        if let Some(first) = found {
            if first.vcs == "mod" && im.vcs != "mod" {
                break;
            }
            return Err(MatchError::Multiple);
        }
        found = Some(im);
    }
    found.ok_or(MatchError::Mismatch)
}

/// The value of the first attribute named `name` (ASCII case-insensitively).
fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The attributes of every `<meta>` start tag before `<body>` or `</head>`. Like Go's
/// decoder, a syntax error ends the scan (keeping what was found).
fn meta_tags(page: &str) -> Vec<Attrs> {
    let mut metas = Vec::new();
    let mut rest = page;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt..];
        let skip_to = |end: &str| rest.find(end).map(|i| i + end.len());
        let next = if rest.starts_with("<!--") {
            skip_to("-->")
        } else if rest.starts_with("<![CDATA[") {
            skip_to("]]>")
        } else if rest.starts_with("<?") {
            skip_to("?>")
        } else if rest.starts_with("<!") {
            skip_to(">")
        } else if let Some(after) = rest.strip_prefix("</") {
            let (name, _) = take_name(after);
            if local(name).eq_ignore_ascii_case("head") {
                break;
            }
            skip_to(">")
        } else {
            let Some((name, attrs, used)) = start_tag(&rest[1..]) else {
                break;
            };
            if local(name).eq_ignore_ascii_case("body") {
                break;
            }
            if local(name).eq_ignore_ascii_case("meta") {
                metas.push(attrs);
            }
            Some(1 + used)
        };
        let Some(next) = next else { break };
        rest = &rest[next..];
    }
    metas
}

/// Parses `name attr="v" …>` (after the `<`); returns the name, the attributes and the bytes
/// used up to and including `>`, or `None` on a syntax error.
fn start_tag(s: &str) -> Option<(&str, Attrs, usize)> {
    let (name, mut i) = take_name(s);
    if name.is_empty() {
        return None;
    }
    let bytes = s.as_bytes();
    let mut attrs = Vec::new();
    loop {
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        match bytes.get(i)? {
            b'>' => return Some((name, attrs, i + 1)),
            b'/' if bytes.get(i + 1) == Some(&b'>') => return Some((name, attrs, i + 2)),
            _ => {}
        }
        let (key, after) = take_name(&s[i..]);
        if key.is_empty() {
            return None;
        }
        i += after;
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            // Non-strict XML: an attribute without a value has its name as value.
            attrs.push((local(key).to_owned(), local(key).to_owned()));
            continue;
        }
        i += 1;
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let (value, used) = attr_value(&s[i..])?;
        attrs.push((local(key).to_owned(), value));
        i += used;
    }
}

/// A quoted value (entities decoded), or an unquoted `[A-Za-z0-9_:-]*` one.
fn attr_value(s: &str) -> Option<(String, usize)> {
    match s.as_bytes().first()? {
        q @ (b'"' | b'\'') => {
            let end = s[1..].find(*q as char)?;
            Some((decode_entities(&s[1..1 + end]), end + 2))
        }
        _ => {
            let end = s
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-')))
                .unwrap_or(s.len());
            Some((s[..end].to_owned(), end))
        }
    }
}

/// An XML name at the start of `s` (empty if `s` does not start with one) and its length.
fn take_name(s: &str) -> (&str, usize) {
    let starts = s
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == ':');
    if !starts {
        return ("", 0);
    }
    let end = s
        .find(|c: char| c.is_whitespace() || matches!(c, '/' | '>' | '=' | '<' | '"' | '\''))
        .unwrap_or(s.len());
    (&s[..end], end)
}

/// The local part of a `prefix:local` name.
fn local(name: &str) -> &str {
    match name.split_once(':') {
        Some((space, local)) if !space.is_empty() && !local.is_empty() => local,
        _ => name,
    }
}

/// The five XML entities and numeric references; anything else is kept as written.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').and_then(|semi| {
            let c = match &rest[1..semi] {
                "lt" => '<',
                "gt" => '>',
                "amp" => '&',
                "apos" => '\'',
                "quot" => '"',
                n => {
                    let code = match n.strip_prefix("#x").or_else(|| n.strip_prefix("#X")) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => n.strip_prefix('#').and_then(|d| d.parse().ok()),
                    };
                    char::from_u32(code?)?
                }
            };
            Some((c, semi + 1))
        });
        match decoded {
            Some((c, used)) => {
                out.push(c);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
