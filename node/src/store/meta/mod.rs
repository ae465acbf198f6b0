//! The replicated metadata: typed records and the commands that change them.
//!
//! Records are changed only by applying committed Raft commands ([`MetaCmd`]); every node reads
//! its own copy without asking the leader.

mod types;

pub use types::*;
