//! gRPC services: the OTLP receiver (traces and logs) and seed 000's `logs.LogIngestionService`
//! and `query.QueryService`. The tenant comes from the `x-tenant-id` metadata.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsService;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::{Request, Response, Status};

use crate::error::AppError;
use crate::ingest;
use crate::metrics::Metrics;
use crate::model::{LogFilter, LogView, WriteBatch};
use crate::routes::query::{MAX_PAGE_SIZE, dag_of};
use crate::storage::{Store, StoreError};

/// Code generated from `proto/*.proto` (this repository's own definitions of seed 000's API).
pub mod proto {
    /// `logs.LogIngestionService`.
    pub mod logs {
        tonic::include_proto!("logs");
    }
    /// `query.QueryService`.
    pub mod query {
        tonic::include_proto!("query");
    }
}

use proto::logs::log_ingestion_service_server::LogIngestionService;
use proto::logs::{LogEntry, SendLogResponse};
use proto::query::query_service_server::QueryService;
use proto::query::{
    Dag, DagsResponse, GetDagsRequest, GetLogsRequest, Log, LogsResponse, TraceIdRequest,
};

fn tenant_of<T>(request: &Request<T>) -> Result<String, Status> {
    ingest::tenant(request.metadata().get("x-tenant-id").map(|v| v.as_bytes()))
        .map_err(Status::from)
}

/// Every gRPC service of log-service shares this state.
#[derive(Clone, Debug)]
pub struct GrpcState {
    pub store: Store,
    pub metrics: Metrics,
}

impl GrpcState {
    async fn write(
        &self,
        batch: WriteBatch,
        protocol: &str,
        signal: &str,
    ) -> Result<Vec<i64>, Status> {
        let n = batch.len();
        match self.store.write(batch).await {
            Ok(ids) => {
                self.metrics.count(protocol, signal, "accepted", n);
                Ok(ids)
            }
            Err(err) => {
                let outcome = if matches!(err, StoreError::QueueFull) {
                    "throttled"
                } else {
                    "failed"
                };
                self.metrics.count(protocol, signal, outcome, n);
                Err(AppError::from(err).into())
            }
        }
    }
}

#[tonic::async_trait]
impl LogsService for GrpcState {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let converted = ingest::otlp_logs(request.into_inner());
        self.metrics
            .count("otlp_grpc", "logs", "rejected", converted.rejected);
        let partial_success = (converted.rejected > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: converted.rejected as i64,
            error_message: converted.error_message(),
        });
        let mut batch = WriteBatch::new(tenant);
        batch.logs = converted.rows;
        self.write(batch, "otlp_grpc", "logs").await?;
        Ok(Response::new(ExportLogsServiceResponse { partial_success }))
    }
}

#[tonic::async_trait]
impl TraceService for GrpcState {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let converted = ingest::otlp_spans(request.into_inner());
        self.metrics
            .count("otlp_grpc", "spans", "rejected", converted.rejected);
        let partial_success = (converted.rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: converted.rejected as i64,
            error_message: converted.error_message(),
        });
        let mut batch = WriteBatch::new(tenant);
        batch.spans = converted.rows;
        self.write(batch, "otlp_grpc", "spans").await?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success,
        }))
    }
}

#[tonic::async_trait]
impl LogIngestionService for GrpcState {
    async fn send_log(
        &self,
        request: Request<LogEntry>,
    ) -> Result<Response<SendLogResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let log = ingest::grpc_log(request.into_inner()).inspect_err(|_| {
            self.metrics.count("grpc", "logs", "rejected", 1);
        })?;
        let mut batch = WriteBatch::new(tenant);
        batch.logs.push(log);
        let ids = self.write(batch, "grpc", "logs").await?;
        Ok(Response::new(SendLogResponse {
            success: true,
            id: ids.first().copied().unwrap_or_default(),
            message: "stored".into(),
        }))
    }
}

fn to_proto(log: LogView) -> Log {
    Log {
        trace_id: log.trace_id.unwrap_or_default(),
        span_id: log.span_id.unwrap_or_default(),
        parent_id: log.parent_span_id.unwrap_or_default(),
        service: log.service_name,
        level: log.level.as_str().to_ascii_lowercase(),
        message: log.message,
        timestamp: log.timestamp,
        id: log.id,
    }
}

fn page(limit: i32, offset: i32) -> Result<(u32, u64), Status> {
    let limit = match limit {
        0 => 100,
        n if n < 0 || n as u32 > MAX_PAGE_SIZE => {
            return Err(Status::invalid_argument(format!(
                "limit: must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        n => n as u32,
    };
    if offset < 0 {
        return Err(Status::invalid_argument("offset: must not be negative"));
    }
    Ok((limit, offset as u64))
}

fn trace_id_of(request: &TraceIdRequest) -> Result<String, Status> {
    let id = request.trace_id.trim();
    if id.is_empty() {
        return Err(Status::invalid_argument("traceId: is required"));
    }
    if id.len() > 128 {
        return Err(Status::invalid_argument("traceId: at most 128 characters"));
    }
    Ok(id.to_owned())
}

#[tonic::async_trait]
impl QueryService for GrpcState {
    async fn get_logs(
        &self,
        request: Request<GetLogsRequest>,
    ) -> Result<Response<LogsResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let (limit, offset) = page(request.get_ref().limit, request.get_ref().offset)?;
        let (logs, _) = self
            .store
            .query_logs(&tenant, &LogFilter::default(), limit, offset)
            .await
            .map_err(AppError::from)?;
        Ok(Response::new(LogsResponse {
            logs: logs.into_iter().map(to_proto).collect(),
        }))
    }

    async fn get_dags(
        &self,
        request: Request<GetDagsRequest>,
    ) -> Result<Response<DagsResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let (limit, offset) = page(request.get_ref().limit, request.get_ref().offset)?;
        let ids = self
            .store
            .error_traces(&tenant, limit, offset.min(u32::MAX as u64) as u32)
            .await
            .map_err(AppError::from)?;
        let mut dags = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(dag) = dag_of(&self.store, &tenant, &id).await? {
                dags.push(Dag {
                    trace_id: dag.trace_id.clone(),
                    root_span_id: dag.root_span_id.clone(),
                    dag_json: dag.graph_json().to_string(),
                });
            }
        }
        Ok(Response::new(DagsResponse { dags }))
    }

    async fn get_logs_by_trace_id(
        &self,
        request: Request<TraceIdRequest>,
    ) -> Result<Response<LogsResponse>, Status> {
        let tenant = tenant_of(&request)?;
        let trace_id = trace_id_of(request.get_ref())?;
        let logs = self
            .store
            .logs_by_trace(&tenant, &trace_id)
            .await
            .map_err(AppError::from)?;
        if logs.is_empty() {
            return Err(Status::not_found(format!("no logs for trace {trace_id}")));
        }
        Ok(Response::new(LogsResponse {
            logs: logs.into_iter().map(to_proto).collect(),
        }))
    }

    async fn get_dag_by_trace_id(
        &self,
        request: Request<TraceIdRequest>,
    ) -> Result<Response<Dag>, Status> {
        let tenant = tenant_of(&request)?;
        let trace_id = trace_id_of(request.get_ref())?;
        match dag_of(&self.store, &tenant, &trace_id).await? {
            Some(dag) => Ok(Response::new(Dag {
                trace_id: dag.trace_id.clone(),
                root_span_id: dag.root_span_id.clone(),
                dag_json: dag.graph_json().to_string(),
            })),
            None => Err(Status::not_found(format!("trace {trace_id} not found"))),
        }
    }
}
