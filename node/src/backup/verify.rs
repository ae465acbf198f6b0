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

#[cfg(test)]
pub(super) mod tests {
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::backup::format::{
        Counts, Mode, SourceNode, StateFile, FORMAT_NAME, FORMAT_VERSION, STATE_FILE,
    };
    use crate::backup::AppliedId;
    use crate::store::meta::{VersionRecord, ZipRef};

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    /// A sound backup of two versions (one blob each) in a fresh directory, and the blobs'
    /// sha256s.
    pub(in crate::backup) fn sound_backup() -> (tempfile::TempDir, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let zips: [&[u8]; 2] = [b"zip one", b"zip two, longer"];
        let versions: Vec<VersionRecord> = zips
            .iter()
            .enumerate()
            .map(|(i, z)| VersionRecord {
                module: format!("example.com/m{i}"),
                version: "v1.0.0".into(),
                info: Vec::new(),
                gomod: Vec::new(),
                mod_h1: String::new(),
                zip: Some(ZipRef {
                    sha256: sha(z),
                    size: z.len() as u64,
                    h1: String::new(),
                }),
                source: "https://proxy.example".into(),
                cached_at_ms: 0,
                sumdb_verified: false,
                sumdb_zip_h1: None,
            })
            .collect();
        for z in zips {
            let p = blob_path(dir.path(), &sha(z));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, z).unwrap();
        }
        let state = serde_json::to_vec(&serde_json::json!({
            "format": 1, "versions": versions, "lists": [], "latest": []
        }))
        .unwrap();
        std::fs::write(dir.path().join(STATE_FILE), &state).unwrap();
        let blobs = blob_manifest(&versions, Mode::Full);
        let manifest = Manifest {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            created_at_ms: 0,
            created_at: String::new(),
            cairn_version: String::new(),
            source: SourceNode {
                node_id: 1,
                node_addr: String::new(),
                version: String::new(),
                leader_id: 1,
                members: Vec::new(),
            },
            applied: AppliedId {
                index: 5,
                term: 1,
                leader: 1,
            },
            mode: Mode::Full,
            state: StateFile {
                file: STATE_FILE.into(),
                size: state.len() as u64,
                sha256: sha(&state),
            },
            counts: Counts::of(2, &blobs),
            blobs,
        };
        let json = serde_json::to_vec(&manifest).unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), json).unwrap();
        (dir, zips.iter().map(|z| sha(z)).collect())
    }

    fn problems(dir: &Path) -> Vec<String> {
        verify(dir)
            .unwrap()
            .problems
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_sound_backup_has_no_problem() {
        let (dir, _) = sound_backup();
        let v = verify(dir.path()).unwrap();
        assert!(v.is_sound(), "{:?}", v.problems);
        assert_eq!((v.blobs_ok, v.manifest.counts.versions), (2, 2));
    }

    #[test]
    fn every_kind_of_damage_is_named_by_file() {
        let (dir, shas) = sound_backup();
        let d = dir.path();
        let blob0 = blob_path(d, &shas[0]);
        let mut bytes = std::fs::read(&blob0).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&blob0, bytes).unwrap();
        std::fs::remove_file(blob_path(d, &shas[1])).unwrap();
        let p = problems(d);
        assert_eq!(p.len(), 2, "{p:?}");
        let name = |s: &str| format!("blobs/{}/{s}: ", &s[..2]);
        let about = |sha: &str| p.iter().find(|l| l.starts_with(&name(sha))).unwrap();
        assert!(about(&shas[0]).contains("content hashes to"), "{p:?}");
        assert!(about(&shas[1]).contains("missing"), "{p:?}");

        let (dir, _) = sound_backup();
        let state = dir.path().join(STATE_FILE);
        let len = std::fs::metadata(&state).unwrap().len();
        std::fs::File::options()
            .write(true)
            .open(&state)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let p = problems(dir.path());
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("state.json: ") && p[0].contains("truncated"));
    }

    #[test]
    fn a_manifest_that_omits_a_referenced_blob_is_a_problem() {
        let (dir, shas) = sound_backup();
        let path = dir.path().join(MANIFEST_FILE);
        let mut m: Manifest = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        m.blobs.retain(|b| b.sha256 != shas[1]);
        std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
        let p = problems(dir.path());
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains(&shas[1]) && p[0].contains("does not list"),
            "{p:?}"
        );
    }

    #[test]
    fn no_manifest_is_not_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            verify(dir.path()),
            Err(VerifyError::NoManifest { .. })
        ));
    }
}
