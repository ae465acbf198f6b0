//! A follower paused (`SIGSTOP`) while the others append well over a hundred entries and compact
//! their logs past its position catches up after `SIGCONT`, through a snapshot install.

use cairn_tests::cluster::ClusterConfig;
use cairn_tests::corpus::generated_versions;

use super::{fixture, start, warm};

/// Entries to append while the follower sleeps.
const ENTRIES: u64 = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_paused_follower_catches_up_through_a_snapshot() {
    let fixture = fixture().await;
    let config = ClusterConfig::fast()
        .set("raft", "snapshot_every_logs", 50)
        .set("raft", "max_logs_kept", 10)
        .set("raft", "purge_batch_size", 1);
    let mut cl = start(3, &fixture.url(), &config).await;
    let leader = cl.wait_for_leader().await.unwrap();
    let follower = *cl.ids().iter().rev().find(|&&id| id != leader).unwrap();
    let paused_at = cl.wait_converged().await.unwrap();
    let log_offset = cl.node(follower).log().len();
    cl.sigstop(follower).await.unwrap();

    // New versions through the leader, a batch at a time, until enough entries were applied.
    let mut added = 0;
    let mut applied = cl.applied(leader).await.unwrap();
    for batch in generated_versions().chunks(8) {
        if applied >= paused_at + ENTRIES {
            break;
        }
        warm(&cl.url(leader), batch).await;
        added += batch.len();
        applied = cl.applied(leader).await.unwrap();
    }
    assert!(
        applied >= paused_at + ENTRIES,
        "{added} new versions moved the applied index only from {paused_at} to {applied}"
    );
    println!(
        "node {follower} paused at index {paused_at}; {added} versions later the leader applied {applied}"
    );

    cl.sigcont(follower).await.unwrap();
    let caught_up = cl.wait_caught_up(follower).await.unwrap();
    let log = cl.node(follower).log();
    let since = &log[log_offset.min(log.len())..];
    let installs: Vec<&str> = since
        .lines()
        .filter(|l| l.contains("raft snapshot installed"))
        .collect();
    println!(
        "node {follower} caught up at index {caught_up}; snapshot installs: {}",
        installs.len()
    );
    assert!(
        !installs.is_empty(),
        "node {follower} caught up without logging `raft snapshot installed` although the log was \
         compacted past index {paused_at} (snapshot_every_logs 50, max_logs_kept 10); its log since \
         the pause:\n{}",
        since.lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
    cl.wait_converged().await.unwrap();
}
