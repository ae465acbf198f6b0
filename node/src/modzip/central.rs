//! A minimal reader for the zip central directory records, used next to the zip crate.
//!
//! The zip crate keys entries by their decoded name, so it silently merges duplicate names and
//! prefers a name from an Info-ZIP Unicode extra field over the stored one. The go command sees
//! neither effect, so the raw records are walked here (as Go's reader does: until the signature
//! stops matching) to get the true list of names, methods and sizes.

use std::io::{BufReader, Read, Seek, SeekFrom};

use super::ZipError;

/// Signature of a central directory file header.
const CENTRAL_SIGNATURE: [u8; 4] = *b"PK\x01\x02";
/// Size of the fixed part of a central directory file header after the signature.
const FIXED_LEN: usize = 42;
/// Value of a 32-bit size field whose real value is in the zip64 extra field.
const ZIP64_MARKER: u64 = 0xFFFF_FFFF;
/// Extra field id of the zip64 extended information.
const ZIP64_EXTRA_ID: u16 = 0x0001;

/// One central directory record, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CentralEntry {
    /// The raw name bytes (never decoded or replaced).
    pub name: Vec<u8>,
    /// Compression method (0 store, 8 deflate).
    pub method: u16,
    /// Declared compressed size.
    pub compressed: u64,
    /// Declared uncompressed size.
    pub uncompressed: u64,
}

/// Reads the central directory records starting at `start` until the record signature stops
/// matching (the caller compares the count with the zip crate's; `expected` only sizes the list).
pub(super) fn read_entries<R: Read + Seek>(
    reader: &mut R,
    start: u64,
    expected: usize,
) -> Result<Vec<CentralEntry>, ZipError> {
    let mut reader = BufReader::new(reader);
    reader.seek(SeekFrom::Start(start))?;
    let mut entries = Vec::with_capacity(expected.min(1 << 16));
    loop {
        let mut signature = [0u8; 4];
        if read_full(&mut reader, &mut signature)? < signature.len()
            || signature != CENTRAL_SIGNATURE
        {
            return Ok(entries);
        }
        entries.push(read_record(&mut reader)?);
    }
}

/// Reads the rest of one record after its signature.
fn read_record<R: Read + Seek>(reader: &mut BufReader<R>) -> Result<CentralEntry, ZipError> {
    let mut fixed = [0u8; FIXED_LEN];
    reader.read_exact(&mut fixed)?;
    let u16_at = |i: usize| u16::from_le_bytes([fixed[i], fixed[i + 1]]);
    let u32_at = |i: usize| {
        u64::from(u32::from_le_bytes([
            fixed[i],
            fixed[i + 1],
            fixed[i + 2],
            fixed[i + 3],
        ]))
    };
    // Offsets below are from the start of the record minus the 4-byte signature.
    let method = u16_at(6);
    let (compressed, uncompressed) = (u32_at(16), u32_at(20));
    let (name_len, extra_len, comment_len) = (u16_at(24), u16_at(26), u16_at(28));
    let mut name = vec![0u8; usize::from(name_len)];
    reader.read_exact(&mut name)?;
    let mut extra = vec![0u8; usize::from(extra_len)];
    reader.read_exact(&mut extra)?;
    reader.seek_relative(i64::from(comment_len))?;
    let (uncompressed, compressed) = zip64_sizes(&extra, uncompressed, compressed);
    Ok(CentralEntry {
        name,
        method,
        compressed,
        uncompressed,
    })
}

/// Replaces 32-bit size fields marked `0xFFFFFFFF` with their zip64 extra field values (in the
/// order the format stores them: uncompressed, then compressed).
fn zip64_sizes(mut extra: &[u8], uncompressed: u64, compressed: u64) -> (u64, u64) {
    while extra.len() >= 4 {
        let id = u16::from_le_bytes([extra[0], extra[1]]);
        let len = usize::from(u16::from_le_bytes([extra[2], extra[3]]));
        let Some(data) = extra.get(4..4 + len) else {
            break;
        };
        if id == ZIP64_EXTRA_ID {
            let mut fields = data
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
            let mut pick = |v: u64| {
                if v == ZIP64_MARKER {
                    fields.next().unwrap_or(v)
                } else {
                    v
                }
            };
            let uncompressed = pick(uncompressed);
            let compressed = pick(compressed);
            return (uncompressed, compressed);
        }
        extra = &extra[4 + len..];
    }
    (uncompressed, compressed)
}

/// Reads until `buf` is full or end of file; returns how many bytes were read.
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
