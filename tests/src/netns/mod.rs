//! Emulated regions on one machine: Linux network namespaces joined by a link emulator.
//!
//! [`Regions::new`] builds, as root:
//!
//! - one network namespace per region, `cairn-<pid>-<k>-<region>` (`k` numbers the topologies of
//!   this process, so parallel tests never share one), with a TUN device `cn<pid>i<k>e<r>` and
//!   the addresses `10.<s>.<r>.1` … `10.<s>.<r>.<hosts>` (`/16`), one per
//!   node; `s` is a `/16` picked free for this topology (from `10.100.0.0` up), `r` is the
//!   region's number from 1;
//! - one TUN device in the root namespace with `10.<s>.0.1/16` ([`Regions::root_ip`]): the test
//!   process, the upstream fixture and the test's `/metrics` and admin calls live there;
//! - a link emulator (module `switch`) holding every TUN device: region ↔ region packets are delayed
//!   by [`Delays::region_to_region`] one way (default 50 ms, so a 100 ms round trip), root ↔
//!   region packets by [`Delays::root_to_region`] (default 0: the upstream is as far from every
//!   region as the emulator's own forwarding, well under a millisecond). Traffic inside a region
//!   never leaves its namespace (all its addresses are local there), so it costs loopback time.
//!
//! Why a userspace emulator and not veth + bridge + `tc netem`: this project's CI kernel is built
//! without `sch_netem` (`CONFIG_NET_SCH_NETEM` unset, no module to load), so `tc qdisc … netem`
//! fails with "Specified qdisc kind is unknown". The emulator gives the same two knobs — a fixed
//! one-way delay per link and a silent 100 % loss — with only `/dev/net/tun` and `ip`.
//!
//! [`Regions::cut`] drops every packet between that region and the other regions, silently, as
//! a cable cut does (no RST, no ICMP: connections hang until their timeouts); packets already
//! delayed on the wire are lost too. The root links stay up: a cut region still reaches its
//! upstream (the "passes misses through to its upstream") and the test still reads its
//! metrics. [`Regions::heal`] restores the links.
//!
//! Processes start inside a region with [`Regions::exec_prefix`] (`ip netns exec <ns>`, which
//! execs, so the child's pid is the program's). In-process servers (the per-region load balancer,
//! [`Regions::start_lb`]) run on a thread that entered the namespace with `setns(2)`: sockets
//! belong to the namespace of the thread that creates them.
//!
//! Dropping [`Regions`] stops the emulator and deletes the namespaces (their TUN devices go with
//! them), also while a test panics. Namespaces left by a process that no longer exists (a crashed
//! or killed run) are deleted by the next [`Regions::new`].
//!
//! Availability: not root, no `ip`, or no `/dev/net/tun` → [`Regions::new`] returns
//! [`NetnsError::Unavailable`]; [`regions_or_skip`] turns that into a loud SKIP message, or a
//! panic under `CAIRN_REQUIRE_NETNS=1` (which `.ci/run` sets).

pub mod deploy;
mod switch;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};

pub use switch::Delays;
use switch::{Port, Switch};

use crate::lb::Lb;

/// Why a topology could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// This machine cannot host namespaces (not root, no `ip`, no TUN): tests skip.
    #[error("network namespaces unavailable: {0}")]
    Unavailable(String),
    /// The machine should have managed but a step failed: tests fail.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl Default for Delays {
    fn default() -> Self {
        Delays {
            region_to_region: Duration::from_millis(50),
            root_to_region: Duration::ZERO,
        }
    }
}

/// One emulated region.
#[derive(Clone, Debug)]
pub struct Region {
    /// The name the test gave it (e.g. `a`).
    pub name: String,
    /// The namespace (`cairn-<pid>-<k>-<name>`).
    pub ns: String,
    /// Its number `r` (from 1): the third octet of its addresses.
    pub number: u8,
    /// Its host addresses, one per node (`10.<s>.<r>.1` …).
    pub hosts: Vec<Ipv4Addr>,
}

