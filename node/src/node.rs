//! A running node: [`Node::bind`] opens storage and listeners (so tests and operators learn the
//! bound addresses at once), [`Node::run`] serves until the shutdown token fires, then drains.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::AdminService;
use crate::cluster::fill::FillService;
use crate::cluster::link::ClusterLink;
use crate::cluster::peers::Peers;
use crate::cluster::repair::Repair;
use crate::cluster::transfer::BlobTransfer;
use crate::config::Config;
use crate::direct::Direct;
use crate::http::HttpState;
use crate::mirror::Mirror;
use crate::raft::{Consensus, NodeAddr};
use crate::routing::Router;
use crate::store::blob::BlobStore;
use crate::sumdb::{AnswerStore, Audit, Checker, SumdbProxy};
use crate::tls::{ClusterTls, HttpsTls, Identity};

/// Startup and run failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The data directory could not be prepared.
    #[error("cannot use data directory {path}: {reason}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source} (is another process using the port?)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The blob store failed to open.
    #[error("blob store: {0}")]
    Blobs(#[from] crate::store::blob::BlobError),
    /// Raft or the metadata store failed.
    #[error("consensus: {0}")]
    Consensus(String),
    /// The upstream list is invalid.
    #[error("upstream: {0}")]
    Upstream(String),
    /// The cluster gRPC server failed.
    #[error("cluster server: {0}")]
    Grpc(String),
    /// The `[access]` section could not be put to work.
    #[error("access: {0}")]
    Access(String),
    /// The audit trail could not be opened.
    #[error("audit: {0}")]
    Audit(String),
    /// Certificates could not be loaded.
    #[error("tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// A node with its storage open and its listeners bound.
pub struct Node {
    config: Config,
    http: TcpListener,
    /// The extra plain-HTTP listener (`tls.plain_listen`).
    plain: Option<TcpListener>,
    https: Option<HttpsTls>,
    cluster: TcpListener,
    state: Arc<HttpState>,
    admin: AdminService,
    consensus: Consensus,
    transfer: BlobTransfer,
    /// Cancelled after HTTP drained: stops the liveness prober and the repair worker.
    workers: CancellationToken,
    repair: Repair,
}

impl Node {
    /// Opens the data directory, storage and consensus, binds both listeners and writes
    /// `<data-dir>/listen-addrs.json` with the bound addresses.
    pub async fn bind(mut config: Config, metrics: PrometheusHandle) -> Result<Node, NodeError> {
        let since = Instant::now();
        let https = HttpsTls::load(&config.tls)?;
        let cluster_tls = load_cluster_tls(&config)?;
        config.cluster.tls = cluster_tls.clone();
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(|e| NodeError::DataDir {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
        let blobs = BlobStore::open(&dir.join("blobs"))?;
        if config.cache.verify_on_read != crate::config::VerifyPolicy::Always {
            blobs.hot().set_budget(config.cache.hot_blob_bytes);
        }
        let proxies = config.egress.proxies();
        let proxy = |p: &Option<crate::egress::ProxyUrl>| p.as_ref().map(|p| p.redacted());
        tracing::info!(
            roots = %config.egress.describe_roots(),
            https_proxy = ?proxy(&proxies.https),
            http_proxy = ?proxy(&proxies.http),
            no_proxy = ?proxies.no_proxy,
            "outbound trust and proxies"
        );
        let direct = Direct::new(&config.direct, dir, &config.egress)
            .map_err(|e| NodeError::Upstream(format!("direct: {e}")))?;
        let router = Router::new(
            &config.routes,
            &config.upstream,
            &config.upstream_http,
            Some(&direct),
        )
        .map_err(|e| NodeError::Upstream(e.to_string()))?;
        let router = Arc::new(router);
        let upstream = router.default_upstream().clone();
        let http = bind(config.listen).await?;
        let plain = match config.plain_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let cluster = bind(config.cluster_listen).await?;
        let (http_addr, cluster_addr) = (local(&http), local(&cluster));
        let peers = peers_with_bound_self(&config, cluster_addr);
        let raft_settings = crate::raft::RaftSettings {
            forward_hops: config.cluster.forward_hops,
            cluster_tls,
            region: config.cluster.region.clone(),
            zone: config.cluster.zone.clone(),
            ..config.raft.clone()
        };
        let consensus = Consensus::start(config.node_id, peers, &dir.join("meta"), &raft_settings)
            .await
            .map_err(|e| NodeError::Consensus(e.to_string()))?;
        tracing::info!(node_id = config.node_id, http = %http_addr, cluster = %cluster_addr, upstream = %upstream.describe(), routes = router.len(), "node bound");
        let sumdb = SumdbProxy::new(
            config.sumdb.databases.clone(),
            upstream,
            router.clone(),
            // Not `sumdb/`: answers cached there before verification existed were never checked.
            AnswerStore::new(&dir.join("sumdb-answers"), Some(consensus.clone())),
            Duration::from_secs(config.sumdb.latest_ttl_secs),
            config.limits.max_sumdb_bytes,
        );
        let checker = Arc::new(Checker::new(sumdb.clone(), consensus.clone()));
        let sumdb = sumdb.with_checker(checker.clone());
        let workers = CancellationToken::new();
        let transfer = BlobTransfer::new(blobs.clone(), &config.cluster);
        let peers = Peers::spawn(
            consensus.clone(),
            config.node_id,
            &config.cluster,
            workers.clone(),
        );
        crate::sumdb::recheck::spawn(
            checker.clone(),
            consensus.clone(),
            Duration::from_secs(config.sumdb.recheck_interval_secs),
            workers.clone(),
        );
        let repair = Repair::spawn(
            consensus.clone(),
            blobs.clone(),
            transfer.clone(),
            config.node_id,
            &config.cluster,
            workers.clone(),
        );
        crate::disk::Disk::spawn(
            crate::disk::DiskParts {
                policy: config.disk.clone(),
                data_dir: config.data_dir.clone(),
                blobs: blobs.clone(),
                consensus: consensus.clone(),
                transfer: transfer.clone(),
                self_id: config.node_id,
                min_copies: config.cluster.min_copies,
            },
            workers.clone(),
        )
        .await;
        crate::policy::purger::spawn(consensus.clone(), blobs.clone(), workers.clone());
        crate::policy::backfill::spawn(consensus.clone(), workers.clone());
        crate::raft::location::spawn(consensus.clone(), workers.clone());
        let fill_timeout = Duration::from_secs(
            config.upstream_http.transfer_timeout_secs + config.cluster.replicate_timeout_secs + 60,
        );
        let link = ClusterLink::new(
            config.node_id,
            peers,
            transfer.clone(),
            &config.cluster,
            fill_timeout,
        );
        let link: Arc<dyn crate::mirror::cluster::ClusterOps> = Arc::new(link);
        let mirror = Mirror::new(
            consensus.clone(),
            blobs.clone(),
            router.clone(),
            config.cache.clone(),
            config.limits.clone(),
            Some(link.clone()),
            Some(checker.clone()),
        );
        let access = crate::access::Access::new(
            &config.access,
            config
                .egress
                .client_builder(false)
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| NodeError::Access(e.to_string()))?,
        )
        .await
        .map_err(|problems| {
            NodeError::Access(
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        let trail = crate::auditlog::AuditLog::open(&config.audit)
            .map_err(|e| NodeError::Audit(e.to_string()))?;
        let started = Arc::new(AtomicBool::new(false));
        let state = Arc::new(HttpState {
            mirror,
            sumdb,
            consensus: consensus.clone(),
            metrics,
            upstream_error_status: StatusCode::from_u16(config.upstream_error_status)
                .unwrap_or(StatusCode::BAD_GATEWAY),
            max_path_bytes: config.http.max_path_bytes,
            mutable_max_age: format!("public, max-age={}", config.cache.list_ttl_secs.min(300)),
            started: started.clone(),
            access,
            audit: trail.clone(),
            node_id: config.node_id,
            data_dir: config.data_dir.clone(),
            deny_status: StatusCode::from_u16(config.policy.deny_status)
                .unwrap_or(StatusCode::GONE),
        });
        let admin = AdminService {
            node_id: config.node_id,
            listen_addr: http_addr.to_string(),
            cluster_addr: cluster_addr.to_string(),
            consensus: consensus.clone(),
            blobs: blobs.clone(),
            started,
            since,
            repair: Some(Arc::new(repair.clone())),
            router: Some(router),
            audit: Some(Arc::new(Audit::new(
                checker,
                consensus.reader(),
                blobs.clone(),
                crate::modzip::ZipLimits {
                    max_zip_bytes: config.limits.max_zip_bytes,
                    max_uncompressed_bytes: config.limits.max_uncompressed_bytes,
                    ..crate::modzip::ZipLimits::default()
                },
            ))),
            allow_insecure_membership: config.cluster.insecure,
            trail,
            backup_peers: Some(link),
        };
        write_addrs(dir, http_addr, plain.as_ref().map(local), cluster_addr)?;
        Ok(Node {
            config,
            http,
            plain,
            https,
            cluster,
            state,
            admin,
            consensus,
            transfer,
            workers,
            repair,
        })
    }

    /// The bound extra plain-HTTP address (`tls.plain_listen`), if any.
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain.as_ref().map(local)
    }

    /// The bound (GOPROXY HTTP, cluster gRPC) addresses.
    pub fn local_addrs(&self) -> (SocketAddr, SocketAddr) {
        (local(&self.http), local(&self.cluster))
    }

    /// Serves until `shutdown` is cancelled, then drains HTTP within the grace period and stops
    /// Raft cleanly.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), NodeError> {
        let Node {
            config,
            http,
            plain,
            https,
            cluster,
            state,
            admin,
            consensus,
            transfer,
            workers,
            repair,
        } = self;
        // The cluster port outlives the HTTP drain: peers may still pull blobs from this node
        // for fills that are finishing.
        let grpc_shutdown = workers.clone();
        let tls = config.cluster.tls.clone();
        tls.spawn_reloader(workers.clone());
        if let Some(https) = &https {
            https.spawn_reloader(workers.clone());
        }
        state.access.spawn_reloader(workers.clone());
        let handshake = Duration::from_secs(config.tls.handshake_timeout_secs);
        let incoming = tls.incoming(cluster, handshake, workers.clone());
        // Keepalives find dead peers' connections; the stream cap bounds what one peer can ask
        // at once (Raft, transfers and fills use a few streams each).
        let grpc = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)))
            .max_concurrent_streams(Some(1024))
            .layer(crate::tls::authz::AuthzLayer {
                secure: tls.is_secure(),
                trail: state.audit.clone(),
                node_id: config.node_id,
                is_member: {
                    let consensus = consensus.clone();
                    Arc::new(move |id| consensus.knows_node(id))
                },
            })
            .add_service(admin.into_server())
            .add_service(consensus.raft_service())
            .add_service(transfer.service())
            .add_service(FillService::server(state.mirror.clone()))
            .serve_with_incoming_shutdown(incoming, grpc_shutdown.cancelled_owned());
        let grpc = tokio::spawn(grpc);
        state.started.store(true, Ordering::Release);
        tracing::info!("node ready");
        let serve = |listener, tls| {
            crate::http::serve(
                listener,
                tls,
                state.clone(),
                config.http.clone(),
                shutdown.clone(),
                config.shutdown_grace,
            )
        };
        match plain {
            Some(plain) => {
                tokio::join!(serve(http, https), serve(plain, None));
            }
            None => serve(http, https).await,
        }
        workers.cancel();
        tracing::debug!(repair = ?repair.status(), "stopping cluster workers");
        match tokio::time::timeout(Duration::from_secs(5), grpc).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "cluster server ended with an error"),
            Err(_) => tracing::warn!("cluster server did not stop within 5s"),
            _ => {}
        }
        consensus
            .shutdown()
            .await
            .map_err(|e| NodeError::Consensus(e.to_string()))?;
        state.audit.flush().await;
        tracing::info!("node stopped");
        Ok(())
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { addr, source })
}

