//! cairn end-to-end tests: one test binary, one module per theme.
//!
//! Every test starts its own `cairn-node` process(es) on loopback ports in front of a fixture
//! upstream (see `cairn_tests::fixture`) serving the shared corpus, and judges the answers with the
//! real `go` command where that is how users would notice. Tests that need `go` print
//! `SKIPPED: go not found …` when it is missing, unless `CAIRN_REQUIRE_GO=1`.
//!
//! The `cluster` module runs three- and four-node clusters (`cairn_tests::cluster::TestCluster`)
//! and drives the `cairn` operator CLI, which `cargo build --bins` builds next to `cairn-node`.
//! Only those: `cargo test -p cairn-tests --test it cluster -- --test-threads=1`.
//!
//! The `observability` module runs the real Prometheus server (and `promtool`) against a cluster
//! with the chart's alert rules; it prints `SKIPPED: …` without them unless `CAIRN_REQUIRE_TOOLS=1`.
//!
//! Run: `cargo build --bins && CAIRN_REQUIRE_GO=1 cargo test -p cairn-tests -- --nocapture`.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

mod common;
mod harness;

mod access;
mod backup;
mod bounded;
mod chart;
mod cluster;
mod crash;
mod direct;
mod direct_cairn;
mod disk;
mod egress;
mod fallthrough;
mod garbage;
mod hostile;
mod http;
mod https;
mod list_ttl;
mod multiregion;
mod observability;
mod operator;
mod prefetch;
mod protocol;
mod routing;
mod shapes;
mod sigterm;
mod single_flight;
mod ssrf;
mod stale;
mod sumdb;
mod verify;