/// A running topology; see the module docs. Dropping it deletes everything.
pub struct Regions {
    regions: Vec<Region>,
    subnet: u8,
    ip: PathBuf,
    /// Stopped (and its threads joined) before the namespaces go.
    switch: Option<Switch>,
}

/// The name [`Regions::link_bytes`] gives the root namespace.
pub const ROOT: &str = "root";

/// Availability probes made by this process so far (each uses its own namespace name).
static PROBES: AtomicU32 = AtomicU32::new(0);
/// Topologies made by this process so far (`k` in the names).
static SERIAL: AtomicU32 = AtomicU32::new(0);
/// `/16`s in use by this process's topologies.
static SUBNETS: Mutex<BTreeSet<u8>> = Mutex::new(BTreeSet::new());
/// The MTU of every TUN device: large, so bulk transfers cost few packets through the emulator.
const MTU: u16 = 16000;

/// Builds `names` (one region each, `hosts` addresses per region) or explains why this machine
/// cannot: prints a loud SKIP line and returns `None`, or panics under `CAIRN_REQUIRE_NETNS=1`.
pub fn regions_or_skip(test: &str, names: &[&str], hosts: u8, delays: Delays) -> Option<Regions> {
    match Regions::new(names, hosts, delays) {
        Ok(r) => Some(r),
        Err(NetnsError::Unavailable(why)) => {
            if std::env::var_os("CAIRN_REQUIRE_NETNS").is_some_and(|v| v == "1") {
                panic!(
                    "{test}: CAIRN_REQUIRE_NETNS=1 but network namespaces are unavailable: {why}"
                );
            }
            eprintln!(
                "\n*** SKIP {test}: network namespaces unavailable ({why}); \
                 set CAIRN_REQUIRE_NETNS=1 to fail instead ***\n"
            );
            None
        }
        Err(e) => panic!("{test}: building the emulated regions failed: {e:#}"),
    }
}

impl Regions {
    /// Builds the namespaces, devices and emulator (see the module docs).
    pub fn new(names: &[&str], hosts: u8, delays: Delays) -> Result<Regions, NetnsError> {
        let ip = available()?;
        remove_stale(&ip);
        let k = SERIAL.fetch_add(1, Ordering::SeqCst);
        let subnet = claim_subnet(&ip)?;
        let pid = std::process::id();
        let regions: Vec<Region> = names
            .iter()
            .zip(1u8..)
            .map(|(name, r)| Region {
                name: name.to_string(),
                ns: format!("cairn-{pid}-{k}-{name}"),
                number: r,
                hosts: (1..=hosts)
                    .map(|h| Ipv4Addr::new(10, subnet, r, h))
                    .collect(),
            })
            .collect();
        // From here on, Drop cleans up whatever was made.
        let mut me = Regions {
            regions,
            subnet,
            ip,
            switch: None,
        };
        let ports = me.build(pid, k).map_err(NetnsError::Failed)?;
        me.switch = Some(Switch::start(subnet, ports, delays));
        Ok(me)
    }

