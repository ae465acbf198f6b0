//! The in-process cost of recording a hit's time (issue 12): `AccessTimes::touch` timed alone,
//! on one thread and on every core hammering the same blob (the worst case: one shard, one
//! cache line), next to the CPU a hit costs the server, so the share is visible even when the
//! HTTP comparison drowns in noise.

use std::sync::Arc;
use std::time::Instant;

use cairn_node::store::atime::AccessTimes;

/// Nanoseconds per `touch` with `threads` threads touching `distinct` blobs (round robin).
pub fn ns_per_touch(threads: usize, distinct: usize, per_thread: u64) -> f64 {
    let times = Arc::new(AccessTimes::default());
    let shas: Arc<Vec<String>> = Arc::new((0..distinct).map(|i| format!("{i:064x}")).collect());
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (times, shas) = (times.clone(), shas.clone());
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    times.touch(&shas[i as usize % shas.len()]);
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    start.elapsed().as_nanos() as f64 / per_thread as f64
}

/// Prints the measurements.
pub fn report() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let one = ns_per_touch(1, 1, 5_000_000);
    let hot = ns_per_touch(cores, 1, 2_000_000);
    let spread = ns_per_touch(cores, 10_000, 2_000_000);
    println!(
        "access-time tracking, in process: {one:.0} ns per hit on 1 thread; {hot:.0} ns with {cores} threads on one blob; {spread:.0} ns with {cores} threads over 10000 blobs"
    );
}
