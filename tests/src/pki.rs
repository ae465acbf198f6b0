//! A cluster PKI for tests, made the way an operator makes one: with `cairn certs`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tempfile::TempDir;

use crate::cluster::cli_bin;

/// A `cairn certs` directory: the cluster CA, the `admin` operator, node certificates on demand.
pub struct ClusterPki {
    dir: TempDir,
}

impl ClusterPki {
    /// `cairn certs init` in a fresh temp directory.
    pub fn new() -> anyhow::Result<ClusterPki> {
        let dir = tempfile::Builder::new().prefix("cairn-pki-").tempdir()?;
        let pki = ClusterPki { dir };
        pki.certs(&["init"])?;
        Ok(pki)
    }

    /// Another directory with the same CA (to issue a second certificate under a name the
    /// first directory already uses).
    pub fn same_ca(&self) -> anyhow::Result<ClusterPki> {
        let dir = tempfile::Builder::new().prefix("cairn-pki-").tempdir()?;
        for f in ["ca.pem", "ca-key.pem", "https-ca.pem", "https-ca-key.pem"] {
            if self.dir().join(f).exists() {
                std::fs::copy(self.dir().join(f), dir.path().join(f))?;
            }
        }
        Ok(ClusterPki { dir })
    }

    /// Runs `cairn --tls-dir <dir> certs args…`.
    pub fn certs(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = std::process::Command::new(cli_bin())
            .arg("--tls-dir")
            .arg(self.dir.path())
            .arg("certs")
            .args(args)
            .output()
            .context("running cairn certs")?;
        if !out.status.success() {
            bail!(
                "cairn certs {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The directory (what `cairn --tls-dir` takes).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir().join("ca.pem")
    }

    /// The CA of `cairn certs server` certificates (what HTTPS clients trust).
    pub fn https_ca(&self) -> PathBuf {
        self.dir().join("https-ca.pem")
    }

    /// Node `id`'s certificate and key, made on first use.
    pub fn node(&self, id: u64) -> anyhow::Result<(PathBuf, PathBuf)> {
        let cert = self.dir().join(format!("node-{id}.pem"));
        let key = self.dir().join(format!("node-{id}-key.pem"));
        if !cert.exists() {
            self.certs(&["node", &id.to_string(), "--host", "127.0.0.1"])?;
        }
        Ok((cert, key))
    }

    /// Operator `name`'s certificate and key (`admin` is made by `init`), made on first use.
    pub fn operator(&self, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        if name == "admin" {
            return Ok((
                self.dir().join("operator.pem"),
                self.dir().join("operator-key.pem"),
            ));
        }
        let cert = self.dir().join(format!("{name}.pem"));
        let key = self.dir().join(format!("{name}-key.pem"));
        if !cert.exists() {
            self.certs(&["operator", name])?;
        }
        Ok((cert, key))
    }

    /// The environment that gives node `id` its cluster certificates.
    pub fn node_env(&self, id: u64) -> anyhow::Result<Vec<(String, Option<String>)>> {
        let (cert, key) = self.node(id)?;
        let s = |p: &Path| Some(p.display().to_string());
        Ok(vec![
            ("CAIRN_CLUSTER__CA_FILE".into(), s(&self.ca())),
            ("CAIRN_CLUSTER__CERT_FILE".into(), s(&cert)),
            ("CAIRN_CLUSTER__KEY_FILE".into(), s(&key)),
        ])
    }
}
