//! An OTLP export, logs or traces, taken whole: converted, its rejected records counted, the rest
//! committed, and the answer built. Both receivers (gRPC and HTTP) serve both signals through
//! [`export`], so a record is handled the same way whichever way it came in.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use super::{Converted, otlp_logs, otlp_spans};
use crate::ingest::commit;
use crate::metrics::Metrics;
use crate::model::{NewLog, NewSpan, WriteBatch};
use crate::storage::{Store, StoreError};

/// The export request of one OTLP signal: the rows it converts to, where they go in a batch,
/// and the answer it gets.
pub trait Export: Send + Sized {
    /// What one record becomes.
    type Row;
    /// The answer to the export.
    type Response: Send;
    /// The signal its records are counted under.
    const SIGNAL: &'static str;

    /// Converts the records; malformed ones are rejected, the rest kept.
    fn convert(self) -> Converted<Self::Row>;

    /// The rows of `batch` this signal's rows go to.
    fn rows(batch: &mut WriteBatch) -> &mut Vec<Self::Row>;

    /// The answer, with the partial success (rejected count, error message) when records were
    /// rejected.
    fn response(partial_success: Option<(i64, String)>) -> Self::Response;
}

impl Export for ExportLogsServiceRequest {
    type Row = NewLog;
    type Response = ExportLogsServiceResponse;
    const SIGNAL: &'static str = "logs";

    fn convert(self) -> Converted<NewLog> {
        otlp_logs(self)
    }

    fn rows(batch: &mut WriteBatch) -> &mut Vec<NewLog> {
        &mut batch.logs
    }

    fn response(partial_success: Option<(i64, String)>) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: partial_success.map(|(rejected, error_message)| {
                ExportLogsPartialSuccess {
                    rejected_log_records: rejected,
                    error_message,
                }
            }),
        }
    }
}

impl Export for ExportTraceServiceRequest {
    type Row = NewSpan;
    type Response = ExportTraceServiceResponse;
    const SIGNAL: &'static str = "spans";

    fn convert(self) -> Converted<NewSpan> {
        otlp_spans(self)
    }

    fn rows(batch: &mut WriteBatch) -> &mut Vec<NewSpan> {
        &mut batch.spans
    }

    fn response(partial_success: Option<(i64, String)>) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: partial_success.map(|(rejected, error_message)| {
                ExportTracePartialSuccess {
                    rejected_spans: rejected,
                    error_message,
                }
            }),
        }
    }
}

/// Converts `request` for `tenant`, counts its rejected records under `protocol`, commits the
/// rest and answers; the answer comes only after the commit.
pub async fn export<E: Export>(
    store: &Store,
    metrics: &Metrics,
    protocol: &str,
    tenant: String,
    request: E,
) -> Result<E::Response, StoreError> {
    let converted = request.convert();
    metrics.count(protocol, E::SIGNAL, "rejected", converted.rejected);
    let partial_success = converted.partial_success();
    let mut batch = WriteBatch::new(tenant);
    *E::rows(&mut batch) = converted.rows;
    commit(store, metrics, batch, protocol, E::SIGNAL).await?;
    Ok(E::response(partial_success))
}
