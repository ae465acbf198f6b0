//! [`AuditSettings`]: the `[audit]` section as written, and [`AuditTarget`], where it points.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::AuditSettingsError;

/// Default rotation size: 100 MiB.
const DEFAULT_MAX_BYTES: u64 = 100 << 20;
/// Default number of rotated files kept.
const DEFAULT_MAX_FILES: usize = 10;
/// The most rotated files accepted; more is almost certainly a typo.
pub(super) const MAX_FILES_LIMIT: usize = 1000;

/// The `[audit]` section. The default is off.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// Where lines go: `"off"`, `"stdout"`, or the path of a file.
    pub target: String,
    /// A file is rotated before a line would make it larger than this many bytes (a single
    /// larger line is still written, alone in its file).
    pub max_bytes: u64,
    /// Rotated files kept (`audit.log.1` … `audit.log.<max_files>`); older ones are deleted.
    /// 0 keeps none: the file is started afresh when full.
    pub max_files: usize,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            target: "off".to_owned(),
            max_bytes: DEFAULT_MAX_BYTES,
            max_files: DEFAULT_MAX_FILES,
        }
    }
}

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    /// Nowhere.
    Off,
    /// The process's standard output.
    Stdout,
    /// A size-rotated file.
    File(PathBuf),
}

impl AuditSettings {
    /// Every problem with these settings (empty when valid).
    pub fn validate(&self) -> Result<(), Vec<AuditSettingsError>> {
        let mut problems = Vec::new();
        let target = self.target.trim();
        if target.is_empty() {
            problems.push(AuditSettingsError::EmptyTarget);
        } else if target.ends_with('/') {
            problems.push(AuditSettingsError::DirectoryTarget(PathBuf::from(target)));
        }
        if self.max_bytes == 0 {
            problems.push(AuditSettingsError::ZeroMaxBytes);
        }
        if self.max_files > MAX_FILES_LIMIT {
            problems.push(AuditSettingsError::TooManyFiles(self.max_files));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Where [`Self::target`] points (not validated).
    pub fn target(&self) -> AuditTarget {
        match self.target.trim() {
            "off" => AuditTarget::Off,
            "stdout" => AuditTarget::Stdout,
            path => AuditTarget::File(PathBuf::from(path)),
        }
    }
}
