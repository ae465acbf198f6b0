//! The userspace link emulator between the namespaces of a [`super::Regions`].
//!
//! Every endpoint (the root namespace, then one per region) has one TUN device whose file
//! descriptor stays in this process. One reader thread per endpoint reads IPv4 packets, finds the
//! destination endpoint from the third octet of the destination address (`10.<s>.<e>.<h>`), and
//! hands the packet to the delay line of that (source, destination) pair: a FIFO drained by its
//! own writer thread, which sleeps until the packet's due time and writes it into the
//! destination's TUN device. A constant delay per pair keeps every pair in order, like a cable.
//!
//! Why not `tc netem`: the kernel this project's CI runs on is built without `sch_netem` (and
//! without `fq`, so no EDT-based delay through BPF either), and a harness that needs a module the
//! machine lacks tests nothing. A TUN device and a thread need only `/dev/net/tun`.
//!
//! A cut region drops, silently, every packet between it and another region, queued ones
//! included (a cable cut loses what was on the wire); packets between it and the root namespace
//! still pass, because the root namespace is "the Internet" where the upstream lives.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// One emulated port: a TUN device and the endpoint number it answers for.
pub(crate) struct Port {
    /// The endpoint (0 = root, `r` = region `r`).
    pub(crate) endpoint: u8,
    /// The device; its fd lives here even after the device moved into a region namespace.
    pub(crate) dev: Arc<tun::Device>,
}

/// One-way delays of the emulated links.
#[derive(Clone, Copy, Debug)]
pub struct Delays {
    /// Between two regions (one way). The round trip is twice this.
    pub region_to_region: Duration,
    /// Between the root namespace (test process, upstream fixture) and any region (one way).
    pub root_to_region: Duration,
}

/// The running emulator. Dropping it stops and joins every thread.
pub(crate) struct Switch {
    stop: Arc<AtomicBool>,
    /// `cut[e]`: region `e`'s links to the other regions are cut (index 0, the root, never is).
    cut: Arc<Vec<AtomicBool>>,
    /// IP bytes delivered per (source, destination) endpoint pair (what crossed that link).
    delivered: Arc<BTreeMap<(u8, u8), AtomicU64>>,
    threads: Vec<JoinHandle<()>>,
}

type Line = Sender<(Instant, Vec<u8>)>;

impl Switch {
    /// Starts the threads over `ports` (endpoint numbers `0..ports.len()`, in order).
    pub(crate) fn start(subnet: u8, ports: Vec<Port>, delays: Delays) -> Switch {
        let stop = Arc::new(AtomicBool::new(false));
        let cut: Arc<Vec<AtomicBool>> =
            Arc::new(ports.iter().map(|_| AtomicBool::new(false)).collect());
        let mut threads = Vec::new();
        let mut lines: BTreeMap<(u8, u8), Line> = BTreeMap::new();
        let delivered: Arc<BTreeMap<(u8, u8), AtomicU64>> = Arc::new(
            ports
                .iter()
                .flat_map(|s| ports.iter().map(move |d| (s.endpoint, d.endpoint)))
                .filter(|(s, d)| s != d)
                .map(|pair| (pair, AtomicU64::new(0)))
                .collect(),
        );
        for src in &ports {
            for dst in ports.iter().filter(|d| d.endpoint != src.endpoint) {
                let (tx, rx) = mpsc::channel();
                lines.insert((src.endpoint, dst.endpoint), tx);
                let (stop, cut, dev) = (stop.clone(), cut.clone(), dst.dev.clone());
                let pair = (src.endpoint, dst.endpoint);
                let delivered = delivered.clone();
                threads.push(spawn(format!("link-{}-{}", pair.0, pair.1), move || {
                    let counter = &delivered[&pair];
                    drain(rx, pair, &dev, &cut, counter, &stop)
                }));
            }
        }
        for src in &ports {
            let mine: BTreeMap<u8, (Line, Duration)> = lines
                .iter()
                .filter(|((s, _), _)| *s == src.endpoint)
                .map(|((s, d), tx)| (*d, (tx.clone(), delays.between(*s, *d))))
                .collect();
            let (stop, cut, dev, me) = (stop.clone(), cut.clone(), src.dev.clone(), src.endpoint);
            threads.push(spawn(format!("port-{me}"), move || {
                read_port(subnet, me, &dev, &mine, &cut, &stop)
            }));
        }
        Switch {
            stop,
            cut,
            delivered,
            threads,
        }
    }

