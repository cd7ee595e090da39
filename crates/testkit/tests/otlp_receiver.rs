//! The OTLP receiver in its three modes, fed by a real OTLP/gRPC client.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use testkit::OtlpReceiver;
use testkit::otlp::{Counts, Mode};

const TRACE_ID: [u8; 16] = [0xab; 16];

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![text("service.name", "payment-service")],
        ..Resource::default()
    })
}

/// Two spans of one trace, a server span and its producer child that failed.
fn trace_export() -> ExportTraceServiceRequest {
    let server = Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: vec![1; 8],
        name: "POST /process-payment".into(),
        kind: span::SpanKind::Server as i32,
        attributes: vec![text("http.route", "/process-payment")],
        ..Span::default()
    };
    let producer = Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: vec![2; 8],
        parent_span_id: vec![1; 8],
        name: "publish payments".into(),
        kind: span::SpanKind::Producer as i32,
        status: Some(Status {
            code: 2,
            ..Status::default()
        }),
        ..Span::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                spans: vec![server, producer],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn logs_export() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    trace_id: TRACE_ID.to_vec(),
                    span_id: vec![1; 8],
                    severity_text: "INFO".into(),
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("payment succeeded".into())),
                    }),
                    ..LogRecord::default()
                }],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

async fn export_both(endpoint: String) {
    let mut traces = TraceServiceClient::connect(endpoint.clone())
        .await
        .expect("connect");
    traces.export(trace_export()).await.expect("trace export");
    let mut logs = LogsServiceClient::connect(endpoint).await.expect("connect");
    logs.export(logs_export()).await.expect("logs export");
}

#[tokio::test]
async fn a_keeping_receiver_decodes_spans_and_logs_for_the_assertions() {
    let receiver = OtlpReceiver::start().await;

    export_both(receiver.endpoint()).await;

    let trace_id = "ab".repeat(16);
    let spans = receiver
        .wait_for_trace(&trace_id, Duration::from_secs(5), |s| s.len() == 2)
        .await;
    let server = spans.iter().find(|s| s.kind == "SERVER").expect("server");
    let producer = spans
        .iter()
        .find(|s| s.kind == "PRODUCER")
        .expect("producer");
    assert_eq!(server.service, "payment-service");
    assert_eq!(server.parent_span_id, "");
    assert_eq!(server.attributes["http.route"], "/process-payment");
    assert_eq!(server.status, "UNSET");
    assert_eq!(producer.parent_span_id, server.span_id);
    assert_eq!(producer.span_id, "0202020202020202");
    assert_eq!(producer.status, "ERROR");
    let logs = receiver.logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(
        (logs[0].body.as_str(), logs[0].severity.as_str()),
        ("payment succeeded", "INFO")
    );
    assert_eq!(
        (logs[0].trace_id.as_str(), logs[0].service.as_str()),
        (trace_id.as_str(), "payment-service")
    );
    assert_eq!(receiver.shutdown().await, Counts { spans: 2, logs: 1 });
}

#[tokio::test]
async fn a_counting_receiver_keeps_nothing_and_reports_its_counts_at_shutdown() {
    let receiver = OtlpReceiver::bind(([127, 0, 0, 1], 0).into(), Mode::Count)
        .await
        .expect("bind");

    export_both(receiver.endpoint()).await;
    export_both(receiver.endpoint()).await;

    assert!(receiver.spans().is_empty() && receiver.logs().is_empty());
    assert_eq!(receiver.shutdown().await, Counts { spans: 4, logs: 2 });
}

#[tokio::test]
async fn a_silent_receiver_accepts_connections_and_never_answers() {
    let receiver = OtlpReceiver::silent().await;
    let channel = tonic::transport::Endpoint::from_shared(receiver.endpoint())
        .expect("endpoint")
        .timeout(Duration::from_millis(300))
        .connect_lazy();
    let mut traces = TraceServiceClient::new(channel);

    let status = traces.export(trace_export()).await.expect_err("no answer");

    assert!(
        matches!(
            status.code(),
            tonic::Code::Cancelled | tonic::Code::DeadlineExceeded | tonic::Code::Unavailable
        ),
        "{status:?}"
    );
    assert_eq!(receiver.counts(), Counts::default());
}
