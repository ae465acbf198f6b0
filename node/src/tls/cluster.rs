//! Mutual TLS on the cluster port: nodes and the `cairn` CLI present certificates signed by the
//! cluster CA; every connection learns the peer's [`Identity`], and clients check that the node
//! they reached is the one they meant ([`Expect`]).
//!
//! [`ClusterTls::insecure`] (no files configured) serves and dials plain h2c, as before; the
//! node refuses that for a multi-node cluster unless `cluster.insecure = true`.

use std::future::Future as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use super::server::{record_expiry, rustls_err};
use super::{pem, Identity, TlsError};

/// The cluster port's certificate files (keys of the `[cluster]` section).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ClusterTlsSettings {
    /// The cluster CA (PEM); peers and operators must present certificates it signed.
    pub ca_file: Option<PathBuf>,
    /// This node's certificate chain (PEM), naming `<node_id>.node.cairn.internal`.
    pub cert_file: Option<PathBuf>,
    /// This node's private key (PEM).
    pub key_file: Option<PathBuf>,
}

impl ClusterTlsSettings {
    /// True if any file is configured.
    pub fn any(&self) -> bool {
        self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some()
    }

    /// The three files if all are configured.
    pub fn all(&self) -> Option<(&Path, &Path, &Path)> {
        Some((
            self.ca_file.as_deref()?,
            self.cert_file.as_deref()?,
            self.key_file.as_deref()?,
        ))
    }
}

/// Which node a client expects to reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this node.
    Node(u64),
    /// Any node of the cluster (the address is all the caller knows).
    AnyNode,
}

/// What the cluster server knows about a connection (a request extension for every RPC).
#[derive(Debug, Clone)]
pub struct ClusterPeer {
    /// The client's address.
    pub remote: Option<SocketAddr>,
    /// The identity its certificate carries (`None`: no certificate, or plain h2c).
    pub identity: Option<Identity>,
    /// Whether it presented a certificate (signed by the CA, or the handshake would have failed).
    pub certified: bool,
}

/// The cluster port's TLS, shared by the server and every internal client; cheap to clone.
#[derive(Clone, Default)]
pub struct ClusterTls {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    files: (PathBuf, PathBuf, PathBuf),
    /// Who this process is (a node, or an operator for the CLI).
    me: Identity,
    material: RwLock<Arc<Material>>,
    reload_interval: Duration,
}

/// Everything built from the three files at one moment.
struct Material {
    server: Arc<rustls::ServerConfig>,
    verifier: Arc<rustls::client::WebPkiServerVerifier>,
    chain: Vec<CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None => f.write_str("ClusterTls(insecure)"),
            Some(i) => write!(f, "ClusterTls({})", i.me),
        }
    }
}

impl ClusterTls {
    /// Plain h2c: no certificates, no identities.
    pub fn insecure() -> ClusterTls {
        ClusterTls { inner: None }
    }

    /// Loads the CA, certificate and key, and checks that the certificate names `me` (any
    /// cairn identity if `None`: the CLI presents whichever operator certificate it is given).
    pub fn load(
        ca: &Path,
        cert: &Path,
        key: &Path,
        me: Option<Identity>,
        reload_interval: Duration,
    ) -> Result<ClusterTls, TlsError> {
        let me = match me {
            Some(me) => me,
            None => identity_of_file(cert)?,
        };
        let material = build(ca, cert, key, &me)?;
        Ok(ClusterTls {
            inner: Some(Arc::new(Inner {
                files: (ca.to_path_buf(), cert.to_path_buf(), key.to_path_buf()),
                me,
                material: RwLock::new(Arc::new(material)),
                reload_interval,
            })),
        })
    }

    /// True if connections are mutually authenticated.
    pub fn is_secure(&self) -> bool {
        self.inner.is_some()
    }

    fn material(&self) -> Option<Arc<Material>> {
        let inner = self.inner.as_ref()?;
        Some(
            inner
                .material
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }

    /// Re-reads the files now (keeping the old material if they are not usable).
    pub fn reload(&self) -> Result<(), TlsError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let (ca, cert, key) = &inner.files;
        let material = build(ca, cert, key, &inner.me)?;
        *inner
            .material
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(material);
        Ok(())
    }

