//! Talking to a node's `cairn.v1.Admin` service: connecting, and turning gRPC failures into
//! messages an operator can act on. No call is ever retried here.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use cairn_node::tls::pki::files;
use cairn_node::tls::{ClusterTls, Expect};
use cairn_proto::v1::admin_client::AdminClient;
use cairn_proto::v1::{StatusReply, StatusRequest};
use tonic::transport::{Channel, Endpoint};

/// `http://HOST:PORT` for `HOST:PORT` (an explicit scheme is kept).
pub fn uri(node: &str) -> String {
    if node.contains("://") {
        node.to_string()
    } else {
        format!("http://{node}")
    }
}

/// The TLS every connection of this process uses (set once from the flags).
static TLS: OnceLock<ClusterTls> = OnceLock::new();

/// Loads the operator certificate named by the flags (`--ca`/`--cert`/`--key` override the
/// files of `--tls-dir`); without any, connections are plain h2c.
pub fn init_tls(
    dir: Option<&Path>,
    ca: Option<&Path>,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<()> {
    let pick = |flag: Option<&Path>, name: &str| {
        flag.map(Path::to_path_buf)
            .or_else(|| dir.map(|d| d.join(name)))
    };
    let tls = match (
        pick(ca, files::CA),
        pick(cert, files::OPERATOR),
        pick(key, files::OPERATOR_KEY),
    ) {
        (None, None, None) => ClusterTls::insecure(),
        (Some(ca), Some(cert), Some(key)) => {
            ClusterTls::load(&ca, &cert, &key, None, Duration::from_secs(3600))
                .context("cannot use the operator certificate")?
        }
        _ => bail!("--ca, --cert and --key go together (or give --tls-dir holding ca.pem, operator.pem and operator-key.pem)"),
    };
    let _ = TLS.set(tls);
    Ok(())
}

/// Connects to the node at `node` (HOST:PORT or a URI), waiting at most `timeout`.
pub async fn connect(node: &str, timeout: Duration) -> Result<AdminClient<Channel>> {
    let uri = uri(node);
    let endpoint = Endpoint::from_shared(uri.clone())
        .with_context(|| format!("{node:?} is not a valid node address (expected HOST:PORT)"))?
        .connect_timeout(timeout);
    let tls = TLS.get().cloned().unwrap_or_default();
    let secure = tls.is_secure();
    let channel = tls
        .connect(endpoint, Expect::AnyNode)
        .await
        .map_err(|e| anyhow::anyhow!(cairn_node::egress::error_chain(&e)))
        .with_context(|| {
            if secure {
                format!("cannot connect to {uri} with mutual TLS: is cairn-node running there with cluster certificates from the same CA?")
            } else {
                format!("cannot connect to {uri}: is cairn-node running with --cluster-listen at that address? (if its cluster port uses TLS, give --tls-dir)")
            }
        })?;
    Ok(AdminClient::new(channel))
}

/// `Status` of the node at `node`, all within `timeout`.
pub async fn status(node: &str, timeout: Duration) -> Result<StatusReply> {
    let call = async {
        let mut client = connect(node, timeout).await?;
        let mut req = tonic::Request::new(StatusRequest {});
        req.set_timeout(timeout);
        let reply = client
            .status(req)
            .await
            .map_err(|s| anyhow::anyhow!(describe_status(&s)))
            .with_context(|| format!("status request to {} failed", uri(node)))?;
        Ok(reply.into_inner())
    };
    tokio::time::timeout(timeout, call)
        .await
        .with_context(|| format!("{} did not answer within {timeout:?}", uri(node)))?
}

/// A gRPC failure as one line: the node's own message, the code, and the leader if it said so.
pub fn describe_status(s: &tonic::Status) -> String {
    let mut out = format!("{} ({:?})", s.message(), s.code());
    if let Some(leader) = s
        .metadata()
        .get("x-cairn-leader")
        .and_then(|v| v.to_str().ok())
    {
        out.push_str(&format!("; leader: node {leader}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_well() {
        let mut s = tonic::Status::unavailable("not the raft leader");
        s.metadata_mut()
            .insert("x-cairn-leader", "2=h:9090".parse().unwrap());
        assert_eq!(
            describe_status(&s),
            "not the raft leader (Unavailable); leader: node 2=h:9090"
        );
        assert_eq!(uri("h:1"), "http://h:1");
        assert_eq!(uri("https://h:1"), "https://h:1");
    }
}
