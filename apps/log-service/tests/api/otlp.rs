//! OTLP ingest round trips (gRPC, HTTP protobuf, HTTP JSON, gzip), the trace API, DAGs and gRPC query.

use std::io::Write;

use log_service::grpc::proto::query::Empty;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_all_accepted, grpc_code, hex, messages, raw_grpc_status, spawn_app, strings,
    trace_request, with_tenant,
};

const T0: u64 = 1_700_000_000_000_000_000;
const PROTOBUF: &str = "application/x-protobuf";

pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service), kv("host.name", "box-1")],
        ..Default::default()
    })
}

pub fn trace_id(n: u8) -> Vec<u8> {
    let mut id = vec![0xab; 16];
    id[15] = n;
    id
}

pub fn span_id(n: u8) -> Vec<u8> {
    vec![0, 0, 0, 0, 0, 0, 0x10, n]
}

/// A span of trace `trace` ([`trace_id`]), with id [`span_id`]`(id)`, from `start_ns` to `end_ns`.
pub fn span_between(
    trace: u8,
    id: u8,
    parent: Option<u8>,
    name: &str,
    kind: SpanKind,
    (start_ns, end_ns): (u64, u64),
) -> Span {
    Span {
        trace_id: trace_id(trace),
        span_id: span_id(id),
        parent_span_id: parent.map(span_id).unwrap_or_default(),
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: start_ns,
        end_time_unix_nano: end_ns,
        ..Default::default()
    }
}

/// A 10 ms span starting `start_ms` after `T0`, with its index as an attribute.
fn span(
    trace: u8,
    id: u8,
    parent: Option<u8>,
    name: &str,
    kind: SpanKind,
    start_ms: u64,
    status: StatusCode,
) -> Span {
    let times = (T0 + start_ms * 1_000_000, T0 + (start_ms + 10) * 1_000_000);
    Span {
        attributes: vec![kv("span.index", &id.to_string())],
        status: Some(Status {
            code: status as i32,
            message: String::new(),
        }),
        ..span_between(trace, id, parent, name, kind, times)
    }
}

fn resource_spans(service: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: resource(service),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The six spans of one order, sent out of order; the payment server span failed.
pub fn order_trace(trace: u8) -> ExportTraceServiceRequest {
    let mut consumer = span(
        trace,
        5,
        Some(4),
        "process email.payments",
        SpanKind::Consumer,
        40,
        StatusCode::Unset,
    );
    consumer.links = vec![Link {
        trace_id: trace_id(trace),
        span_id: span_id(4),
        ..Default::default()
    }];
    ExportTraceServiceRequest {
        resource_spans: vec![
            resource_spans(
                "email-service",
                vec![
                    consumer,
                    span(
                        trace,
                        6,
                        Some(5),
                        "send email",
                        SpanKind::Internal,
                        50,
                        StatusCode::Ok,
                    ),
                ],
            ),
            resource_spans(
                "order-gateway",
                vec![
                    span(
                        trace,
                        2,
                        Some(1),
                        "POST",
                        SpanKind::Client,
                        10,
                        StatusCode::Unset,
                    ),
                    span(
                        trace,
                        1,
                        None,
                        "POST /create-order",
                        SpanKind::Server,
                        0,
                        StatusCode::Unset,
                    ),
                ],
            ),
            resource_spans(
                "payment-service",
                vec![
                    span(
                        trace,
                        3,
                        Some(2),
                        "POST /process-payment",
                        SpanKind::Server,
                        20,
                        StatusCode::Error,
                    ),
                    span(
                        trace,
                        4,
                        Some(3),
                        "publish payments",
                        SpanKind::Producer,
                        30,
                        StatusCode::Unset,
                    ),
                ],
            ),
        ],
    }
}

/// A log record as the tracing bridge sends it, event name included.
fn record(trace: &[u8], span: &[u8], severity: i32, body: &str, ms: u64) -> LogRecord {
    LogRecord {
        event_name: "event apps/order-gateway/src/routes.rs:87".into(),
        time_unix_nano: T0 + ms * 1_000_000,
        severity_number: severity,
        severity_text: String::new(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.into())),
        }),
        attributes: vec![kv("order_id", "o-1")],
        trace_id: trace.to_vec(),
        span_id: span.to_vec(),
        ..Default::default()
    }
}