    /// Reloads whenever the files change, until `shutdown`.
    pub fn spawn_reloader(&self, shutdown: CancellationToken) {
        let Some(inner) = &self.inner else { return };
        let (ca, cert, key) = inner.files.clone();
        let me = self.clone();
        super::watch::spawn(
            "cluster",
            vec![ca, cert, key],
            inner.reload_interval,
            shutdown,
            move || me.reload(),
        );
    }

    /// A lazily connecting channel for `endpoint` (built by the caller with its timeouts),
    /// dialing TLS and checking the server is `expect` when secure.
    pub fn connect_lazy(&self, endpoint: Endpoint, expect: Expect) -> Channel {
        if !self.is_secure() {
            return endpoint.connect_lazy();
        }
        endpoint.connect_with_connector_lazy(Connector {
            tls: self.clone(),
            expect,
        })
    }

    /// Connects now (for the CLI, which wants to report a failure at once).
    pub async fn connect(
        &self,
        endpoint: Endpoint,
        expect: Expect,
    ) -> Result<Channel, tonic::transport::Error> {
        if !self.is_secure() {
            return endpoint.connect().await;
        }
        endpoint
            .connect_with_connector(Connector {
                tls: self.clone(),
                expect,
            })
            .await
    }

    fn client_config(&self, expect: Expect) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let m = self
            .material()
            .ok_or_else(|| TlsError::Identity("cluster TLS is not configured".into()))?;
        let verifier = Arc::new(NodeVerifier {
            inner: m.verifier.clone(),
            expect,
        });
        let mut config = rustls::ClientConfig::builder_with_provider(super::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| rustls_err("TLS versions", e))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(m.chain.clone(), m.key.clone_key())
            .map_err(|e| rustls_err("client certificate", e))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// Accepts connections on `listener` (TLS handshakes run concurrently, bounded by
    /// `handshake_timeout`) and yields them for tonic, until `shutdown`.
    pub fn incoming(
        &self,
        listener: TcpListener,
        handshake_timeout: Duration,
        shutdown: CancellationToken,
    ) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<ClusterConn>> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let tls = self.clone();
        let uncertified = Arc::new(tokio::sync::Semaphore::new(MAX_UNCERTIFIED));
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    a = listener.accept() => a,
                };
                let (tcp, remote) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "cluster: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Small RPC replies (owner fills, Raft) must not wait out Nagle and delayed
                // ACKs (a measured ~40 ms per call).
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY on a cluster connection");
                }
                let Some(material) = tls.material() else {
                    let conn = ClusterConn::Plain(tcp, Some(remote));
                    if tx.send(Ok(conn)).await.is_err() {
                        return;
                    }
                    continue;
                };
                let (tx, uncertified) = (tx.clone(), uncertified.clone());
                tokio::spawn(async move {
                    let acceptor = tokio_rustls::TlsAcceptor::from(material.server.clone());
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => match ClusterConn::tls(stream, remote, &uncertified) {
                            Some(conn) => {
                                let _ = tx.send(Ok(conn)).await;
                            }
                            None => {
                                metrics::counter!(super::metrics::CLUSTER_REFUSED_TOTAL, "service" => "any", "reason" => "too_many_uncertified").increment(1);
                                tracing::info!(peer = %remote, "cluster: too many connections without a certificate; closed");
                            }
                        },
                        outcome => {
                            metrics::counter!(super::metrics::HANDSHAKE_FAILURES_TOTAL, "listener" => "cluster").increment(1);
                            let error = match outcome {
                                Ok(Err(e)) => e.to_string(),
                                _ => "timed out".into(),
                            };
                            tracing::info!(peer = %remote, error, "cluster: TLS handshake refused");
                        }
                    }
                });
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}

fn identity_of_file(cert: &Path) -> Result<Identity, TlsError> {
    pem::certs(cert)?
        .first()
        .and_then(Identity::of_cert)
        .ok_or_else(|| {
            TlsError::Identity(format!(
                "{} carries no cairn identity (a DNS name like alice{} or 1{}); make one with `cairn certs`",
                cert.display(),
                super::identity::OPERATOR_SUFFIX,
                super::identity::NODE_SUFFIX
            ))
        })
}

