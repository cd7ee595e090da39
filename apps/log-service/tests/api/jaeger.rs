//! Jaeger's query API and the services summary on the REST port, against a real order trace
//! ingested over OTLP (gRPC and HTTP protobuf): the trace in Jaeger's model, search, services
//! and operations, dependencies (parents and links), the error envelopes, tenants. The same
//! checks run on SQLite and, when a server answers, PostgreSQL.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_all_accepted, hex, on_both_backends, with_tenant};
use crate::otlp::{span_between, span_id, trace_id};

const TENANT: &str = "jaeger-acme";
const MS: u64 = 1_000_000;

fn value(v: any_value::Value) -> KeyValue {
    KeyValue {
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn attr(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        ..value(v)
    }
}

fn text(key: &str, v: &str) -> KeyValue {
    attr(key, any_value::Value::StringValue(v.into()))
}

/// The instant the test trace starts: a few seconds ago, on a whole millisecond so that both
/// backends (PostgreSQL keeps microseconds) give the same times back.
fn t0() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (now.as_millis() as u64 - 10_000) * MS
}

/// The span times of one starting `start_ms` after `t0` and lasting `ms`.
fn at(t0: u64, start_ms: u64, ms: u64) -> (u64, u64) {
    (t0 + start_ms * MS, t0 + (start_ms + ms) * MS)
}

fn resource_spans(service: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![text("service.name", service)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Trace 1: gateway server -> client -> payment server (failed, with an exception event) ->
/// producer -> email consumer (child of the producer, and linked to it) -> send. Trace 2: a
/// later health check of the gateway. Trace 3: a retry consumer of its own trace, linked to
/// trace 1's producer only.
fn export(t0: u64) -> (ExportTraceServiceRequest, ExportTraceServiceRequest) {
    let mut root = span_between(
        1,
        1,
        None,
        "POST /create-order",
        SpanKind::Server,
        at(t0, 0, 120),
    );
    root.attributes = vec![
        text("http.request.method", "POST"),
        attr("http.response.status_code", any_value::Value::IntValue(201)),
    ];
    let client = span_between(1, 2, Some(1), "POST", SpanKind::Client, at(t0, 5, 100));
    let mut payment = span_between(
        1,
        3,
        Some(2),
        "POST /process-payment",
        SpanKind::Server,
        at(t0, 10, 80),
    );
    payment.attributes = vec![
        attr("payment.amount_cents", any_value::Value::IntValue(1999)),
        attr("payment.ratio", any_value::Value::DoubleValue(0.5)),
        attr("payment.retried", any_value::Value::BoolValue(false)),
        text("payment.currency", "USD"),
    ];
    payment.status = Some(Status {
        code: StatusCode::Error as i32,
        message: "card declined".into(),
    });
    payment.events = vec![Event {
        time_unix_nano: t0 + 50 * MS,
        name: "exception".into(),
        attributes: vec![
            text("exception.type", "CardDeclined"),
            text("exception.message", "card declined"),
        ],
        ..Default::default()
    }];
    let producer = span_between(
        1,
        4,
        Some(3),
        "publish payments",
        SpanKind::Producer,
        at(t0, 60, 5),
    );
    let link = Link {
        trace_id: trace_id(1),
        span_id: span_id(4),
        ..Default::default()
    };
    let mut consumer = span_between(
        1,
        5,
        Some(4),
        "process email.payments",
        SpanKind::Consumer,
        at(t0, 70, 30),
    );
    consumer.links = vec![link.clone()];
    let send = span_between(
        1,
        6,
        Some(5),
        "send email",
        SpanKind::Internal,
        at(t0, 75, 20),
    );
    let health = span_between(2, 1, None, "GET /health", SpanKind::Server, at(t0, 500, 1));
    let mut retry = span_between(
        3,
        1,
        None,
        "process email.retry",
        SpanKind::Consumer,
        at(t0, 400, 40),
    );
    retry.links = vec![link];
    let grpc = ExportTraceServiceRequest {
        resource_spans: vec![
            resource_spans("order-gateway", vec![client, root, health]),
            resource_spans("payment-service", vec![payment, producer]),
        ],
    };
    let http = ExportTraceServiceRequest {
        resource_spans: vec![resource_spans("email-service", vec![consumer, send, retry])],
    };
    (grpc, http)
}

/// Sends the test traces for `tenant`: the gateway and payment over OTLP/gRPC, the e-mail
/// service over OTLP/HTTP protobuf.
async fn ingest(app: &TestApp, tenant: &str, t0: u64) {
    let (grpc, http) = export(t0);
    let mut client = TraceServiceClient::connect(format!("http://{}", app.otlp_grpc))
        .await
        .unwrap();
    assert_all_accepted(client.export(with_tenant(grpc, Some(tenant))).await);
    let response = app
        .client
        .post(format!("{}/v1/traces", app.otlp_http))
        .header("content-type", "application/x-protobuf")
        .header("X-Tenant-ID", tenant)
        .body(http.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The span of `trace` whose id is `span_id(n)`.
fn span_of(trace: &Value, n: u8) -> &Value {
    entry_with(trace, "spans", "spanID", &hex(&span_id(n)))
}

fn tag<'a>(span: &'a Value, key: &str) -> &'a Value {
    entry_with(span, "tags", "key", key)
}

/// The entry of `parent[list]` whose `field` is `value`.
fn entry_with<'a>(parent: &'a Value, list: &str, field: &str, value: &str) -> &'a Value {
    parent[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e[field] == value)
        .unwrap_or_else(|| panic!("{list} entry with {field} {value} in {parent}"))
}

