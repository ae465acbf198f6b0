//! Zip and payload generation: deflate zips laid out like the go command's, and deterministic
//! incompressible bytes.

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;

/// Builds a zip from full entry names (deflate, zero timestamps, no directory entries added).
pub fn build_zip(entries: &[(String, &[u8])], level: Option<i64>) -> anyhow::Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(level)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    for (name, content) in entries {
        let opts = if content.len() >= (1 << 31) {
            opts.large_file(true)
        } else {
            opts
        };
        w.start_file(name.as_str(), opts)?;
        w.write_all(content)?;
    }
    Ok(w.finish()?.into_inner())
}

/// Deterministic pseudo-random bytes (splitmix64), incompressible by deflate.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}
