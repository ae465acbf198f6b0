//! `cairn deny` and `cairn purge` (issue 12): operator rules replicated to every node.
//!
//! - `cairn deny PATTERN[@VERSION] --reason TEXT`, `cairn deny --lift PATTERN[@VERSION]`,
//!   `cairn deny list`
//! - `cairn purge MODULE@VERSION --reason TEXT`, `cairn purge --lift MODULE@VERSION`,
//!   `cairn purge list`

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use cairn_proto::v1::{
    DenyRequest, ListPolicyReply, ListPolicyRequest, PolicyEntry, PolicyReply, PurgeRequest,
};

use crate::client;

/// Splits `pattern[@version]` (the version is optional).
pub fn split_target(target: &str) -> (&str, &str) {
    match target.rsplit_once('@') {
        Some((p, v)) => (p, v),
        None => (target, ""),
    }
}

/// Sends a deny rule (or its lifting).
pub async fn deny(
    node: &str,
    timeout: Duration,
    target: &str,
    reason: Option<&str>,
    lift: bool,
) -> Result<PolicyReply> {
    let (pattern, version) = split_target(target);
    if !lift && reason.is_none_or(|r| r.trim().is_empty()) {
        bail!("a deny rule needs --reason TEXT");
    }
    let mut client = client::connect(node, timeout).await?;
    let mut req = tonic::Request::new(DenyRequest {
        pattern: pattern.to_string(),
        version: version.to_string(),
        reason: reason.unwrap_or_default().to_string(),
        lift,
    });
    req.set_timeout(timeout);
    let reply = client
        .deny(req)
        .await
        .map_err(|s| anyhow!("deny {target} failed: {}", client::describe_status(&s)))?;
    Ok(reply.into_inner())
}

/// Sends a purge (or the lifting of its tombstone).
pub async fn purge(
    node: &str,
    timeout: Duration,
    target: &str,
    reason: Option<&str>,
    lift: bool,
) -> Result<PolicyReply> {
    let (module, version) = split_target(target);
    if version.is_empty() {
        bail!("purge needs MODULE@VERSION (one version), got {target:?}");
    }
    if !lift && reason.is_none_or(|r| r.trim().is_empty()) {
        bail!("a purge needs --reason TEXT");
    }
    let mut client = client::connect(node, timeout).await?;
    let mut req = tonic::Request::new(PurgeRequest {
        module: module.to_string(),
        version: version.to_string(),
        reason: reason.unwrap_or_default().to_string(),
        lift,
    });
    req.set_timeout(timeout);
    let reply = client
        .purge(req)
        .await
        .map_err(|s| anyhow!("purge {target} failed: {}", client::describe_status(&s)))?;
    Ok(reply.into_inner())
}

/// Every deny rule and tombstone of the node.
pub async fn list(node: &str, timeout: Duration) -> Result<ListPolicyReply> {
    let mut client = client::connect(node, timeout).await?;
    let mut req = tonic::Request::new(ListPolicyRequest {});
    req.set_timeout(timeout);
    let reply = client
        .list_policy(req)
        .await
        .map_err(|s| anyhow!("listing the policy failed: {}", client::describe_status(&s)))?;
    Ok(reply.into_inner())
}

fn target_of(e: &PolicyEntry) -> String {
    match e.version.as_str() {
        "" => e.pattern.clone(),
        v => format!("{}@{v}", e.pattern),
    }
}

/// The human list of one kind (`deny` or `purge`): one line per entry.
pub fn render(reply: &ListPolicyReply, kind: &str) -> String {
    let mut out = String::new();
    for e in reply.entries.iter().filter(|e| e.kind == kind) {
        out.push_str(&format!(
            "{}\tby {}\tat {}\t{}\n",
            target_of(e),
            e.by,
            e.at_ms,
            e.reason
        ));
    }
    if out.is_empty() {
        out = format!("no {kind} rules\n");
    }
    out
}

/// The `--json` list of one kind.
pub fn to_json(reply: &ListPolicyReply, kind: &str) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = reply
        .entries
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| {
            serde_json::json!({
                "target": target_of(e),
                "pattern": e.pattern,
                "version": (!e.version.is_empty()).then_some(&e.version),
                "reason": e.reason,
                "by": e.by,
                "at_ms": e.at_ms,
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_at_the_last_at() {
        assert_eq!(
            split_target("example.com/m@v1.0.0"),
            ("example.com/m", "v1.0.0")
        );
        assert_eq!(
            split_target("corp.example.com/*"),
            ("corp.example.com/*", "")
        );
    }

    #[test]
    fn lists_render_by_kind() {
        let reply = ListPolicyReply {
            entries: vec![PolicyEntry {
                kind: "deny".into(),
                pattern: "example.com/m".into(),
                version: "v1.0.0".into(),
                reason: "CVE".into(),
                by: "alice".into(),
                at_ms: 1,
            }],
        };
        assert!(render(&reply, "deny").contains("example.com/m@v1.0.0\tby alice"));
        assert_eq!(render(&reply, "purge"), "no purge rules\n");
        assert_eq!(to_json(&reply, "deny")[0]["reason"], "CVE");
    }
}
