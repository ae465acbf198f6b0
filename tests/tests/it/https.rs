//! The GOPROXY port's own security (issue 10): HTTPS with a certificate from a private CA that
//! the go command trusts through `SSL_CERT_FILE`, replaced on disk while downloads run (none
//! fails, the new certificate is served afterwards), TLS 1.2 and 1.3 with ALPN, a plain-HTTP
//! second address; and slow-header clients that cannot starve a normal one.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_tests::corpus::m;
use cairn_tests::gocmd::{go, GoEnv};
use cairn_tests::node::{CairnNode, NodeOptions};
use cairn_tests::pki::ClusterPki;
use cairn_tests::wait::{patience, wait_until};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{assert_maps_eq, corpus, corpus_fixture, expected_sums, sums, FAST_UPSTREAM};

const NO_SUMDB: &str = "[sumdb]\ndatabases = []\n";

fn picks() -> Vec<String> {
    [(m::SIMPLE, "v1.0.0"), (m::UPPER, m::UPPER_RC)]
        .iter()
        .map(|(m, v)| format!("{m}@{v}"))
        .collect()
}

/// The leaf certificate `addr` serves, and the ALPN protocol it chose, with a client trusting
/// `ca` limited to `version`.
async fn served(
    addr: SocketAddr,
    ca: &Path,
    version: &'static rustls::SupportedProtocolVersion,
) -> anyhow::Result<(Vec<u8>, Option<Vec<u8>>)> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca)? {
        roots.add(c?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await?;
    let (_, conn) = tls.get_ref();
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    Ok((leaf, conn.alpn_protocol().map(<[u8]>::to_vec)))
}

fn leaf_of(pem: &Path) -> Vec<u8> {
    CertificateDer::pem_file_iter(pem)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// Replaces `dest` with `src` the way a secret update does: write aside, then rename.
fn replace(src: &Path, dest: &Path) {
    let tmp = dest.with_extension("new");
    std::fs::copy(src, &tmp).unwrap();
    std::fs::rename(&tmp, dest).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r10_go_downloads_over_https_while_the_certificate_is_replaced() {
    let Some(go) = go("r10_go_downloads_over_https_while_the_certificate_is_replaced") else {
        return;
    };
    let fx = corpus_fixture().await;
    let pki = ClusterPki::new().unwrap();
    pki.certs(&["server", "127.0.0.1", "localhost"]).unwrap();
    let serving = tempfile::tempdir().unwrap();
    let (cert, key) = (
        serving.path().join("tls.crt"),
        serving.path().join("tls.key"),
    );
    std::fs::copy(pki.dir().join("https.pem"), &cert).unwrap();
    std::fs::copy(pki.dir().join("https-key.pem"), &key).unwrap();
    let config = format!(
        "{FAST_UPSTREAM}{NO_SUMDB}[tls]\ncert_file = {:?}\nkey_file = {:?}\nreload_interval_secs = 1\nplain_listen = \"127.0.0.1:0\"\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    let node = CairnNode::start(
        NodeOptions::new(&fx.url())
            .config(&config)
            .https(&pki.https_ca()),
    )
    .await
    .unwrap_or_else(|e| panic!("starting cairn-node: {e:#}"));
    let addr = node.addrs().http;

    // TLS 1.3 and 1.2 both work and h2 is offered by ALPN.
    let first = leaf_of(&pki.dir().join("https.pem"));
    for v in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let (leaf, alpn) = served(addr, &pki.https_ca(), v).await.unwrap();
        assert_eq!(leaf, first, "the configured certificate is served");
        assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "h2 is negotiated");
    }
    // The plain-HTTP second address serves too (for clients still migrating).
    let addrs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(node.data_dir().join("listen-addrs.json")).unwrap())
            .unwrap();
    let plain = addrs["plain_http"]
        .as_str()
        .expect("a plain address")
        .to_string();
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{plain}/{}/@v/list", m::SIMPLE))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "plain HTTP on tls.plain_listen");

    // A download loop over HTTPS, trusting the CA only through SSL_CERT_FILE.
    let want: std::collections::BTreeMap<_, _> = {
        let all = expected_sums(corpus());
        picks()
            .into_iter()
            .map(|k| (k.clone(), all[&k].clone()))
            .collect()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let ca = pki.https_ca().display().to_string();
    let url = node.url();
    let worker = {
        let (stop, ok, failures, want) = (stop.clone(), ok.clone(), failures.clone(), want.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let env = GoEnv::new(&go, &url)
                    .unwrap()
                    .with_env("SSL_CERT_FILE", &ca);
                match env.mod_download_ok(&picks()).await {
                    Ok(got) if sums(&got) == want => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(got) => failures
                        .lock()
                        .unwrap()
                        .push(format!("wrong hashes: {:?}", sums(&got))),
                    Err(e) => failures.lock().unwrap().push(format!("{e:#}")),
                }
            }
        })
    };
    let downloads = |n: usize| {
        let ok = ok.clone();
        wait_until(
            format!("{n} downloads over HTTPS"),
            patience(20.0),
            move || {
                let ok = ok.clone();
                async move { ok.load(Ordering::Relaxed) >= n }
            },
        )
    };
    downloads(1).await.unwrap();

    // Rotate: a new certificate from the same CA replaces the files while downloads run.
    let second = pki.same_ca().unwrap();
    second.certs(&["server", "127.0.0.1", "localhost"]).unwrap();
    let next = leaf_of(&second.dir().join("https.pem"));
    assert_ne!(next, first);
    replace(&second.dir().join("https-key.pem"), &key);
    replace(&second.dir().join("https.pem"), &cert);
    let rotated_at = ok.load(Ordering::Relaxed);
    wait_until("the new certificate to be served", patience(6.0), || {
        let (ca, next) = (pki.https_ca(), next.clone());
        async move {
            served(addr, &ca, &rustls::version::TLS13)
                .await
                .is_ok_and(|(leaf, _)| leaf == next)
        }
    })
    .await
    .unwrap();
    downloads(rotated_at + 2).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    worker.await.unwrap();
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "downloads failed across the rotation: {failures:#?}"
    );
    let metrics = node.metrics().await.unwrap();
    assert!(
        metrics.sum(
            "cairn_tls_reloads_total",
            &[("listener", "https"), ("outcome", "ok")]
        ) >= 1.0,
        "the reload is counted"
    );
    // And the go command's view of a download after the rotation.
    let env = GoEnv::new(&go_again(), &node.url())
        .unwrap()
        .with_env("SSL_CERT_FILE", &pki.https_ca().display().to_string());
    assert_maps_eq(
        "after the rotation",
        &want,
        &sums(&env.mod_download_ok(&picks()).await.unwrap()),
    );
}

