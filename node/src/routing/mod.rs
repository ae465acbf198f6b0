//! Routing rules: which source answers a module path, whether the checksum database may hear
//! of it, and which paths are refused (DESIGN.md promise 5, "no leaks").
//!
//! - [`glob`]: the go command's pattern lists (`module.MatchPrefixPatterns` over `path.Match`).
//! - [`router`]: the configured rules, first match wins, with one [`crate::upstream::Upstream`]
//!   per rule built at startup and the node's own upstream as the implicit last rule.

pub mod glob;
pub mod router;

pub use glob::{match_prefix_patterns, validate_patterns, GlobError};
pub use router::{RouteMatch, RouteRule, Router, RoutingError};
