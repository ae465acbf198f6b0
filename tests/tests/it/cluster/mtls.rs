//! The closed cluster port (issue 10). Every RPC kind the cluster serves is called on node 1 of
//! a three-node cluster with mutual TLS by four kinds of caller:
//!
//! - TLS without a client certificate: every RPC is `UNAUTHENTICATED`;
//! - a certificate from another CA: the handshake fails, nothing is served;
//! - a node certificate: node RPCs pass the access check, operator RPCs (membership, verify)
//!   are `PERMISSION_DENIED`;
//! - an operator certificate: operator RPCs pass, node RPCs (Raft, blobs, fills) are refused.
//!
//! The refusals are counted in `cairn_cluster_rpc_refused_total` and
//! `cairn_tls_handshake_failures_total`, the membership does not change (an operator adding a
//! node that does not answer is refused before it becomes a voter), and every administrative
//! call — refused or not — leaves exactly one line in the audit trail.

use std::path::Path;
use std::sync::Arc;

use cairn_proto::v1::admin_client::AdminClient;
use cairn_proto::v1::blob_client::BlobClient;
use cairn_proto::v1::mirror_client::MirrorClient;
use cairn_proto::v1::raft_client::RaftClient;
use cairn_proto::v1::{
    AddMemberRequest, FetchBlobRequest, FillRequest, ForwardRequest, PullBlobRequest, RaftRequest,
    RemoveMemberRequest, RouteRequest, StatusRequest, VerifyRequest,
};
use cairn_tests::cluster::ClusterConfig;
use cairn_tests::pki::ClusterPki;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

use super::{fixture, start};

