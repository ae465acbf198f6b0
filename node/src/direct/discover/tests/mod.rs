//! Tests of discovery. This file holds the harness: a scripted HTTP server standing in for
//! `corp.example` and constructors for [`Discovery`]; the tests are grouped by step.

mod fetch;
mod guard;
mod parse;
mod rules;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use super::*;
use crate::direct::config::DirectConfig;
use crate::direct::credentials::Credentials;

/// What a test server answers: (status, extra headers, body).
type Reply = (u16, Vec<(&'static str, String)>, String);

/// One request the test server saw.
#[derive(Debug, Clone)]
struct Seen {
    target: String,
    auth: Option<String>,
}

/// A hyper server on 127.0.0.1:0 answering every request through a closure.
struct PageServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl PageServer {
    async fn start(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> PageServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(handler);
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, log) = (Arc::clone(&handler), Arc::clone(&log));
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let target = req.uri().to_string();
                    let auth = req
                        .headers()
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_owned());
                    log.lock().unwrap().push(Seen {
                        target: target.clone(),
                        auth,
                    });
                    let (status, headers, body) = handler(&target);
                    let mut resp = hyper::Response::builder().status(status);
                    for (k, v) in headers {
                        resp = resp.header(k, v);
                    }
                    let resp = resp.body(Full::new(Bytes::from(body))).unwrap();
                    async move { Ok::<_, std::convert::Infallible>(resp) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc),
                );
            }
        });
        PageServer { addr, seen }
    }

    fn targets(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.target.clone())
            .collect()
    }
}

fn page(metas: &[&str]) -> String {
    let tags: String = metas
        .iter()
        .map(|c| format!("<meta name=\"go-import\" content=\"{c}\">\n"))
        .collect();
    format!("<!DOCTYPE html>\n<html><head>\n{tags}</head><body>hi</body></html>")
}

fn ok(body: String) -> Reply {
    (200, Vec::new(), body)
}

/// A discovery whose `corp.example` is the test server, reached over plain http (insecure).
fn discovery_with(server: &PageServer, extra: &str, creds: Credentials) -> Discovery {
    let cfg: DirectConfig =
        toml::from_str(&format!("insecure = \"corp.example\"\n{extra}")).unwrap();
    assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
    let mut opts = DiscoveryOptions::new(&cfg, Duration::from_secs(5));
    opts.resolve = vec![("corp.example".to_owned(), server.addr)];
    opts.system_proxy = false;
    Discovery::with_options(&cfg, Arc::new(creds), opts).unwrap()
}

fn discovery(server: &PageServer) -> Discovery {
    discovery_with(server, "", Credentials::none())
}

/// A discovery with no network use expected.
fn offline(extra: &str) -> Discovery {
    let cfg: DirectConfig = toml::from_str(extra).unwrap();
    assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
    Discovery::new(
        &cfg,
        Arc::new(Credentials::none()),
        Duration::from_secs(1),
        &crate::egress::Egress::default(),
    )
    .unwrap()
}

fn root(root: &str, url: &str, subdir: &str) -> RepoRoot {
    RepoRoot {
        root: root.to_owned(),
        url: url.to_owned(),
        subdir: subdir.to_owned(),
    }
}
