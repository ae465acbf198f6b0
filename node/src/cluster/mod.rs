//! Everything between nodes that is not Raft itself: blob transfer and replication
//! ([`transfer`]), the repair worker and scrub ([`repair`]), peer liveness ([`peers`]), and
//! owner routing of misses ([`owner`]).

pub mod fill;
pub mod link;
pub mod owner;
pub mod peers;
pub mod regions;
pub mod repair;
pub mod transfer;
