//! Following a module index feed (`index.golang.org`'s format, which cairn's `/index` speaks):
//! pages of `{"Path","Version","Timestamp"}` lines, asked for with `?since=T&limit=N`, where the
//! next page starts at the last timestamp seen (inclusive, so the boundary repeats and is
//! deduplicated here).

use std::collections::HashSet;

use serde::Deserialize;

use super::inputs::{InputError, Plan};

/// One line of the feed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    path: String,
    version: String,
    timestamp: String,
}

/// Why the feed could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The request failed or the feed answered an error.
    #[error("{url}: {reason}")]
    Fetch {
        /// The page asked for.
        url: String,
        /// What happened.
        reason: String,
    },
    /// A line is not an index entry.
    #[error("{url}: line {line}: {reason}")]
    Line {
        /// The page.
        url: String,
        /// 1-based line of the page.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A full page had nothing after the boundary: the feed cannot advance.
    #[error("{url}: a full page of {limit} entries all at {since}: raise --index-limit")]
    Stuck {
        /// The page.
        url: String,
        /// The page size.
        limit: u32,
        /// The timestamp it is stuck at.
        since: String,
    },
    /// An entry names a path or version the protocol cannot carry.
    #[error(transparent)]
    Input(#[from] InputError),
}

/// What a walk of the feed found.
#[derive(Debug, Default)]
pub struct Walked {
    /// Entries read (after deduplication).
    pub entries: u64,
    /// The last timestamp seen: `--since` for the next run.
    pub next_since: Option<String>,
}

/// Reads every page of the feed at `url` from `since` on and adds each version to `plan`.
pub async fn walk(
    client: &reqwest::Client,
    url: &str,
    since: Option<&str>,
    limit: u32,
    token: Option<&str>,
    plan: &mut Plan,
) -> Result<Walked, IndexError> {
    let mut walked = Walked {
        next_since: since.map(str::to_string),
        ..Walked::default()
    };
    let mut seen_at_boundary: HashSet<(String, String)> = HashSet::new();
    loop {
        let page_url = page_url(url, walked.next_since.as_deref(), limit);
        let fail = |reason: String| IndexError::Fetch {
            url: page_url.clone(),
            reason,
        };
        let mut req = client.get(&page_url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| fail(cairn_node::egress::error_chain(&e)))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| fail(cairn_node::egress::error_chain(&e)))?;
        if !status.is_success() {
            let first = body.lines().next().unwrap_or("").trim().to_string();
            return Err(fail(format!("{status}: {first}")));
        }
        let mut lines = 0u32;
        let mut new = 0u64;
        let mut boundary: HashSet<(String, String)> = HashSet::new();
        let mut last_ts = walked.next_since.clone();
        for (n, line) in body.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            lines += 1;
            let e: Entry = serde_json::from_str(line).map_err(|err| IndexError::Line {
                url: page_url.clone(),
                line: n + 1,
                reason: err.to_string(),
            })?;
            let key = (e.path.clone(), e.version.clone());
            if last_ts.as_deref() != Some(e.timestamp.as_str()) {
                boundary.clear();
                last_ts = Some(e.timestamp.clone());
            }
            boundary.insert(key.clone());
            if seen_at_boundary.contains(&key) {
                continue;
            }
            new += 1;
            plan.add_list(&format!("{}@{}", e.path, e.version), &page_url)?;
        }
        walked.entries += new;
        // The next page starts at the last timestamp; entries already seen at it repeat.
        if last_ts == walked.next_since {
            seen_at_boundary.extend(boundary);
        } else {
            seen_at_boundary = boundary;
        }
        let advanced = last_ts != walked.next_since;
        walked.next_since = last_ts;
        if lines < limit {
            return Ok(walked);
        }
        if new == 0 && !advanced {
            return Err(IndexError::Stuck {
                url: page_url,
                limit,
                since: walked.next_since.unwrap_or_default(),
            });
        }
    }
}

fn page_url(url: &str, since: Option<&str>, limit: u32) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    match since {
        Some(s) => format!("{url}{sep}since={}&limit={limit}", encode(s)),
        None => format!("{url}{sep}limit={limit}"),
    }
}

/// Percent-encodes what a timestamp may hold that a query cannot (`+` of an offset, `:`).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_carry_since_and_limit() {
        assert_eq!(
            page_url("http://n/index", Some("2026-01-02T03:04:05.5+01:00"), 10),
            "http://n/index?since=2026-01-02T03%3A04%3A05.5%2B01%3A00&limit=10"
        );
        assert_eq!(
            page_url("http://n/index?x=1", None, 5),
            "http://n/index?x=1&limit=5"
        );
    }
}