    fn build(&self, pid: u32, k: u32) -> anyhow::Result<Vec<Port>> {
        let tun_name = |e: u8| format!("cn{pid}i{k}e{e}");
        let root = create_tun(&tun_name(0))?;
        let net = |h: Ipv4Addr| format!("{h}/16");
        self.run(&["addr", "add", &net(self.root_ip()), "dev", &tun_name(0)])?;
        self.run(&["link", "set", &tun_name(0), "mtu", &MTU.to_string(), "up"])?;
        let mut ports = vec![Port {
            endpoint: 0,
            dev: root,
        }];
        for r in &self.regions {
            let name = tun_name(r.number);
            let dev = create_tun(&name)?;
            self.run(&["netns", "add", &r.ns])?;
            self.run(&["link", "set", &name, "netns", &r.ns])?;
            let n = ["-n", r.ns.as_str()];
            self.run(&[&n[..], &["link", "set", "lo", "up"]].concat())?;
            for h in &r.hosts {
                self.run(&[&n[..], &["addr", "add", &net(*h), "dev", &name]].concat())?;
            }
            let up = ["link", "set", &name, "mtu", &MTU.to_string(), "up"];
            self.run(&[&n[..], &up[..]].concat())?;
            ports.push(Port {
                endpoint: r.number,
                dev,
            });
        }
        Ok(ports)
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<()> {
        run_ip(&self.ip, args)
    }

    /// The regions, in the order given.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The region named `name` (panics if there is none: a test bug).
    pub fn region(&self, name: &str) -> &Region {
        self.regions
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no region {name}"))
    }

    /// Host address `i` (from 0) of region `name`.
    pub fn host(&self, name: &str, i: usize) -> Ipv4Addr {
        self.region(name).hosts[i]
    }

    /// The root namespace's address on the emulated network (bind the upstream fixture here).
    pub fn root_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.subnet, 0, 1)
    }

    /// The command prefix that runs a program inside region `name`:
    /// `ip netns exec <ns>` (it execs, so the pid is the program's).
    pub fn exec_prefix(&self, name: &str) -> Vec<String> {
        vec![
            self.ip.display().to_string(),
            "netns".into(),
            "exec".into(),
            self.region(name).ns.clone(),
        ]
    }

    /// Cuts region `name` off from the other regions (see the module docs).
    pub fn cut(&self, name: &str) {
        self.set_cut(name, true);
    }

    /// Restores region `name`'s links.
    pub fn heal(&self, name: &str) {
        self.set_cut(name, false);
    }

    fn set_cut(&self, name: &str, cut: bool) {
        let n = self.region(name).number;
        if let Some(s) = &self.switch {
            s.set_cut(n, cut);
        }
    }

    /// IP bytes the emulator delivered so far from one endpoint to another, by (source,
    /// destination) name: a region's name, or `root` for the root namespace (the upstream, the
    /// test process). Counted on the emulated wire, so it includes every protocol's headers,
    /// Raft heartbeats and retransmissions: what a cloud bill would count.
    pub fn link_bytes(&self) -> BTreeMap<(String, String), u64> {
        let name = |e: u8| match self.regions.iter().find(|r| r.number == e) {
            Some(r) => r.name.clone(),
            None => ROOT.to_string(),
        };
        self.switch
            .as_ref()
            .map(|s| s.delivered())
            .unwrap_or_default()
            .into_iter()
            .map(|((s, d), n)| ((name(s), name(d)), n))
            .collect()
    }

    /// Runs `f` on a new thread inside region `name`'s namespace and returns its result.
    /// Sockets `f` creates belong to that namespace (and keep working after it returns).
    pub fn run_in<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let ns = self.region(name).ns.clone();
        let what = format!("the thread in namespace {ns} panicked");
        std::thread::spawn(move || -> anyhow::Result<T> {
            enter(&ns)?;
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow::anyhow!(what))?
    }

    /// Runs the future `f` makes on a thread of its own inside region `name`'s namespace (with a
    /// current-thread runtime there) and awaits its output without blocking the caller's
    /// runtime: a client in that region, for a bench or a test.
    pub async fn run_async_in<T, F, Fut>(&self, name: &str, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T>,
    {
        let ns = self.region(name).ns.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("in-{name}"))
            .spawn(move || {
                let out = enter(&ns).and_then(|()| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    Ok(rt.block_on(f()))
                });
                let _ = tx.send(out);
            })?;
        rx.await
            .map_err(|_| anyhow::anyhow!("the thread in region {name} panicked"))?
    }

    /// Starts a round-robin load balancer ([`Lb`]) on `127.0.0.1` inside region `name`, over
    /// `backends`: the region's own front door, for a go command run with
    /// [`Regions::exec_prefix`].
    pub fn start_lb(&self, name: &str, backends: Vec<SocketAddr>) -> anyhow::Result<RegionLb> {
        let ns = self.region(name).ns.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("lb-{name}"))
            .spawn(move || {
                let started = enter(&ns).and_then(|()| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    let lb = rt.block_on(Lb::start(backends))?;
                    Ok((rt, lb))
                });
                match started {
                    Ok((rt, lb)) => {
                        let (url, lb) = (lb.url(), Arc::new(lb));
                        let _ = ready_tx.send(Ok((url, lb.clone())));
                        // Serve until told to stop; the Lb's tasks run on this runtime.
                        let _ = rt.block_on(stop_rx);
                        drop(lb);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })?;
        let (url, lb) = ready_rx
            .recv()
            .context("the load balancer thread died before it started")??;
        Ok(RegionLb {
            url,
            lb,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Regions {
    fn drop(&mut self) {
        drop(self.switch.take());
        for r in &self.regions {
            let _ = run_ip(&self.ip, &["netns", "del", &r.ns]);
        }
        if let Ok(mut s) = SUBNETS.lock() {
            s.remove(&self.subnet);
        }
    }
}

/// A load balancer serving inside one region (see [`Regions::start_lb`]); dropping it stops it.
pub struct RegionLb {
    url: String,
    lb: Arc<Lb>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RegionLb {
    /// `http://127.0.0.1:<port>`, valid inside the region's namespace only.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The balancer (its counters).
    pub fn lb(&self) -> &Lb {
        &self.lb
    }
}

impl Drop for RegionLb {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Moves the calling thread into namespace `ns` (network only).
fn enter(ns: &str) -> anyhow::Result<()> {
    let path = format!("/var/run/netns/{ns}");
    let f = File::open(&path).with_context(|| format!("opening {path}"))?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("setns({path})"))?;
    Ok(())
}

/// Whether this machine can build topologies; the path of `ip` if so.
fn available() -> Result<PathBuf, NetnsError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(NetnsError::Unavailable("not running as root".into()));
    }
    let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            NetnsError::Unavailable("no `ip` command (apt-get install iproute2)".into())
        })?;
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Err(NetnsError::Unavailable("no /dev/net/tun".into()));
    }
    // One name per probe: tests of one process build topologies in parallel.
    let n = PROBES.fetch_add(1, Ordering::SeqCst);
    let probe = format!("cairn-{}-probe{n}", std::process::id());
    match Command::new(&ip).args(["netns", "add", &probe]).output() {
        Ok(o) if o.status.success() => {
            let _ = run_ip(&ip, &["netns", "del", &probe]);
            Ok(ip)
        }
        Ok(o) => Err(NetnsError::Unavailable(format!(
            "`ip netns add` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))),
        Err(e) => Err(NetnsError::Unavailable(format!("running ip: {e}"))),
    }
}

/// Deletes `cairn-<pid>-…` namespaces whose process is gone.
fn remove_stale(ip: &PathBuf) {
    let Ok(out) = Command::new(ip).args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let pid = name
            .strip_prefix("cairn-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !PathBuf::from(format!("/proc/{pid}")).exists() {
                let _ = run_ip(ip, &["netns", "del", name]);
            }
        }
    }
}

/// Picks a `/16` in `10.100.0.0`–`10.199.0.0` that neither this process nor the root
/// namespace's addresses use.
fn claim_subnet(ip: &PathBuf) -> anyhow::Result<u8> {
    let mut used = SUBNETS.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let out = Command::new(ip)
        .args(["-4", "-o", "addr", "show"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    for s in 100u8..200 {
        let prefix = format!(" 10.{s}.");
        if !used.contains(&s) && !text.contains(&prefix) {
            used.insert(s);
            return Ok(s);
        }
    }
    bail!("no free 10.x.0.0/16 between 10.100 and 10.199")
}

/// A TUN device named `name` in the root namespace, not configured.
fn create_tun(name: &str) -> anyhow::Result<Arc<tun::Device>> {
    let mut c = tun::Configuration::default();
    c.tun_name(name).layer(tun::Layer::L3).mtu(MTU);
    c.platform_config(|p| {
        p.ensure_root_privileges(false);
    });
    let dev = tun::create(&c).with_context(|| format!("creating TUN device {name}"))?;
    Ok(Arc::new(dev))
}

fn run_ip(ip: &PathBuf, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(ip)
        .args(args)
        .output()
        .with_context(|| format!("running ip {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
