//! log-service: the trace-correlated log and trace store of tracehop, for machines with no Docker.
//!
//! One process receives telemetry over OTLP (gRPC and HTTP, protobuf and JSON), seed 001's REST
//! routes, seed 002's `POST /ingest` and seed 000's gRPC `SendLog`; it stores logs and spans in
//! embedded SQLite (or PostgreSQL) through a single group-committing writer, and answers queries:
//! filtered and paginated logs, a trace's spans and logs, a trace's DAG, statistics and aggregates,
//! over REST and seed 000's gRPC `query.QueryService`. Every read and write is scoped to the tenant
//! named by `X-Tenant-ID`.
//!
//! Start it with [`Application::build`] and [`Application::run_until_stopped`]; tests use
//! [`Config::for_tests`] (every address on port 0) and the `*_addr` getters.

mod config;
mod dag;
mod error;
pub mod grpc;
mod ingest;
mod metrics;
mod model;
mod routes;
mod startup;
mod storage;

pub use config::{Config, DatabaseConfig};
pub use dag::{Dag, DagEdge, DagNode};
pub use error::AppError;
pub use startup::Application;
