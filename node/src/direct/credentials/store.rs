//! [`Credentials`]: the configured per-host entries and the netrc file, loaded and checked.
//! They hold file paths and variable names only; secret values are read when used.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{file_error, CredentialError};
use super::netrc;
use super::remote::{split_host_port, Remote};
use super::secret::Secret;
use crate::config::{Env, ProcessEnv};
use crate::direct::config::{Credential, CredentialKind, DirectConfig};

// === Credentials ===

/// Where an HTTP secret comes from.
#[derive(Debug, Clone)]
enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// One configured credential, holding only the names of its secrets.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    host: String,
    port: Option<u16>,
    pub(super) kind: CredentialKind,
    pub(super) username: Option<String>,
    source: Option<SecretSource>,
    key_file: Option<PathBuf>,
    known_hosts_file: Option<PathBuf>,
}

/// The netrc file and whether it must exist (configured explicitly) or may be absent.
#[derive(Debug, Clone)]
struct NetrcFile {
    path: PathBuf,
    required: bool,
}

/// The credentials of `[direct]`: explicit per-host entries, then the netrc file.
///
/// It holds file paths and variable names only; secret values are read when used.
pub struct Credentials {
    pub(super) entries: Vec<Entry>,
    netrc: Option<NetrcFile>,
    pub(super) env: Arc<dyn Env + Send + Sync>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("entries", &self.entries)
            .field("netrc", &self.netrc)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// No credentials at all (no entries, no netrc).
    pub fn none() -> Credentials {
        Credentials {
            entries: Vec::new(),
            netrc: None,
            env: Arc::new(ProcessEnv),
        }
    }

    /// Reads `cfg` against the process environment and checks that every configured file and
    /// variable exists and is readable. Errors name the file or variable, never its content.
    pub fn load(cfg: &DirectConfig) -> Result<Credentials, Vec<String>> {
        Credentials::load_with(cfg, Arc::new(ProcessEnv))
    }

    /// [`Self::load`] with the environment (`secret_env` variables, `NETRC`, `HOME`) taken from
    /// `env`, so tests can pass a map.
    pub fn load_with(
        cfg: &DirectConfig,
        env: Arc<dyn Env + Send + Sync>,
    ) -> Result<Credentials, Vec<String>> {
        let entries: Vec<Entry> = cfg.credentials.iter().map(Entry::from_config).collect();
        let netrc = netrc_file(cfg.netrc.as_deref(), env.as_ref());
        let creds = Credentials {
            entries,
            netrc,
            env,
        };
        let problems = creds.check();
        if problems.is_empty() {
            Ok(creds)
        } else {
            Err(problems)
        }
    }

    /// Every unusable file or variable, as `direct.credentials[i]: …` sentences.
    fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, entry) in self.entries.iter().enumerate() {
            let check = match entry.kind {
                CredentialKind::Ssh => entry.ssh_files().map(|_| ()),
                _ => entry.secret(self.env.as_ref()).map(|_| ()),
            };
            if let Err(e) = check {
                problems.push(format!("direct.credentials[{i}]: {e}"));
            }
        }
        if let Err(e) = self.netrc_entries() {
            problems.push(format!("direct.netrc: {e}"));
        }
        problems
    }

    /// The explicit entry for `remote`: a port-specific entry beats a host-wide one.
    pub(super) fn entry_for(&self, remote: &Remote, ssh: bool) -> Option<&Entry> {
        let candidates = self.entries.iter().filter(|e| {
            (e.kind == CredentialKind::Ssh) == ssh
                && e.host == remote.host
                && e.port.is_none_or(|p| Some(p) == remote.port)
        });
        candidates.max_by_key(|e| e.port.is_some())
    }

    /// The current netrc entries (none when there is no netrc file).
    pub(super) fn netrc_entries(&self) -> Result<Vec<netrc::Line>, CredentialError> {
        let Some(file) = &self.netrc else {
            return Ok(Vec::new());
        };
        match std::fs::read_to_string(&file.path) {
            Ok(text) => Ok(netrc::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !file.required => Ok(Vec::new()),
            Err(e) => Err(file_error(&file.path, &e)),
        }
    }
}

// === impl Entry ===

impl Entry {
    fn from_config(c: &Credential) -> Entry {
        let (host, port) = split_host_port(&c.host);
        let source = match (&c.secret_file, &c.secret_env) {
            (Some(path), _) => Some(SecretSource::File(path.clone())),
            (None, Some(name)) => Some(SecretSource::Env(name.clone())),
            (None, None) => None,
        };
        Entry {
            host: host.to_ascii_lowercase(),
            port,
            kind: c.kind,
            username: c.username.clone(),
            source,
            key_file: c.key_file.clone(),
            known_hosts_file: c.known_hosts_file.clone(),
        }
    }

    /// Reads the secret now (files and variables may change between calls).
    pub(super) fn secret(&self, env: &dyn Env) -> Result<Secret, CredentialError> {
        let (value, source_name) = match &self.source {
            Some(SecretSource::File(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| file_error(path, &e))?;
                (text, path.display().to_string())
            }
            Some(SecretSource::Env(name)) => {
                let value = env
                    .vars()
                    .into_iter()
                    .find_map(|(k, v)| (k == *name).then_some(v))
                    .ok_or_else(|| CredentialError::MissingEnv { name: name.clone() })?;
                (value, format!("${name}"))
            }
            // Validation requires a source for these kinds; an absent one reads as empty.
            None => (String::new(), format!("for host {}", self.host)),
        };
        let value = value.trim_end_matches(['\n', '\r']);
        if value.is_empty() {
            return Err(CredentialError::Empty { source_name });
        }
        Ok(Secret(value.to_owned()))
    }

    /// The key file and known_hosts file, checked to be readable and quotable.
    pub(super) fn ssh_files(&self) -> Result<(String, Option<String>), CredentialError> {
        let check = |path: &Path| -> Result<String, CredentialError> {
            std::fs::File::open(path).map_err(|e| file_error(path, &e))?;
            path.to_str()
                .map(str::to_owned)
                .ok_or_else(|| CredentialError::NonUtf8Path {
                    path: path.to_path_buf(),
                })
        };
        let key = match &self.key_file {
            Some(path) => check(path)?,
            None => {
                return Err(CredentialError::Empty {
                    source_name: format!("key_file for host {}", self.host),
                })
            }
        };
        let known = self.known_hosts_file.as_deref().map(check).transpose()?;
        Ok((key, known))
    }
}

// === helpers ===

/// Which netrc file is used: the configured one (must exist), else `$NETRC`, else `~/.netrc`.
fn netrc_file(configured: Option<&Path>, env: &dyn Env) -> Option<NetrcFile> {
    if let Some(path) = configured {
        return Some(NetrcFile {
            path: path.to_path_buf(),
            required: true,
        });
    }
    let vars = env.vars();
    let var = |name: &str| {
        vars.iter()
            .find_map(|(k, v)| (k == name && !v.is_empty()).then(|| v.clone()))
    };
    let path = match var("NETRC") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(var("HOME")?).join(".netrc"),
    };
    Some(NetrcFile {
        path,
        required: false,
    })
}
