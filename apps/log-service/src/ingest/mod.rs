//! Turns what arrives into validated rows and hands them to storage.
//!
//! One module per way in: the minisource REST API's entries (`rest`), the Traceflow ingest API's
//! events (`traceflow`), the distributed-logging gRPC API's `logs.Log` (`grpc`) and OTLP logs and
//! spans (`otlp`). Every rejection names the field, so a client can fix its input. What is
//! stored is counted by protocol, signal and outcome in one place, [`commit`]; a single entry
//! ([`commit_one`]) and an OTLP export ([`otlp_export`]) also count what they reject.

mod fields;
mod grpc;
mod otlp;
mod rest;
mod traceflow;

pub use grpc::grpc_log;
pub use otlp::{Export as OtlpExport, export as otlp_export};
pub use rest::rest_log;
pub use traceflow::ingest_event;

use crate::error::AppError;
use crate::metrics::Metrics;
use crate::model::{NewLog, WriteBatch};
use crate::storage::{Store, StoreError};

/// Writes `batch` and counts its rows under `protocol` and `signal`: accepted once committed,
/// throttled when the write queue is full, failed otherwise. Returns the ids of its logs.
pub async fn commit(
    store: &Store,
    metrics: &Metrics,
    batch: WriteBatch,
    protocol: &str,
    signal: &str,
) -> Result<Vec<i64>, StoreError> {
    let rows = batch.len();
    let result = store.write(batch).await;
    let outcome = match &result {
        Ok(_) => "accepted",
        Err(StoreError::QueueFull) => "throttled",
        Err(_) => "failed",
    };
    metrics.count(protocol, signal, outcome, rows);
    result
}

/// A single entry once committed: its id and the trace it belongs to.
#[derive(Debug)]
pub struct Stored {
    pub id: Option<i64>,
    pub trace_id: Option<String>,
}

/// Commits the single entry `validated` holds, counted under `protocol` / `logs`; an entry that
/// failed validation is counted as rejected and its error returned.
pub async fn commit_one(
    store: &Store,
    metrics: &Metrics,
    protocol: &str,
    tenant: String,
    validated: Result<NewLog, AppError>,
) -> Result<Stored, AppError> {
    let log = validated.inspect_err(|_| metrics.count(protocol, "logs", "rejected", 1))?;
    let trace_id = log.context.trace_id.clone();
    let mut batch = WriteBatch::new(tenant);
    batch.logs.push(log);
    let ids = commit(store, metrics, batch, protocol, "logs").await?;
    Ok(Stored {
        id: ids.first().copied(),
        trace_id,
    })
}
