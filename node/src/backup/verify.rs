//! `cairn backup verify`: checks a backup directory offline, reporting every problem: the
//! manifest parses and is of a known format, the state file has the recorded size and sha256
//! and decodes, the manifest lists exactly the blobs the state references, and every included
//! blob is present with the recorded size and sha256.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::format::{
    blob_manifest, blob_path, Manifest, FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE,
};
use crate::raft::backup::{check_state, state_versions};
use crate::store::blob::{hash_file, is_sha256_hex, BlobError};

/// One thing wrong with a backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file concerned, relative to the backup directory (`state.json`, `blobs/ab/ab…`).
    pub file: String,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.problem)
    }
}

/// A backup that was read through: its manifest, state and every problem found.
#[derive(Debug)]
pub struct Verified {
    /// The manifest.
    pub manifest: Manifest,
    /// The state file's bytes.
    pub state: Vec<u8>,
    /// Included blobs whose size and sha256 were checked and found right.
    pub blobs_ok: u64,
    /// Their total size.
    pub bytes_ok: u64,
    /// Every problem (empty: the backup is sound).
    pub problems: Vec<Problem>,
}

impl Verified {
    /// Whether nothing is wrong.
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The backup cannot be checked at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No manifest: not a backup directory, or a backup that did not finish.
    #[error("{path} is missing: not a cairn backup, or a backup that did not finish")]
    NoManifest {
        /// Where it was expected.
        path: PathBuf,
    },
    /// The manifest is not a cairn backup manifest this build understands.
    #[error("{path}: {reason}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Reading failed for another reason than absence.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Reads and checks the backup in `dir` (blocking: hashes every included blob).
pub fn verify(dir: &Path) -> Result<Verified, VerifyError> {
    let manifest = read_manifest(dir)?;
    let mut problems = Vec::new();
    let state = check_state_file(dir, &manifest, &mut problems)?;
    let (blobs_ok, bytes_ok) = check_blobs(dir, &manifest, &mut problems);
    Ok(Verified {
        manifest,
        state,
        blobs_ok,
        bytes_ok,
        problems,
    })
}

fn read_manifest(dir: &Path) -> Result<Manifest, VerifyError> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(VerifyError::NoManifest { path })
        }
        Err(source) => return Err(VerifyError::Io { path, source }),
    };
    let bad = |reason: String| VerifyError::Manifest {
        path: path.clone(),
        reason,
    };
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a backup manifest: {e}")))?;
    if manifest.format != FORMAT_NAME {
        return Err(bad(format!(
            "format is {:?}, not {FORMAT_NAME:?}",
            manifest.format
        )));
    }
    if manifest.format_version != FORMAT_VERSION {
        return Err(bad(format!(
            "format version {} is not supported (this build reads {FORMAT_VERSION})",
            manifest.format_version
        )));
    }
    Ok(manifest)
}

/// Checks the state file against the manifest; returns its bytes.
fn check_state_file(
    dir: &Path,
    m: &Manifest,
    problems: &mut Vec<Problem>,
) -> Result<Vec<u8>, VerifyError> {
    let mut problem = |p: String| {
        problems.push(Problem {
            file: m.state.file.clone(),
            problem: p,
        })
    };
    if m.state.file.contains('/') || m.state.file.contains("..") {
        problem("the manifest names a state file outside the backup".into());
        return Ok(Vec::new());
    }
    let path = dir.join(&m.state.file);
    let state = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            problem("missing".into());
            return Ok(Vec::new());
        }
        Err(source) => return Err(VerifyError::Io { path, source }),
    };
    if state.len() as u64 != m.state.size {
        problem(format!(
            "{} bytes, the manifest says {} (truncated or edited)",
            state.len(),
            m.state.size
        ));
        return Ok(state);
    }
    let actual = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&state));
    if actual != m.state.sha256 {
        problem(format!(
            "sha256 {actual} does not match the manifest's {} (edited or corrupt)",
            m.state.sha256
        ));
        return Ok(state);
    }
    if let Err(e) = check_state(&state) {
        problem(format!("does not decode: {e}"));
        return Ok(state);
    }
    match state_versions(&state) {
        Ok(versions) => {
            let want = blob_manifest(&versions, m.mode);
            let listed: BTreeMap<&str, u64> = m
                .blobs
                .iter()
                .map(|b| (b.sha256.as_str(), b.size))
                .collect();
            for b in &want {
                if listed.get(b.sha256.as_str()) != Some(&b.size) {
                    problem(format!(
                        "references blob {} ({} bytes) that the manifest does not list",
                        b.sha256, b.size
                    ));
                }
            }
            if versions.len() as u64 != m.counts.versions {
                problem(format!(
                    "holds {} versions, the manifest says {}",
                    versions.len(),
                    m.counts.versions
                ));
            }
        }
        Err(e) => problem(format!("does not decode: {e}")),
    }
    Ok(state)
}

/// Checks every included blob; returns (count, bytes) of the sound ones.
fn check_blobs(dir: &Path, m: &Manifest, problems: &mut Vec<Problem>) -> (u64, u64) {
    let (mut n, mut bytes) = (0, 0);
    for b in m.blobs.iter().filter(|b| b.included) {
        if !is_sha256_hex(&b.sha256) {
            problems.push(Problem {
                file: MANIFEST_FILE.into(),
                problem: format!("lists {:?}, which is not a sha256", b.sha256),
            });
            continue;
        }
        let path = blob_path(dir, &b.sha256);
        let file = format!("blobs/{}/{}", &b.sha256[..2], b.sha256);
        let found = match hash_file(&path) {
            Ok(found) => found,
            Err(BlobError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                problems.push(Problem {
                    file,
                    problem: format!("missing (zip of {})", b.versions.join(", ")),
                });
                continue;
            }
            Err(e) => {
                problems.push(Problem {
                    file,
                    problem: format!("unreadable: {e}"),
                });
                continue;
            }
        };
        match found {
            (_, size) if size != b.size => problems.push(Problem {
                file,
                problem: format!("{size} bytes, the manifest says {} (truncated?)", b.size),
            }),
            (sha, _) if sha != b.sha256 => problems.push(Problem {
                file,
                problem: format!("content hashes to {sha}, not its name (corrupt)"),
            }),
            _ => {
                n += 1;
                bytes += b.size;
            }
        }
    }
    (n, bytes)
}
