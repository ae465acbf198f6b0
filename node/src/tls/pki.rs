//! A small certificate authority for tests and small installations: `cairn certs init` makes a
//! cluster CA and an operator certificate, `cairn certs node N` a node certificate, `cairn certs
//! operator NAME` another operator, `cairn certs server HOST...` an HTTPS certificate for the
//! GOPROXY port. Larger installations use their own PKI or cert-manager (see the README); the
//! only thing cairn needs from their certificates is the identity names of [`super::identity`].
//!
//! Keys are ECDSA P-256; private keys are written readable by their owner only.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::{Identity, TlsError};

/// A PEM certificate and its PEM private key.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The private key (PKCS#8 PEM).
    pub key_pem: String,
}

/// What a leaf certificate is for.
#[derive(Debug, Clone)]
pub enum Leaf {
    /// A node: its identity plus the host names or IP addresses it is reached at; both a
    /// server and a client certificate.
    Node {
        /// Raft id.
        id: u64,
        /// Extra DNS names or IP addresses.
        hosts: Vec<String>,
    },
    /// An operator: a client certificate.
    Operator(String),
    /// An HTTPS server certificate for these DNS names or IP addresses.
    Server(Vec<String>),
}

fn gen_err(what: &str) -> impl Fn(rcgen::Error) -> TlsError + '_ {
    move |e| TlsError::Generate {
        what: what.to_string(),
        reason: e.to_string(),
    }
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(i64::from(days));
}

/// A new self-signed CA valid for `days`.
pub fn new_ca(common_name: &str, days: u32) -> Result<Issued, TlsError> {
    let err = gen_err("the CA");
    let key = KeyPair::generate().map_err(&err)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(&err)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, days);
    let cert = params.self_signed(&key).map_err(&err)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn san(host: &str) -> Result<SanType, TlsError> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let name = host.to_string().try_into().map_err(|e: rcgen::Error| {
        TlsError::Identity(format!(
            "{host:?} is neither an IP address nor a DNS name: {e}"
        ))
    })?;
    Ok(SanType::DnsName(name))
}

/// Issues `leaf`, valid for `days`, signed by the CA in `ca` (its certificate and key PEM).
pub fn issue(ca: &Issued, leaf: &Leaf, days: u32) -> Result<Issued, TlsError> {
    let err = gen_err("the certificate");
    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(gen_err("the CA key"))?;
    let ca_params =
        CertificateParams::from_ca_cert_pem(&ca.cert_pem).map_err(gen_err("the CA certificate"))?;
    // Re-signing the CA's own parameters yields an issuer with its name and key, which is all
    // rcgen needs to sign with it; the CA file itself is not changed.
    let ca_cert = ca_params.self_signed(&ca_key).map_err(&err)?;
    let (cn, names, eku) = match leaf {
        Leaf::Node { id, hosts } => {
            let mut names = vec![Identity::Node(*id).dns_name()];
            names.extend(hosts.iter().cloned());
            let eku = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            (format!("cairn node {id}"), names, eku)
        }
        Leaf::Operator(name) => {
            if !super::identity::valid_operator_name(name) {
                return Err(TlsError::Identity(format!(
                    "operator name {name:?}: use lowercase letters, digits and '-' (one DNS label)"
                )));
            }
            let names = vec![Identity::Operator(name.clone()).dns_name()];
            (
                format!("cairn operator {name}"),
                names,
                vec![ExtendedKeyUsagePurpose::ClientAuth],
            )
        }
        Leaf::Server(hosts) => {
            let cn = hosts.first().cloned().unwrap_or_else(|| "cairn".into());
            (cn, hosts.clone(), vec![ExtendedKeyUsagePurpose::ServerAuth])
        }
    };
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(&err)?;
    params.subject_alt_names = names.iter().map(|h| san(h)).collect::<Result<_, _>>()?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = eku;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days);
    let key = KeyPair::generate().map_err(&err)?;
    let cert = params.signed_by(&key, &ca_cert, &ca_key).map_err(&err)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The file names `cairn certs` uses inside its directory.
pub mod files {
    /// The CA certificate.
    pub const CA: &str = "ca.pem";
    /// The CA key (keep it off the nodes).
    pub const CA_KEY: &str = "ca-key.pem";
    /// The default operator certificate (what `cairn --tls-dir` presents).
    pub const OPERATOR: &str = "operator.pem";
    /// The default operator key.
    pub const OPERATOR_KEY: &str = "operator-key.pem";

    /// Certificate and key file names of node `id`.
    pub fn node(id: u64) -> (String, String) {
        (format!("node-{id}.pem"), format!("node-{id}-key.pem"))
    }
}

/// Writes `issued` as `cert` and `key` in `dir`, the key readable by its owner only. Refuses to
/// overwrite an existing file.
pub fn write(
    dir: &Path,
    issued: &Issued,
    cert: &str,
    key: &str,
) -> Result<(PathBuf, PathBuf), TlsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Read { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let (cert_path, key_path) = (dir.join(cert), dir.join(key));
    for p in [&cert_path, &key_path] {
        if p.exists() {
            return Err(TlsError::Generate {
                what: p.display().to_string(),
                reason: "the file exists; remove it first if you mean to replace it".into(),
            });
        }
    }
    write_private(&key_path, issued.key_pem.as_bytes()).map_err(io(&key_path))?;
    std::fs::write(&cert_path, &issued.cert_pem).map_err(io(&cert_path))?;
    Ok((cert_path, key_path))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(bytes)
}

/// Reads the CA of a `cairn certs` directory.
pub fn read_ca(dir: &Path) -> Result<Issued, TlsError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| TlsError::Read { path, source })
    };
    Ok(Issued {
        cert_pem: read(files::CA)?,
        key_pem: read(files::CA_KEY)?,
    })
}