fn ok_envelope(body: &Value, total: usize) {
    assert_eq!(body["total"], total, "{body}");
    assert_eq!((&body["limit"], &body["offset"]), (&json!(0), &json!(0)));
    assert_eq!(body["errors"], Value::Null, "{body}");
}

/// The trace ids of a search answer, in order.
fn trace_ids(body: &Value) -> Vec<String> {
    let traces = body["data"].as_array().unwrap_or_else(|| panic!("{body}"));
    traces
        .iter()
        .map(|t| t["traceID"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_jaeger_api_answers(app: &TestApp) {
    let t0 = t0();
    ingest(app, TENANT, t0).await;
    let get = |path: String| async move { app.get(&path, Some(TENANT)).await };
    let us = |ms: u64| (t0 + ms * MS) / 1000;
    let id = hex(&trace_id(1));

    // One trace, whole, in Jaeger's model.
    let (status, body) = get(format!("/api/traces/{id}")).await;
    assert_eq!(status, 200, "{body}");
    ok_envelope(&body, 0);
    let trace = &body["data"][0];
    assert_eq!(trace["traceID"], id);
    assert_eq!(trace["warnings"], Value::Null);
    assert_eq!(trace["spans"].as_array().unwrap().len(), 6);
    let services: Vec<&Value> = ["p1", "p2", "p3"]
        .iter()
        .map(|p| &trace["processes"][p]["serviceName"])
        .collect();
    assert_eq!(
        services,
        [
            &json!("order-gateway"),
            &json!("payment-service"),
            &json!("email-service")
        ],
        "processes in the order their services first start: {trace}"
    );
    assert_eq!(trace["processes"]["p1"]["tags"], json!([]));

    let root = span_of(trace, 1);
    assert_eq!(root["operationName"], "POST /create-order");
    assert_eq!(root["references"], json!([]));
    assert_eq!(root["startTime"], us(0));
    assert_eq!(root["duration"], 120_000);
    assert_eq!(
        (&root["processID"], &root["flags"]),
        (&json!("p1"), &json!(1))
    );
    assert_eq!(root["warnings"], Value::Null);
    assert_eq!(
        tag(root, "http.response.status_code"),
        &json!({"key": "http.response.status_code", "type": "int64", "value": 201})
    );
    assert_eq!(tag(root, "span.kind")["value"], "server");
    let root_tags = root["tags"].to_string();
    assert!(
        !root_tags.contains("otel.status_code"),
        "unset: {root_tags}"
    );
    assert!(!root_tags.contains("\"error\""), "{root_tags}");
    assert_eq!(tag(span_of(trace, 2), "span.kind")["value"], "client");

    let payment = span_of(trace, 3);
    assert_eq!(
        payment["references"],
        json!([{"refType": "CHILD_OF", "traceID": id, "spanID": hex(&span_id(2))}])
    );
    assert_eq!(payment["processID"], "p2");
    assert_eq!(
        (&payment["startTime"], &payment["duration"]),
        (&json!(us(10)), &json!(80_000))
    );
    for expected in [
        json!({"key": "payment.amount_cents", "type": "int64", "value": 1999}),
        json!({"key": "payment.ratio", "type": "float64", "value": 0.5}),
        json!({"key": "payment.retried", "type": "bool", "value": false}),
        json!({"key": "payment.currency", "type": "string", "value": "USD"}),
        json!({"key": "span.kind", "type": "string", "value": "server"}),
        json!({"key": "otel.status_code", "type": "string", "value": "ERROR"}),
        json!({"key": "error", "type": "bool", "value": true}),
        json!({"key": "otel.status_description", "type": "string", "value": "card declined"}),
    ] {
        assert_eq!(tag(payment, expected["key"].as_str().unwrap()), &expected);
    }
    assert_eq!(
        payment["logs"],
        json!([{"timestamp": us(50), "fields": [
            {"key": "event", "type": "string", "value": "exception"},
            {"key": "exception.message", "type": "string", "value": "card declined"},
            {"key": "exception.type", "type": "string", "value": "CardDeclined"},
        ]}])
    );
    let consumer = span_of(trace, 5);
    assert_eq!(
        consumer["references"],
        json!([
            {"refType": "CHILD_OF", "traceID": id, "spanID": hex(&span_id(4))},
            {"refType": "FOLLOWS_FROM", "traceID": id, "spanID": hex(&span_id(4))},
        ])
    );
    assert_eq!(
        (&consumer["processID"], &tag(consumer, "span.kind")["value"]),
        (&json!("p3"), &json!("consumer"))
    );
    assert_eq!(tag(span_of(trace, 6), "span.kind")["value"], "internal");

    // Jaeger's error envelopes: an unknown id, a malformed one.
    let (status, body) = get(format!("/api/traces/{}", hex(&trace_id(99)))).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"data": null, "total": 0, "limit": 0, "offset": 0,
               "errors": [{"code": 404, "msg": "trace not found"}]})
    );
    let (status, body) = get("/api/traces/not-a-trace-id".into()).await;
    assert_eq!(status, 400);
    assert_eq!(body["data"], Value::Null);
    assert_eq!(body["errors"][0]["code"], 400);
    assert!(
        body["errors"][0]["msg"]
            .as_str()
            .unwrap()
            .starts_with("traceID: "),
        "{body}"
    );
    // Jaeger reads a trace id as hex digits in either case.
    let (status, _) = get(format!("/api/traces/{}", id.to_uppercase())).await;
    assert_eq!(status, 200);

    // Services and operations.
    let (status, body) = get("/api/services".into()).await;
    assert_eq!(status, 200);
    ok_envelope(&body, 3);
    assert_eq!(
        body["data"],
        json!(["email-service", "order-gateway", "payment-service"])
    );
    let (_, body) = get("/api/services/order-gateway/operations".into()).await;
    ok_envelope(&body, 3);
    assert_eq!(
        body["data"],
        json!(["GET /health", "POST", "POST /create-order"])
    );
    let (_, body) = get("/api/operations?service=order-gateway&spanKind=server".into()).await;
    ok_envelope(&body, 2);
    assert_eq!(
        body["data"],
        json!([{"name": "GET /health", "spanKind": "server"},
               {"name": "POST /create-order", "spanKind": "server"}])
    );
    let (_, body) = get("/api/operations?service=email-service".into()).await;
    assert_eq!(
        body["data"],
        json!([{"name": "process email.payments", "spanKind": "consumer"},
               {"name": "process email.retry", "spanKind": "consumer"},
               {"name": "send email", "spanKind": "internal"}])
    );
    let (status, body) = get("/api/operations".into()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"][0]["msg"]
            .as_str()
            .unwrap()
            .starts_with("service: ")
    );

    // Search: by service, newest first, within the default hour and the limit.
    let (status, body) = get("/api/traces?service=order-gateway".into()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(trace_ids(&body), [hex(&trace_id(2)), id.clone()]);
    assert_eq!(
        body["data"][1]["spans"].as_array().unwrap().len(),
        6,
        "whole traces"
    );
    let (_, body) = get("/api/traces?service=order-gateway&limit=1".into()).await;
    assert_eq!(trace_ids(&body), [hex(&trace_id(2))]);
    // By operation, tags (an attribute, the derived error tag) and duration.
    let tags = urlencode(r#"{"payment.currency":"USD","error":"true"}"#);
    let found = format!(
        "/api/traces?service=payment-service&operation={}&tags={tags}&minDuration=50ms&maxDuration=1.5s",
        urlencode("POST /process-payment")
    );
    let (status, body) = get(found).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(trace_ids(&body), [id.as_str()]);
    let too_long = "/api/traces?service=payment-service&minDuration=81ms";
    assert_eq!(
        trace_ids(&get(too_long.into()).await.1),
        Vec::<String>::new()
    );
    let int_tag = format!(
        "/api/traces?service=order-gateway&tags={}",
        urlencode(r#"{"http.response.status_code":"201"}"#)
    );
    assert_eq!(trace_ids(&get(int_tag).await.1), [id.as_str()]);
    let not_error = format!(
        "/api/traces?service=payment-service&tags={}",
        urlencode(r#"{"error":"false"}"#)
    );
    assert_eq!(
        trace_ids(&get(not_error).await.1),
        [id.as_str()],
        "the producer did not fail"
    );
    let past = format!(
        "/api/traces?service=order-gateway&start={}&end={}",
        us(0) - 7_200_000_000,
        us(0) - 3_600_000_000
    );
    assert_eq!(trace_ids(&get(past).await.1), Vec::<String>::new());
    let (_, body) = get(format!(
        "/api/traces?traceID={id}&traceID={}",
        hex(&trace_id(98))
    ))
    .await;
    assert_eq!(trace_ids(&body), [id.as_str()]);
    assert_eq!(
        body["errors"],
        json!([{"msg": "trace not found", "traceID": hex(&trace_id(98))}])
    );
    for bad in [
        "/api/traces",
        "/api/traces?service=x&minDuration=fast",
        "/api/traces?service=x&tags=%5B1%5D",
        "/api/traces?service=x&start=yesterday",
        "/api/traces?service=x&limit=100000",
    ] {
        let (status, body) = get(bad.into()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["errors"][0]["code"], 400, "{bad}: {body}");
    }

    // Dependencies: parent to child across services, and links (trace 3's retry consumer is
    // linked to trace 1's producer; trace 1's consumer, child of and linked to the producer,
    // counts once).
    let (status, body) = get("/api/dependencies".into()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!([
            {"parent": "order-gateway", "child": "payment-service", "callCount": 1},
            {"parent": "payment-service", "child": "email-service", "callCount": 2},
        ])
    );
    let end_ms = us(0) / 1000 - 60_000;
    let (_, body) = get(format!("/api/dependencies?endTs={end_ms}&lookback=60000")).await;
    assert_eq!(body["data"], json!([]), "a window before the trace");
    let (status, _) = get("/api/dependencies?lookback=soon".into()).await;
    assert_eq!(status, 400);

    // The services summary: SERVER and CONSUMER spans.
    let (status, body) = get("/api/v1/services/summary".into()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"services": [
            {"service": "email-service", "requests": 2, "errors": 0, "p50_ms": 30.0, "p99_ms": 40.0},
            {"service": "order-gateway", "requests": 2, "errors": 0, "p50_ms": 1.0, "p99_ms": 120.0},
            {"service": "payment-service", "requests": 1, "errors": 1, "p50_ms": 80.0, "p99_ms": 80.0},
        ]})
    );
    let (_, body) =
        get("/api/v1/services/summary?start=2020-01-01T00:00:00Z&end=2020-01-01T01:00:00Z".into())
            .await;
    assert_eq!(body, json!({"services": []}));
    let (status, body) = get("/api/v1/services/summary?start=soon".into()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "start");

    // Another tenant sees none of it.
    let other = |path: &str| {
        let path = path.to_owned();
        async move { app.get(&path, Some("jaeger-other")).await }
    };
    assert_eq!(other("/api/services").await.1["data"], json!([]));
    assert_eq!(other(&format!("/api/traces/{id}")).await.0, 404);
    assert_eq!(
        trace_ids(&other("/api/traces?service=order-gateway").await.1),
        Vec::<String>::new()
    );
    assert_eq!(other("/api/dependencies").await.1["data"], json!([]));
    assert_eq!(
        other("/api/operations?service=order-gateway").await.1["data"],
        json!([])
    );
    assert_eq!(
        other("/api/v1/services/summary").await.1,
        json!({"services": []})
    );
}

/// Percent-encodes a query parameter value.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

on_both_backends!(
    the_jaeger_query_api_serves_a_real_trace_on_sqlite,
    the_jaeger_query_api_serves_a_real_trace_on_postgres,
    the_jaeger_api_answers
);
