//! Unit tests for the module rules, table-driven. Expected values follow PROTOCOL.md §2 and were
//! cross-checked against `golang.org/x/mod` (Go 1.26) on tens of thousands of generated inputs.

mod paths;
mod versions;
