//! Promise 6 (bounded): memory does not grow with the size of a zip or with the number of
//! concurrent clients. Measured from the node's `/proc/<pid>/status` (Linux only).

use std::time::Duration;

use cairn_tests::corpus::m;
use cairn_tests::h1::version_path;
use cairn_tests::node::CairnNode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{assert_zip_body, corpus, corpus_fixture, get, start_node, FAST_UPSTREAM};

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
fn proc_kib(node: &CairnNode, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid()?)).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_with_big_zips_and_many_slow_readers() {
    let c = corpus();
    let fixture = corpus_fixture().await;
    let node = start_node(&fixture.url(), FAST_UPSTREAM).await;
    let Some(base) = proc_kib(&node, "VmHWM:") else {
        eprintln!("SKIPPED: no /proc/<pid>/status here");
        return;
    };
    let zip = version_path(m::BIG, "v1.0.0", "zip");
    let r = get(&node, &zip).await;
    assert_zip_body(&r, c, m::BIG, "v1.0.0");
    let after_fill = proc_kib(&node, "VmHWM:").unwrap();
    eprintln!("VmHWM: start {base} KiB, after a 22 MB fill {after_fill} KiB");
    assert!(
        after_fill < base + 12 * 1024,
        "peak RSS grew by {} KiB while filling a 22 MB zip: is the fill buffered in memory?",
        after_fill - base
    );

    // 20 clients that ask for the zip and then read nothing: the node must not buffer 20 copies
    // (that would be 440 MB); allow 2 MiB per connection for buffers.
    let mut socks = Vec::new();
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(node.addrs().http)
            .await
            .unwrap();
        let req = format!("GET {zip} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut first = [0u8; 1];
        s.read_exact(&mut first).await.unwrap();
        socks.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = proc_kib(&node, "VmRSS:").unwrap();
    let hwm = proc_kib(&node, "VmHWM:").unwrap();
    eprintln!("with 20 stalled readers: VmRSS {rss} KiB, VmHWM {hwm} KiB");
    drop(socks);
    assert!(
        hwm < after_fill + 20 * 2048,
        "peak RSS grew by {} KiB with 20 stalled readers of a 22 MB zip",
        hwm - after_fill
    );
}
