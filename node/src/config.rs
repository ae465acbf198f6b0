//! One typed, validated configuration, merged from a TOML file, `CAIRN_*` environment variables
//! and command-line flags (flag > environment > file > default).
//!
//! Every top-level key has a flag (`--data-dir`) and an environment variable (`CAIRN_DATA_DIR`).
//! Keys inside sections are set in the file or through `CAIRN_<SECTION>__<KEY>` variables
//! (`CAIRN_CACHE__LIST_TTL_SECS=30`). [`Config::load`] reports every problem at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::{Deserialize, Serialize};

use crate::direct::config::DirectConfig;
use crate::egress::{Egress, EgressSettings};
use crate::raft::RaftSettings;
use crate::routing::RouteRule;
use crate::upstream::UpstreamSettings;

/// Command-line flags of `cairn-node`. Each also reads a `CAIRN_*` environment variable.
#[derive(Debug, Default, Parser)]
#[command(
    name = "cairn-node",
    version,
    about = "cairn-node: a highly available Go module mirror (GOPROXY server)"
)]
pub struct Flags {
    /// TOML configuration file; flags and CAIRN_* variables override its keys.
    #[arg(long, env = "CAIRN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address for GOPROXY HTTP traffic, /healthz, /readyz and /metrics [default: 0.0.0.0:8080].
    #[arg(long, env = "CAIRN_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory for metadata (Raft log, state) and module blobs [default: ./cairn-data].
    #[arg(long, env = "CAIRN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Upstream sources in GOPROXY syntax: URLs, file:// trees, `off`, `direct`, joined by `,`
    /// (fall through on not-found) or `|` (fall through on any error)
    /// [default: https://proxy.golang.org].
    // The doc comment is also the --help text, where a bare URL reads best.
    #[allow(rustdoc::bare_urls)]
    #[arg(long, env = "CAIRN_UPSTREAM", value_name = "LIST")]
    pub upstream: Option<String>,
    /// This node's Raft id, a positive integer that never changes [default: 1].
    #[arg(long, env = "CAIRN_NODE_ID", value_name = "N")]
    pub node_id: Option<u64>,
    /// Address for gRPC between nodes and from the `cairn` CLI [default: 127.0.0.1:9090].
    #[arg(long, env = "CAIRN_CLUSTER_LISTEN", value_name = "ADDR")]
    pub cluster_listen: Option<String>,
    /// Static bootstrap membership `ID=HOST:PORT,...`, the same on every node
    /// [default: this node alone].
    #[arg(long, env = "CAIRN_PEERS", value_name = "ID=ADDR,...")]
    pub peers: Option<String>,
    /// Log format: `human` or `json` [default: human].
    #[arg(long, env = "CAIRN_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Log filter in RUST_LOG syntax, e.g. `info` or `cairn_node=debug` [default: info,openraft=warn,sled=warn].
    #[arg(long, env = "CAIRN_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// HTTP status answered when the upstream failed (not "not found") [default: 502].
    #[arg(long, env = "CAIRN_UPSTREAM_ERROR_STATUS", value_name = "CODE")]
    pub upstream_error_status: Option<u16>,
    /// Seconds to let in-flight responses finish after SIGTERM [default: 30].
    #[arg(long, env = "CAIRN_SHUTDOWN_GRACE_SECS", value_name = "SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Try every configured upstream, checksum database and direct host once (with the node's
    /// trust store and proxies), print what works and how to fix what does not, and exit:
    /// status 0 if everything worked, 1 otherwise. Starts no server.
    #[arg(long)]
    pub check_upstream: bool,
}

