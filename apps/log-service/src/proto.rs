//! Code generated from the distributed-logging system's gRPC contract as log-service serves it:
//! the original definitions (`tests/proto/*.proto`) with log-service's additions
//! (`proto/*.proto`, new numbers only) merged in by the build script, and the encoded descriptors
//! that gRPC server reflection serves.
//!
//! The generated types live apart from the services that use them: ingest converts a `logs.Log`
//! and the gRPC handlers call ingest, so with the types inside the handlers' module the two would
//! import each other.

/// `logs.LogIngestionService`.
pub mod logs {
    tonic::include_proto!("logs");
}

/// `query.QueryService`.
pub mod query {
    tonic::include_proto!("query");
}

/// The encoded `FileDescriptorSet` of both services and what they import
/// (`google/protobuf/struct.proto`), with their comments, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/log_service_descriptor.bin"));
