//! `Deny`, `Purge` and `ListPolicy` (issue 12): operator rules proposed through Raft.
//!
//! Input is checked here first, so a malformed pattern, a bad version or an unknown version
//! comes back as `INVALID_ARGUMENT`/`NOT_FOUND` and the state is untouched; apply checks the
//! same things again (a command is deterministic whatever its proposer did).

use cairn_proto::v1::{DenyRequest, ListPolicyReply, PolicyEntry, PolicyReply, PurgeRequest};

use crate::raft::policy::{deny_rule_problem, version_problem};
use crate::raft::Consensus;
use crate::store::meta::{DenyRule, MetaCmd, MetaResp, Tombstone};

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn opt(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// Proposes `cmd` and turns the outcome into the reply.
async fn propose(consensus: &Consensus, cmd: MetaCmd) -> Result<PolicyReply, tonic::Status> {
    let resp = consensus
        .propose(cmd)
        .await
        .map_err(|e| tonic::Status::unavailable(format!("cannot commit the change: {e}")))?;
    match resp {
        MetaResp::Applied => Ok(PolicyReply {
            outcome: "applied".into(),
        }),
        MetaResp::Unchanged => Ok(PolicyReply {
            outcome: "unchanged".into(),
        }),
        MetaResp::Conflict { reason } => Err(tonic::Status::failed_precondition(reason)),
    }
}

/// Adds or lifts a deny rule.
pub(super) async fn deny(
    consensus: &Consensus,
    operator: &str,
    req: &DenyRequest,
) -> Result<PolicyReply, tonic::Status> {
    let version = opt(&req.version);
    if let Some(problem) = deny_rule_problem(&req.pattern, version) {
        return Err(tonic::Status::invalid_argument(problem));
    }
    let cmd = if req.lift {
        MetaCmd::LiftDeny {
            pattern: req.pattern.clone(),
            version: version.map(str::to_owned),
        }
    } else {
        if req.reason.trim().is_empty() {
            return Err(tonic::Status::invalid_argument(
                "a deny rule needs a reason (--reason TEXT)",
            ));
        }
        MetaCmd::Deny(DenyRule {
            pattern: req.pattern.clone(),
            version: version.map(str::to_owned),
            reason: req.reason.clone(),
            by: operator.to_owned(),
            at_ms: now_ms(),
        })
    };
    propose(consensus, cmd).await
}

/// Purges a version or lifts its tombstone.
pub(super) async fn purge(
    consensus: &Consensus,
    operator: &str,
    req: &PurgeRequest,
) -> Result<PolicyReply, tonic::Status> {
    crate::module::check_path(&req.module).map_err(|e| {
        tonic::Status::invalid_argument(format!("{:?} is not a module path: {e}", req.module))
    })?;
    if let Some(problem) = version_problem(&req.version) {
        return Err(tonic::Status::invalid_argument(problem));
    }
    let reader = consensus.reader();
    let read_err = |e: crate::raft::MetaError| tonic::Status::internal(e.to_string());
    if req.lift {
        return propose(
            consensus,
            MetaCmd::LiftPurge {
                module: req.module.clone(),
                version: req.version.clone(),
            },
        )
        .await;
    }
    if req.reason.trim().is_empty() {
        return Err(tonic::Status::invalid_argument(
            "a purge needs a reason (--reason TEXT)",
        ));
    }
    let held = reader
        .get_version(&req.module, &req.version)
        .map_err(read_err)?
        .is_some();
    let tombstoned = reader
        .tombstone(&req.module, &req.version)
        .map_err(read_err)?
        .is_some();
    if !held && !tombstoned {
        return Err(tonic::Status::not_found(format!(
            "{}@{} is not held by the cluster: nothing to purge (use `cairn deny` to refuse a version the mirror has not fetched)",
            req.module, req.version
        )));
    }
    let cmd = MetaCmd::Purge(Tombstone {
        module: req.module.clone(),
        version: req.version.clone(),
        reason: req.reason.clone(),
        by: operator.to_owned(),
        at_ms: now_ms(),
        sha256: None,
    });
    propose(consensus, cmd).await
}

/// Every deny rule and tombstone this node has applied.
pub(super) fn list(consensus: &Consensus) -> Result<ListPolicyReply, tonic::Status> {
    let reader = consensus.reader();
    let read_err = |e: crate::raft::MetaError| tonic::Status::internal(e.to_string());
    let mut entries: Vec<PolicyEntry> = reader
        .deny_rules()
        .map_err(read_err)?
        .into_iter()
        .map(|r| PolicyEntry {
            kind: "deny".into(),
            pattern: r.pattern,
            version: r.version.unwrap_or_default(),
            reason: r.reason,
            by: r.by,
            at_ms: r.at_ms,
        })
        .collect();
    entries.extend(
        reader
            .tombstones()
            .map_err(read_err)?
            .into_iter()
            .map(|t| PolicyEntry {
                kind: "purge".into(),
                pattern: t.module,
                version: t.version,
                reason: t.reason,
                by: t.by,
                at_ms: t.at_ms,
            }),
    );
    Ok(ListPolicyReply { entries })
}

/// The deny rules that concern `module`, as `pattern[@version]: reason` (for `cairn route`).
pub(super) fn rules_for(consensus: &Consensus, module: &str) -> Vec<String> {
    let rules = consensus.reader().deny_rules().unwrap_or_default();
    crate::policy::gate::rules_for_module(&rules, module)
        .into_iter()
        .map(|r| format!("{}: {}", crate::policy::gate::rule_label(r), r.reason))
        .collect()
}
