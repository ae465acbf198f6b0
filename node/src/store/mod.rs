//! Storage: the replicated metadata ([`meta`]) and the content-addressed blob store ([`blob`]).

pub mod blob;
pub mod meta;
