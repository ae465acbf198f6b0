//! Who is on the other end of a cluster connection, read from its certificate.
//!
//! Identities are DNS names in the certificate's subject alternative names, so that any PKI
//! (cert-manager, Vault, an in-house CA) can issue them:
//!
//! - node `N`: `N.node.cairn.internal`
//! - operator `NAME`: `NAME.operator.cairn.internal`
//!
//! A node certificate may carry other names too (its host names, for other tools); cairn only
//! looks at these.

use std::fmt;

use rustls::pki_types::CertificateDer;

/// The DNS suffix of node identities.
pub const NODE_SUFFIX: &str = ".node.cairn.internal";
/// The DNS suffix of operator identities.
pub const OPERATOR_SUFFIX: &str = ".operator.cairn.internal";

/// A cluster identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A cairn node with this Raft id.
    Node(u64),
    /// A human or automation allowed to run administrative commands.
    Operator(String),
}

impl Identity {
    /// The DNS name that carries this identity in a certificate.
    pub fn dns_name(&self) -> String {
        match self {
            Identity::Node(id) => format!("{id}{NODE_SUFFIX}"),
            Identity::Operator(name) => format!("{name}{OPERATOR_SUFFIX}"),
        }
    }

    /// The identity a DNS name stands for, if it is one of cairn's.
    pub fn from_dns_name(name: &str) -> Option<Identity> {
        let name = name.to_ascii_lowercase();
        if let Some(id) = name.strip_suffix(NODE_SUFFIX) {
            return id
                .parse::<u64>()
                .ok()
                .filter(|id| *id > 0)
                .map(Identity::Node);
        }
        let op = name.strip_suffix(OPERATOR_SUFFIX)?;
        valid_operator_name(op).then(|| Identity::Operator(op.to_string()))
    }

    /// The cairn identity of a certificate: a node identity wins over an operator one.
    pub fn of_cert(cert: &CertificateDer<'_>) -> Option<Identity> {
        let ee = webpki::EndEntityCert::try_from(cert).ok()?;
        let mut ids: Vec<Identity> = ee
            .valid_dns_names()
            .filter_map(Identity::from_dns_name)
            .collect();
        ids.sort_by_key(|i| matches!(i, Identity::Operator(_)));
        ids.into_iter().next()
    }

    /// The operator name, if this is an operator.
    pub fn operator(&self) -> Option<&str> {
        match self {
            Identity::Operator(n) => Some(n),
            Identity::Node(_) => None,
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Node(id) => write!(f, "node {id}"),
            Identity::Operator(name) => write!(f, "operator {name}"),
        }
    }
}

/// Operator names are one DNS label: lowercase letters, digits and `-`, 1 to 63 long, not
/// starting or ending with `-`.
pub fn valid_operator_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// When a certificate stops being valid, as Unix seconds.
pub fn not_after(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for id in [Identity::Node(3), Identity::Operator("alice".into())] {
            assert_eq!(Identity::from_dns_name(&id.dns_name()), Some(id));
        }
        assert_eq!(
            Identity::from_dns_name("7.NODE.cairn.internal"),
            Some(Identity::Node(7))
        );
        for bad in [
            "0.node.cairn.internal",
            "x.node.cairn.internal",
            "node.cairn.internal",
            "-a.operator.cairn.internal",
            "a.b.operator.cairn.internal",
            "example.com",
        ] {
            assert_eq!(Identity::from_dns_name(bad), None, "{bad}");
        }
    }
}
