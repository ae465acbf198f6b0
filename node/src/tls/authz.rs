//! Who may call what on the cluster port, decided per RPC from the caller's certificate:
//!
//! | RPCs                                   | allowed callers                                  |
//! |----------------------------------------|--------------------------------------------------|
//! | `Raft/*`, `Blob/*`, `Mirror/*`         | nodes                                            |
//! | `Admin/Status`, `Admin/Route`          | nodes and operators                              |
//! | every other `Admin/*` (changes state)  | operators; a node only when forwarding an operator's request (`x-cairn-operator`) |
//! | `Admin/PinAdd`, `Admin/PinRemove`, `Admin/PinList` (issue 12) | operators (as every other `Admin/*`) |
//! | `Admin/Deny`, `Admin/Purge`, `Admin/ListPolicy` (issue 12) | operators (as above) |
//! | `Admin/BackupState`, `Admin/BackupBlob` | operators (they fall under the row above: a backup reads everything) |
//!
//! A caller without a certificate gets `UNAUTHENTICATED`, one with the wrong kind of identity
//! `PERMISSION_DENIED`; both are counted. With an insecure cluster port everything is allowed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::cluster::ClusterPeer;
use super::Identity;

/// Metadata a node sets when it forwards an operator's administrative request to the leader.
pub const OPERATOR_HEADER: &str = "x-cairn-operator";

/// Who a permitted request acts for, as a request extension for the handlers (audit, forwarding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acting {
    /// The operator (direct, or named by a forwarding node), if any.
    pub operator: Option<String>,
    /// The identity on the connection (`None` on an insecure port).
    pub caller: Option<Identity>,
}

/// Why an RPC was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Metric label.
    pub reason: &'static str,
    /// `UNAUTHENTICATED` rather than `PERMISSION_DENIED`.
    pub unauthenticated: bool,
    /// What the caller is told.
    pub message: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Node,
    NodeOrOperator,
    Operator,
}

fn need(path: &str) -> Option<(&'static str, Need)> {
    let (service, method) = path.strip_prefix("/cairn.v1.")?.split_once('/')?;
    match service {
        "Raft" => Some(("raft", Need::Node)),
        "Blob" => Some(("blob", Need::Node)),
        "Mirror" => Some(("mirror", Need::Node)),
        "Admin" if matches!(method, "Status" | "Route") => Some(("admin", Need::NodeOrOperator)),
        "Admin" => Some(("admin", Need::Operator)),
        _ => None,
    }
}

/// Decides one RPC on a secure port (pure, for tests). `is_member` says whether a node id
/// belongs to the cluster: a node certificate acts as a node only while its id is a member (a
/// removed node's certificate stays valid until it expires, but is refused here).
pub fn decide(
    path: &str,
    peer: Option<&ClusterPeer>,
    on_behalf: Option<&str>,
    is_member: &dyn Fn(u64) -> bool,
) -> Result<Acting, Refusal> {
    let refuse = |reason, unauthenticated, message: String| Refusal {
        reason,
        unauthenticated,
        message,
    };
    let Some((_, need)) = need(path) else {
        return Err(refuse(
            "unknown_rpc",
            false,
            format!("{path} is not a cairn RPC"),
        ));
    };
    let certified = peer.is_some_and(|p| p.certified);
    let Some(who) = peer.and_then(|p| p.identity.clone()) else {
        return Err(if certified {
            refuse("no_identity", true, "the client certificate carries no cairn identity (N.node.cairn.internal or NAME.operator.cairn.internal)".into())
        } else {
            refuse("no_certificate", true, "this cluster port requires a client certificate signed by the cluster CA: give the cairn CLI --tls-dir (or --ca, --cert and --key)".into())
        });
    };
    let acting = |operator: Option<String>| Acting {
        operator,
        caller: Some(who.clone()),
    };
    if let (Identity::Node(id), Need::Node | Need::Operator) = (&who, need) {
        if !is_member(*id) {
            return Err(refuse(
                "not_member",
                false,
                format!("node {id} is not a member of this cluster"),
            ));
        }
    }
    match (&who, need) {
        (Identity::Node(_), Need::Node | Need::NodeOrOperator) => Ok(acting(None)),
        (Identity::Operator(op), Need::Operator | Need::NodeOrOperator) => {
            Ok(acting(Some(op.clone())))
        }
        (Identity::Node(_), Need::Operator) => {
            match on_behalf.filter(|o| super::identity::valid_operator_name(o)) {
                Some(op) => Ok(acting(Some(op.to_string()))),
                None => Err(refuse(
                    "not_operator",
                    false,
                    format!("{path} needs an operator certificate; {who} is not an operator"),
                )),
            }
        }
        (Identity::Operator(_), Need::Node) => Err(refuse(
            "not_node",
            false,
            format!("{path} is for cluster nodes only; {who} is not a node"),
        )),
    }
}