pub fn order_logs(trace: u8, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    let _ = trace;
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("order-gateway"),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub async fn send_grpc(
    app: &TestApp,
    tenant: Option<&str>,
    traces: ExportTraceServiceRequest,
    logs: ExportLogsServiceRequest,
) {
    let endpoint = format!("http://{}", app.otlp_grpc);
    let mut trace_client = TraceServiceClient::connect(endpoint.clone()).await.unwrap();
    assert_all_accepted(trace_client.export(with_tenant(traces, tenant)).await);
    let mut logs_client = LogsServiceClient::connect(endpoint).await.unwrap();
    assert_all_accepted(logs_client.export(with_tenant(logs, tenant)).await);
}

#[tokio::test]
async fn otlp_grpc_round_trip_gives_the_trace_api_its_contract() {
    let app = spawn_app().await;
    let logs = order_logs(
        1,
        vec![
            record(&trace_id(1), &span_id(1), 9, "order received", 1),
            record(&trace_id(1), &span_id(6), 17, "smtp refused", 55),
        ],
    );
    send_grpc(&app, None, order_trace(1), logs).await;

    let id = hex(&trace_id(1));
    let (status, trace) = app.get(&format!("/api/v1/traces/{id}"), None).await;
    assert_eq!(status, 200, "{trace}");
    assert_eq!(trace["trace_id"], id);
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(
        strings(&trace, "spans", "name"),
        [
            "POST /create-order",
            "POST",
            "POST /process-payment",
            "publish payments",
            "process email.payments",
            "send email"
        ],
        "spans sorted by start time"
    );
    assert_eq!(
        strings(&trace, "spans", "kind"),
        [
            "SERVER", "CLIENT", "SERVER", "PRODUCER", "CONSUMER", "INTERNAL"
        ]
    );
    assert_eq!(
        strings(&trace, "spans", "status"),
        ["UNSET", "UNSET", "ERROR", "UNSET", "UNSET", "OK"]
    );
    assert_eq!(spans[0]["parent_span_id"], Value::Null);
    assert_eq!(spans[2]["parent_span_id"], hex(&span_id(2)));
    assert_eq!(spans[2]["service"], "payment-service");
    assert_eq!(
        spans[4]["links"],
        json!([{"trace_id": id, "span_id": hex(&span_id(4)), "attributes": {}}])
    );
    assert_eq!(spans[0]["duration_ms"], 10.0);
    assert_eq!(spans[0]["start_time"], "2023-11-14T22:13:20Z");
    assert_eq!(spans[0]["attributes"]["span.index"], "1");
    for key in [
        "trace_id",
        "span_id",
        "parent_span_id",
        "service",
        "name",
        "kind",
        "start_time",
        "end_time",
        "duration_ms",
        "status",
        "attributes",
        "links",
    ] {
        assert!(spans[3].get(key).is_some(), "span lacks {key}");
    }
    let logs = trace["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0]["message"], "order received");
    assert_eq!(logs[0]["service_name"], "order-gateway");
    assert_eq!(logs[0]["level"], "INFO");
    assert_eq!(logs[0]["trace_id"], id);
    assert_eq!(logs[0]["span_id"], hex(&span_id(1)));
    // Structured fields come back once, under `metadata`; the tracing bridge's
    // "event <file>:<line>" name is not among them.
    assert_eq!(logs[0]["metadata"], json!({"order_id": "o-1"}));
    assert!(logs[0].get("attributes").is_none(), "{}", logs[0]);
    assert_eq!(logs[0]["host"], "box-1");
    assert!(logs[0]["id"].is_i64());
    assert_eq!(logs[1]["level"], "ERROR");

    let (status, _) = app
        .get(&format!("/api/v1/traces/{}", hex(&trace_id(9))), None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_dag_follows_parents_and_marks_errors_from_status_and_logs() {
    let app = spawn_app().await;
    let logs = order_logs(
        2,
        vec![record(&trace_id(2), &span_id(6), 17, "smtp refused", 55)],
    );
    send_grpc(&app, None, order_trace(2), logs).await;
    let id = hex(&trace_id(2));
    let (status, dag) = app.get(&format!("/api/v1/traces/{id}/dag"), None).await;
    assert_eq!(status, 200, "{dag}");
    assert_eq!(dag["root_span_id"], hex(&span_id(1)));
    assert_eq!(dag["nodes"].as_array().unwrap().len(), 6);
    let edges: Vec<(String, String)> = dag["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["source"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for child in 2..=6u8 {
        assert!(
            edges.contains(&(hex(&span_id(child - 1)), hex(&span_id(child)))),
            "edge to {child}"
        );
    }
    assert_eq!(edges.len(), 5);
    let node = |n: u8| {
        dag["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == hex(&span_id(n)))
            .unwrap()
            .clone()
    };
    assert_eq!(node(3)["error"], true, "span status Error");
    assert_eq!(node(6)["error"], true, "ERROR log on the span");
    assert_eq!(node(6)["level"], "error");
    assert_eq!(node(1)["error"], false);
    assert_eq!(node(1)["service"], "order-gateway");
    assert_eq!(node(5)["name"], "process email.payments");
    assert_eq!(node(5)["duration_ms"], 10.0);

    let (_, dags) = app.get("/api/v1/dags", None).await;
    assert_eq!(dags["dags"].as_array().unwrap().len(), 1);
    assert_eq!(dags["dags"][0]["trace_id"], id);

    // the distributed-logging gRPC API's query service, from the repository's own protos.
    let mut client = app.query_client().await;
    let dag = client
        .get_dag_by_trace_id(trace_request(&id, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dag.trace_id, id);
    assert_eq!(dag.root_span_id, hex(&span_id(1)));
    let graph = dag.dag_json.expect("dagJson is set");
    let edges = match &graph.fields["edges"].kind {
        Some(prost_types::value::Kind::ListValue(edges)) => edges.values.len(),
        other => panic!("edges is a list: {other:?}"),
    };
    assert_eq!(edges, 5);
    let dags = client
        .get_dags(Empty::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dags.dags.len(), 1);
    let logs = client
        .get_logs_by_trace_id(trace_request(&id, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(logs.logs.len(), 1);
    assert_eq!(logs.logs[0].level, "error");
    assert_eq!(logs.logs[0].service, "order-gateway");
    let all = client
        .get_logs(Empty {
            limit: 10,
            offset: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.logs.len(), 1);

    let missing = client
        .get_dag_by_trace_id(trace_request("nope", None))
        .await;
    assert_eq!(grpc_code(missing), tonic::Code::NotFound);
    let missing = client
        .get_logs_by_trace_id(trace_request("nope", None))
        .await;
    assert_eq!(grpc_code(missing), tonic::Code::NotFound);
    let empty = client.get_dag_by_trace_id(trace_request(" ", None)).await;
    assert_eq!(grpc_code(empty), tonic::Code::InvalidArgument);
    let page = Empty {
        limit: 5000,
        offset: 0,
    };
    assert_eq!(
        grpc_code(client.get_logs(page).await),
        tonic::Code::InvalidArgument
    );
}

#[tokio::test]
async fn a_dag_is_built_from_logs_when_a_trace_has_no_spans() {
    let app = spawn_app().await;
    let batch = json!([
        {"service_name": "gw", "level": "INFO", "message": "start", "trace_id": "lt", "span_id": "a", "timestamp": "2024-01-01T00:00:00Z"},
        {"service_name": "pay", "level": "ERROR", "message": "declined", "trace_id": "lt", "span_id": "b", "parent_span_id": "a", "timestamp": "2024-01-01T00:00:01Z"},
        {"service_name": "mail", "level": "INFO", "message": "orphan", "trace_id": "lt", "span_id": "c", "parent_span_id": "zz", "timestamp": "2024-01-01T00:00:02Z"},
    ]);
    let (status, _) = app.post("/api/v1/logs/batch", None, &batch).await;
    assert_eq!(status, 201);
    let (status, dag) = app.get("/api/v1/traces/lt/dag", None).await;
    assert_eq!(status, 200);
    assert_eq!(dag["root_span_id"], "a");
    assert_eq!(dag["roots"], json!(["a", "c"]));
    assert_eq!(dag["edges"], json!([{"source": "a", "target": "b"}]));
    assert_eq!(dag["error"], true);
    let (_, dags) = app.get("/api/v1/dags", None).await;
    assert_eq!(dags["dags"][0]["trace_id"], "lt");
}

#[tokio::test]
async fn bad_otlp_records_are_reported_through_partial_success() {
    let app = spawn_app().await;
    let endpoint = format!("http://{}", app.otlp_grpc);
    let mut logs_client = LogsServiceClient::connect(endpoint.clone()).await.unwrap();
    let request = order_logs(
        3,
        vec![
            record(&trace_id(3), &span_id(1), 9, "good", 1),
            record(&[1, 2, 3, 4, 5], &span_id(1), 9, "short trace id", 2),
            record(&trace_id(3), &[9; 3], 9, "short span id", 3),
        ],
    );
    let response = logs_client.export(request).await.unwrap().into_inner();
    let partial = response.partial_success.expect("partial success");
    assert_eq!(partial.rejected_log_records, 2);
    assert!(
        partial.error_message.contains("trace_id"),
        "{}",
        partial.error_message
    );
    let (_, logs) = app
        .get(&format!("/api/v1/logs/trace/{}", hex(&trace_id(3))), None)
        .await;
    assert_eq!(logs["count"], 1);

    let mut trace_client = TraceServiceClient::connect(endpoint).await.unwrap();
    let mut request = order_trace(4);
    request.resource_spans[0].scope_spans[0].spans[0].span_id = vec![];
    let response = trace_client.export(request).await.unwrap().into_inner();
    assert_eq!(response.partial_success.unwrap().rejected_spans, 1);
    let (_, trace) = app
        .get(&format!("/api/v1/traces/{}", hex(&trace_id(4))), None)
        .await;
    assert_eq!(trace["spans"].as_array().unwrap().len(), 5);

    // Malformed protobuf on the gRPC receiver is INVALID_ARGUMENT.
    let path = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    let status = raw_grpc_status(app.otlp_grpc, path, &[0x0a, 0x7f, 0x01]).await;
    assert_eq!(status, "3");
}

#[tokio::test]
async fn otlp_http_accepts_protobuf_json_and_gzip() {
    let app = spawn_app().await;
    let url = |signal: &str| format!("{}/v1/{signal}", app.otlp_http);

    // protobuf traces
    let response = app
        .post_raw(&url("traces"), PROTOBUF, order_trace(5).encode_to_vec())
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], PROTOBUF);
    let decoded = ExportTraceServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    assert!(decoded.partial_success.is_none());

    // gzip-compressed protobuf logs
    let logs = order_logs(
        5,
        vec![record(&trace_id(5), &span_id(2), 13, "slow payment", 12)],
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&logs.encode_to_vec()).unwrap();
    let response = app
        .client
        .post(url("logs"))
        .header("content-type", PROTOBUF)
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let decoded = ExportLogsServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    assert!(decoded.partial_success.is_none());

    // OTLP JSON logs (ids in hex, as the OTLP/JSON encoding spells them), one of them bad
    let id = hex(&trace_id(5));
    let body = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "email-service"}}]},
        "scopeLogs": [{"scope": {"name": "email"}, "logRecords": [
            {"timeUnixNano": "1700000000060000000", "severityNumber": 17, "severityText": "ERROR",
             "body": {"stringValue": "json error"}, "traceId": id, "spanId": hex(&span_id(6)),
             "attributes": [{"key": "attempt", "value": {"intValue": "2"}}]},
            {"timeUnixNano": "1700000000061000000", "body": {"stringValue": "bad"}, "traceId": "abcd", "spanId": ""}
        ]}]
    }]});
    let response = app
        .post_raw(&url("logs"), "application/json", body.to_string())
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["partialSuccess"]["rejectedLogRecords"], 1,
        "{answer}"
    );

    let (_, trace) = app.get(&format!("/api/v1/traces/{id}"), None).await;
    assert_eq!(trace["spans"].as_array().unwrap().len(), 6);
    let logs = trace["logs"].as_array().unwrap();
    assert_eq!(messages(&trace), ["slow payment", "json error"]);
    assert_eq!(logs[0]["level"], "WARN");
    assert_eq!(logs[1]["service_name"], "email-service");
    assert_eq!(logs[1]["metadata"]["attempt"], 2);
    assert_eq!(logs[1]["source"], "email");

    // Bad input: malformed protobuf, malformed JSON, unknown content type.
    let response = app
        .post_raw(&url("logs"), PROTOBUF, vec![0x0a, 0xff, 0xff, 0xff])
        .await;
    assert_eq!(response.status(), 400);
    #[derive(Clone, PartialEq, prost::Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    let status = RpcStatus::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, 3);
    assert!(status.message.contains("protobuf"), "{}", status.message);
    let response = app
        .post_raw(&url("traces"), "application/json", "{\"resourceSpans\": 7}")
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("JSON"));
    let response = app.post_raw(&url("traces"), "text/plain", "hello").await;
    assert_eq!(response.status(), 415);
}
