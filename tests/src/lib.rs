//! cairn end-to-end test harness.
//!
//! Everything here exists to test `cairn-node` the way users meet it: as a real process on loopback
//! ports, in front of an upstream we control, judged by the real `go` command.
//!
//! - [`corpus`]: generates GOPROXY-layout module trees (deterministic zips, expected `h1:` hashes).
//! - [`fixture`]: an HTTP upstream serving such a tree that can be slowed, broken or killed, and
//!   that logs every request it sees.
//! - [`node`]: a `cairn-node` process handle (start, restart, kill -9, SIGTERM, logs, metrics).
//! - [`cluster`]: several nodes forming one Raft cluster (leader, convergence, kill -9, SIGSTOP,
//!   restart, blob sets per data directory) and the `cairn` CLI.
//! - [`lb`]: a round-robin TCP load balancer in front of a cluster.
//! - [`gocmd`]: the hermetic `go` command (private caches, explicit `GOPROXY`, no network), also in
//!   its own direct mode against loopback git repositories.
//! - [`gitrepo`]: deterministic git repositories (fixed dates and identities) built with `git`.
//! - [`gitcorpus`]: the private repositories the `direct` source is tested with, and what the go
//!   command should make of them.
//! - [`githttp`]: a smart-HTTP git server (`git http-backend`) that logs, fails, dies, asks for
//!   credentials and answers `?go-get=1` on demand.
//! - [`prometheus`]: the real Prometheus server scraping a cluster with the shipped alert rules
//!   (hold times shortened), and `promtool`.
//! - [`raw`]: raw HTTP/1.1 over a `TcpStream`, for requests a client library would normalize.
//! - [`metrics`]: a small Prometheus text parser.
//! - [`netns`]: emulated regions (network namespaces, a link emulator with delay and cuts) for
//!   multi-region clusters.
//! - [`tls`]: a private CA that exists only in a file, for HTTPS test servers.
//! - [`tunnel`]: an HTTP CONNECT proxy that records where it was asked to go.
//! - [`wait`]: `wait_until` with deadlines scaled by `CAIRN_TEST_PATIENCE_MS`.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

pub mod cluster;
pub mod corpus;
pub mod fixture;
pub mod gitcorpus;
pub mod githttp;
pub mod gitrepo;
pub mod gocmd;
pub mod h1;
pub mod lb;
pub mod metrics;
pub mod netns;
pub mod node;
pub mod pki;
pub mod prometheus;
pub mod raw;
pub mod serve;
pub mod stampede;
pub mod sumdb;
pub mod tls;
pub mod tunnel;
pub mod wait;
