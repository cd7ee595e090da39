//! The OTLP gRPC receiver: `TraceService/Export` and `LogsService/Export`, gzip accepted.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsService;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::{Request, Response, Status};

use crate::api::GrpcState;
use crate::auth::Role;
use crate::ingest::{self, OtlpExport};

impl GrpcState {
    /// Answers an export of either signal, counted under `otlp_grpc`.
    async fn export_otlp<E: OtlpExport>(
        &self,
        request: Request<E>,
    ) -> Result<Response<E::Response>, Status> {
        let tenant = self.tenant(&request, Role::Write)?;
        let request = request.into_inner();
        ingest::otlp_export(&self.store, &self.metrics, "otlp_grpc", tenant, request)
            .await
            .map(Response::new)
            .map_err(Into::into)
    }
}

#[tonic::async_trait]
impl LogsService for GrpcState {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.export_otlp(request).await
    }
}

#[tonic::async_trait]
impl TraceService for GrpcState {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.export_otlp(request).await
    }
}
