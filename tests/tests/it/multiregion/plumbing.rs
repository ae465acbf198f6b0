//! The emulated regions themselves: delays, cuts, clean-up, and a cluster across them.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use cairn_tests::gocmd::{go, GoEnv};
use cairn_tests::netns::{regions_or_skip, Delays, Regions};

use super::{fixture, Deployment};
use crate::cluster::{args, expected};
use crate::common::{assert_maps_eq, sums};

/// A listener on `ip` (port 0) created inside `region`.
fn listen(net: &Regions, region: &str, ip: Ipv4Addr) -> TcpListener {
    net.run_in(region, move || TcpListener::bind((ip, 0)))
        .unwrap()
        .unwrap()
}

/// How long a TCP connect from inside `region` to `to` takes (one round trip), or its error.
fn connect_from(net: &Regions, region: &str, to: SocketAddr) -> std::io::Result<Duration> {
    net.run_in(region, move || {
        let t = Instant::now();
        TcpStream::connect_timeout(&to, Duration::from_secs(1)).map(|_| t.elapsed())
    })
    .unwrap()
}

fn namespaces() -> String {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn netns_regions_delay_cut_and_clean_up() {
    let test = "netns_regions_delay_cut_and_clean_up";
    let Some(net) = regions_or_skip(test, &["a", "b", "c"], 2, Delays::default()) else {
        return;
    };
    // Connects complete in the listeners' backlogs: nobody needs to accept.
    let listeners = [
        listen(&net, "b", net.host("b", 0)),
        listen(&net, "c", net.host("c", 0)),
        TcpListener::bind((net.root_ip(), 0)).unwrap(),
    ];
    let [b, c, root] = listeners.each_ref().map(|l| l.local_addr().unwrap());

    let rtt = connect_from(&net, "a", b).unwrap();
    eprintln!("{test}: TCP connect a -> b: {rtt:?}");
    assert!(
        rtt >= Duration::from_millis(98) && rtt < Duration::from_millis(300),
        "a region-to-region round trip should be ~100 ms, was {rtt:?}"
    );
    let bytes = net.link_bytes();
    let on = |s: &str, d: &str| bytes[&(s.to_string(), d.to_string())];
    assert!(
        on("a", "b") >= 40 && on("b", "a") >= 40,
        "the connect's SYN and SYN-ACK crossed a <-> b: {bytes:?}"
    );
    assert_eq!(on("a", "c"), 0, "nothing was sent a -> c: {bytes:?}");
    let local = connect_from(&net, "b", b).unwrap();
    let to_root = connect_from(&net, "b", root).unwrap();
    eprintln!("{test}: TCP connect b -> b: {local:?}, b -> root: {to_root:?}");
    assert!(
        local < Duration::from_millis(5),
        "inside a region: {local:?}"
    );
    assert!(
        to_root < Duration::from_millis(20),
        "to the root: {to_root:?}"
    );

    net.cut("c");
    let err = connect_from(&net, "a", c).unwrap_err();
    assert_eq!(
        err.kind(),
        std::io::ErrorKind::TimedOut,
        "a cut drops packets silently (a timeout, not a refusal): {err}"
    );
    assert_eq!(
        net.link_bytes()[&("a".to_string(), "c".to_string())],
        0,
        "a cut delivers nothing"
    );
    connect_from(&net, "c", root).expect("a cut region still reaches the root namespace");
    TcpStream::connect_timeout(&c, Duration::from_secs(1)).expect("the root still reaches it");
    connect_from(&net, "a", b).expect("the other regions still talk");
    net.heal("c");
    connect_from(&net, "a", c).expect("healed");

    let names: Vec<String> = net.regions().iter().map(|r| r.ns.clone()).collect();
    assert!(names.iter().all(|n| namespaces().contains(n.as_str())));
    drop(listeners);
    drop(net);
    let left = namespaces();
    for n in &names {
        assert!(!left.contains(n.as_str()), "{n} left behind:\n{left}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_one_node_per_region_serves_the_go_command() {
    let test = "netns_one_node_per_region_serves_the_go_command";
    let Some(go) = go(test) else { return };
    let Some(net) = regions_or_skip(test, &["a", "b", "c"], 1, Delays::default()) else {
        return;
    };
    let upstream = fixture(&net).await;
    let d = Deployment::start(&net, 1, 1, &upstream.url()).await;
    let leader = d.cluster.wait_for_leader().await.unwrap();
    eprintln!(
        "{test}: leader is node {leader} in region {}",
        d.region(leader)
    );
    let versions = vec![(cairn_tests::corpus::gen_module(0), "v1.0.0".to_string())];
    for r in ["a", "b", "c"] {
        let env = GoEnv::new(&go, d.lbs[r].url())
            .unwrap()
            .with_prefix(net.exec_prefix(r));
        let t = Instant::now();
        let got = env.mod_download_ok(&args(&versions)).await.unwrap();
        eprintln!("{test}: go mod download in region {r}: {:?}", t.elapsed());
        assert_maps_eq(&format!("region {r}"), &expected(&versions), &sums(&got));
    }
    d.cluster.wait_converged().await.unwrap();
    drop(d);
}