/// The tower layer enforcing [`decide`] on the cluster server.
#[derive(Clone)]
pub struct AuthzLayer {
    /// False on an insecure port: everything passes.
    pub secure: bool,
    /// Refused administrative RPCs are recorded here too.
    pub trail: crate::auditlog::AuditLog,
    /// This node's id, for the trail.
    pub node_id: u64,
    /// Whether a node id belongs to the cluster (see [`decide`]).
    pub is_member: Arc<dyn Fn(u64) -> bool + Send + Sync>,
}

impl<S> tower_layer::Layer<S> for AuthzLayer {
    type Service = Authz<S>;

    fn layer(&self, inner: S) -> Authz<S> {
        Authz {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`AuthzLayer`].
#[derive(Clone)]
pub struct Authz<S> {
    inner: S,
    layer: AuthzLayer,
}

/// The audit-trail action name of an administrative RPC (the admin service uses the same).
pub fn admin_action(path: &str) -> Option<&'static str> {
    match path.strip_prefix("/cairn.v1.Admin/")? {
        "AddMember" => Some("members.add"),
        "RemoveMember" => Some("members.remove"),
        "Verify" => Some("verify"),
        // Operator policy (issue 12).
        "Deny" => Some("deny"),
        "Purge" => Some("purge"),
        "ListPolicy" => Some("policy.list"),
        // --- backup ---
        "BackupState" => Some("backup"),
        "BackupBlob" => Some("backup.blob"),
        _ => None,
    }
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> tower_service::Service<http::Request<B>> for Authz<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if !self.layer.secure {
            req.extensions_mut().insert(Acting {
                operator: None,
                caller: None,
            });
            return Box::pin(self.inner.call(req));
        }
        let peer = req.extensions().get::<ClusterPeer>();
        let on_behalf = req
            .headers()
            .get(OPERATOR_HEADER)
            .and_then(|v| v.to_str().ok());
        match decide(
            req.uri().path(),
            peer,
            on_behalf,
            self.layer.is_member.as_ref(),
        ) {
            Ok(acting) => {
                req.extensions_mut().insert(acting);
                Box::pin(self.inner.call(req))
            }
            Err(refusal) => {
                let service = need(req.uri().path()).map_or("unknown", |(s, _)| s);
                metrics::counter!(super::metrics::CLUSTER_REFUSED_TOTAL, "service" => service, "reason" => refusal.reason).increment(1);
                tracing::info!(
                    rpc = req.uri().path(),
                    peer = ?peer.and_then(|p| p.remote),
                    reason = refusal.reason,
                    "cluster: rpc refused"
                );
                if let Some(action) = admin_action(req.uri().path()) {
                    let who = peer
                        .and_then(|p| p.identity.as_ref())
                        .map_or("anonymous".to_string(), ToString::to_string);
                    self.layer.trail.admin(crate::auditlog::AdminEvent {
                        identity: &who,
                        client: peer.and_then(|p| p.remote),
                        action,
                        target: "",
                        result: &format!("refused: {}", refusal.message),
                        node: self.layer.node_id,
                    });
                }
                let status = if refusal.unauthenticated {
                    tonic::Status::unauthenticated(refusal.message)
                } else {
                    tonic::Status::permission_denied(refusal.message)
                };
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(identity: Option<Identity>, certified: bool) -> ClusterPeer {
        ClusterPeer {
            remote: None,
            identity,
            certified,
        }
    }

    #[test]
    fn the_table_holds() {
        let node = peer(Some(Identity::Node(2)), true);
        let op = peer(Some(Identity::Operator("alice".into())), true);
        let anon = peer(None, false);
        let odd = peer(None, true);
        let all = |_: u64| true;
        let ok = |path, p: &ClusterPeer, behalf| decide(path, Some(p), behalf, &all).is_ok();
        assert!(ok("/cairn.v1.Raft/AppendEntries", &node, None));
        assert!(!ok("/cairn.v1.Raft/AppendEntries", &op, None));
        assert!(ok("/cairn.v1.Blob/FetchBlob", &node, None));
        assert!(!ok("/cairn.v1.Mirror/Fill", &op, None));
        assert!(ok("/cairn.v1.Admin/Status", &node, None));
        assert!(ok("/cairn.v1.Admin/Status", &op, None));
        assert!(ok("/cairn.v1.Admin/AddMember", &op, None));
        assert!(!ok("/cairn.v1.Admin/AddMember", &node, None));
        assert!(ok("/cairn.v1.Admin/AddMember", &node, Some("alice")));
        assert!(!ok("/cairn.v1.Admin/AddMember", &node, Some("not valid!")));
        assert!(!ok("/cairn.v1.Admin/Status", &odd, None));
        // Operator policy (issue 12): operators only, never a node on its own.
        for rpc in ["Deny", "Purge", "ListPolicy"] {
            let path = format!("/cairn.v1.Admin/{rpc}");
            assert!(decide(&path, Some(&op), None, &all).is_ok(), "{rpc}");
            assert!(decide(&path, Some(&node), None, &all).is_err(), "{rpc}");
            assert!(admin_action(&path).is_some(), "{rpc}");
        }
        assert!(!ok("/other.Service/X", &node, None));
        let e = decide("/cairn.v1.Admin/Status", Some(&anon), None, &all).unwrap_err();
        assert_eq!((e.reason, e.unauthenticated), ("no_certificate", true));
        let e = decide("/cairn.v1.Admin/Verify", Some(&node), None, &all).unwrap_err();
        assert_eq!((e.reason, e.unauthenticated), ("not_operator", false));
        assert_eq!(
            decide(
                "/cairn.v1.Admin/RemoveMember",
                Some(&node),
                Some("bob"),
                &all
            )
            .unwrap()
            .operator
            .as_deref(),
            Some("bob")
        );
        // A removed node's certificate no longer acts as a node (Status stays open to it).
        let only_1 = |id: u64| id == 1;
        let e = decide("/cairn.v1.Raft/AppendEntries", Some(&node), None, &only_1).unwrap_err();
        assert_eq!(e.reason, "not_member");
        let e = decide(
            "/cairn.v1.Admin/AddMember",
            Some(&node),
            Some("bob"),
            &only_1,
        )
        .unwrap_err();
        assert_eq!(e.reason, "not_member");
        assert!(decide("/cairn.v1.Admin/Status", Some(&node), None, &only_1).is_ok());
    }

    #[test]
    fn pins_are_operator_only_and_has_blobs_is_for_nodes() {
        let node = peer(Some(Identity::Node(2)), true);
        let op = peer(Some(Identity::Operator("alice".into())), true);
        let all = |_: u64| true;
        let ok = |path: &str, p: &ClusterPeer| decide(path, Some(p), None, &all).is_ok();
        for rpc in ["PinAdd", "PinRemove", "PinList"] {
            let path = format!("/cairn.v1.Admin/{rpc}");
            assert!(ok(&path, &op), "{rpc}");
            assert!(!ok(&path, &node), "{rpc}");
        }
        assert!(ok("/cairn.v1.Blob/HasBlobs", &node));
        assert!(!ok("/cairn.v1.Blob/HasBlobs", &op));
    }

    #[test]
    fn backup_rpcs_are_operator_only() {
        let all = |_: u64| true;
        let node = peer(Some(Identity::Node(2)), true);
        let op = peer(Some(Identity::Operator("alice".into())), true);
        for rpc in ["/cairn.v1.Admin/BackupState", "/cairn.v1.Admin/BackupBlob"] {
            assert!(decide(rpc, Some(&op), None, &all).is_ok(), "{rpc}");
            let e = decide(rpc, Some(&node), None, &all).unwrap_err();
            assert_eq!(e.reason, "not_operator", "{rpc}");
        }
        assert_eq!(admin_action("/cairn.v1.Admin/BackupState"), Some("backup"));
    }
}