fn build(ca: &Path, cert: &Path, key: &Path, me: &Identity) -> Result<Material, TlsError> {
    let roots = Arc::new(pem::roots(ca)?);
    let pair = pem::key_pair(cert, key)?;
    let leaf = pair
        .chain
        .first()
        .ok_or_else(|| TlsError::Identity(format!("{} holds no certificate", cert.display())))?;
    match Identity::of_cert(leaf) {
        Some(id) if id == *me => {}
        found => {
            return Err(TlsError::Identity(format!(
                "{} does not name {me} (it must carry the DNS name {}; it names {}); make one with `cairn certs`",
                cert.display(),
                me.dns_name(),
                found.map_or("no cairn identity".into(), |f| f.to_string()),
            )))
        }
    }
    if matches!(me, Identity::Node(_)) {
        record_expiry("cluster", &pair.chain);
    }
    let provider = super::provider();
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::Identity(format!("cluster CA {}: {e}", ca.display())))?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| rustls_err("TLS versions", e))?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(pair.chain.clone(), pair.key.clone_key())
        .map_err(|e| rustls_err(&format!("{} with {}", cert.display(), key.display()), e))?;
    server.alpn_protocols = vec![b"h2".to_vec()];
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
        .build()
        .map_err(|e| TlsError::Identity(format!("cluster CA {}: {e}", ca.display())))?;
    Ok(Material {
        server: Arc::new(server),
        verifier,
        chain: pair.chain,
        key: pair.key,
    })
}

// === impl NodeVerifier ===

/// Checks a node's server certificate: signed by the cluster CA (webpki) and carrying the
/// expected node identity, whatever host name or address was dialed.
#[derive(Debug)]
struct NodeVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    expect: Expect,
}

impl ServerCertVerifier for NodeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let found = Identity::of_cert(end_entity);
        let name = match (found, self.expect) {
            (Some(Identity::Node(id)), Expect::Node(want)) if id == want => Identity::Node(id),
            (Some(Identity::Node(id)), Expect::AnyNode) => Identity::Node(id),
            (found, expect) => {
                return Err(rustls::Error::General(format!(
                    "the peer is {}, not {}",
                    found.map_or("no cairn node".into(), |f| f.to_string()),
                    match expect {
                        Expect::Node(id) => format!("node {id}"),
                        Expect::AnyNode => "a cairn node".into(),
                    }
                )))
            }
        };
        let dns = ServerName::try_from(name.dns_name())
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        self.inner
            .verify_server_cert(end_entity, intermediates, &dns, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

// === impl Connector ===

/// Dials a cluster address over TLS for tonic.
#[derive(Clone)]
struct Connector {
    tls: ClusterTls,
    expect: Expect,
}

type ConnectFuture = Pin<
    Box<
        dyn std::future::Future<
                Output = Result<
                    TokioIo<tokio_rustls::client::TlsStream<TcpStream>>,
                    std::io::Error,
                >,
            > + Send,
    >,
>;

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let (tls, expect) = (self.tls.clone(), self.expect);
        Box::pin(async move {
            let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
            let authority = uri
                .authority()
                .ok_or_else(|| invalid(format!("{uri} has no host:port")))?
                .to_string();
            let config = tls
                .client_config(expect)
                .map_err(|e| invalid(e.to_string()))?;
            let tcp = TcpStream::connect(&authority).await?;
            tcp.set_nodelay(true)?;
            // The name is not what is checked (NodeVerifier checks the identity); it only has
            // to be a valid SNI value.
            let sni = ServerName::try_from("cluster.cairn.internal")
                .map_err(|e| invalid(e.to_string()))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(sni, tcp)
                .await?;
            Ok(TokioIo::new(stream))
        })
    }
}

// === impl ClusterConn ===

