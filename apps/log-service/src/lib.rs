//! log-service: the trace-correlated log and trace store of tracehop, for machines with no Docker.
//!
//! One process receives telemetry over OTLP (gRPC and HTTP, protobuf and JSON), the minisource
//! REST API's routes (`/api/v1/logs...`), the Traceflow ingest API's `POST /ingest` and the
//! distributed-logging gRPC API's `SendLog`; it stores logs and spans in embedded SQLite (or
//! PostgreSQL) through a single group-committing writer, and answers queries: filtered and
//! paginated logs, a trace's spans and logs, a trace's DAG, statistics and aggregates, over REST
//! and the distributed-logging gRPC API's `query.QueryService`. Every read and write is scoped to
//! the tenant named by `X-Tenant-ID`.
//!
//! A log's structured fields (OTLP attributes, the REST entry's `metadata`) come back once, as
//! `metadata`, the name the minisource REST API uses. The tracing bridge's default event name
//! (`event <file>:<line>`) is dropped at ingest: it repeats the code location.
//!
//! One module per concern, each with room for what comes next:
//! - `model`: records as stored and returned, whatever protocol they came in by;
//! - `proto`: the distributed-logging gRPC API's generated types;
//! - `ingest`: what arrives, validated into rows and committed (REST, Traceflow, gRPC, OTLP);
//! - `query`: reading, shared by REST and gRPC (filters, pages, traces, DAGs);
//! - `storage`: the write queue, the `Backend` trait, and SQLite and PostgreSQL behind it;
//! - `retention`: per-tenant retention policies and the size cap, enforced by dropping day
//!   partitions;
//! - `tail`: the live tail, committed logs pushed to `/api/v1/logs/stream` subscribers;
//! - `alerts`: log alert rules (`/api/v1/alerts`), evaluated on a timer and delivered to
//!   Alertmanager;
//! - `leader`: which replica on one PostgreSQL evaluates alert rules and runs retention (a
//!   session-level advisory lock);
//! - `auth`: API keys (`API_KEYS_FILE`) and the one access check that decides a request's
//!   tenant and what it may do;
//! - `api`: the handlers of the four listeners (REST, OTLP/HTTP, OTLP gRPC, gRPC API), and
//!   Jaeger's query API on the REST port;
//! - `config`, `startup`, `error`, `metrics`: configuration, wiring, errors and counters.
//!
//! [`Application`] is a `server::Service`: `build` opens storage and binds every listener, `run`
//! serves until the stop; tests use [`Config::for_tests`] (every address on port 0) and the
//! `*_addr` getters.

mod alerts;
mod api;
mod auth;
mod config;
mod error;
mod ingest;
mod leader;
mod metrics;
mod model;
pub mod proto;
mod query;
mod retention;
mod startup;
mod storage;
mod tail;
mod web;

/// The distributed-logging gRPC API's generated types at the path clients already import
/// (`log_service::grpc::proto::query::...`); the same module as [`crate::proto`].
pub mod grpc {
    pub use crate::proto;
}

pub use auth::{ApiKeys, Role};
pub use config::{AlertsConfig, Config, DatabaseConfig};
pub use error::AppError;
pub use leader::LEADER_LOCK;
pub use query::{Dag, DagEdge, DagNode};
pub use retention::RetentionConfig;
pub use startup::Application;
