//! cairn-node: a clustered Go module mirror.
//!
//! Requests enter through [`http`] (the GOPROXY and `/sumdb/` routes, health and metrics), are
//! answered by [`mirror`] from the replicated metadata in [`store::meta`] and the content-addressed
//! blobs in [`store::blob`], and misses are filled from [`upstream`]. Metadata changes go through
//! [`raft`] (openraft over sled). [`module`] and [`modzip`] hold the pure Go rules. [`access`]
//! decides who may read what through the GOPROXY port.

pub mod access;
pub mod admin;
pub mod auditlog;
pub mod backup;
pub mod cluster;
pub mod config;
pub mod direct;
pub mod disk;
pub mod egress;
pub mod http;
pub mod metrics;
pub mod mirror;
pub mod module;
pub mod modzip;
pub mod node;
pub mod policy;
pub mod raft;
pub mod routing;
pub mod shutdown;
pub mod store;
pub mod sumdb;
pub mod tls;
pub mod upstream;

pub use config::Config;
pub use node::Node;
