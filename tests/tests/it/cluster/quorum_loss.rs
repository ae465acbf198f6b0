//! Two of three nodes die: the survivor has no quorum, yet it stays ready (saying `degraded`),
//! serves every cached module, and passes misses through to the upstream.

use cairn_tests::cluster::ClusterConfig;
use cairn_tests::corpus::{generated_versions, m};
use cairn_tests::gocmd::{go, GoEnv};
use cairn_tests::wait::{patience, wait_until};

use super::{args, expected, fixture, start, warm};
use crate::common::{assert_maps_eq, sums};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_survivor_of_two_kills_serves_cached_and_passes_misses_through() {
    let Some(go) = go("cluster_survivor_of_two_kills_serves_cached_and_passes_misses_through")
    else {
        return;
    };
    let fixture = fixture().await;
    let mut cl = start(3, &fixture.url(), &ClusterConfig::fast()).await;
    let cached: Vec<(String, String)> = [
        (m::SIMPLE, "v1.1.0"),
        (m::UPPER, m::UPPER_RC),
        (m::LEGACY, m::LEGACY_INCOMPATIBLE),
        (m::MODV2, "v2.1.0"),
        (m::MANY, "v1.0.0"),
    ]
    .iter()
    .map(|(m, v)| (m.to_string(), v.to_string()))
    .collect();
    let shas = warm(&cl.url(1), &cached).await;
    cl.wait_blobs_everywhere(&shas).await.unwrap();
    cl.wait_converged().await.unwrap();

    let leader = cl.wait_for_leader().await.unwrap();
    let survivor = *cl.ids().iter().rev().find(|&&id| id != leader).unwrap();
    for id in cl.ids() {
        if id != survivor {
            cl.kill9(id).await;
        }
    }
    println!("killed every node but {survivor} (the leader was {leader})");

    let degraded_ready = || async {
        matches!(cl.readyz(survivor).await, Ok((200, body)) if body.contains("degraded"))
    };
    let waited = wait_until(
        format!("node {survivor}'s /readyz to answer 200 and say degraded"),
        patience(2.0),
        degraded_ready,
    )
    .await;
    if let Err(e) = waited {
        panic!("{e:#}: last answer {:?}", cl.readyz(survivor).await);
    }

    let d = GoEnv::new(&go, &cl.url(survivor))
        .unwrap()
        .mod_download_ok(&args(&cached))
        .await
        .unwrap_or_else(|e| panic!("cached modules through the survivor: {e:#}"));
    assert_maps_eq(
        "hashes through the survivor without quorum",
        &expected(&cached),
        &sums(&d),
    );

    let passthrough =
        |m: &cairn_tests::metrics::Metrics| m.sum("cairn_degraded_passthrough_total", &[]);
    let before = passthrough(&cl.metrics(survivor).await.unwrap());
    let miss = vec![generated_versions()[0].clone()];
    let d = GoEnv::new(&go, &cl.url(survivor))
        .unwrap()
        .mod_download_ok(&args(&miss))
        .await
        .unwrap_or_else(|e| panic!("a miss through the survivor without quorum: {e:#}"));
    assert_maps_eq("hashes of the miss", &expected(&miss), &sums(&d));
    let metrics = cl.metrics(survivor).await.unwrap();
    assert!(
        passthrough(&metrics) > before,
        "cairn_degraded_passthrough_total did not rise ({before} before):\n{}",
        metrics.dump("cairn_degraded")
    );

    let (status, body) = cl.readyz(survivor).await.unwrap();
    assert!(
        status == 200 && body.contains("degraded"),
        "/readyz after the miss: {status} {body}"
    );
    let out = cl.cli_at(survivor, &["status"]).await.unwrap();
    assert_eq!(out.code, Some(3), "`cairn status` without quorum: {out}");
}