type Outcome = (&'static str, Result<(), tonic::Status>);

/// A TLS 1.3 client trusting `ca`, presenting `cert` if given.
pub(super) fn client_config(ca: &Path, cert: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match cert {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// A channel to `addr` over TLS with `config` (the node's certificate names 127.0.0.1).
pub(super) async fn channel(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let connector = tower::service_fn(move |_: http::Uri| {
        let config = config.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let name = ServerName::IpAddress(addr.ip().into());
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid uri")
        .connect_with_connector(connector)
        .await
}

fn done<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Result<(), tonic::Status> {
    r.map(|_| ())
}

/// Calls every RPC kind once with harmless arguments.
async fn call_all(ch: Channel) -> Vec<Outcome> {
    let raft = |data: &str| RaftRequest {
        data: data.to_string(),
        payload: Vec::new(),
    };
    let mut r = RaftClient::new(ch.clone());
    let mut b = BlobClient::new(ch.clone());
    let mut m = MirrorClient::new(ch.clone());
    let mut a = AdminClient::new(ch);
    let no_blob = "0".repeat(64);
    vec![
        (
            "raft.append_entries",
            done(r.append_entries(raft("garbage")).await),
        ),
        ("raft.vote", done(r.vote(raft("garbage")).await)),
        (
            "raft.install_snapshot",
            done(r.install_snapshot(raft("garbage")).await),
        ),
        (
            "raft.install_snapshot_chunk",
            done(r.install_snapshot_chunk(raft("garbage")).await),
        ),
        (
            "raft.forward",
            done(
                r.forward(ForwardRequest {
                    data: "garbage".into(),
                    hops: 0,
                })
                .await,
            ),
        ),
        (
            "blob.fetch",
            done(
                b.fetch_blob(FetchBlobRequest {
                    sha256: no_blob.clone(),
                    offset: 0,
                })
                .await,
            ),
        ),
        (
            "blob.pull",
            done(
                b.pull_blob(PullBlobRequest {
                    sha256: no_blob,
                    size: 1,
                    source_addr: "127.0.0.1:1".into(),
                })
                .await,
            ),
        ),
        (
            "mirror.fill",
            done(
                m.fill(FillRequest {
                    module: "example.com/nonexistent".into(),
                    version: "v1.0.0".into(),
                    zip: false,
                })
                .await,
            ),
        ),
        ("admin.status", done(a.status(StatusRequest {}).await)),
        (
            "admin.route",
            done(
                a.route(RouteRequest {
                    module: "example.com/x".into(),
                })
                .await,
            ),
        ),
        (
            "admin.add_member",
            done(
                a.add_member(AddMemberRequest {
                    id: 9,
                    addr: "127.0.0.1:1".into(),
                    learner_only: false,
                    force_placement: false,
                })
                .await,
            ),
        ),
        (
            "admin.remove_member",
            done(a.remove_member(RemoveMemberRequest { id: 99 }).await),
        ),
        ("admin.verify", done(a.verify(VerifyRequest {}).await)),
    ]
}

fn is_refusal(r: &Result<(), tonic::Status>) -> bool {
    matches!(r, Err(s) if matches!(s.code(), Code::Unauthenticated | Code::PermissionDenied))
}

const NODE_RPCS: &[&str] = &[
    "raft.append_entries",
    "raft.vote",
    "raft.install_snapshot",
    "raft.install_snapshot_chunk",
    "raft.forward",
    "blob.fetch",
    "blob.pull",
    "mirror.fill",
];
const OPERATOR_RPCS: &[&str] = &["admin.add_member", "admin.remove_member", "admin.verify"];

async fn refused_total(cl: &cairn_tests::cluster::TestCluster, reason: &str) -> f64 {
    cl.metrics(1)
        .await
        .unwrap()
        .sum("cairn_cluster_rpc_refused_total", &[("reason", reason)])
}

#[tokio::test]
async fn r10_the_cluster_port_refuses_every_rpc_without_the_right_certificate() {
    let fx = fixture().await;
    let config = ClusterConfig::fast().set("audit", "target", "\"stdout\"");
    let cl = start(3, &fx.url(), &config).await;
    let pki = cl.pki().expect("the harness cluster is secure");
    let addr = cl.grpc_addr(1);
    let members = || async {
        let out = cl
            .cli_at(1, &["members", "list", "--json"])
            .await
            .unwrap()
            .ok()
            .unwrap();
        out.json().unwrap()["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["id"].as_u64(), m["voter"].as_bool()))
            .collect::<Vec<_>>()
    };
    let members_before = members().await;
    assert_eq!(members_before.len(), 3, "{members_before:?}");

    // No client certificate: every RPC is refused as unauthenticated.
    let anon = channel(addr, client_config(&pki.ca(), None)).await.unwrap();
    let outcomes = call_all(anon).await;
    let calls = outcomes.len() as f64;
    for (rpc, r) in outcomes {
        let code = r.as_ref().err().map(tonic::Status::code);
        assert_eq!(
            code,
            Some(Code::Unauthenticated),
            "{rpc} without a certificate: {r:?}"
        );
    }
    assert_eq!(
        refused_total(&cl, "no_certificate").await,
        calls,
        "every refusal is counted"
    );

    // A certificate from another CA: no RPC gets through, the handshakes are counted.
    let other = ClusterPki::new().unwrap();
    let (cert, key) = other.operator("admin").unwrap();
    let before = cl
        .metrics(1)
        .await
        .unwrap()
        .sum("cairn_tls_handshake_failures_total", &[]);
    match channel(addr, client_config(&pki.ca(), Some((&cert, &key)))).await {
        Err(_) => {}
        Ok(ch) => {
            for (rpc, r) in call_all(ch).await {
                assert!(r.is_err(), "{rpc} with a foreign certificate succeeded");
            }
        }
    }
    let after = cl
        .metrics(1)
        .await
        .unwrap()
        .sum("cairn_tls_handshake_failures_total", &[]);
    assert!(
        after > before,
        "the foreign handshake is counted ({before} -> {after})"
    );

    // A node's certificate: node RPCs pass the access check, operator RPCs do not.
    let (cert, key) = pki.node(2).unwrap();
    let node = channel(addr, client_config(&pki.ca(), Some((&cert, &key))))
        .await
        .unwrap();
    for (rpc, r) in call_all(node).await {
        if OPERATOR_RPCS.contains(&rpc) {
            let code = r.as_ref().err().map(tonic::Status::code);
            assert_eq!(
                code,
                Some(Code::PermissionDenied),
                "{rpc} with a node certificate: {r:?}"
            );
        } else {
            assert!(
                !is_refusal(&r),
                "{rpc} with a node certificate was refused: {r:?}"
            );
        }
    }
    assert_eq!(refused_total(&cl, "not_operator").await, 3.0);

    // An operator: operator RPCs pass the access check (adding a node that does not answer is
    // refused before it could become a voter), node RPCs are refused.
    let (cert, key) = pki.operator("admin").unwrap();
    let op = channel(addr, client_config(&pki.ca(), Some((&cert, &key))))
        .await
        .unwrap();
    for (rpc, r) in call_all(op).await {
        if NODE_RPCS.contains(&rpc) {
            let code = r.as_ref().err().map(tonic::Status::code);
            assert_eq!(
                code,
                Some(Code::PermissionDenied),
                "{rpc} as an operator: {r:?}"
            );
        } else {
            assert!(!is_refusal(&r), "{rpc} as an operator was refused: {r:?}");
        }
        if rpc == "admin.add_member" {
            let s = r.expect_err("node 9 does not exist");
            assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
            assert!(s.message().contains("does not answer"), "{s:?}");
        }
    }
    assert_eq!(refused_total(&cl, "not_node").await, NODE_RPCS.len() as f64);

    assert_eq!(
        members().await,
        members_before,
        "the membership is unchanged"
    );

    // Audit: node 1 recorded every administrative call exactly once: 3 refused without a
    // certificate, 3 refused for a node certificate, 3 by the operator.
    let log = std::fs::read_to_string(cl.node(1).log_path()).unwrap();
    let admin: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "admin")
        .collect();
    let whos: Vec<(String, String)> = admin
        .iter()
        .map(|v| {
            (
                v["identity"].as_str().unwrap_or("").to_string(),
                v["action"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(admin.len(), 9, "admin lines: {whos:?}");
    assert_eq!(
        whos.iter().filter(|(w, _)| w == "anonymous").count(),
        3,
        "{whos:?}"
    );
    assert_eq!(
        whos.iter().filter(|(w, _)| w == "node 2").count(),
        3,
        "{whos:?}"
    );
    assert_eq!(
        whos.iter().filter(|(w, _)| w == "admin").count(),
        3,
        "{whos:?}"
    );
}

/// The first finding: a lone node's cluster port took `members add` from anyone and made
/// an unreachable address a voter. Now a node without cluster TLS refuses membership changes
/// (unless `cluster.insecure`), and a multi-node cluster without TLS refuses to start.
#[tokio::test]
async fn r10_without_cluster_tls_membership_is_closed_and_clusters_do_not_start() {
    use cairn_tests::cluster::run_cli;
    use cairn_tests::node::{CairnNode, NodeOptions};

    let fx = fixture().await;
    let node = CairnNode::start(NodeOptions::new(&fx.url())).await.unwrap();
    let out = run_cli(
        node.addrs().cluster,
        &["members", "add", "9", "127.0.0.1:1"],
    )
    .await
    .unwrap();
    assert_ne!(out.code, Some(0), "{out}");
    assert!(
        out.stderr.contains("mutual TLS"),
        "the refusal says what to do: {out}"
    );
    let out = run_cli(node.addrs().cluster, &["members", "list", "--json"])
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(
        out.json().unwrap()["members"].as_array().map(Vec::len),
        Some(1),
        "{out}"
    );

    let mut opts = NodeOptions::new(&fx.url());
    opts.extra_args = vec!["--peers".into(), "1=127.0.0.1:1,2=127.0.0.1:2".into()];
    let err = match CairnNode::start(opts).await {
        Ok(_) => panic!("a two-node cluster without TLS started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("cluster.insecure"),
        "the startup error names the way out: {err}"
    );
}
