//! The environment of a `git` child process: an `http.extraHeader` scoped to the host, or a
//! `GIT_SSH_COMMAND` naming the key, never a secret in the arguments.

use std::ffi::OsString;

use super::remote::{bracket, parse_remote, url_port, Remote, RemoteScheme};
use super::{CredentialError, Credentials};

// === impl Credentials ===

impl Credentials {
    /// Environment variables for a `git` child process that will talk to `url`.
    ///
    /// Always `GIT_TERMINAL_PROMPT=0`. For `https` (and, with an explicit entry, `http`) with a
    /// token, basic, bearer or netrc credential: `GIT_CONFIG_COUNT=1`, `GIT_CONFIG_KEY_0 =
    /// http.<scheme>://<host[:port]>/.extraHeader` (scoped to the host, so a redirect elsewhere
    /// does not get it) and `GIT_CONFIG_VALUE_0 = Authorization: …`. For `ssh`/scp-like URLs:
    /// `GIT_SSH_COMMAND = ssh [-i <key> -o IdentitiesOnly=yes] -o BatchMode=yes -o ControlMaster=no
    /// [-o UserKnownHostsFile=<f> -o StrictHostKeyChecking=yes]` with shell-quoted paths; without
    /// a credential it is set only when the process has no `GIT_SSH_COMMAND`/`GIT_SSH` of its own.
    pub fn git_env(&self, url: &str) -> Result<Vec<(String, OsString)>, CredentialError> {
        let mut vars = vec![("GIT_TERMINAL_PROMPT".to_owned(), OsString::from("0"))];
        let Some(remote) = parse_remote(url) else {
            return Ok(vars);
        };
        match remote.scheme {
            RemoteScheme::Https | RemoteScheme::Http => {
                let secure = remote.scheme == RemoteScheme::Https;
                if let Some(value) = self.authorization(&remote, secure)? {
                    let scheme = if secure { "https" } else { "http" };
                    let authority = match url_port(url) {
                        Some(port) => format!("{}:{port}", bracket(&remote.host)),
                        None => bracket(&remote.host),
                    };
                    vars.push(("GIT_CONFIG_COUNT".to_owned(), "1".into()));
                    vars.push((
                        "GIT_CONFIG_KEY_0".to_owned(),
                        format!("http.{scheme}://{authority}/.extraHeader").into(),
                    ));
                    vars.push((
                        "GIT_CONFIG_VALUE_0".to_owned(),
                        format!("Authorization: {}", value.expose()).into(),
                    ));
                }
            }
            RemoteScheme::Ssh | RemoteScheme::Scp => {
                if let Some(command) = self.ssh_command(&remote)? {
                    vars.push(("GIT_SSH_COMMAND".to_owned(), command.into()));
                }
            }
            RemoteScheme::File | RemoteScheme::Other => {}
        }
        Ok(vars)
    }

    fn ssh_command(&self, remote: &Remote) -> Result<Option<String>, CredentialError> {
        let Some(entry) = self.entry_for(remote, true) else {
            let own = |name: &str| self.env.vars().iter().any(|(k, _)| k == name);
            if own("GIT_SSH_COMMAND") || own("GIT_SSH") {
                return Ok(None);
            }
            return Ok(Some("ssh -o BatchMode=yes -o ControlMaster=no".to_owned()));
        };
        let (key, known_hosts) = entry.ssh_files()?;
        let mut command = format!(
            "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o ControlMaster=no",
            shell_quote(&key)
        );
        if let Some(known) = known_hosts {
            command.push_str(&format!(
                " -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes",
                shell_quote(&known)
            ));
        }
        Ok(Some(command))
    }
}

/// Quotes `s` for a POSIX shell (`GIT_SSH_COMMAND` is run by `sh -c`).
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
