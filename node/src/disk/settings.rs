//! The `[disk]` section: watermarks, the blob budget, the reserved headroom, and their
//! validation into a [`DiskPolicy`].
//!
//! A watermark is either a percent (`"85%"`: the *used share* of the volume) or a byte amount
//! (`"20GiB"`: *used bytes* of the volume). The volume is the filesystem holding the data
//! directory and, when `blob_budget_bytes` is set, also the budget (its "used" being the blob
//! store's size): the node's level is the higher of the two.

use serde::{Deserialize, Serialize};

/// The `[disk]` section as written in the file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiskSettings {
    /// Eviction stops once usage is back under this (`"80%"` or `"200GiB"`).
    pub low_watermark: String,
    /// Eviction starts when usage reaches this.
    pub high_watermark: String,
    /// At this usage the node stops storing blobs: hits are served, misses pass through.
    pub flood_watermark: String,
    /// An optional cap on the blob store's size in bytes (0 = none); watermarks apply to it
    /// as to the filesystem.
    pub blob_budget_bytes: u64,
    /// How often usage is measured (and eviction runs when needed).
    pub check_interval_secs: u64,
    /// Free space kept for the metadata store (sled, Raft log): below it the node floods
    /// whatever the watermarks say, so that commits keep succeeding.
    pub reserved_bytes: u64,
    /// Blobs served more recently than this are not evicted (they may be mid-download).
    pub min_idle_secs: u64,
    /// Turn eviction off (watermark state and flood still apply).
    pub evict: bool,
    /// Apply the watermarks to the data directory's filesystem (false: only to
    /// `blob_budget_bytes`; `reserved_bytes` still protects the filesystem).
    pub filesystem_watermarks: bool,
    /// Record when each blob is served (for LRU order). Only benchmarks turn it off, to
    /// measure what it costs; without it eviction order falls back to when blobs were stored.
    pub track_access: bool,
}

impl Default for DiskSettings {
    fn default() -> Self {
        DiskSettings {
            low_watermark: "80%".into(),
            high_watermark: "90%".into(),
            flood_watermark: "95%".into(),
            blob_budget_bytes: 0,
            check_interval_secs: 30,
            reserved_bytes: 256 << 20,
            min_idle_secs: 60,
            evict: true,
            filesystem_watermarks: true,
            track_access: true,
        }
    }
}

/// One watermark.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Watermark {
    /// A used share of the volume, in percent (0 < p < 100).
    Percent(f64),
    /// Used bytes.
    Bytes(u64),
}

impl Watermark {
    /// The used-bytes threshold on a volume of `total` bytes.
    pub fn threshold(&self, total: u64) -> u64 {
        match *self {
            Watermark::Percent(p) => ((total as f64) * p / 100.0) as u64,
            Watermark::Bytes(b) => b,
        }
    }

    fn key(&self) -> (u8, f64) {
        match *self {
            Watermark::Percent(p) => (0, p),
            Watermark::Bytes(b) => (1, b as f64),
        }
    }
}

/// A watermark, byte amount or setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiskConfigError {
    /// The value is neither a percent nor a byte amount.
    #[error("disk.{key}: {value:?} is neither a percent (\"85%\") nor a byte amount (\"20GiB\", \"500MB\", \"1048576\")")]
    Unparsable {
        /// The key.
        key: &'static str,
        /// The value.
        value: String,
    },
    /// A percent outside (0, 100).
    #[error("disk.{key}: {value:?} must be above 0% and below 100%")]
    PercentRange {
        /// The key.
        key: &'static str,
        /// The value.
        value: String,
    },
    /// Percents and byte amounts mixed.
    #[error("disk watermarks must all be percents or all byte amounts (got {low:?}, {high:?}, {flood:?})")]
    MixedUnits {
        /// `low_watermark`.
        low: String,
        /// `high_watermark`.
        high: String,
        /// `flood_watermark`.
        flood: String,
    },
    /// Not low < high < flood.
    #[error("disk watermarks must rise strictly: low_watermark {low:?} < high_watermark {high:?} < flood_watermark {flood:?}")]
    Order {
        /// `low_watermark`.
        low: String,
        /// `high_watermark`.
        high: String,
        /// `flood_watermark`.
        flood: String,
    },
    /// A zero interval.
    #[error("disk.check_interval_secs must be at least 1")]
    Interval,
}