/// The configuration file's shape; every key is optional.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// See [`Flags::listen`].
    pub listen: Option<String>,
    /// See [`Flags::data_dir`].
    pub data_dir: Option<PathBuf>,
    /// See [`Flags::upstream`].
    pub upstream: Option<String>,
    /// See [`Flags::node_id`].
    pub node_id: Option<u64>,
    /// See [`Flags::cluster_listen`].
    pub cluster_listen: Option<String>,
    /// See [`Flags::peers`].
    pub peers: Option<String>,
    /// See [`Flags::log_format`].
    pub log_format: Option<String>,
    /// See [`Flags::log_level`].
    pub log_level: Option<String>,
    /// See [`Flags::upstream_error_status`].
    pub upstream_error_status: Option<u16>,
    /// See [`Flags::shutdown_grace_secs`].
    pub shutdown_grace_secs: Option<u64>,
    /// Freshness of mutable answers (lists, latest, not-found).
    pub cache: CacheSettings,
    /// Size limits on what the upstream may send.
    pub limits: Limits,
    /// HTTP server limits.
    pub http: HttpSettings,
    /// Upstream client timeouts, retries, concurrency and breaker.
    pub upstream_http: UpstreamSettings,
    /// Checksum databases proxied under `/sumdb/`.
    pub sumdb: SumdbSettings,
    /// Raft timing and log compaction.
    pub raft: RaftSettings,
    /// Blob replication, repair and request routing between nodes.
    pub cluster: ClusterSettings,
    /// Routing rules (`[[routes]]`), tried in order before the default `upstream`.
    pub routes: Vec<RouteRule>,
    /// Fetching modules straight from git (`direct` in an upstream list).
    pub direct: DirectConfig,
    /// Trust store, extra CAs and proxies for every outbound connection.
    pub egress: EgressSettings,
    /// HTTPS for the GOPROXY port.
    pub tls: crate::tls::TlsSettings,
    /// The audit trail: one JSON line per module request and per administrative action.
    pub audit: crate::auditlog::AuditSettings,
    /// Identities and per-path access on the GOPROXY port.
    pub access: crate::access::AccessSettings,
    /// Disk watermarks, the blob budget and eviction (issue 12).
    pub disk: crate::disk::DiskSettings,
    /// How denied and purged versions are answered (issue 12).
    pub policy: crate::policy::PolicySettings,
}

/// Freshness of mutable answers.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// A cached `@v/list` older than this is refreshed in the background (still served meanwhile).
    pub list_ttl_secs: u64,
    /// A cached `@latest` older than this is refreshed in the background.
    pub latest_ttl_secs: u64,
    /// How long a not-found answer from the upstream is remembered (per node, in memory).
    pub negative_ttl_secs: u64,
    /// Most not-found answers remembered at once (older ones are dropped first).
    pub negative_max_entries: usize,
    /// When a zip's sha256 is checked while it is served: `changed` (default: whenever the file
    /// changed since it was last verified — any write, even one that keeps the size, changes its
    /// ctime), `always` (every response), or `never`. A failed check aborts the response and
    /// quarantines the copy. The periodic scrub covers silent media corruption.
    pub verify_on_read: VerifyPolicy,
    /// Memory budget (bytes) of the hot-blob cache: zips up to 1 MiB (and at most a quarter of
    /// the budget) are kept in memory after their first hit, read once from disk and checked
    /// against their sha256, so later hits cost no disk access; an entry goes when its blob is
    /// evicted, quarantined or purged. 0 turns it off. Unused with `verify_on_read = always`.
    pub hot_blob_bytes: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            list_ttl_secs: 60,
            latest_ttl_secs: 60,
            negative_ttl_secs: 60,
            negative_max_entries: 100_000,
            verify_on_read: VerifyPolicy::Changed,
            hot_blob_bytes: 256 << 20,
        }
    }
}

/// When blobs are re-hashed while being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyPolicy {
    /// Whenever the file changed since its last successful verification.
    Changed,
    /// On every response.
    Always,
    /// Never (trust the disk; only the scrub checks).
    Never,
}

/// Size limits on upstream answers. Zip limits default to the go command's own.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest module zip accepted (bytes).
    pub max_zip_bytes: u64,
    /// Largest total uncompressed size of a zip's files (bytes).
    pub max_uncompressed_bytes: u64,
    /// Largest go.mod accepted (bytes).
    pub max_mod_bytes: u64,
    /// Largest `.info`/`@latest` JSON accepted (bytes).
    pub max_info_bytes: u64,
    /// Largest `@v/list` accepted (bytes).
    pub max_list_bytes: u64,
    /// Largest checksum-database response accepted (bytes).
    pub max_sumdb_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_zip_bytes: 500 << 20,
            max_uncompressed_bytes: 500 << 20,
            max_mod_bytes: 16 << 20,
            max_info_bytes: 1 << 20,
            max_list_bytes: 16 << 20,
            max_sumdb_bytes: 16 << 20,
        }
    }
}

