//! Which addresses `direct` may connect to for repositories that clients name.
//!
//! Module paths come from clients, so without a guard `GET /127.0.0.1/x/@v/list` (or a
//! `?go-get=1` page naming `http://169.254.169.254/…` as its repository) would make cairn
//! connect to its own loopback, the cloud metadata service or the private network around it.
//! [`NetGuard`] refuses every non-global address ([`non_global`]) unless `direct.allow_networks`
//! allows it, and hosts the operator named in `direct.resolve` are trusted as they are.
//!
//! The check is made on the addresses actually used, so DNS rebinding cannot slip past it:
//! - `?go-get=1` requests resolve names through [`GuardedResolver`] (reqwest connects only to the
//!   addresses it returns), and literal IPs are checked before the request and on each redirect;
//! - git is given the checked addresses with `http.curloptResolve`, so curl connects to nothing
//!   else (see [`NetGuard::git_pin`]).
//!
//! Residual risks, documented rather than closed: ssh and `git://` remotes are checked, but ssh
//! and git resolve the name again themselves; and through a forward proxy the proxy resolves the
//! name, so cairn can check only its own answer (the proxy should enforce its own egress rules).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use super::config::DirectConfig;
use super::credentials::{parse_remote, RemoteScheme};

// === Cidr ===

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`; a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl FromStr for Cidr {
    type Err = String;

    /// Parses `ADDR/LEN` or a bare address; host bits must be zero.
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, len) = match s.trim().split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            format!("{s:?} is not a network such as \"10.0.0.0/8\" or \"fd00::/8\"")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        let cidr = Cidr { addr, len };
        let net = cidr.network();
        if net != addr {
            return Err(format!(
                "{s:?} has host bits set; write the network, {net}/{len}"
            ));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Cidr {
    /// Whether `ip` is in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// The address with its host bits cleared.
    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        }
    }
}

// === classification ===

/// The kind of a non-global address (`"loopback"`, `"link-local"`, `"private"`, …), or `None`
/// for a globally routable one. IPv4 embedded in IPv6 (mapped, NAT64 `64:ff9b::/96`, 6to4) is
/// judged by its IPv4 address.
pub fn non_global(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_broadcast() => "broadcast",
        (0, ..) => "reserved",
        (127, ..) => "loopback",
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => "private",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "shared (CGNAT)",
        (192, 0, 0) => "reserved",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, ..) => "multicast",
        (240..=255, ..) => "reserved",
        _ => return None,
    })
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_class(v4);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    Some(match s[0] {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        // NAT64's well-known prefix reaches the IPv4 address in its last 32 bits.
        0x64 if s[1..6] == [0xff9b, 0, 0, 0, 0] => return v4_class(embedded(s[6], s[7])),
        // 6to4 reaches the IPv4 address in bits 16..48.
        0x2002 => return v4_class(embedded(s[1], s[2])),
        0x2001 if s[1] == 0 => "Teredo",
        0x2001 if s[1] == 0x0db8 => "documentation",
        0xfc00..=0xfdff => "unique-local (private)",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local",
        0xff00..=0xffff => "multicast",
        // Only 2000::/3 is global unicast.
        x if x & 0xe000 != 0x2000 => "reserved",
        _ => return None,
    })
}

// === Refused ===

/// A connection cairn will not make: `host` is (or resolves to) `addr`, a non-global address
/// that `direct.allow_networks` does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refused {
    /// The host as named (a name or a literal address).
    pub host: String,
    /// The refused address.
    pub addr: IpAddr,
    /// Its kind, from [`non_global`].
    pub class: &'static str,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let article = if self.class.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        if host.parse::<IpAddr>().ok() == Some(self.addr) {
            write!(
                f,
                "discovery refused: {host} is {article} {} address",
                self.class
            )?;
        } else {
            write!(
                f,
                "discovery refused: {host} resolves to {}, {article} {} address",
                self.addr, self.class
            )?;
        }
        f.write_str("; allow it with direct.allow_networks if this is intended")
    }
}

/// The [`Refused`] somewhere in `e`'s chain of causes (also inside an `io::Error`, whose
/// `source()` skips the error it wraps).
pub fn refusal_in(e: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r.clone());
        }
        let wrapped = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
        if let Some(inner) = wrapped {
            if let Some(r) = refusal_in(inner) {
                return Some(r);
            }
        }
        cur = err.source();
    }
    None
}

// === NetGuard ===

/// Why a host could not be cleared for a connection.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GuardError {
    /// It is, or resolves only to, refused addresses.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// It does not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Lookup {
        /// The host.
        host: String,
        /// The resolver's error.
        reason: String,
    },
}

/// The address policy for client-named repositories: non-global addresses are refused unless
/// allowed; trusted hosts are not checked.
#[derive(Debug, Clone, Default)]
pub struct NetGuard {
    allow: Vec<Cidr>,
    /// Lowercase names the operator chose the address of (`direct.resolve`), or proxies.
    trusted: Vec<String>,
    /// Answers used instead of DNS (tests), each checked like a DNS answer.
    fixed: HashMap<String, Vec<SocketAddr>>,
}

impl NetGuard {
    /// The guard `[direct]` describes: `allow_networks` allowed, `resolve` hosts trusted.
    pub fn new(cfg: &DirectConfig) -> NetGuard {
        NetGuard {
            allow: cfg.allowed_networks(),
            trusted: cfg.resolve_entries().into_iter().map(|(h, _)| h).collect(),
            fixed: HashMap::new(),
        }
    }

    /// Also trusts `host` (an operator-configured proxy, say).
    pub fn trust(mut self, host: &str) -> NetGuard {
        self.trusted.push(host.to_ascii_lowercase());
        self
    }

    /// Answers `host` with `addrs` instead of asking DNS; the answer is still checked. For tests
    /// (a name that "resolves" to loopback).
    pub fn fixed_answer(mut self, host: &str, addrs: Vec<SocketAddr>) -> NetGuard {
        self.fixed.insert(host.to_ascii_lowercase(), addrs);
        self
    }

    /// Whether `host` is exempt from checks.
    pub fn is_trusted(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.trusted.iter().any(|t| t.eq_ignore_ascii_case(host))
    }

    /// Whether `host` may be reached at `ip`.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        let Some(class) = non_global(ip) else {
            return Ok(());
        };
        if self.allow.iter().any(|n| n.contains(ip)) {
            return Ok(());
        }
        Err(Refused {
            host: host.to_owned(),
            addr: ip,
            class,
        })
    }

    /// When `host` (a URL's host, as the URL parser normalized it) is a literal address:
    /// [`Self::check`]. Names pass; they are checked when resolved.
    pub fn check_literal(&self, host: &str) -> Result<(), Refused> {
        match host.trim_start_matches('[').trim_end_matches(']').parse() {
            Ok(ip) => self.check(host, ip),
            Err(_) => Ok(()),
        }
    }

    /// Resolves `host` and keeps the addresses that pass [`Self::check`] (all of them for a
    /// trusted host); refused when none does. `port` goes into the answers (0: the scheme's).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, GuardError> {
        let found = self.lookup(host, port).await?;
        if self.is_trusted(host) {
            return Ok(found);
        }
        let mut refused = None;
        let allowed: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| match self.check(host, a.ip()) {
                Ok(()) => true,
                Err(r) => {
                    refused.get_or_insert(r);
                    false
                }
            })
            .collect();
        match refused {
            Some(r) if allowed.is_empty() => Err(r.into()),
            _ if allowed.is_empty() => Err(GuardError::Lookup {
                host: host.to_owned(),
                reason: "no addresses".to_owned(),
            }),
            _ => Ok(allowed),
        }
    }

    async fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, GuardError> {
        if let Some(addrs) = self.fixed.get(&host.to_ascii_lowercase()) {
            let with_port = |a: &SocketAddr| match a.port() {
                0 => SocketAddr::new(a.ip(), port),
                _ => *a,
            };
            return Ok(addrs.iter().map(with_port).collect());
        }
        let name = host.trim_start_matches('[').trim_end_matches(']');
        match tokio::net::lookup_host((name, port)).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(e) => Err(GuardError::Lookup {
                host: host.to_owned(),
                reason: e.to_string(),
            }),
        }
    }

    /// Clears a git remote that a client's module path led to, before git runs. Literal
    /// addresses are checked; names are resolved and checked, and for `http(s)` the result is
    /// the `-c` value that pins curl to the checked addresses
    /// (`http.curloptResolve=host:port:addr,…`), so a second DNS answer cannot change where git
    /// connects. For ssh and `git://` there is no pin: ssh and git resolve again (a residual
    /// rebinding window).
    pub async fn git_pin(&self, url: &str) -> Result<Option<String>, GuardError> {
        let Some(remote) = parse_remote(url) else {
            return Ok(None);
        };
        if remote.scheme == RemoteScheme::File || remote.host.is_empty() {
            return Ok(None);
        }
        if remote.host.parse::<IpAddr>().is_ok() {
            self.check_literal(&remote.host)?;
            return Ok(None);
        }
        if self.is_trusted(&remote.host) {
            return Ok(None);
        }
        let port = remote.port.unwrap_or(0);
        let addrs = self.resolve(&remote.host, port).await?;
        if !matches!(remote.scheme, RemoteScheme::Https | RemoteScheme::Http) || port == 0 {
            return Ok(None);
        }
        let list: Vec<String> = addrs
            .iter()
            .map(|a| match a.ip() {
                IpAddr::V4(ip) => ip.to_string(),
                IpAddr::V6(ip) => format!("[{ip}]"),
            })
            .collect();
        Ok(Some(format!(
            "http.curloptResolve={}:{port}:{}",
            remote.host,
            list.join(",")
        )))
    }
}

// === GuardedResolver ===

/// reqwest's DNS resolver for discovery: [`NetGuard::resolve`], so connections go only to
/// checked addresses. Its refusal reaches the caller as a [`Refused`] inside reqwest's error
/// (find it with [`refusal_in`]).
#[derive(Debug, Clone)]
pub struct GuardedResolver(pub Arc<NetGuard>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = Arc::clone(&self.0);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match guard.resolve(&host, 0).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(GuardError::Refused(r)) => Err(Box::new(r) as _),
                Err(e) => Err(Box::new(e) as _),
            }
        })
    }
}

#[cfg(test)]
#[path = "netguard_tests.rs"]
mod tests;
