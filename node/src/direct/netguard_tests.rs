//! Tests of the address guard: classification, networks, refusals and git pins.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn guard(allow: &[&str]) -> NetGuard {
    let cfg = DirectConfig {
        allow_networks: allow.iter().map(|s| s.to_string()).collect(),
        ..DirectConfig::default()
    };
    assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
    NetGuard::new(&cfg)
}

#[test]
fn non_global_addresses_are_classified() {
    for (addr, class) in [
        ("127.0.0.1", Some("loopback")),
        ("127.255.1.2", Some("loopback")),
        ("::1", Some("loopback")),
        ("10.1.2.3", Some("private")),
        ("172.16.0.1", Some("private")),
        ("172.31.255.255", Some("private")),
        ("192.168.1.1", Some("private")),
        ("169.254.169.254", Some("link-local")),
        ("fe80::1", Some("link-local")),
        ("fd00:ec2::254", Some("unique-local (private)")),
        ("fc00::1", Some("unique-local (private)")),
        ("0.0.0.0", Some("unspecified")),
        ("::", Some("unspecified")),
        ("0.1.2.3", Some("reserved")),
        ("100.64.0.1", Some("shared (CGNAT)")),
        ("100.127.255.255", Some("shared (CGNAT)")),
        ("224.0.0.1", Some("multicast")),
        ("ff02::1", Some("multicast")),
        ("255.255.255.255", Some("broadcast")),
        ("240.0.0.1", Some("reserved")),
        ("192.0.2.1", Some("documentation")),
        ("198.18.0.1", Some("benchmarking")),
        ("2001:db8::1", Some("documentation")),
        ("2001::1", Some("Teredo")),
        ("fec0::1", Some("site-local")),
        ("100::1", Some("reserved")),
        // IPv4 inside IPv6 is judged by the IPv4 address.
        ("::ffff:127.0.0.1", Some("loopback")),
        ("::ffff:169.254.169.254", Some("link-local")),
        ("64:ff9b::a9fe:a9fe", Some("link-local")),
        ("2002:0a00:0001::1", Some("private")),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::808:808", None),
        // Global.
        ("8.8.8.8", None),
        ("172.32.0.1", None),
        ("100.128.0.1", None),
        ("169.255.0.1", None),
        ("2606:4700::1111", None),
    ] {
        assert_eq!(non_global(ip(addr)), class, "{addr}");
    }
}

#[test]
fn cidrs_parse_and_contain() {
    let net: Cidr = "10.0.0.0/8".parse().unwrap();
    assert!(net.contains(ip("10.255.0.1")));
    assert!(net.contains(ip("::ffff:10.0.0.1")));
    assert!(!net.contains(ip("11.0.0.1")));
    assert!(!net.contains(ip("::1")));
    let host: Cidr = "127.0.0.1".parse().unwrap();
    assert_eq!(host.to_string(), "127.0.0.1/32");
    assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
    let all: Cidr = "0.0.0.0/0".parse().unwrap();
    assert!(all.contains(ip("169.254.169.254")));
    let v6: Cidr = "fd00::/8".parse().unwrap();
    assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
    assert!("10.0.0.1/8".parse::<Cidr>().is_err());
    assert!("::/129".parse::<Cidr>().is_err());
    assert!("10.0.0.0/x".parse::<Cidr>().is_err());
}

#[test]
fn refusals_say_what_and_how_to_allow() {
    let g = guard(&[]);
    let r = g
        .check("metadata.example", ip("169.254.169.254"))
        .unwrap_err();
    assert_eq!(
        r.to_string(),
        "discovery refused: metadata.example resolves to 169.254.169.254, a link-local address; \
         allow it with direct.allow_networks if this is intended"
    );
    let r = g.check_literal("127.0.0.1").unwrap_err();
    assert_eq!(
        r.to_string(),
        "discovery refused: 127.0.0.1 is a loopback address; \
         allow it with direct.allow_networks if this is intended"
    );
    assert!(g.check_literal("[::1]").is_err());
    assert!(g
        .check_literal("0.0.0.0")
        .unwrap_err()
        .to_string()
        .contains("an unspecified"));
    assert!(g.check_literal("example.com").is_ok());
    assert!(g.check_literal("8.8.8.8").is_ok());
    let allowed = guard(&["10.0.0.0/8", "127.0.0.1/32"]);
    assert!(allowed.check_literal("10.1.2.3").is_ok());
    assert!(allowed.check_literal("127.0.0.1").is_ok());
    assert!(allowed.check_literal("127.0.0.2").is_err());
    assert!(allowed.check_literal("169.254.169.254").is_err());
}

#[tokio::test]
async fn resolution_keeps_only_allowed_addresses() {
    let g = guard(&[])
        .fixed_answer("loop.example", vec!["127.0.0.1:0".parse().unwrap()])
        .fixed_answer(
            "mixed.example",
            vec![
                "10.0.0.1:0".parse().unwrap(),
                "93.184.216.34:0".parse().unwrap(),
            ],
        );
    let err = g.resolve("loop.example", 443).await.unwrap_err();
    assert!(
        matches!(&err, GuardError::Refused(r) if r.addr == ip("127.0.0.1") && r.class == "loopback"),
        "{err}"
    );
    assert_eq!(
        g.resolve("mixed.example", 443).await.unwrap(),
        vec!["93.184.216.34:443".parse::<SocketAddr>().unwrap()]
    );
    // The real resolver: `localhost` is loopback everywhere.
    assert!(matches!(
        g.resolve("localhost", 80).await,
        Err(GuardError::Refused(_))
    ));
    // Trusted hosts are not checked.
    let trusted = g.clone().trust("loop.example");
    assert_eq!(trusted.resolve("loop.example", 80).await.unwrap().len(), 1);
}

#[tokio::test]
async fn git_remotes_are_checked_and_http_ones_pinned() {
    let g = guard(&["10.0.0.0/8"])
        .fixed_answer("pub.example", vec!["93.184.216.34:0".parse().unwrap()])
        .fixed_answer("v6.example", vec!["[2606:4700::1111]:0".parse().unwrap()])
        .fixed_answer("loop.example", vec!["127.0.0.1:0".parse().unwrap()]);
    assert_eq!(
        g.git_pin("https://pub.example/r").await.unwrap().as_deref(),
        Some("http.curloptResolve=pub.example:443:93.184.216.34")
    );
    assert_eq!(
        g.git_pin("http://v6.example:8080/r")
            .await
            .unwrap()
            .as_deref(),
        Some("http.curloptResolve=v6.example:8080:[2606:4700::1111]")
    );
    for refused in [
        "https://loop.example/r",
        "ssh://git@loop.example/r",
        "git@loop.example:r",
        "https://127.0.0.1/r",
        "https://127.1/r",
        "http://[::1]:8080/r",
        "git://169.254.169.254/r",
        "git@169.254.169.254:r",
    ] {
        let err = g.git_pin(refused).await.unwrap_err();
        assert!(matches!(err, GuardError::Refused(_)), "{refused}: {err}");
    }
    // Checked but not pinnable (ssh resolves the name itself), or allowed literally.
    assert_eq!(g.git_pin("ssh://git@pub.example/r").await.unwrap(), None);
    assert_eq!(g.git_pin("https://10.1.2.3/r").await.unwrap(), None);
    assert_eq!(g.git_pin("file:///srv/git/r").await.unwrap(), None);
}
