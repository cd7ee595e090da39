//! The OTLP gRPC receiver: `TraceService/Export` and `LogsService/Export`, gzip accepted.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsService;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::{Request, Response, Status};

use crate::api::{GrpcState, grpc_tenant};
use crate::error::AppError;
use crate::ingest;
use crate::model::WriteBatch;

impl GrpcState {
    /// Commits an OTLP batch, counted under `otlp_grpc` and `signal`.
    async fn write_otlp(&self, batch: WriteBatch, signal: &str) -> Result<(), Status> {
        ingest::commit(&self.store, &self.metrics, batch, "otlp_grpc", signal)
            .await
            .map(drop)
            .map_err(|err| AppError::from(err).into())
    }
}

#[tonic::async_trait]
impl LogsService for GrpcState {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let tenant = grpc_tenant(&request)?;
        let converted = ingest::otlp_logs(request.into_inner());
        self.metrics
            .count("otlp_grpc", "logs", "rejected", converted.rejected);
        let partial_success = (converted.rejected > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: converted.rejected as i64,
            error_message: converted.error_message(),
        });
        let mut batch = WriteBatch::new(tenant);
        batch.logs = converted.rows;
        self.write_otlp(batch, "logs").await?;
        Ok(Response::new(ExportLogsServiceResponse { partial_success }))
    }
}

#[tonic::async_trait]
impl TraceService for GrpcState {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let tenant = grpc_tenant(&request)?;
        let converted = ingest::otlp_spans(request.into_inner());
        self.metrics
            .count("otlp_grpc", "spans", "rejected", converted.rejected);
        let partial_success = (converted.rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: converted.rejected as i64,
            error_message: converted.error_message(),
        });
        let mut batch = WriteBatch::new(tenant);
        batch.spans = converted.rows;
        self.write_otlp(batch, "spans").await?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success,
        }))
    }
}
