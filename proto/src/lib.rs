//! The gRPC contract between cairn nodes and the operator CLI, generated from
//! `proto/cairn.proto`.
#![allow(missing_docs, clippy::all)]

/// Version 1 of the contract (`package cairn.v1`).
pub mod v1 {
    tonic::include_proto!("cairn.v1");
}