    /// IP bytes delivered so far per (source, destination) endpoint pair.
    pub(crate) fn delivered(&self) -> BTreeMap<(u8, u8), u64> {
        self.delivered
            .iter()
            .map(|(pair, n)| (*pair, n.load(Ordering::Relaxed)))
            .collect()
    }

    /// Cuts (`true`) or heals (`false`) region `endpoint`'s links to the other regions.
    pub(crate) fn set_cut(&self, endpoint: u8, cut: bool) {
        if let Some(c) = self.cut.get(usize::from(endpoint)) {
            c.store(cut, Ordering::SeqCst);
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Delays {
    fn between(&self, a: u8, b: u8) -> Duration {
        if a == 0 || b == 0 {
            self.root_to_region
        } else {
            self.region_to_region
        }
    }
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .expect("spawning a link emulator thread")
}

/// Whether a packet between endpoints `a` and `b` is dropped by a cut.
fn is_cut(cut: &[AtomicBool], a: u8, b: u8) -> bool {
    let region_cut = |e: u8| e != 0 && cut[usize::from(e)].load(Ordering::SeqCst);
    a != 0 && b != 0 && (region_cut(a) || region_cut(b))
}

/// The destination endpoint of an IPv4 packet inside `10.<subnet>.0.0/16`, if any.
fn destination(subnet: u8, packet: &[u8]) -> Option<u8> {
    let version = packet.first()? >> 4;
    let dst = packet.get(16..20)?;
    (version == 4 && dst[0] == 10 && dst[1] == subnet).then_some(dst[2])
}

fn read_port(
    subnet: u8,
    me: u8,
    dev: &tun::Device,
    lines: &BTreeMap<u8, (Line, Duration)>,
    cut: &[AtomicBool],
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        let n = match dev.recv_timeout(&mut buf, POLL) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // The device went away (its namespace was deleted): nothing more to read.
            Err(_) => return,
        };
        let packet = &buf[..n];
        let Some(dst) = destination(subnet, packet) else {
            continue; // IPv6 chatter, or not ours.
        };
        let Some((line, delay)) = lines.get(&dst) else {
            continue; // No such endpoint: dropped, like a route to nowhere.
        };
        if is_cut(cut, me, dst) {
            continue;
        }
        let _ = line.send((Instant::now() + *delay, packet.to_vec()));
    }
}

fn drain(
    rx: Receiver<(Instant, Vec<u8>)>,
    (src, dst): (u8, u8),
    dev: &tun::Device,
    cut: &[AtomicBool],
    delivered: &AtomicU64,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        let (due, packet) = match rx.recv_timeout(POLL) {
            Ok(p) => p,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        // A cut also loses what was already on the wire.
        if !is_cut(cut, src, dst) && dev.send(&packet).is_ok() {
            delivered.fetch_add(packet.len() as u64, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_read_from_the_third_octet() {
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[16..20].copy_from_slice(&[10, 77, 2, 1]);
        assert_eq!(destination(77, &p), Some(2));
        assert_eq!(destination(78, &p), None);
        p[0] = 0x60;
        assert_eq!(destination(77, &p), None);
        assert_eq!(destination(77, &p[..10]), None);
    }

    #[test]
    fn cuts_spare_the_root_links() {
        let cut: Vec<AtomicBool> = (0..4).map(|_| AtomicBool::new(false)).collect();
        cut[2].store(true, Ordering::SeqCst);
        assert!(is_cut(&cut, 1, 2));
        assert!(is_cut(&cut, 2, 3));
        assert!(!is_cut(&cut, 0, 2));
        assert!(!is_cut(&cut, 2, 0));
        assert!(!is_cut(&cut, 1, 3));
    }
}