/// HTTP server limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Most client connections served at once; further connections wait in the accept queue.
    pub max_connections: usize,
    /// Longest request path accepted (bytes); longer paths get 414.
    pub max_path_bytes: usize,
    /// A client must send a complete request head within this many seconds of connecting (or
    /// of its previous response), or the connection is closed: slow clients cannot hold
    /// connection slots.
    pub header_read_timeout_secs: u64,
    /// Most connections open at once from one client IP address (0 = no limit); further ones
    /// are closed at once.
    pub max_connections_per_client: usize,
    /// A connection on which no request started for this many seconds is closed gracefully
    /// (in-flight responses finish), so idle connections cannot hold slots forever.
    pub idle_timeout_secs: u64,
    /// Verified zips go from the page cache to plain HTTP/1 sockets with `sendfile(2)` (no
    /// copy through memory). Off: they are read and written like on HTTPS and HTTP/2.
    pub sendfile: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_path_bytes: 2048,
            header_read_timeout_secs: 10,
            max_connections_per_client: 512,
            idle_timeout_secs: 120,
            sendfile: true,
        }
    }
}

/// Checksum databases proxied under `/sumdb/<name>/`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SumdbSettings {
    /// The databases; `supported` answers 200 only for these names.
    pub databases: Vec<SumdbDatabase>,
    /// A cached `latest` tree head older than this is fetched again.
    pub latest_ttl_secs: u64,
    /// How often versions stored unverified are checked again (0 = never).
    pub recheck_interval_secs: u64,
}

impl Default for SumdbSettings {
    fn default() -> Self {
        Self {
            databases: vec![SumdbDatabase {
                name: "sum.golang.org".into(),
                url: None,
                key: None,
                verify: None,
            }],
            latest_ttl_secs: 60,
            recheck_interval_secs: 300,
        }
    }
}

/// One proxied checksum database.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SumdbDatabase {
    /// The name clients use (`sum.golang.org`).
    pub name: String,
    /// Where to reach it (`https://sum.golang.org`). Unset: like the go command, through the
    /// first upstream proxy that answers `<proxy>/sumdb/<name>/supported` with 200, else at
    /// `https://<name>`.
    #[serde(default)]
    pub url: Option<String>,
    /// Its verifier key (`<name>+<hash>+<base64 key>`, the `GOSUMDB` form). Built in for
    /// `sum.golang.org`; required for any other database whose `verify` is not `off`.
    #[serde(default)]
    pub key: Option<String>,
    /// How module versions are checked against it before they are stored: `require`,
    /// `best-effort` or `off` (default: `require` when the key is known, else `off`).
    #[serde(default)]
    pub verify: Option<VerifyMode>,
}

/// The verifier key of `sum.golang.org`, as built into the go command.
pub const SUM_GOLANG_ORG_KEY: &str =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

impl SumdbDatabase {
    /// The verifier key: the configured one, else the built-in one for `sum.golang.org`.
    pub fn verifier_key(&self) -> Option<&str> {
        match (&self.key, self.name.as_str()) {
            (Some(k), _) => Some(k),
            (None, "sum.golang.org") => Some(SUM_GOLANG_ORG_KEY),
            (None, _) => None,
        }
    }

    /// The effective verification mode (see [`Self::verify`]).
    pub fn mode(&self) -> VerifyMode {
        match (self.verify, self.verifier_key()) {
            (Some(m), _) => m,
            (None, Some(_)) => VerifyMode::Require,
            (None, None) => VerifyMode::Off,
        }
    }
}

/// How a checksum database is used to verify module versions before they are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyMode {
    /// Nothing is stored unless the database vouches for it; an unreachable database fails the
    /// request (fail closed).
    Require,
    /// As `require`, but when the database cannot be reached (or has not logged the version
    /// yet) the version is stored unverified, checked again in the background and
    /// quarantined if the database then disagrees.
    BestEffort,
    /// No verification against this database.
    Off,
}

