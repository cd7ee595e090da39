//! Integration tests: each starts the real application in-process on port 0 with its own database.

mod access;
mod alerts;
mod crash;
mod grpc;
mod helpers;
mod ingest;
mod jaeger;
mod otlp;
mod postgres;
mod query;
mod replicas;
mod retention;
mod stream;
mod tenants;
