//! Scenarios (see the module docs of `multiregion`).
