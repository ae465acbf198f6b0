//! Order statistics of a handful of timings (milliseconds): min, median, p90, max, mean.

use serde_json::json;

/// Summary of a sample of durations in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    /// Sample size.
    pub n: usize,
    /// Smallest.
    pub min: f64,
    /// Median (nearest rank; the lower middle for even sizes).
    pub p50: f64,
    /// 90th percentile (nearest rank).
    pub p90: f64,
    /// Largest.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Summary {
    /// Summarizes `values` (NaNs dropped); all zero when empty.
    pub fn of(values: &[f64]) -> Summary {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return Summary::default();
        }
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Summary {
            n: v.len(),
            min: v[0],
            p50: rank(0.5),
            p90: rank(0.9),
            max: v[v.len() - 1],
            mean: v.iter().sum::<f64>() / v.len() as f64,
        }
    }

    /// As JSON.
    pub fn json(&self) -> serde_json::Value {
        json!({ "n": self.n, "min_ms": self.min, "p50_ms": self.p50, "p90_ms": self.p90,
                "max_ms": self.max, "mean_ms": self.mean })
    }

    /// `min / median / max` for a table cell.
    pub fn min_med_max(&self) -> String {
        if self.n == 0 {
            return "n/a".into();
        }
        format!("{:.0} / {:.0} / {:.0}", self.min, self.p50, self.max)
    }
}

/// Milliseconds since `start`.
pub fn ms_since(start: tokio::time::Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// Writes `doc` as pretty JSON to `out`, or to `target/<default_name>` in the workspace, and
/// says where.
pub fn write_results(
    out: Option<&std::path::Path>,
    default_name: &str,
    doc: &serde_json::Value,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let path = out.map_or_else(
        || crate::workspace_root().join("target").join(default_name),
        std::path::Path::to_path_buf,
    );
    std::fs::write(&path, serde_json::to_vec_pretty(doc)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("\nwrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let s = Summary::of(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!((s.n, s.min, s.p50, s.max, s.mean), (5, 1.0, 3.0, 5.0, 3.0));
        assert_eq!(Summary::of(&[1.0, 2.0]).p50, 1.0);
        assert_eq!(
            Summary::of(&(1..=10).map(f64::from).collect::<Vec<_>>()).p90,
            9.0
        );
        assert_eq!(Summary::of(&[]).n, 0);
    }
}
