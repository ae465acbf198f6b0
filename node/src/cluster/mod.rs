//! Everything between nodes that is not Raft itself: blob transfer and replication
//! ([`transfer`]), the repair worker and scrub ([`repair`]), peer liveness ([`peers`]), and
//! owner routing of misses ([`owner`]), and region-scoped choices and metrics ([`region`]), and per-region quorum health ([`region_health`]).

pub mod fill;
pub mod link;
pub mod owner;
pub mod peers;
pub mod region;
pub mod region_health;
pub mod repair;
pub mod transfer;
