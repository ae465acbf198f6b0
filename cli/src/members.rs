//! `cairn members list|add|remove`. Changes go to the given node, which forwards them to the
//! leader; the resulting membership is printed. Failures print the node's own message and are
//! never retried.

use std::time::Duration;

use anyhow::{anyhow, Result};
use cairn_proto::v1::{AddMemberRequest, Member, MembershipReply, RemoveMemberRequest};

use crate::client;
use crate::cluster::{align, ClusterView};

/// `cairn members list`: the membership with each member's reachability and role.
pub fn render_list(view: &ClusterView) -> String {
    let mut rows = vec![["ID", "ADDR", "VOTER", "ROLE", "REACHABLE"]
        .map(String::from)
        .to_vec()];
    for m in &view.members {
        let voter = match m.voter {
            Some(true) => "voter",
            Some(false) => "learner",
            None => "not a member",
        };
        let (role, reachable) = match &m.reply {
            Ok(r) => (r.raft_state.to_lowercase(), "yes".to_string()),
            Err(e) => ("-".to_string(), format!("no ({e})")),
        };
        rows.push(vec![
            m.id.to_string(),
            m.addr.clone(),
            voter.to_string(),
            role,
            reachable,
        ]);
    }
    align(&rows)
}

/// `cairn members add`: adds `id` at `addr` (a learner first, then a voter unless `learner`).
pub async fn add(
    node: &str,
    connect: Duration,
    wait: Duration,
    id: u64,
    addr: &str,
    learner: bool,
    force_placement: bool,
) -> Result<MembershipReply> {
    let mut client = client::connect(node, connect).await?;
    let mut req = tonic::Request::new(AddMemberRequest {
        id,
        addr: addr.to_string(),
        learner_only: learner,
        force_placement,
    });
    req.set_timeout(wait);
    let reply = client
        .add_member(req)
        .await
        .map_err(|s| anyhow!("adding node {id} failed: {}", client::describe_status(&s)))?;
    Ok(reply.into_inner())
}

/// `cairn members remove`: removes `id` from the membership.
pub async fn remove(
    node: &str,
    connect: Duration,
    wait: Duration,
    id: u64,
) -> Result<MembershipReply> {
    let mut client = client::connect(node, connect).await?;
    let mut req = tonic::Request::new(RemoveMemberRequest { id });
    req.set_timeout(wait);
    let reply = client
        .remove_member(req)
        .await
        .map_err(|s| anyhow!("removing node {id} failed: {}", client::describe_status(&s)))?;
    Ok(reply.into_inner())
}

/// The membership after a change, as a table.
pub fn render_reply(r: &MembershipReply) -> String {
    let mut rows = vec![["ID", "ADDR", "VOTER"].map(String::from).to_vec()];
    for m in &r.members {
        let voter = if m.voter { "voter" } else { "learner" };
        let id = if m.id == r.leader_id {
            format!("{} (leader)", m.id)
        } else {
            m.id.to_string()
        };
        rows.push(vec![id, m.addr.clone(), voter.to_string()]);
    }
    align(&rows)
}

/// The membership after a change, as JSON.
pub fn reply_json(r: &MembershipReply) -> serde_json::Value {
    let members: Vec<serde_json::Value> = r.members.iter().map(member_json).collect();
    serde_json::json!({
        "leader_id": if r.leader_id == 0 { None } else { Some(r.leader_id) },
        "members": members,
    })
}

fn member_json(m: &Member) -> serde_json::Value {
    serde_json::json!({"id": m.id, "addr": m.addr, "voter": m.voter})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_render() {
        let r = MembershipReply {
            members: vec![
                Member {
                    id: 1,
                    addr: "a:1".into(),
                    voter: true,
                    matched_index: 0,
                    region: String::new(),
                    zone: String::new(),
                },
                Member {
                    id: 4,
                    addr: "d:1".into(),
                    voter: false,
                    matched_index: 0,
                    region: String::new(),
                    zone: String::new(),
                },
            ],
            leader_id: 1,
        };
        assert_eq!(
            render_reply(&r),
            "ID          ADDR  VOTER\n1 (leader)  a:1   voter\n4           d:1   learner\n"
        );
        assert_eq!(reply_json(&r)["members"][1]["voter"], false);
        assert_eq!(reply_json(&r)["leader_id"], 1);
    }
}
