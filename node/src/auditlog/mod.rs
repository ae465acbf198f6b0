//! `auditlog`: an append-only trail of who fetched what and who changed the cluster, one JSON
//! object per line.
//!
//! - `settings`: [`AuditSettings`], the future `[audit]` config section (target, rotation);
//! - `event`: [`RequestEvent`] and [`AdminEvent`], the only things that can be logged — they have
//!   no field that could carry a secret;
//! - `log`: [`AuditLog`], the cheap-to-clone handle that serializes an event on the caller's
//!   thread and hands the line to a bounded queue, dropping (and counting) it when the queue is
//!   full rather than making a request wait on the disk;
//! - `writer`: the dedicated writer thread and the size-rotated file (`audit.log` →
//!   `audit.log.1` … `audit.log.N`);
//! - [`metrics`]: the metric names and their descriptions;
//! - `error`: [`AuditError`] and [`AuditSettingsError`].

mod error;
mod event;
mod log;
pub mod metrics;
mod settings;
mod writer;

#[cfg(test)]
mod tests;

pub use error::{AuditError, AuditSettingsError};
pub use event::{AdminEvent, RequestEvent};
pub use log::{AuditLog, AuditStats};
pub use settings::{AuditSettings, AuditTarget};