/// Blob replication, repair and request routing between nodes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// A new zip is acknowledged only once it is fsynced on this many nodes (capped by the
    /// number of live members).
    pub min_copies: usize,
    /// Besides the `min_copies` copies (placed in the filling node's region first), a new zip
    /// is acknowledged only once it is fsynced on a node of this many other regions (capped by
    /// the regions with a live member). 0 = the other regions get it asynchronously (repair).
    pub min_copies_remote_regions: usize,
    /// How long a fill waits for peers to confirm their copies.
    pub replicate_timeout_secs: u64,
    /// Route each miss to the version's owner node (rendezvous hashing over live members), so
    /// concurrent misses anywhere in the cluster cause one upstream fetch.
    pub owner_routing: bool,
    /// How often each peer is probed for liveness.
    pub liveness_interval_ms: u64,
    /// Consecutive failed probes after which a peer counts as down.
    pub liveness_failures: u32,
    /// How many times a write may be forwarded between nodes looking for the leader.
    pub forward_hops: u32,
    /// How often the repair worker retries blobs missing on this node.
    pub repair_interval_secs: u64,
    /// Longest delay between retries of one missing blob (exponential backoff).
    pub repair_backoff_max_secs: u64,
    /// How often every local blob is re-hashed and compared with its address (0 = never).
    pub scrub_interval_secs: u64,
    /// Bytes per chunk in blob transfers between nodes.
    pub transfer_chunk_bytes: usize,
    /// Blob transfers (sending plus receiving) running at once on this node.
    pub max_concurrent_transfers: usize,
    /// The cluster CA (PEM): with `cert_file` and `key_file`, turns on mutual TLS for the
    /// cluster port and every client of it.
    pub ca_file: Option<PathBuf>,
    /// This node's certificate chain (PEM), naming `<node_id>.node.cairn.internal`.
    pub cert_file: Option<PathBuf>,
    /// This node's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Run a multi-node cluster (or change membership) without mutual TLS: anyone who reaches
    /// the cluster port can then act as a node or an operator. Logged as a warning at start.
    pub insecure: bool,
    /// The region this node runs in (e.g. `eu-west`); empty = no region. Recorded in the
    /// membership: owners of misses are chosen within the asking node's region, and voter
    /// placement is checked so that losing one region keeps a quorum.
    pub region: String,
    /// The zone (failure domain inside the region) this node runs in; empty = none.
    pub zone: String,
    /// The loaded TLS material (filled by the node at start from the three files).
    #[serde(skip)]
    pub tls: crate::tls::ClusterTls,
}

impl ClusterSettings {
    /// The certificate files of the cluster port.
    pub fn tls_files(&self) -> crate::tls::ClusterTlsSettings {
        crate::tls::ClusterTlsSettings {
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
        }
    }
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            min_copies: 2,
            min_copies_remote_regions: 0,
            replicate_timeout_secs: 120,
            owner_routing: true,
            liveness_interval_ms: 1000,
            liveness_failures: 3,
            forward_hops: 3,
            repair_interval_secs: 2,
            repair_backoff_max_secs: 60,
            scrub_interval_secs: 24 * 3600,
            transfer_chunk_bytes: 256 * 1024,
            max_concurrent_transfers: 8,
            ca_file: None,
            cert_file: None,
            key_file: None,
            insecure: false,
            region: String::new(),
            zone: String::new(),
            tls: crate::tls::ClusterTls::default(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// The validated configuration the node runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// GOPROXY HTTP listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Upstream list in GOPROXY syntax.
    pub upstream: String,
    /// This node's Raft id.
    pub node_id: u64,
    /// gRPC listen address.
    pub cluster_listen: SocketAddr,
    /// Bootstrap membership (id → cluster address); contains at least this node.
    pub peers: BTreeMap<u64, String>,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
    /// Status for upstream failures.
    pub upstream_error_status: u16,
    /// Grace period after SIGTERM.
    pub shutdown_grace: std::time::Duration,
    /// See [`CacheSettings`].
    pub cache: CacheSettings,
    /// See [`Limits`].
    pub limits: Limits,
    /// See [`HttpSettings`].
    pub http: HttpSettings,
    /// See [`UpstreamSettings`].
    pub upstream_http: UpstreamSettings,
    /// See [`SumdbSettings`].
    pub sumdb: SumdbSettings,
    /// See [`RaftSettings`].
    pub raft: RaftSettings,
    /// See [`ClusterSettings`].
    pub cluster: ClusterSettings,
    /// Routing rules, first match wins; the default `upstream` is the implicit last rule.
    pub routes: Vec<RouteRule>,
    /// See [`DirectConfig`].
    pub direct: DirectConfig,
    /// Trust and proxies for every outbound client, built from `[egress]` and the environment
    /// (also in `upstream_http.egress`).
    pub egress: Egress,
    /// HTTPS for the GOPROXY port.
    pub tls: crate::tls::TlsSettings,
    /// The extra plain-HTTP address (`tls.plain_listen`).
    pub plain_listen: Option<SocketAddr>,
    /// See [`RawConfig::audit`].
    pub audit: crate::auditlog::AuditSettings,
    /// See [`RawConfig::access`].
    pub access: crate::access::AccessSettings,
    /// See [`RawConfig::disk`].
    pub disk: crate::disk::DiskPolicy,
    /// See [`RawConfig::policy`].
    pub policy: crate::policy::PolicySettings,
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The config file or an environment variable does not parse.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// A key has a bad value.
    #[error("invalid value for {key}: {reason}")]
    Invalid {
        /// The key (`listen`, `cache.list_ttl_secs`).
        key: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },
}

/// Every problem found while loading, reported together.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// Source of environment variables (a trait so tests can pass a map).
pub trait Env {
    /// All variables as (name, value) pairs.
    fn vars(&self) -> Vec<(String, String)>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn vars(&self) -> Vec<(String, String)> {
        std::env::vars().collect()
    }
}

impl Env for BTreeMap<String, String> {
    fn vars(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Default log filter: cairn at info, the chatty Raft and storage crates at warn.
pub const DEFAULT_LOG_FILTER: &str = "info,openraft=warn,sled=warn";

/// Top-level keys that clap already reads from their own `CAIRN_*` variable.
const FLAG_KEYS: &[&str] = &[
    "config",
    "listen",
    "data_dir",
    "upstream",
    "node_id",
    "cluster_listen",
    "peers",
    "log_format",
    "log_level",
    "upstream_error_status",
    "shutdown_grace_secs",
];

impl Config {
    /// Loads file + environment + flags and validates the result.
    pub fn load(flags: &Flags, env: &dyn Env) -> Result<Config, ConfigErrors> {
        let raw = read_raw(flags.config.as_deref(), env).map_err(|e| ConfigErrors(vec![e]))?;
        let raw = apply_flags(raw, flags);
        raw.validate_with_env(env)
    }
}

/// Reads the file (if any) and applies `CAIRN_<SECTION>__<KEY>` variables on top.
fn read_raw(path: Option<&Path>, env: &dyn Env) -> Result<RawConfig, ConfigError> {
    let mut table = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                path: p.to_path_buf(),
                reason: e.to_string(),
            })?;
            text.parse::<toml::Table>()
                .map_err(|e| ConfigError::Parse(format!("{}: {e}", p.display())))?
        }
        None => toml::Table::new(),
    };
    for (name, value) in env.vars() {
        let Some(key) = name.strip_prefix("CAIRN_") else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        if FLAG_KEYS.contains(&key.as_str()) || !key.contains("__") {
            continue;
        }
        set_path(
            &mut table,
            &key.split("__").collect::<Vec<_>>(),
            env_value(&value),
        );
    }
    RawConfig::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Parse(e.to_string()))
}