fn go_again() -> cairn_tests::gocmd::Go {
    go("r10_go_downloads_over_https_while_the_certificate_is_replaced")
        .expect("go was found before")
}

/// Opens a connection from `source` (another loopback address) and sends half a request line.
async fn slow_client(source: &str, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind(format!("{source}:0").parse().expect("an address"))?;
    let mut s = sock.connect(to).await?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHo").await?;
    Ok(s)
}

/// True once the server closed `s` (EOF or reset), within `limit`.
async fn closed_within(s: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(limit, s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r10_slow_header_clients_do_not_starve_a_normal_client() {
    let fx = corpus_fixture().await;
    let config = format!(
        "{FAST_UPSTREAM}{NO_SUMDB}[http]\nmax_connections = 64\nmax_connections_per_client = 16\nheader_read_timeout_secs = 2\n"
    );
    let node = CairnNode::start(NodeOptions::new(&fx.url()).config(&config))
        .await
        .unwrap_or_else(|e| panic!("starting cairn-node: {e:#}"));
    let addr = node.addrs().http;
    // 100 connections from 127.0.0.2 that never finish their request head: more than the
    // whole server's connection limit.
    let mut slow = Vec::new();
    for _ in 0..100 {
        slow.push(slow_client("127.0.0.2", addr).await.unwrap());
    }
    // A normal client still gets its answers, each within a second.
    for i in 0..5 {
        let start = Instant::now();
        let r = node.get(&format!("/{}/@v/list", m::SIMPLE)).await.unwrap();
        assert_eq!(r.status, 200);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "request {i} took {:?}",
            start.elapsed()
        );
    }
    // The attacker's connections past its 16 were closed at once; the 16 are closed by the
    // header timeout.
    let mut early = 0;
    for s in &mut slow {
        if closed_within(s, Duration::from_millis(200)).await {
            early += 1;
        }
    }
    assert!(
        early >= 84,
        "only {early} of 100 slow connections were refused at once"
    );
    for s in &mut slow {
        assert!(
            closed_within(s, patience(2.0)).await,
            "a slow connection outlived the header timeout"
        );
    }
    let metrics = node.metrics().await.unwrap();
    let refused = |reason| {
        metrics.sum(
            "cairn_http_connections_refused_total",
            &[("reason", reason)],
        )
    };
    assert!(
        refused("per_client_limit") >= 84.0,
        "{}",
        metrics.dump("cairn_http_connections")
    );
}
