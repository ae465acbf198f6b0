//! Where usage stands against the watermarks (pure: the worker measures, this decides).

use super::settings::{DiskPolicy, Watermark};

/// The watermark state, exported as the gauge `cairn_disk_watermark_state` (0..3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Level {
    /// Under the low watermark.
    #[default]
    Normal = 0,
    /// At or above low, under high: eviction, if running, continues; none starts.
    Low = 1,
    /// At or above high: eviction runs until usage is under low.
    High = 2,
    /// At or above flood (or under the reserved free space): no blob is stored here.
    Flood = 3,
}

impl Level {
    /// The name used in logs and `/readyz`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Normal => "normal",
            Level::Low => "low",
            Level::High => "high",
            Level::Flood => "flood",
        }
    }

    /// The inverse of `self as u8`.
    pub fn from_u8(v: u8) -> Level {
        match v {
            0 => Level::Normal,
            1 => Level::Low,
            2 => Level::High,
            _ => Level::Flood,
        }
    }
}

/// A filesystem as `df` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Volume {
    /// Used plus available bytes (`df`'s size minus the root reserve).
    pub capacity: u64,
    /// Space available to unprivileged writers (`f_bavail`).
    pub free: u64,
}

/// Measures the filesystem holding `path`: used = blocks − free blocks, capacity = used +
/// available (so a percent means what `df`'s `Use%` says).
// `c_ulong` and `fsblkcnt_t` are u64 here but u32 on 32-bit targets, hence the conversions.
#[allow(clippy::useless_conversion)]
pub fn volume(path: &std::path::Path) -> nix::Result<Volume> {
    let st = nix::sys::statvfs::statvfs(path)?;
    let unit = u64::from(st.fragment_size());
    let used = u64::from(st.blocks())
        .saturating_sub(u64::from(st.blocks_free()))
        .saturating_mul(unit);
    let free = u64::from(st.blocks_available()).saturating_mul(unit);
    Ok(Volume {
        capacity: used.saturating_add(free),
        free,
    })
}

/// One measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Usage {
    /// The data volume (`None` when statvfs failed).
    pub fs: Option<Volume>,
    /// Bytes in the blob store.
    pub blob_bytes: u64,
}

/// What a measurement means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Assessment {
    /// The higher of the filesystem's and the budget's levels.
    pub level: Level,
    /// Bytes to free to get strictly under the low watermark (and above the reserve).
    pub excess: u64,
}

fn level_of(p: &DiskPolicy, used: u64, total: u64) -> (Level, u64) {
    let at = |w: &Watermark| used >= w.threshold(total);
    let level = if at(&p.flood) {
        Level::Flood
    } else if at(&p.high) {
        Level::High
    } else if at(&p.low) {
        Level::Low
    } else {
        Level::Normal
    };
    let low = p.low.threshold(total);
    let excess = if used >= low { used - low + 1 } else { 0 };
    (level, excess)
}

/// Judges `usage` by `policy`.
pub fn assess(policy: &DiskPolicy, usage: &Usage) -> Assessment {
    let mut out = Assessment::default();
    if let Some(fs) = usage.fs {
        if policy.filesystem_watermarks {
            let used = fs.capacity.saturating_sub(fs.free);
            let (level, excess) = level_of(policy, used, fs.capacity);
            out.level = level;
            out.excess = excess;
        }
        if fs.free < policy.reserved_bytes {
            out.level = Level::Flood;
            out.excess = out.excess.max(policy.reserved_bytes - fs.free);
        }
    }
    if let Some(budget) = policy.blob_budget_bytes {
        let (level, excess) = level_of(policy, usage.blob_bytes, budget);
        out.level = out.level.max(level);
        out.excess = out.excess.max(excess);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::settings::DiskSettings;

    fn fs(capacity: u64, free: u64) -> Option<Volume> {
        Some(Volume { capacity, free })
    }

    #[test]
    fn a_temp_dir_volume_is_plausible() {
        let dir = tempfile::tempdir().unwrap();
        let v = volume(dir.path()).unwrap();
        assert!(v.capacity > 0 && v.free <= v.capacity, "{v:?}");
    }

    #[test]
    fn filesystem_levels_and_excess() {
        let s = DiskSettings {
            reserved_bytes: 0,
            ..DiskSettings::default()
        };
        let p = s.policy().unwrap();
        let a = |free| {
            assess(
                &p,
                &Usage {
                    fs: fs(1000, free),
                    blob_bytes: 0,
                },
            )
        };
        assert_eq!(a(500).level, Level::Normal);
        assert_eq!(a(500).excess, 0);
        assert_eq!(a(200).level, Level::Low);
        assert_eq!(a(100).level, Level::High);
        assert_eq!(
            a(100).excess,
            101,
            "used 900, low 800: free 101 to get under"
        );
        assert_eq!(a(50).level, Level::Flood);
    }

    #[test]
    fn the_budget_and_the_reserve_count_too() {
        let mut s = DiskSettings {
            blob_budget_bytes: 1000,
            reserved_bytes: 100,
            ..DiskSettings::default()
        };
        let p = s.policy().unwrap();
        let roomy = fs(1 << 40, 1 << 39);
        let a = assess(
            &p,
            &Usage {
                fs: roomy,
                blob_bytes: 910,
            },
        );
        assert_eq!(a.level, Level::High);
        assert_eq!(a.excess, 111);
        let a = assess(
            &p,
            &Usage {
                fs: roomy,
                blob_bytes: 10,
            },
        );
        assert_eq!(a.level, Level::Normal);
        let a = assess(
            &p,
            &Usage {
                fs: fs(1 << 40, 50),
                blob_bytes: 10,
            },
        );
        assert_eq!(a.level, Level::Flood, "under the reserve");
        let a = assess(
            &p,
            &Usage {
                fs: None,
                blob_bytes: 960,
            },
        );
        assert_eq!(a.level, Level::Flood);
        s.filesystem_watermarks = false;
        let p = s.policy().unwrap();
        let full = Usage {
            fs: fs(1000, 200),
            blob_bytes: 10,
        };
        assert_eq!(
            assess(&p, &full).level,
            Level::Normal,
            "only the budget counts"
        );
    }
}
