//! Response bodies: small in-memory bodies and streamed blob files.
//!
//! A streamed zip is read in fixed-size chunks on the blocking pool (memory per response does not
//! grow with the zip) and, when verification is on, hashed as it goes; the last chunk is only
//! sent after the sha256 matched the blob's address. On a mismatch the body ends with an error,
//! so the client sees an incomplete response (never completed wrong bytes) and the corrupt copy
//! is quarantined.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use sha2::{Digest, Sha256};

use crate::store::blob::{BlobStore, FileStamp};

/// The response body type of the HTTP server.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Bytes read per chunk when streaming a blob.
pub const CHUNK: usize = 128 * 1024;

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body (HEAD, 304).
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Verification of a whole-blob stream: the expected sha256 and where to quarantine.
pub struct Verify {
    /// Expected sha256 (hex).
    pub sha256: String,
    /// The store holding the blob.
    pub blobs: BlobStore,
    /// The file's identity when it was opened; recorded as verified on success.
    pub stamp: FileStamp,
}

struct State {
    file: Arc<std::fs::File>,
    pos: u64,
    end: u64,
    hasher: Option<Sha256>,
    verify: Option<Verify>,
    done: bool,
}

/// Streams bytes `[start, end)` of `file`; with `verify`, the range must be the whole blob.
///
/// The first chunk is read before the response is built, so a blob that fits in one chunk
/// leaves with its headers in one go (a node dying mid-response cannot cut it after the
/// headers), and a failure on it becomes an error status instead of an aborted body.
pub async fn file_range(
    file: std::fs::File,
    start: u64,
    end: u64,
    verify: Option<Verify>,
) -> std::io::Result<Body> {
    let mut state = State {
        file: Arc::new(file),
        pos: start,
        end,
        hasher: verify.as_ref().map(|_| Sha256::new()),
        verify,
        done: false,
    };
    let first = if start < end {
        Some(next_chunk(&mut state).await?)
    } else {
        None
    };
    let rest = stream::unfold(state, |mut st| async move {
        if st.done || st.pos >= st.end {
            return None;
        }
        match next_chunk(&mut st).await {
            Ok(bytes) => Some((Ok(Frame::data(bytes)), st)),
            Err(e) => {
                st.done = true;
                Some((Err(e), st))
            }
        }
    });
    let head = stream::iter(first.map(|b| Ok(Frame::data(b))));
    Ok(BodyExt::boxed_unsync(StreamBody::new(head.chain(rest))))
}

async fn next_chunk(st: &mut State) -> std::io::Result<Bytes> {
    let len = CHUNK.min((st.end - st.pos) as usize);
    let (file, pos, hasher) = (st.file.clone(), st.pos, st.hasher.take());
    let (buf, hasher) =
        tokio::task::spawn_blocking(move || -> std::io::Result<(Vec<u8>, Option<Sha256>)> {
            let mut buf = vec![0u8; len];
            let mut filled = 0;
            while filled < len {
                let n = file.read_at(&mut buf[filled..], pos + filled as u64)?;
                if n == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "blob shorter than recorded",
                    ));
                }
                filled += n;
            }
            let mut hasher = hasher;
            if let Some(h) = hasher.as_mut() {
                h.update(&buf);
            }
            Ok((buf, hasher))
        })
        .await
        .map_err(std::io::Error::other)??;
    st.pos += len as u64;
    st.hasher = hasher;
    if st.pos >= st.end {
        check_final(st)?;
    }
    Ok(Bytes::from(buf))
}

fn check_final(st: &mut State) -> std::io::Result<()> {
    let (Some(hasher), Some(verify)) = (st.hasher.take(), st.verify.as_ref()) else {
        return Ok(());
    };
    let actual = hex::encode(hasher.finalize());
    if actual == verify.sha256 {
        verify.blobs.mark_verified(&verify.sha256, verify.stamp);
        return Ok(());
    }
    metrics::counter!("cairn_blob_verify_failures_total").increment(1);
    tracing::warn!(sha256 = %verify.sha256, actual = %actual, "blob failed verification while serving; response aborted");
    if let Err(e) = verify.blobs.quarantine(&verify.sha256) {
        tracing::warn!(error = %e, "could not quarantine corrupt blob");
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "blob failed sha256 verification",
    ))
}
