//! The admin service against in-process clusters: membership changes (through a follower, so
//! the forward to the leader is exercised), their refusals, and `Status`.

use cairn_proto::v1::admin_client::AdminClient;
use cairn_proto::v1::{AddMemberRequest, MembershipReply, RemoveMemberRequest, StatusRequest};
use tonic::transport::Channel;
use tonic::Code;

use super::testing::{self, listen, peers, start_cluster, wait_for_leader, wait_until, TestNode};
use crate::raft::BootstrapState;
use crate::store::meta::{MetaCmd, MetaResp};

async fn client(addr: &str) -> AdminClient<Channel> {
    AdminClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

async fn add(
    c: &mut AdminClient<Channel>,
    id: u64,
    addr: &str,
    learner_only: bool,
) -> Result<MembershipReply, tonic::Status> {
    let req = AddMemberRequest {
        id,
        addr: addr.to_string(),
        learner_only,
        force_placement: false,
    };
    c.add_member(req).await.map(|r| r.into_inner())
}

async fn remove(c: &mut AdminClient<Channel>, id: u64) -> Result<MembershipReply, tonic::Status> {
    c.remove_member(RemoveMemberRequest { id })
        .await
        .map(|r| r.into_inner())
}

fn voters(r: &MembershipReply) -> Vec<(u64, bool)> {
    r.members.iter().map(|m| (m.id, m.voter)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_learner_promote_and_remove_through_a_follower() {
    let nodes = start_cluster(3, &testing::settings()).await;
    let leader = wait_for_leader(&nodes).await;
    let follower = nodes.iter().find(|n| n.id != leader).unwrap();
    let (l4, addr4) = listen().await;
    let all = peers(&[
        (1, &nodes[0].addr),
        (2, &nodes[1].addr),
        (3, &nodes[2].addr),
        (4, &addr4),
    ]);
    let n4 = TestNode::start(4, l4, all, &testing::settings()).await;
    assert_eq!(
        n4.consensus.bootstrap_state(),
        BootstrapState::AwaitingMembership
    );
    let mut c = client(&follower.addr).await;

    let r = add(&mut c, 4, &addr4, true).await.unwrap();
    assert_eq!(voters(&r), [(1, true), (2, true), (3, true), (4, false)]);
    assert_eq!(r.leader_id, leader);
    let r = add(&mut c, 4, &addr4, false).await.unwrap();
    assert_eq!(voters(&r), [(1, true), (2, true), (3, true), (4, true)]);
    wait_until("node 4 knows the leader", || {
        n4.consensus.status().leader_id == Some(leader)
    })
    .await;
    let cmd = MetaCmd::PutList {
        module: "example.com/new".into(),
        versions: vec![],
        fetched_at_ms: 1,
    };
    assert_eq!(n4.consensus.propose(cmd).await.unwrap(), MetaResp::Applied);
    wait_until("the follower sees 4 members", || {
        follower.consensus.status().members.len() == 4
    })
    .await;
    let st = c.status(StatusRequest {}).await.unwrap().into_inner();
    assert!(st.initialized);
    assert_eq!(st.members.len(), 4);
    assert_eq!((st.blobs_missing, st.repair_queue), (7, 2));

    let r = remove(&mut c, 4).await.unwrap();
    assert_eq!(voters(&r), [(1, true), (2, true), (3, true)]);
    let err = remove(&mut c, 4).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    n4.stop().await;
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_membership_requests_are_refused_with_advice() {
    let nodes = start_cluster(1, &testing::settings()).await;
    wait_for_leader(&nodes).await;
    let mut c = client(&nodes[0].addr).await;
    let err = add(&mut c, 0, "h:1", false).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let err = add(&mut c, 5, "http://h:1", false).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let err = add(&mut c, 1, "elsewhere:1", false).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("cairn members remove 1"), "{err:?}");
    let err = add(&mut c, 7, &nodes[0].addr, false).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = remove(&mut c, 1).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("last voter"), "{err:?}");
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_leader_membership_changes_are_unavailable() {
    let (l2, addr2) = listen().await;
    let node = TestNode::start(
        2,
        l2,
        peers(&[(1, "127.0.0.1:1"), (2, &addr2)]),
        &testing::settings(),
    )
    .await;
    let mut c = client(&node.addr).await;
    let err = add(&mut c, 3, "h:1", false).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("no leader"), "{err:?}");
    let st = c.status(StatusRequest {}).await.unwrap().into_inner();
    assert!(!st.initialized);
    assert!(
        st.health.starts_with("degraded: not a cluster member"),
        "{}",
        st.health
    );
    node.stop().await;
}
