//! Code generated from `proto/*.proto`, this repository's own definitions of the
//! distributed-logging gRPC API.
//!
//! The generated types live apart from the services that use them: ingest converts a
//! `logs.LogEntry` and the gRPC handlers call ingest, so with the types inside the handlers'
//! module the two would import each other.

/// `logs.LogIngestionService`.
pub mod logs {
    tonic::include_proto!("logs");
}

/// `query.QueryService`.
pub mod query {
    tonic::include_proto!("query");
}