/// An accepted cluster connection, TLS or plain.
pub enum ClusterConn {
    /// Plain h2c (insecure mode).
    Plain(TcpStream, Option<SocketAddr>),
    /// Mutual TLS, with what the handshake established.
    Tls(Box<TlsConn>),
}

/// A TLS cluster connection. One without a client certificate can only be told "refused":
/// it is closed after [`UNCERTIFIED_LIFETIME`], and at most [`MAX_UNCERTIFIED`] are open at
/// once, so nobody without a certificate can hold the port's resources.
pub struct TlsConn {
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    peer: ClusterPeer,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// How long a connection without a client certificate stays open.
pub const UNCERTIFIED_LIFETIME: Duration = Duration::from_secs(10);
/// Connections without a client certificate open at once.
pub const MAX_UNCERTIFIED: usize = 64;

impl ClusterConn {
    /// Wraps an accepted TLS stream; `None` if it has no certificate and no slot is free.
    fn tls(
        stream: tokio_rustls::server::TlsStream<TcpStream>,
        remote: SocketAddr,
        uncertified: &Arc<tokio::sync::Semaphore>,
    ) -> Option<ClusterConn> {
        let leaf = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first());
        let peer = ClusterPeer {
            remote: Some(remote),
            identity: leaf.and_then(Identity::of_cert),
            certified: leaf.is_some(),
        };
        let (deadline, slot) = match peer.certified {
            true => (None, None),
            false => (
                Some(Box::pin(tokio::time::sleep(UNCERTIFIED_LIFETIME))),
                Some(uncertified.clone().try_acquire_owned().ok()?),
            ),
        };
        Some(ClusterConn::Tls(Box::new(TlsConn {
            stream,
            peer,
            deadline,
            _slot: slot,
        })))
    }
}

impl TlsConn {
    /// The stream, or an error once an uncertified connection's time is up.
    fn io(
        &mut self,
        cx: &mut Context<'_>,
    ) -> std::io::Result<Pin<&mut tokio_rustls::server::TlsStream<TcpStream>>> {
        if let Some(d) = self.deadline.as_mut() {
            if d.as_mut().poll(cx).is_ready() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "a connection without a client certificate is closed",
                ));
            }
        }
        Ok(Pin::new(&mut self.stream))
    }
}

impl tonic::transport::server::Connected for ClusterConn {
    type ConnectInfo = ClusterPeer;

    fn connect_info(&self) -> ClusterPeer {
        match self {
            ClusterConn::Plain(_, remote) => ClusterPeer {
                remote: *remote,
                identity: None,
                certified: false,
            },
            ClusterConn::Tls(t) => t.peer.clone(),
        }
    }
}

impl AsyncRead for ClusterConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClusterConn::Plain(s, _) => Pin::new(s).poll_read(cx, buf),
            ClusterConn::Tls(t) => match t.io(cx) {
                Ok(io) => io.poll_read(cx, buf),
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

impl AsyncWrite for ClusterConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ClusterConn::Plain(s, _) => Pin::new(s).poll_write(cx, buf),
            ClusterConn::Tls(t) => match t.io(cx) {
                Ok(io) => io.poll_write(cx, buf),
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ClusterConn::Plain(s, _) => Pin::new(s).poll_write_vectored(cx, bufs),
            ClusterConn::Tls(t) => match t.io(cx) {
                Ok(io) => io.poll_write_vectored(cx, bufs),
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClusterConn::Plain(s, _) => s.is_write_vectored(),
            ClusterConn::Tls(t) => t.stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClusterConn::Plain(s, _) => Pin::new(s).poll_flush(cx),
            ClusterConn::Tls(t) => match t.io(cx) {
                Ok(io) => io.poll_flush(cx),
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClusterConn::Plain(s, _) => Pin::new(s).poll_shutdown(cx),
            ClusterConn::Tls(t) => match t.io(cx) {
                Ok(io) => io.poll_shutdown(cx),
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

/// Two handles are equal when they share the same loaded material (or are both insecure), so
/// settings structs that carry one can still be compared.
impl PartialEq for ClusterTls {
    fn eq(&self, other: &Self) -> bool {
        match (&self.inner, &other.inner) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for ClusterTls {}
