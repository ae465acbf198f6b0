//! `cairn pin PATTERN`, `cairn unpin PATTERN`, `cairn pin list`: replicated rules that keep the
//! versions a pattern matches on every node's disk (never evicted). A pattern is a module glob
//! (`corp.example.com/*`, GOPRIVATE semantics), optionally `@VERSION` (a glob too).

use std::time::Duration;

use anyhow::{anyhow, Result};
use cairn_proto::v1::{PinListReply, PinListRequest, PinReply, PinRequest};

use crate::client;

/// Pins `pattern` (`add`) or removes the pin.
pub async fn change(node: &str, timeout: Duration, pattern: &str, add: bool) -> Result<PinReply> {
    let mut client = client::connect(node, timeout).await?;
    let mut req = tonic::Request::new(PinRequest {
        pattern: pattern.to_string(),
    });
    req.set_timeout(timeout);
    let res = if add {
        client.pin_add(req).await
    } else {
        client.pin_remove(req).await
    };
    let what = if add { "pin" } else { "unpin" };
    res.map(tonic::Response::into_inner)
        .map_err(|s| anyhow!("{what} {pattern} failed: {}", client::describe_status(&s)))
}

/// Every pin the node knows.
pub async fn list(node: &str, timeout: Duration) -> Result<PinListReply> {
    let mut client = client::connect(node, timeout).await?;
    let mut req = tonic::Request::new(PinListRequest {});
    req.set_timeout(timeout);
    let reply = client
        .pin_list(req)
        .await
        .map_err(|s| anyhow!("pin list failed: {}", client::describe_status(&s)))?;
    Ok(reply.into_inner())
}

/// The line printed after a change.
pub fn render_change(pattern: &str, add: bool, r: &PinReply) -> String {
    match (add, r.changed) {
        (true, true) => format!("pinned {pattern}: its versions are never evicted\n"),
        (true, false) => format!("{pattern} was already pinned\n"),
        (false, true) => format!("unpinned {pattern}\n"),
        (false, false) => format!("{pattern} was not pinned\n"),
    }
}

/// The human list: one pin per line.
pub fn render_list(r: &PinListReply) -> String {
    if r.pins.is_empty() {
        return "no pins\n".to_string();
    }
    let mut out = String::new();
    for p in &r.pins {
        out.push_str(&format!("{}\tby {}\tat {} ms\n", p.pattern, p.by, p.at_ms));
    }
    out
}

/// The `--json` list.
pub fn list_json(r: &PinListReply) -> serde_json::Value {
    serde_json::Value::Array(
        r.pins
            .iter()
            .map(|p| serde_json::json!({"pattern": p.pattern, "by": p.by, "at_ms": p.at_ms}))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_proto::v1::Pin;

    #[test]
    fn renders_pins() {
        let r = PinListReply {
            pins: vec![Pin {
                pattern: "corp.example.com/*".into(),
                by: "alice".into(),
                at_ms: 5,
            }],
        };
        assert!(render_list(&r).starts_with("corp.example.com/*\tby alice"));
        assert_eq!(list_json(&r)[0]["pattern"], "corp.example.com/*");
        assert_eq!(render_list(&PinListReply::default()), "no pins\n");
        let changed = PinReply { changed: true };
        assert!(render_change("x", true, &changed).starts_with("pinned x"));
    }
}