/// The validated `[disk]` settings the node runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskPolicy {
    /// Eviction target.
    pub low: Watermark,
    /// Eviction trigger.
    pub high: Watermark,
    /// Stop storing blobs.
    pub flood: Watermark,
    /// Cap on the blob store's size.
    pub blob_budget_bytes: Option<u64>,
    /// Measurement period.
    pub check_interval: std::time::Duration,
    /// Free space kept for the metadata store.
    pub reserved_bytes: u64,
    /// Blobs served more recently are kept.
    pub min_idle_ms: u64,
    /// Whether eviction runs.
    pub evict: bool,
    /// Whether the watermarks apply to the filesystem (else only to the budget).
    pub filesystem_watermarks: bool,
    /// Whether hits record their time.
    pub track_access: bool,
}

impl DiskSettings {
    /// Checks every key and returns the policy, or every problem.
    pub fn policy(&self) -> Result<DiskPolicy, Vec<DiskConfigError>> {
        let mut errs = Vec::new();
        let mut parse = |key, value: &str| match parse_watermark(key, value) {
            Ok(w) => Some(w),
            Err(e) => {
                errs.push(e);
                None
            }
        };
        let low = parse("low_watermark", &self.low_watermark);
        let high = parse("high_watermark", &self.high_watermark);
        let flood = parse("flood_watermark", &self.flood_watermark);
        if let (Some(l), Some(h), Some(f)) = (low, high, flood) {
            let (kl, kh, kf) = (l.key(), h.key(), f.key());
            let (low_s, high_s, flood_s) = (
                self.low_watermark.clone(),
                self.high_watermark.clone(),
                self.flood_watermark.clone(),
            );
            if kl.0 != kh.0 || kh.0 != kf.0 {
                errs.push(DiskConfigError::MixedUnits {
                    low: low_s,
                    high: high_s,
                    flood: flood_s,
                });
            } else if !(kl.1 < kh.1 && kh.1 < kf.1) {
                errs.push(DiskConfigError::Order {
                    low: low_s,
                    high: high_s,
                    flood: flood_s,
                });
            }
        }
        if self.check_interval_secs == 0 {
            errs.push(DiskConfigError::Interval);
        }
        match (low, high, flood) {
            (Some(low), Some(high), Some(flood)) if errs.is_empty() => Ok(DiskPolicy {
                low,
                high,
                flood,
                blob_budget_bytes: (self.blob_budget_bytes > 0).then_some(self.blob_budget_bytes),
                check_interval: std::time::Duration::from_secs(self.check_interval_secs),
                reserved_bytes: self.reserved_bytes,
                min_idle_ms: self.min_idle_secs.saturating_mul(1000),
                evict: self.evict,
                filesystem_watermarks: self.filesystem_watermarks,
                track_access: self.track_access,
            }),
            _ => Err(errs),
        }
    }
}

/// Parses `"85%"`, `"85.5%"`, `"20GiB"`, `"500MB"`, `"4096"` (bytes).
pub fn parse_watermark(key: &'static str, value: &str) -> Result<Watermark, DiskConfigError> {
    let v = value.trim();
    let bad = || DiskConfigError::Unparsable {
        key,
        value: value.to_string(),
    };
    if let Some(p) = v.strip_suffix('%') {
        let p: f64 = p.trim().parse().map_err(|_| bad())?;
        if !(p > 0.0 && p < 100.0) {
            return Err(DiskConfigError::PercentRange {
                key,
                value: value.to_string(),
            });
        }
        return Ok(Watermark::Percent(p));
    }
    parse_bytes(v).map(Watermark::Bytes).ok_or_else(bad)
}

