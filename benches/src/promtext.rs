//! A small reader for the Prometheus text format cairn's `/metrics` renders: enough to read
//! gauges (`cairn_raft_is_leader`), counters (`cairn_degraded_passthrough_total`) and histogram
//! sums/counts (`cairn_blob_transfer_duration_seconds_sum{direction="receive"}`), with label
//! filters. Label values here are bounded enums, so escapes are handled only for `\"` and `\\`.

/// One scrape: every sample line as (name, labels, value).
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    samples: Vec<Sample>,
}

#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Scrape {
    /// Parses the text; lines it cannot read are skipped.
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(parse_line)
            .collect();
        Scrape { samples }
    }

    /// The sum of every sample of `name` whose labels include all of `filter` (0 if none).
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name && matches(&s.labels, filter))
            .map(|s| s.value)
            .sum()
    }

    /// Every series of `name` as (labels rendered `k=v,…`, value).
    pub fn series(&self, name: &str) -> Vec<(String, f64)> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| {
                let labels: Vec<String> =
                    s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                (labels.join(","), s.value)
            })
            .collect()
    }
}

fn matches(labels: &[(String, String)], filter: &[(&str, &str)]) -> bool {
    filter
        .iter()
        .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
}

fn parse_line(line: &str) -> Option<Sample> {
    let (head, value) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            let labels = parse_labels(&line[open + 1..close]);
            let value = line[close + 1..].split_whitespace().next()?;
            ((line[..open].to_owned(), labels), value)
        }
        None => {
            let mut parts = line.split_whitespace();
            let name = parts.next()?;
            ((name.to_owned(), Vec::new()), parts.next()?)
        }
    };
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: head.0,
        labels: head.1,
        value,
    })
}

fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_owned();
        let after = &rest[eq + 1..];
        let Some(body) = after.strip_prefix('"') else {
            break;
        };
        let mut value = String::new();
        let mut chars = body.char_indices();
        let mut end = body.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key, value));
        rest = &body[end.min(body.len())..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_gauges_counters_and_labels() {
        let text = "# HELP x y\n# TYPE cairn_raft_is_leader gauge\ncairn_raft_is_leader 1\n\
            cairn_blob_transfer_duration_seconds_sum{direction=\"receive\"} 0.25\n\
            cairn_blob_transfer_duration_seconds_sum{direction=\"send\"} 0.5\n\
            cairn_http_requests_total{endpoint=\"zip\",status=\"200\"} 3\n";
        let s = Scrape::parse(text);
        assert_eq!(s.sum("cairn_raft_is_leader", &[]), 1.0);
        assert_eq!(s.sum("cairn_blob_transfer_duration_seconds_sum", &[]), 0.75);
        assert_eq!(
            s.sum(
                "cairn_blob_transfer_duration_seconds_sum",
                &[("direction", "send")]
            ),
            0.5
        );
        assert_eq!(
            s.sum("cairn_http_requests_total", &[("status", "200")]),
            3.0
        );
        assert_eq!(s.sum("missing", &[]), 0.0);
        assert_eq!(
            s.series("cairn_http_requests_total")[0].0,
            "endpoint=zip,status=200"
        );
    }
}
