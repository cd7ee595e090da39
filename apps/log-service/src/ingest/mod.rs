//! Turns what arrives into validated rows and hands them to storage.
//!
//! One module per way in: the minisource REST API's entries (`rest`), the Traceflow ingest API's
//! events (`traceflow`), the distributed-logging gRPC API's `LogEntry` (`grpc`) and OTLP logs and
//! spans (`otlp`). Every rejection names the field, so a client can fix its input; every record
//! is counted by protocol, signal and outcome in one place, [`commit`].

mod fields;
mod grpc;
mod otlp;
mod rest;
mod traceflow;

pub use grpc::grpc_log;
pub use otlp::{Export as OtlpExport, export as otlp_export};
pub use rest::rest_log;
pub use traceflow::ingest_event;

use crate::metrics::Metrics;
use crate::model::WriteBatch;
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