/// Interprets an environment value as a TOML literal (number, bool, array) or else a string.
fn env_value(value: &str) -> toml::Value {
    format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()))
}

fn set_path(table: &mut toml::Table, path: &[&str], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert((*last).to_string(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry((*first).to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

fn apply_flags(mut raw: RawConfig, f: &Flags) -> RawConfig {
    macro_rules! over {
        ($($field:ident),*) => { $( if let Some(v) = &f.$field { raw.$field = Some(v.clone()); } )* };
    }
    over!(
        listen,
        data_dir,
        upstream,
        node_id,
        cluster_listen,
        peers,
        log_format,
        log_level,
        upstream_error_status,
        shutdown_grace_secs
    );
    raw
}

impl RawConfig {
    /// Checks every key and returns the typed configuration, or all problems at once; proxies and
    /// `SSL_CERT_FILE`/`SSL_CERT_DIR` are read from the process environment.
    pub fn validate(self) -> Result<Config, ConfigErrors> {
        self.validate_with_env(&ProcessEnv)
    }

    /// [`Self::validate`] with the environment read from `env`.
    pub fn validate_with_env(mut self, env: &dyn Env) -> Result<Config, ConfigErrors> {
        let mut errs = Vec::new();
        let egress = match Egress::new(&self.egress, env) {
            Ok(egress) => egress,
            Err(problems) => {
                errs.extend(problems.iter().map(|p| invalid("egress", &p.to_string())));
                Egress::default()
            }
        };
        self.upstream_http.egress = egress.clone();
        let listen = parse_addr(
            "listen",
            self.listen.as_deref().unwrap_or("0.0.0.0:8080"),
            &mut errs,
        );
        let cluster_listen = parse_addr(
            "cluster_listen",
            self.cluster_listen.as_deref().unwrap_or("127.0.0.1:9090"),
            &mut errs,
        );
        let node_id = self.node_id.unwrap_or(1);
        if node_id == 0 {
            errs.push(invalid(
                "node_id",
                "must be a positive integer (1, 2, 3, ...)",
            ));
        }
        let peers = parse_peers(self.peers.as_deref(), node_id, cluster_listen, &mut errs);
        self.check_cluster_tls(peers.len(), &mut errs);
        let plain_listen = self
            .tls
            .plain_listen
            .as_deref()
            .and_then(|a| parse_addr("tls.plain_listen", a, &mut errs));
        let upstream = self
            .upstream
            .clone()
            .unwrap_or_else(|| "https://proxy.golang.org".to_string());
        if let Err(e) = crate::upstream::Upstream::new(&upstream, &self.upstream_http) {
            errs.push(invalid("upstream", &e.to_string()));
        }
        let log_format = match self.log_format.as_deref().unwrap_or("human") {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => {
                errs.push(invalid(
                    "log_format",
                    &format!("{other:?} is neither \"human\" nor \"json\""),
                ));
                LogFormat::Human
            }
        };
        let upstream_error_status = self.upstream_error_status.unwrap_or(502);
        if !(400..=599).contains(&upstream_error_status)
            || matches!(upstream_error_status, 404 | 410)
        {
            errs.push(invalid(
                "upstream_error_status",
                "must be a 4xx/5xx status other than 404 and 410 (those mean \"not found\" to the go command)",
            ));
        }
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("./cairn-data"));
        if data_dir.as_os_str().is_empty() {
            errs.push(invalid("data_dir", "must not be empty"));
        }
        self.check_sections(&mut errs);
        let disk = match self.disk.policy() {
            Ok(p) => Some(p),
            Err(problems) => {
                errs.extend(problems.iter().map(|p| invalid("disk", &p.to_string())));
                None
            }
        };
        let (Some(disk), true) = (disk, errs.is_empty()) else {
            return Err(ConfigErrors(errs));
        };
        Ok(Config {
            listen: listen.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8080))),
            data_dir,
            upstream,
            node_id,
            cluster_listen: cluster_listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9090))),
            peers,
            log_format,
            log_level: self
                .log_level
                .clone()
                .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_string()),
            upstream_error_status,
            shutdown_grace: std::time::Duration::from_secs(self.shutdown_grace_secs.unwrap_or(30)),
            cache: self.cache,
            limits: self.limits,
            http: self.http,
            upstream_http: self.upstream_http,
            sumdb: self.sumdb,
            raft: self.raft,
            cluster: self.cluster,
            routes: self.routes,
            direct: self.direct,
            egress,
            tls: self.tls,
            plain_listen,
            audit: self.audit,
            access: self.access,
            disk,
            policy: self.policy,
        })
    }

    /// The cluster port's TLS files come all together, and a multi-node cluster needs them
    /// unless the operator says `cluster.insecure = true`.
    fn check_cluster_tls(&self, members: usize, errs: &mut Vec<ConfigError>) {
        let files = self.cluster.tls_files();
        if files.any() && files.all().is_none() {
            errs.push(invalid(
                "cluster.ca_file",
                "cluster.ca_file, cluster.cert_file and cluster.key_file go together: set all three (`cairn certs` makes them)",
            ));
        }
        if files.any() && self.cluster.insecure {
            errs.push(invalid(
                "cluster.insecure",
                "is set together with cluster certificate files: remove one of them",
            ));
        }
        if members > 1 && !files.any() && !self.cluster.insecure {
            errs.push(invalid(
                "cluster.ca_file",
                &format!("a cluster of {members} nodes needs mutual TLS on its cluster port, or anyone who reaches it can change the membership: set cluster.ca_file, cluster.cert_file and cluster.key_file (`cairn certs init` and `cairn certs node N` make them), or set cluster.insecure = true to run without"),
            ));
        }
        for (key, reason) in self.tls.problems() {
            errs.push(invalid(key, &reason));
        }
    }

    fn check_sections(&self, errs: &mut Vec<ConfigError>) {
        for (key, value) in [
            ("cluster.region", &self.cluster.region),
            ("cluster.zone", &self.cluster.zone),
        ] {
            if !valid_location(value) {
                errs.push(invalid(
                    key,
                    &format!("{value:?} is not a region/zone name: use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit (e.g. \"eu-west-1\"), or leave it empty"),
                ));
            }
        }
        if let Some(problem) = self.policy.problem() {
            errs.push(invalid("policy.deny_status", &problem));
        }
        if let Err(problems) = self.audit.validate() {
            errs.extend(problems.iter().map(|p| invalid("audit", &p.to_string())));
        }
        if let Err(problems) = self.access.validate() {
            errs.extend(problems.iter().map(|p| invalid("access", &p.to_string())));
        }
        if self.cache.negative_max_entries == 0 {
            errs.push(invalid("cache.negative_max_entries", "must be at least 1"));
        }
        if self.limits.max_zip_bytes == 0 || self.limits.max_uncompressed_bytes == 0 {
            errs.push(invalid(
                "limits.max_zip_bytes",
                "zip limits must be positive",
            ));
        }
        let c = &self.cluster;
        if c.min_copies == 0 {
            errs.push(invalid("cluster.min_copies", "must be at least 1"));
        }
        if c.transfer_chunk_bytes < 4096 || c.transfer_chunk_bytes > (4 << 20) {
            errs.push(invalid(
                "cluster.transfer_chunk_bytes",
                "must be between 4 KiB and 4 MiB",
            ));
        }
        if c.max_concurrent_transfers == 0
            || c.liveness_failures == 0
            || c.liveness_interval_ms == 0
        {
            errs.push(invalid("cluster", "max_concurrent_transfers, liveness_failures and liveness_interval_ms must be positive"));
        }
        if self.http.max_connections == 0 {
            errs.push(invalid("http.max_connections", "must be at least 1"));
        }
        if self.http.header_read_timeout_secs == 0 {
            errs.push(invalid(
                "http.header_read_timeout_secs",
                "must be at least 1",
            ));
        }
        // The default upstream is checked on its own; "off" stands in for it here.
        if let Err(e) = crate::routing::Router::new(&self.routes, "off", &self.upstream_http, None)
        {
            errs.extend(e.0.iter().map(|p| invalid("routes", p)));
        }
        for problem in self.direct.problems() {
            errs.push(invalid("direct", &problem));
        }
        if let Err(e) = self.raft.to_openraft_config() {
            errs.push(invalid("raft", &e.to_string()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for db in &self.sumdb.databases {
            if db.name.is_empty()
                || db.name.starts_with('/')
                || db.name.ends_with('/')
                || db.name.contains("..")
            {
                errs.push(invalid(
                    "sumdb.databases",
                    &format!("bad database name {:?}", db.name),
                ));
            }
            if let Some(url) = db
                .url
                .as_ref()
                .filter(|u| !(u.starts_with("https://") || u.starts_with("http://")))
            {
                errs.push(invalid(
                    "sumdb.databases",
                    &format!("url {url:?} must start with https:// or http://"),
                ));
            }
            match (db.mode(), db.verifier_key()) {
                (VerifyMode::Off, _) => {}
                (_, None) => errs.push(invalid(
                    "sumdb.databases",
                    &format!("database {:?} has verify = require/best-effort but no key; set key = \"<name>+<hash>+<key>\" (the GOSUMDB form) or verify = \"off\"", db.name),
                )),
                (_, Some(key)) => {
                    if let Err(e) = crate::sumdb::note::Verifier::parse(key) {
                        errs.push(invalid("sumdb.databases", &format!("key of {:?}: {e}", db.name)));
                    } else if !key.starts_with(&format!("{}+", db.name)) {
                        errs.push(invalid("sumdb.databases", &format!("key of {:?} names another database", db.name)));
                    }
                }
            }
            if !seen.insert(db.name.clone()) {
                errs.push(invalid(
                    "sumdb.databases",
                    &format!("database {:?} listed twice", db.name),
                ));
            }
        }
    }
}

/// Whether `s` may name a region or zone: empty, or 1-63 of `[A-Za-z0-9._-]` starting with a
/// letter or digit (the shape of a Kubernetes label value such as `us-east-1`).
pub fn valid_location(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
}

fn invalid(key: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.to_string(),
    }
}

fn parse_addr(key: &'static str, s: &str, errs: &mut Vec<ConfigError>) -> Option<SocketAddr> {
    match s.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            errs.push(invalid(
                key,
                &format!("{s:?} is not an IP:PORT address, e.g. 0.0.0.0:8080"),
            ));
            None
        }
    }
}

