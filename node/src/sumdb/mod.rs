//! Checksum databases (`sum.golang.org` and the like): the `/sumdb/` proxy and the client that
//! verifies what cairn stores against them.
//!
//! - `proxy` forwards and caches `/sumdb/<name>/…` for Go clients;
//! - `note` and `tlog` are the pure client side of `golang.org/x/mod/sumdb` (signed notes,
//!   Merkle proofs, tiles);
//! - `store` keeps immutable answers in the replicated state (any node answers them);
//! - `audit` is `cairn verify`: every stored version checked again;
//! - `recheck` is the worker that verifies versions stored unverified, or quarantines them;
//! - `verify` looks a module version up, proves the record against a signed tree head that is
//!   consistent with the replicated one, and compares hashes.

mod audit;
pub mod metrics;
pub mod note;
mod proxy;
pub mod recheck;
mod store;
pub mod tlog;
mod verify;

pub use audit::{Audit, AuditError, AuditProgress, Finding};
pub use proxy::{SumdbAnswer, SumdbError, SumdbProxy};
pub use store::AnswerStore;
pub use verify::{Checker, DbHashes, Pending, Verdict, VerifyError};
