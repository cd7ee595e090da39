//! The distributed-logging gRPC API on `GRPC_ADDR`: `logs.LogIngestionService` and
//! `query.QueryService`, on the system's original wire contract (see `proto/`). The tenant comes
//! from the access check (`x-tenant-id` and `authorization` metadata); limits, ids and DAGs are the `query` module's, as for REST.

use tonic::{Request, Response, Status};

use super::GrpcState;
use crate::auth::Role;
use crate::ingest;
use crate::model::{LogFilter, LogView};
use crate::proto::logs::log_ingestion_service_server::LogIngestionService;
use crate::proto::logs::{self, LogAck};
use crate::proto::query::query_service_server::QueryService;
use crate::proto::query::{Dag, DagList, Empty, Log, LogList, TraceIdRequest};
use crate::query;

#[tonic::async_trait]
impl LogIngestionService for GrpcState {
    async fn send_log(&self, request: Request<logs::Log>) -> Result<Response<LogAck>, Status> {
        let tenant = self.tenant(&request, Role::Write)?;
        let log = ingest::grpc_log(request.into_inner());
        let stored = ingest::commit_one(&self.store, &self.metrics, "grpc", tenant, log).await?;
        Ok(Response::new(LogAck {
            status: "ok".into(),
            success: true,
            id: stored.id.unwrap_or_default(),
        }))
    }
}

fn log_list(logs: Vec<LogView>) -> Response<LogList> {
    let logs = logs
        .into_iter()
        .map(|log| Log {
            trace_id: log.context.trace_id.unwrap_or_default(),
            parent_id: log.context.parent_span_id.unwrap_or_default(),
            span_id: log.context.span_id.unwrap_or_default(),
            service: log.service_name,
            message: log.message,
            level: log.level.as_str().to_ascii_lowercase(),
            timestamp: log.timestamp,
            id: log.id,
        })
        .collect();
    Response::new(LogList { logs })
}

/// The tenant of a request for one trace and its checked trace id.
fn trace_request(
    state: &GrpcState,
    request: &Request<TraceIdRequest>,
) -> Result<(String, String), Status> {
    let tenant = state.tenant(request, Role::Read)?;
    Ok((
        tenant,
        query::required_trace_id(&request.get_ref().trace_id)?,
    ))
}

fn dag_to_proto(dag: query::Dag) -> Dag {
    Dag {
        dag_json: Some(to_struct(dag.graph_json())),
        trace_id: dag.trace_id,
        root_span_id: dag.root_span_id,
    }
}

#[tonic::async_trait]
impl QueryService for GrpcState {
    async fn get_logs(&self, request: Request<Empty>) -> Result<Response<LogList>, Status> {
        let tenant = self.tenant(&request, Role::Read)?;
        let (limit, offset) =
            query::limit_offset(request.get_ref().limit, request.get_ref().offset)?;
        // `LogList` carries no total: count no more than the page needs.
        let (logs, _) = self
            .store
            .query_logs(&tenant, &LogFilter::default(), limit, offset, Some(0))
            .await?;
        Ok(log_list(logs))
    }

    async fn get_dags(&self, request: Request<Empty>) -> Result<Response<DagList>, Status> {
        let tenant = self.tenant(&request, Role::Read)?;
        let (limit, offset) =
            query::limit_offset(request.get_ref().limit, request.get_ref().offset)?;
        let offset = offset.min(u32::MAX as u64) as u32;
        let dags = query::error_dags(&self.store, &tenant, limit, offset).await?;
        Ok(Response::new(DagList {
            dags: dags.into_iter().map(dag_to_proto).collect(),
        }))
    }

    async fn get_logs_by_trace_id(
        &self,
        request: Request<TraceIdRequest>,
    ) -> Result<Response<LogList>, Status> {
        let (tenant, trace_id) = trace_request(self, &request)?;
        let Some(logs) = query::trace_logs(&self.store, &tenant, &trace_id).await? else {
            return Err(Status::not_found(format!("no logs for trace {trace_id}")));
        };
        Ok(log_list(logs))
    }

    async fn get_dag_by_trace_id(
        &self,
        request: Request<TraceIdRequest>,
    ) -> Result<Response<Dag>, Status> {
        let (tenant, trace_id) = trace_request(self, &request)?;
        let dag = query::dag(&self.store, &tenant, &trace_id).await?;
        Ok(Response::new(dag_to_proto(dag)))
    }
}

/// A JSON object as a `google.protobuf.Struct`, the type of `Dag.dagJson`; anything else is
/// wrapped under `"value"` (the DAG's graph is always an object).
fn to_struct(json: serde_json::Value) -> prost_types::Struct {
    match json {
        serde_json::Value::Object(map) => prost_types::Struct {
            fields: map.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
        },
        other => prost_types::Struct {
            fields: [("value".to_owned(), to_value(other))].into(),
        },
    }
}

/// A JSON value as a `google.protobuf.Value`: numbers become doubles, as in the protobuf JSON
/// mapping of `Struct`.
fn to_value(json: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    use serde_json::Value as Json;
    let kind = match json {
        Json::Null => Kind::NullValue(prost_types::NullValue::NullValue.into()),
        Json::Bool(b) => Kind::BoolValue(b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Json::String(s) => Kind::StringValue(s),
        Json::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(to_value).collect(),
        }),
        Json::Object(map) => Kind::StructValue(to_struct(Json::Object(map))),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use prost_types::value::Kind;
    use serde_json::json;

    use super::*;

    #[test]
    fn dag_json_becomes_a_struct_with_the_same_shape() {
        let graph = to_struct(json!({
            "nodes": [{"id": "a", "error": true, "duration_ms": 1.5, "parent": null}],
            "edges": [],
        }));
        let Some(Kind::ListValue(nodes)) = &graph.fields["nodes"].kind else {
            panic!("nodes is a list: {graph:?}");
        };
        let Some(Kind::StructValue(node)) = &nodes.values[0].kind else {
            panic!("a node is a struct: {nodes:?}");
        };
        assert_eq!(node.fields["id"].kind, Some(Kind::StringValue("a".into())));
        assert_eq!(node.fields["error"].kind, Some(Kind::BoolValue(true)));
        assert_eq!(
            node.fields["duration_ms"].kind,
            Some(Kind::NumberValue(1.5))
        );
        assert_eq!(node.fields["parent"].kind, Some(Kind::NullValue(0)));
        assert!(
            matches!(&graph.fields["edges"].kind, Some(Kind::ListValue(l)) if l.values.is_empty())
        );
    }
}
