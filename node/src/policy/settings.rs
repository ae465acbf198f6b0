//! The `[policy]` configuration section.

use serde::{Deserialize, Serialize};

/// `[policy]`: how denied and purged versions are answered.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySettings {
    /// Status for a denied version (`410` Gone, the default, or `403` Forbidden). The go
    /// command treats 410 as "not found" and may try the next GOPROXY entry after `,`; 403
    /// stops it there.
    pub deny_status: u16,
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings { deny_status: 410 }
    }
}

impl PolicySettings {
    /// Why the section is invalid (`None`: it is fine).
    pub fn problem(&self) -> Option<String> {
        match self.deny_status {
            403 | 410 => None,
            other => Some(format!(
                "{other} is not allowed: use 410 (Gone) or 403 (Forbidden)"
            )),
        }
    }
}
