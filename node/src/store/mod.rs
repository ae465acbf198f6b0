//! Storage: the replicated metadata ([`meta`]) and the content-addressed blob store ([`blob`]).

pub mod atime;
pub mod blob;
pub mod hot;
pub mod meta;

/// The wall clock in unix milliseconds, for timestamps a proposer stamps on records (apply never
/// reads the clock).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Counter of blobs stored again after they were evicted, by `from` (`peer`, `upstream`).
pub const DISK_REFILLS_TOTAL: &str = "cairn_disk_refills_total";