/// Parses a byte amount: a number with an optional unit (`B`, `KB`/`MB`/`GB`/`TB` powers of
/// 1000, `KiB`/`MiB`/`GiB`/`TiB` powers of 1024), case-insensitive.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "tb" | "t" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return None,
    };
    let v = n * mult as f64;
    (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then_some(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(low: &str, high: &str, flood: &str) -> DiskSettings {
        DiskSettings {
            low_watermark: low.into(),
            high_watermark: high.into(),
            flood_watermark: flood.into(),
            ..DiskSettings::default()
        }
    }

    #[test]
    fn watermarks_parse_percent_and_bytes() {
        assert_eq!(
            parse_watermark("k", "85%").unwrap(),
            Watermark::Percent(85.0)
        );
        assert_eq!(
            parse_watermark("k", " 12.5 %").unwrap(),
            Watermark::Percent(12.5)
        );
        assert_eq!(
            parse_watermark("k", "20GiB").unwrap(),
            Watermark::Bytes(20 << 30)
        );
        assert_eq!(
            parse_watermark("k", "500MB").unwrap(),
            Watermark::Bytes(500_000_000)
        );
        assert_eq!(
            parse_watermark("k", "4096").unwrap(),
            Watermark::Bytes(4096)
        );
        assert_eq!(
            parse_watermark("k", "1.5kib").unwrap(),
            Watermark::Bytes(1536)
        );
        assert!(matches!(
            parse_watermark("k", "lots"),
            Err(DiskConfigError::Unparsable { .. })
        ));
        assert!(matches!(
            parse_watermark("k", "100%"),
            Err(DiskConfigError::PercentRange { .. })
        ));
        assert!(matches!(
            parse_watermark("k", "0%"),
            Err(DiskConfigError::PercentRange { .. })
        ));
        assert!(matches!(
            parse_watermark("k", "5XB"),
            Err(DiskConfigError::Unparsable { .. })
        ));
    }

    #[test]
    fn thresholds() {
        assert_eq!(Watermark::Percent(90.0).threshold(1000), 900);
        assert_eq!(Watermark::Bytes(7).threshold(1000), 7);
    }

    #[test]
    fn defaults_are_valid_and_ordered() {
        let p = DiskSettings::default().policy().unwrap();
        assert_eq!(p.low, Watermark::Percent(80.0));
        assert_eq!(p.high, Watermark::Percent(90.0));
        assert_eq!(p.flood, Watermark::Percent(95.0));
        assert_eq!(p.blob_budget_bytes, None);
    }

    #[test]
    fn nonsense_is_refused_with_every_problem() {
        let errs = settings("90%", "80%", "95%").policy().unwrap_err();
        assert!(
            matches!(errs[..], [DiskConfigError::Order { .. }]),
            "{errs:?}"
        );
        let errs = settings("80%", "80%", "95%").policy().unwrap_err();
        assert!(
            matches!(errs[..], [DiskConfigError::Order { .. }]),
            "{errs:?}"
        );
        let errs = settings("80%", "10GiB", "95%").policy().unwrap_err();
        assert!(matches!(errs[..], [DiskConfigError::MixedUnits { .. }]));
        let errs = settings("x", "y", "95%").policy().unwrap_err();
        assert_eq!(errs.len(), 2);
        let s = DiskSettings {
            check_interval_secs: 0,
            ..DiskSettings::default()
        };
        assert_eq!(s.policy().unwrap_err(), vec![DiskConfigError::Interval]);
        let msg = settings("90%", "80%", "95%").policy().unwrap_err()[0].to_string();
        assert!(msg.contains("must rise strictly"), "{msg}");
        let ok = settings("1GiB", "2GiB", "3GiB").policy().unwrap();
        assert_eq!(ok.high, Watermark::Bytes(2 << 30));
    }
}
