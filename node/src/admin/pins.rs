//! `cairn pin` (issue 12): pins are replicated rules, proposed through Raft (a follower forwards
//! to the leader), audited by the caller's node.

use cairn_proto::v1::{Pin, PinListReply, PinReply};

use crate::raft::{Consensus, ProposeError};
use crate::store::meta::{MetaCmd, MetaResp, PinRecord};

fn propose_status(e: ProposeError) -> tonic::Status {
    match e {
        ProposeError::NoLeader { .. } | ProposeError::NoQuorum { .. } => {
            tonic::Status::unavailable(format!("{e}; try again once the cluster has a leader"))
        }
        ProposeError::Timeout { .. } => tonic::Status::deadline_exceeded(e.to_string()),
        other => tonic::Status::internal(other.to_string()),
    }
}

fn changed(resp: MetaResp) -> Result<PinReply, tonic::Status> {
    match resp {
        MetaResp::Applied => Ok(PinReply { changed: true }),
        MetaResp::Unchanged => Ok(PinReply { changed: false }),
        MetaResp::Conflict { reason } => Err(tonic::Status::failed_precondition(reason)),
    }
}

/// Pins `pattern` for `operator`.
pub(super) async fn add(
    consensus: &Consensus,
    pattern: &str,
    operator: &str,
) -> Result<PinReply, tonic::Status> {
    crate::disk::pins::validate(pattern)
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    let cmd = MetaCmd::Pin(PinRecord {
        pattern: pattern.to_string(),
        by: operator.to_string(),
        at_ms: crate::store::now_ms(),
    });
    changed(consensus.propose(cmd).await.map_err(propose_status)?)
}

/// Removes the pin `pattern`.
pub(super) async fn remove(
    consensus: &Consensus,
    pattern: &str,
) -> Result<PinReply, tonic::Status> {
    if pattern.is_empty() {
        return Err(tonic::Status::invalid_argument("give the pattern to unpin"));
    }
    let cmd = MetaCmd::Unpin {
        pattern: pattern.to_string(),
    };
    changed(consensus.propose(cmd).await.map_err(propose_status)?)
}

/// Every pin, from this node's applied state.
pub(super) fn list(consensus: &Consensus) -> Result<PinListReply, tonic::Status> {
    let pins = consensus
        .reader()
        .pins()
        .map_err(|e| tonic::Status::internal(e.to_string()))?;
    Ok(PinListReply {
        pins: pins
            .into_iter()
            .map(|p| Pin {
                pattern: p.pattern,
                by: p.by,
                at_ms: p.at_ms,
            })
            .collect(),
    })
}