fn parse_peers(
    s: Option<&str>,
    node_id: u64,
    own: Option<SocketAddr>,
    errs: &mut Vec<ConfigError>,
) -> BTreeMap<u64, String> {
    let mut peers = BTreeMap::new();
    for item in s
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        let parsed = item
            .split_once('=')
            .and_then(|(id, addr)| Some((id.trim().parse::<u64>().ok()?, addr.trim())));
        match parsed {
            Some((id, addr)) if id > 0 && addr.contains(':') => {
                if peers.insert(id, addr.to_string()).is_some() {
                    errs.push(invalid("peers", &format!("node id {id} listed twice")));
                }
            }
            _ => errs.push(invalid("peers", &format!("{item:?} is not ID=HOST:PORT"))),
        }
    }
    if peers.is_empty() {
        if let Some(own) = own {
            peers.insert(node_id, own.to_string());
        }
    } else if !peers.contains_key(&node_id) {
        errs.push(invalid(
            "peers",
            &format!("does not contain this node's id {node_id}"),
        ));
    }
    peers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_validate() {
        let cfg = Config::load(&Flags::default(), &env(&[])).unwrap();
        assert_eq!(cfg.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(cfg.upstream, "https://proxy.golang.org");
        assert_eq!(cfg.peers.len(), 1);
        assert_eq!(cfg.upstream_error_status, 502);
    }

    #[test]
    fn flag_beats_env_beats_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1\"\n[cache]\nlist_ttl_secs = 5\nnegative_ttl_secs = 7\n",
        )
        .unwrap();
        let flags = Flags {
            config: Some(file),
            listen: Some("127.0.0.1:3".into()),
            ..Flags::default()
        };
        let cfg = Config::load(&flags, &env(&[("CAIRN_CACHE__LIST_TTL_SECS", "9")])).unwrap();
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:3");
        assert_eq!(cfg.cache.list_ttl_secs, 9);
        assert_eq!(cfg.cache.negative_ttl_secs, 7);
    }

    #[test]
    fn region_and_zone_are_checked() {
        let cfg = Config::load(
            &Flags::default(),
            &env(&[
                ("CAIRN_CLUSTER__REGION", "eu-west-1"),
                ("CAIRN_CLUSTER__ZONE", "b"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (cfg.cluster.region.as_str(), cfg.cluster.zone.as_str()),
            ("eu-west-1", "b")
        );
        let errs = Config::load(
            &Flags::default(),
            &env(&[
                ("CAIRN_CLUSTER__REGION", "eu west"),
                ("CAIRN_CLUSTER__ZONE", "-a"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            errs.contains("cluster.region") && errs.contains("cluster.zone"),
            "{errs}"
        );
        assert!(valid_location("") && !valid_location(&"a".repeat(64)));
    }

    #[test]
    fn every_problem_is_reported() {
        let flags = Flags {
            listen: Some("nope".into()),
            node_id: Some(0),
            log_format: Some("xml".into()),
            upstream_error_status: Some(404),
            peers: Some("x".into()),
            ..Flags::default()
        };
        let errs = Config::load(&flags, &env(&[])).unwrap_err();
        let text = errs.to_string();
        for key in [
            "listen",
            "node_id",
            "log_format",
            "upstream_error_status",
            "peers",
        ] {
            assert!(text.contains(key), "{key} missing from:\n{text}");
        }
    }

    #[test]
    fn routes_are_read_and_every_bad_rule_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        let good = "[[routes]]\nname = \"corp\"\npatterns = \"corp.example.com\"\nupstream = \"http://127.0.0.1:1\"\n\n[[routes]]\npatterns = \"evil.example\"\ndeny = true\n";
        std::fs::write(&file, good).unwrap();
        let flags = Flags {
            config: Some(file.clone()),
            ..Flags::default()
        };
        let cfg = Config::load(&flags, &env(&[])).unwrap();
        assert_eq!(cfg.routes.len(), 2);
        assert!(cfg.routes[1].deny && !cfg.routes[0].sumdb);
        let bad = "[[routes]]\npatterns = \"\"\nupstream = \"http://x\"\n\n[[routes]]\npatterns = \"a[\"\nupstream = \"ftp://x\"\n";
        std::fs::write(&file, bad).unwrap();
        let text = Config::load(&flags, &env(&[])).unwrap_err().to_string();
        for want in [
            "routes[0]: patterns",
            "routes[1]: patterns",
            "routes[1]: upstream",
        ] {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err =
            Config::load(&Flags::default(), &env(&[("CAIRN_CACHE__NO_SUCH", "1")])).unwrap_err();
        assert!(err.to_string().contains("no_such"), "{err}");
    }
}
