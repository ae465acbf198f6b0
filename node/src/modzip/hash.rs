//! The `h1:` hash (Go's `dirhash.Hash1`) of a module zip's files or of a go.mod (PROTOCOL.md §4).
//!
//! For each file, sorted by name: `hex(sha256(content))`, two spaces, the name, a newline; the
//! hash is `h1:` + base64(sha256(all those lines)).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::ZipError;

/// The SHA-256 of the empty string: the content hash of a zip directory entry.
pub(super) const EMPTY_SHA256: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The `h1:` hash of a go.mod file (the go.sum `<module> <version>/go.mod` line): [`hash_files`]
/// over the single file named `go.mod`.
pub fn hash_gomod(bytes: &[u8]) -> String {
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    summary_hash(&[("go.mod", digest)])
}

/// The `h1:` hash of a set of files given as `(name, sha256 of content)`. Names are hashed exactly
/// as given (zip entries include the `module@version/` prefix) and sorted byte-wise here; a name
/// containing a newline is rejected.
pub fn hash_files<'a>(
    files: impl IntoIterator<Item = (&'a str, [u8; 32])>,
) -> Result<String, ZipError> {
    let mut files: Vec<(&str, [u8; 32])> = files.into_iter().collect();
    if let Some((name, _)) = files.iter().find(|(name, _)| name.contains('\n')) {
        return Err(ZipError::NewlineInName {
            name: (*name).to_string(),
        });
    }
    files.sort_unstable_by(|a, b| a.0.cmp(b.0).then_with(|| a.1.cmp(&b.1)));
    Ok(summary_hash(&files))
}

/// Hashes already sorted, newline-free `(name, digest)` pairs into the `h1:` string.
fn summary_hash(sorted: &[(&str, [u8; 32])]) -> String {
    let mut summary = Sha256::new();
    for (name, digest) in sorted {
        summary.update(hex::encode(digest).as_bytes());
        summary.update(b"  ");
        summary.update(name.as_bytes());
        summary.update(b"\n");
    }
    format!("h1:{}", STANDARD.encode(summary.finalize()))
}
