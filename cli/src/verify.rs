//! `cairn verify`: asks a node to re-check every stored public version against the checksum
//! database and shows its progress (a bar on a terminal, a line per 10 % otherwise), then every
//! problem found. Exit status 1 when anything does not match or could not be checked.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{anyhow, Result};
use cairn_proto::v1::{VerifyFinding, VerifyProgress, VerifyRequest};

use crate::client;

/// The outcome of a whole run.
#[derive(Debug, Default)]
pub struct Report {
    /// The verifying database.
    pub database: String,
    /// Versions looked at.
    pub checked: u64,
    /// Versions stored when the run started.
    pub total: u64,
    /// Versions skipped because their paths are private.
    pub skipped_private: u64,
    /// Every problem.
    pub findings: Vec<VerifyFinding>,
}

/// Runs the verification on `node`, showing progress on stderr.
pub async fn verify(node: &str, timeout: Duration) -> Result<Report> {
    let mut client = client::connect(node, timeout).await?;
    let mut stream = client
        .verify(tonic::Request::new(VerifyRequest {}))
        .await
        .map_err(|s| anyhow!("verify failed: {}", client::describe_status(&s)))?
        .into_inner();
    let mut report = Report::default();
    let mut shown = Progress::new(std::io::stderr().is_terminal());
    loop {
        let msg = stream
            .message()
            .await
            .map_err(|s| anyhow!("verify failed: {}", client::describe_status(&s)))?;
        let Some(p) = msg else {
            return Err(anyhow!(
                "the node ended the verification before it was done"
            ));
        };
        let done = p.done;
        report.absorb(p);
        shown.show(&report);
        if done {
            shown.finish();
            return Ok(report);
        }
    }
}

impl Report {
    fn absorb(&mut self, p: VerifyProgress) {
        self.database = p.database;
        self.checked = p.checked;
        self.total = p.total;
        self.skipped_private = p.skipped_private;
        self.findings.extend(p.findings);
    }

    /// The human form: one line per problem, then a summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            out.push_str(&format!("{}@{}: {}\n", f.module, f.version, f.problem));
        }
        out.push_str(&format!(
            "{} versions checked against {} ({} private, not looked up): {} problem(s)\n",
            self.checked,
            self.database,
            self.skipped_private,
            self.findings.len()
        ));
        out
    }

    /// The `--json` form.
    pub fn to_json(&self) -> serde_json::Value {
        let findings: Vec<serde_json::Value> = self
            .findings
            .iter()
            .map(|f| serde_json::json!({"module": f.module, "version": f.version, "problem": f.problem}))
            .collect();
        serde_json::json!({
            "database": self.database,
            "checked": self.checked,
            "total": self.total,
            "skipped_private": self.skipped_private,
            "findings": findings,
        })
    }
}

/// Progress on stderr: a redrawn bar on a terminal, else a line at every 10 %.
struct Progress {
    tty: bool,
    last_tenth: Option<u64>,
}

impl Progress {
    fn new(tty: bool) -> Progress {
        Progress {
            tty,
            last_tenth: None,
        }
    }

    fn show(&mut self, r: &Report) {
        let total = r.total.max(r.checked).max(1);
        let pct = r.checked * 100 / total;
        let mut err = std::io::stderr();
        if self.tty {
            let filled = (pct / 5) as usize;
            let _ = write!(
                err,
                "\r[{}{}] {}/{} versions, {} problem(s)",
                "#".repeat(filled),
                ".".repeat(20 - filled.min(20)),
                r.checked,
                total,
                r.findings.len()
            );
            let _ = err.flush();
        } else if self.last_tenth != Some(pct / 10) {
            self.last_tenth = Some(pct / 10);
            let _ = writeln!(
                err,
                "verified {}/{} versions ({pct}%), {} problem(s)",
                r.checked,
                total,
                r.findings.len()
            );
        }
    }

    fn finish(&self) {
        if self.tty {
            let _ = writeln!(std::io::stderr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lists_findings_and_sums_up() {
        let mut r = Report::default();
        r.absorb(VerifyProgress {
            checked: 3,
            total: 3,
            database: "sum.golang.org".into(),
            skipped_private: 1,
            findings: vec![VerifyFinding {
                module: "example.com/m".into(),
                version: "v1.0.0".into(),
                problem: "zip: …".into(),
            }],
            done: true,
        });
        let text = r.render();
        assert!(text.starts_with("example.com/m@v1.0.0: zip: …\n"), "{text}");
        assert!(text.contains("3 versions checked against sum.golang.org (1 private, not looked up): 1 problem(s)"), "{text}");
        assert_eq!(r.to_json()["findings"][0]["version"], "v1.0.0");
    }
}
