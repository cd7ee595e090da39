//! The distributed-logging gRPC API on `GRPC_ADDR`: `logs.LogIngestionService` and
//! `query.QueryService`. The tenant comes from the `x-tenant-id` metadata; limits, ids and DAGs
//! are the `query` module's, as for REST.

use tonic::{Request, Response, Status};

use super::{GrpcState, grpc_tenant};
use crate::ingest;
use crate::model::{LogFilter, LogView};
use crate::proto::logs::log_ingestion_service_server::LogIngestionService;
use crate::proto::logs::{LogEntry, SendLogResponse};
use crate::proto::query::query_service_server::QueryService;
use crate::proto::query::{
    Dag, DagsResponse, GetDagsRequest, GetLogsRequest, Log, LogsResponse, TraceIdRequest,
};
use crate::query;
use crate::storage::LogKey;

#[tonic::async_trait]
impl LogIngestionService for GrpcState {
    async fn send_log(
        &self,
        request: Request<LogEntry>,
    ) -> Result<Response<SendLogResponse>, Status> {
        let tenant = grpc_tenant(&request)?;
        let log = ingest::grpc_log(request.into_inner());
        let stored = ingest::commit_one(&self.store, &self.metrics, "grpc", tenant, log).await?;
        Ok(Response::new(SendLogResponse {
            success: true,
            id: stored.id.unwrap_or_default(),
            message: "stored".into(),
        }))
    }
}

fn logs_response(logs: Vec<LogView>) -> Response<LogsResponse> {
    let logs = logs
        .into_iter()
        .map(|log| Log {
            trace_id: log.context.trace_id.unwrap_or_default(),
            span_id: log.context.span_id.unwrap_or_default(),
            parent_id: log.context.parent_span_id.unwrap_or_default(),
            service: log.service_name,
            level: log.level.as_str().to_ascii_lowercase(),
            message: log.message,
            timestamp: log.timestamp,
            id: log.id,
        })
        .collect();
    Response::new(LogsResponse { logs })
}

/// The tenant of a request for one trace and its checked trace id.
fn trace_request(request: &Request<TraceIdRequest>) -> Result<(String, String), Status> {
    let tenant = grpc_tenant(request)?;
    Ok((
        tenant,
        query::required_trace_id(&request.get_ref().trace_id)?,
    ))
}

fn dag_to_proto(dag: query::Dag) -> Dag {
    Dag {
        dag_json: dag.graph_json().to_string(),
        trace_id: dag.trace_id,
        root_span_id: dag.root_span_id,
    }
}

#[tonic::async_trait]
impl QueryService for GrpcState {
    async fn get_logs(
        &self,
        request: Request<GetLogsRequest>,
    ) -> Result<Response<LogsResponse>, Status> {
        let tenant = grpc_tenant(&request)?;
        let (limit, offset) =
            query::limit_offset(request.get_ref().limit, request.get_ref().offset)?;
        let (logs, _) = self
            .store
            .query_logs(&tenant, &LogFilter::default(), limit, offset)
            .await?;
        Ok(logs_response(logs))
    }

    async fn get_dags(
        &self,
        request: Request<GetDagsRequest>,
    ) -> Result<Response<DagsResponse>, Status> {
        let tenant = grpc_tenant(&request)?;
        let (limit, offset) =
            query::limit_offset(request.get_ref().limit, request.get_ref().offset)?;
        let offset = offset.min(u32::MAX as u64) as u32;
        let dags = query::error_dags(&self.store, &tenant, limit, offset).await?;
        Ok(Response::new(DagsResponse {
            dags: dags.into_iter().map(dag_to_proto).collect(),
        }))
    }

    async fn get_logs_by_trace_id(
        &self,
        request: Request<TraceIdRequest>,
    ) -> Result<Response<LogsResponse>, Status> {
        let (tenant, trace_id) = trace_request(&request)?;
        let logs = self
            .store
            .logs_by(&tenant, LogKey::Trace(&trace_id))
            .await?;
        if logs.is_empty() {
            return Err(Status::not_found(format!("no logs for trace {trace_id}")));
        }
        Ok(logs_response(logs))
    }

    async fn get_dag_by_trace_id(
        &self,
        request: Request<TraceIdRequest>,
    ) -> Result<Response<Dag>, Status> {
        let (tenant, trace_id) = trace_request(&request)?;
        let dag = query::dag(&self.store, &tenant, &trace_id).await?;
        Ok(Response::new(dag_to_proto(dag)))
    }
}
