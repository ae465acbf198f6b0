//! `cairn certs`: a cluster CA and its certificates in one directory, and the config lines to
//! use them. Refuses to overwrite a file; the CA key never needs to leave the operator's machine.

use std::path::Path;

use anyhow::{Context, Result};
use cairn_node::tls::pki::{self, files, Leaf};
use clap::Subcommand;

/// `cairn certs ...`
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Make a cluster CA (ca.pem, ca-key.pem) and an operator certificate (operator.pem,
    /// operator-key.pem) in --tls-dir (default ./cairn-certs).
    Init {
        /// The operator identity of operator.pem.
        #[arg(long, default_value = "admin")]
        operator: String,
        /// Days the CA stays valid.
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// Make node-ID.pem and node-ID-key.pem: the certificate of node ID (server and client).
    Node {
        /// The node's id (its --node-id).
        id: u64,
        /// Host names or IP addresses it is reached at (optional; cairn checks the node
        /// identity, these are for other tools).
        #[arg(long = "host", value_name = "HOST")]
        hosts: Vec<String>,
        /// Days the certificate stays valid.
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Make NAME.pem and NAME-key.pem: another operator's client certificate.
    Operator {
        /// The operator name (one DNS label: lowercase letters, digits, '-').
        name: String,
        /// Days the certificate stays valid.
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Make https.pem and https-key.pem: a certificate for the GOPROXY port (tls.cert_file),
    /// for these host names or IP addresses, signed by a separate HTTPS CA (https-ca.pem, made
    /// on first use) that clients trust.
    Server {
        /// Host names or IP addresses clients use.
        #[arg(required = true)]
        hosts: Vec<String>,
        /// Days the certificate stays valid.
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
}

/// Runs a `certs` command in `dir`.
pub fn run(cmd: &CertsCommand, dir: &Path) -> Result<()> {
    match cmd {
        CertsCommand::Init { operator, days } => {
            let ca = pki::new_ca("cairn cluster CA", *days)?;
            let op = pki::issue(&ca, &Leaf::Operator(operator.clone()), 365)?;
            let (ca_cert, ca_key) = pki::write(dir, &ca, files::CA, files::CA_KEY)?;
            pki::write(dir, &op, files::OPERATOR, files::OPERATOR_KEY)?;
            println!(
                "wrote {} and {} (keep the key off the nodes)",
                ca_cert.display(),
                ca_key.display()
            );
            println!(
                "wrote operator {operator:?}: {}",
                dir.join(files::OPERATOR).display()
            );
            println!(
                "next: `cairn --tls-dir {} certs node N` for each node",
                dir.display()
            );
        }
        CertsCommand::Node { id, hosts, days } => {
            let ca = read_ca(dir)?;
            let issued = pki::issue(
                &ca,
                &Leaf::Node {
                    id: *id,
                    hosts: hosts.clone(),
                },
                *days,
            )?;
            let (cert, key) = files::node(*id);
            let (cert, key) = pki::write(dir, &issued, &cert, &key)?;
            println!(
                "wrote {} and {}; node {id} needs in its config:",
                cert.display(),
                key.display()
            );
            println!("[cluster]");
            println!("ca_file = {:?}", dir.join(files::CA).display().to_string());
            println!("cert_file = {:?}", cert.display().to_string());
            println!("key_file = {:?}", key.display().to_string());
        }
        CertsCommand::Operator { name, days } => {
            let ca = read_ca(dir)?;
            let issued = pki::issue(&ca, &Leaf::Operator(name.clone()), *days)?;
            let (cert, key) = pki::write(
                dir,
                &issued,
                &format!("{name}.pem"),
                &format!("{name}-key.pem"),
            )?;
            println!(
                "wrote {} and {}; use: cairn --ca {} --cert {} --key {} status",
                cert.display(),
                key.display(),
                dir.join(files::CA).display(),
                cert.display(),
                key.display()
            );
        }
        CertsCommand::Server { hosts, days } => {
            // Its own CA: every developer machine trusts it, so it must not be the cluster CA
            // (whose key would then be able to impersonate any site to the whole fleet).
            let ca = https_ca(dir)?;
            let issued = pki::issue(&ca, &Leaf::Server(hosts.clone()), *days)?;
            let (cert, key) = pki::write(dir, &issued, "https.pem", "https-key.pem")?;
            println!(
                "wrote {} and {}; in the node's config:",
                cert.display(),
                key.display()
            );
            println!("[tls]");
            println!("cert_file = {:?}", cert.display().to_string());
            println!("key_file = {:?}", key.display().to_string());
            println!(
                "clients trust {} (SSL_CERT_FILE, or your fleet's trust store)",
                dir.join(HTTPS_CA).display()
            );
        }
    }
    Ok(())
}

/// The CA of `certs server`, apart from the cluster CA.
const HTTPS_CA: &str = "https-ca.pem";
const HTTPS_CA_KEY: &str = "https-ca-key.pem";

/// The HTTPS CA of `dir`, made on first use.
fn https_ca(dir: &Path) -> Result<pki::Issued> {
    let (cert, key) = (dir.join(HTTPS_CA), dir.join(HTTPS_CA_KEY));
    if cert.exists() {
        return Ok(pki::Issued {
            cert_pem: std::fs::read_to_string(&cert)
                .with_context(|| format!("reading {}", cert.display()))?,
            key_pem: std::fs::read_to_string(&key)
                .with_context(|| format!("reading {}", key.display()))?,
        });
    }
    let ca = pki::new_ca("cairn HTTPS CA", 3650)?;
    pki::write(dir, &ca, HTTPS_CA, HTTPS_CA_KEY)?;
    println!(
        "wrote {} (the CA clients trust; keep {} offline)",
        cert.display(),
        key.display()
    );
    Ok(ca)
}

fn read_ca(dir: &Path) -> Result<pki::Issued> {
    pki::read_ca(dir).with_context(|| {
        format!(
            "no CA in {}: run `cairn --tls-dir {} certs init` first",
            dir.display(),
            dir.display()
        )
    })
}

/// A new token for `name`: the secret (shown once) and the `[[token]]` entry holding its hash.
pub fn token(name: &str, groups: &[String]) -> String {
    let token = cairn_node::access::new_token();
    let groups = groups
        .iter()
        .map(|g| format!("{g:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "token for {name} (give it to them once; cairn keeps only its hash):\n{token}\n\nadd to access.tokens_file:\n[[token]]\nname = {name:?}\nsha256 = \"{}\"\ngroups = [{groups}]\n\nin the user's ~/.netrc:\nmachine <cairn host> login {name} password {token}\n",
        cairn_node::access::hash_token(&token)
    )
}
