//! `cairn route <module path>`: which routing rule a module path matches on the given node, with
//! the rule's upstream (credentials redacted) and whether the path is private or refused.

use std::time::Duration;

use anyhow::{anyhow, Result};
use cairn_proto::v1::{RouteReply, RouteRequest};

use crate::client;

/// Asks the node which rule `module` matches.
pub async fn route(node: &str, timeout: Duration, module: &str) -> Result<RouteReply> {
    let mut client = client::connect(node, timeout).await?;
    let mut req = tonic::Request::new(RouteRequest {
        module: module.to_string(),
    });
    req.set_timeout(timeout);
    let reply = client
        .route(req)
        .await
        .map_err(|s| anyhow!("route of {module} failed: {}", client::describe_status(&s)))?;
    Ok(reply.into_inner())
}

/// The human form: the rule, then one `key: value` line per property.
pub fn render(module: &str, r: &RouteReply) -> String {
    let rule = if r.default_rule {
        format!("default (implicit last rule #{})", r.rule_index)
    } else {
        format!("#{} {}", r.rule_index, r.name)
    };
    let access = if r.denied {
        "denied (answered 403, no upstream is asked)"
    } else if r.private {
        "private (never sent to a public upstream or checksum database)"
    } else {
        "public"
    };
    let upstream = if r.denied { "-" } else { r.upstream.as_str() };
    let mut out = format!(
        "module:   {module}\nrule:     {rule}\npatterns: {}\nupstream: {upstream}\naccess:   {access}\nsumdb:    {}\n",
        r.patterns,
        if r.sumdb { "consulted" } else { "not consulted" },
    );
    // Operator deny rules (issue 12).
    for rule in &r.deny_rules {
        out.push_str(&format!("deny:     {rule}\n"));
    }
    out
}

/// The `--json` form.
pub fn to_json(module: &str, r: &RouteReply) -> serde_json::Value {
    serde_json::json!({
        "module": module,
        "rule_index": r.rule_index,
        "name": r.name,
        "patterns": r.patterns,
        "upstream": r.upstream,
        "private": r.private,
        "sumdb": r.sumdb,
        "denied": r.denied,
        "default": r.default_rule,
        "deny_rules": r.deny_rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_private_and_denied_rules() {
        let r = RouteReply {
            rule_index: 1,
            name: "corp".into(),
            patterns: "corp.example.com".into(),
            upstream: "https://git.corp.example".into(),
            private: true,
            ..RouteReply::default()
        };
        let text = render("corp.example.com/x", &r);
        assert!(text.contains("rule:     #1 corp"), "{text}");
        assert!(text.contains("access:   private"), "{text}");
        let denied = RouteReply { denied: true, ..r };
        assert!(render("m", &denied).contains("denied"));
        assert_eq!(to_json("m", &denied)["denied"], true);
    }
}
