//! Go's `h1:` directory hash (`x/mod/sumdb/dirhash.Hash1`) and module path/version case-escaping.
//!
//! The suite computes its own expected hashes so that every `go` result is checked against an
//! independent third answer, not only against another run of `go`.

use std::io::{Cursor, Read};

use base64::Engine;
use sha2::{Digest, Sha256};

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `Hash1` over (name, content) pairs: sorted `"<sha256 hex>  <name>\n"` lines, hashed again.
pub fn hash1<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut lines: Vec<(String, String)> = files
        .into_iter()
        .map(|(name, content)| (name.to_string(), sha256_hex(content)))
        .collect();
    lines.sort();
    let mut summary = Sha256::new();
    for (name, digest) in &lines {
        summary.update(format!("{digest}  {name}\n"));
    }
    format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(summary.finalize())
    )
}

/// The go.sum hash of a `.mod` file: `Hash1` over the single name `go.mod`.
pub fn mod_h1(go_mod: &[u8]) -> String {
    hash1([("go.mod", go_mod)])
}

/// The go.sum hash of a module zip, read back through the `zip` crate (directory entries count).
pub fn zip_h1(zip_bytes: &[u8]) -> anyhow::Result<String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip_bytes))?;
    let mut files = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i)?;
        let mut content = Vec::new();
        entry.read_to_end(&mut content)?;
        files.push((entry.name().to_string(), content));
    }
    Ok(hash1(files.iter().map(|(n, c)| (n.as_str(), c.as_slice()))))
}

/// Case-escapes a module path or version: every ASCII upper-case `X` becomes `!x`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Percent-encodes every `!` as `%21`, as Go's `url.PathEscape` does on the wire.
pub fn percent_bang(s: &str) -> String {
    s.replace('!', "%21")
}

/// The URL path (leading `/`, `!`-escaped, not percent-encoded) of `<module>/@v/<version>.<ext>`.
pub fn version_path(module: &str, version: &str, ext: &str) -> String {
    format!("/{}/@v/{}.{ext}", escape(module), escape(version))
}

/// The URL path of `<module>/@v/list`.
pub fn list_path(module: &str) -> String {
    format!("/{}/@v/list", escape(module))
}

/// The URL path of `<module>/@latest`.
pub fn latest_path(module: &str) -> String {
    format!("/{}/@latest", escape(module))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from PROTOCOL.md §4.
    #[test]
    fn protocol_vectors() {
        let go_mod = b"module example.com/hello\n";
        let hello = b"package hello\n";
        assert_eq!(
            hash1([
                ("example.com/hello@v1.0.0/go.mod", &go_mod[..]),
                ("example.com/hello@v1.0.0/hello.go", &hello[..]),
            ]),
            "h1:v/u/g2S1hZaWZImyAVXAGG42N1pWX/UTgAYidytBT84="
        );
        assert_eq!(
            mod_h1(go_mod),
            "h1:fpu2YBs8Cn+uPELS7pdczZmF9hlK1PibTkwahffYMfo="
        );
        assert_eq!(
            mod_h1(b""),
            "h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY="
        );
        assert_eq!(
            mod_h1(b"module github.com/pkg/errors\n"),
            "h1:bwawxfHBFNV+L2hUp1rHADufV3IMtnDRdf1r5NINEl0="
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape("github.com/BurntSushi/toml"),
            "github.com/!burnt!sushi/toml"
        );
        assert_eq!(escape("v1.0.0-RC1"), "v1.0.0-!r!c1");
        assert_eq!(
            version_path("example.com/Upper/Case", "v1.0.0-RC1", "zip"),
            "/example.com/!upper/!case/@v/v1.0.0-!r!c1.zip"
        );
    }
}