/// The cluster port's TLS from `cluster.*_file`, or insecure (with a warning when that is a
/// choice the operator made, or the port is reachable from other hosts).
fn load_cluster_tls(config: &Config) -> Result<ClusterTls, NodeError> {
    let files = config.cluster.tls_files();
    if let Some((ca, cert, key)) = files.all() {
        let tls = ClusterTls::load(
            ca,
            cert,
            key,
            Some(Identity::Node(config.node_id)),
            Duration::from_secs(config.tls.reload_interval_secs),
        )?;
        tracing::info!(ca = %ca.display(), cert = %cert.display(), "cluster port: mutual TLS");
        return Ok(tls);
    }
    if config.cluster.insecure {
        tracing::warn!(
            cluster = %config.cluster_listen,
            "cluster.insecure = true: the cluster port has no TLS; anyone who reaches it can act as a node or an operator"
        );
    } else if !config.cluster_listen.ip().is_loopback() {
        tracing::warn!(
            cluster = %config.cluster_listen,
            "the cluster port has no TLS and listens beyond loopback; membership changes are refused until cluster certificates are configured"
        );
    }
    Ok(ClusterTls::insecure())
}

fn local(l: &TcpListener) -> SocketAddr {
    l.local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// The configured peers, with this node's own entry replaced by its bound address when it was
/// configured implicitly (single node) or with port 0.
fn peers_with_bound_self(config: &Config, bound: SocketAddr) -> BTreeMap<u64, NodeAddr> {
    config
        .peers
        .iter()
        .map(|(id, addr)| {
            let addr = if *id == config.node_id && addr.ends_with(":0") {
                bound.to_string()
            } else {
                addr.clone()
            };
            let mut node = NodeAddr::at(addr);
            if *id == config.node_id {
                node.region = config.cluster.region.clone();
                node.zone = config.cluster.zone.clone();
            }
            (*id, node)
        })
        .collect()
}

fn write_addrs(
    dir: &std::path::Path,
    http: SocketAddr,
    plain: Option<SocketAddr>,
    cluster: SocketAddr,
) -> Result<(), NodeError> {
    let body = serde_json::json!({
        "http": http.to_string(),
        "plain_http": plain.map(|p| p.to_string()),
        "cluster": cluster.to_string(),
    })
    .to_string();
    let tmp = dir.join("listen-addrs.json.tmp");
    let dest = dir.join("listen-addrs.json");
    std::fs::write(&tmp, body)
        .and_then(|()| std::fs::rename(&tmp, &dest))
        .map_err(|e| NodeError::DataDir {
            path: dest,
            reason: e.to_string(),
        })
}
