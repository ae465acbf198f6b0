//! `Verify`: runs an [`Audit`] of this node's stored versions and streams its progress to the
//! CLI (`cairn verify`). The audit runs in its own task; if the operator goes away, the stream's
//! receiver is dropped and the audit stops at its next report.

use std::sync::Arc;

use cairn_proto::v1::{VerifyFinding, VerifyProgress};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::sumdb::{Audit, AuditProgress};

/// The stream type of the `Verify` RPC.
pub type VerifyStream = ReceiverStream<Result<VerifyProgress, tonic::Status>>;

/// Starts the audit and returns its progress stream.
pub(super) fn start(audit: Option<Arc<Audit>>) -> Result<VerifyStream, tonic::Status> {
    let audit = audit.ok_or_else(|| {
        tonic::Status::failed_precondition(
            "this node cannot verify (no checksum database is configured to verify versions)",
        )
    })?;
    let (out_tx, out_rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let (progress_tx, mut progress_rx) = mpsc::channel::<AuditProgress>(16);
        let forward = async {
            while let Some(p) = progress_rx.recv().await {
                if out_tx.send(Ok(to_wire(p))).await.is_err() {
                    break;
                }
            }
        };
        let (result, ()) = tokio::join!(audit.run(progress_tx), forward);
        if let Err(e) = result {
            let _ = out_tx
                .send(Err(tonic::Status::failed_precondition(e.to_string())))
                .await;
        }
    });
    Ok(ReceiverStream::new(out_rx))
}

fn to_wire(p: AuditProgress) -> VerifyProgress {
    VerifyProgress {
        checked: p.checked,
        total: p.total,
        findings: p
            .findings
            .into_iter()
            .map(|f| VerifyFinding {
                module: f.module,
                version: f.version,
                problem: f.problem,
            })
            .collect(),
        done: p.done,
        database: p.database,
        skipped_private: p.skipped_private,
    }
}
