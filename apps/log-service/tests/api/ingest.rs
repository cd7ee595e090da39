//! REST, Traceflow and distributed-logging gRPC ingest: acknowledgements, bad input on every
//! path, back-pressure.

use log_service::grpc::proto::logs::log_ingestion_service_client::LogIngestionServiceClient;
use log_service::grpc::proto::logs::{Log, LogLevel};
use serde_json::json;

use crate::helpers::{messages, raw_grpc_status, spawn_app, spawn_with};

#[tokio::test]
async fn single_entries_are_stored_and_bad_fields_are_named() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/v1/logs",
            None,
            &json!({"service_name": "my-service", "level": "INFO", "message": "Hello World"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");
    let (status, log) = app.get(&format!("/api/v1/logs/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(log["message"], "Hello World");

    let cases = [
        (
            json!({"service_name": "s", "level": "LOUD", "message": "m"}),
            "level",
        ),
        (
            json!({"service_name": "s", "level": "INFO", "message": "m", "timestamp": "2024-13-45"}),
            "timestamp",
        ),
        (
            json!({"service_name": "s", "level": "INFO", "message": "m", "timestamp": 17}),
            "timestamp",
        ),
        (json!({"level": "INFO", "message": "m"}), "service_name"),
        (json!({"service_name": "s", "level": "INFO"}), "message"),
        (
            json!({"service_name": "s", "level": "INFO", "message": "m", "metadata": "x"}),
            "metadata",
        ),
        (
            json!({"service_name": "s", "level": "INFO", "message": "m", "span_id": 5}),
            "span_id",
        ),
        (json!(["not", "an", "object"]), "body"),
    ];
    for (entry, field) in cases {
        let (status, body) = app.post("/api/v1/logs", None, &entry).await;
        assert_eq!(status, 422, "{entry}");
        assert_eq!(body["error"]["code"], "invalid_argument");
        if field != "body" {
            assert_eq!(body["error"]["field"], field, "{entry} -> {body}");
            assert!(body["error"]["message"].as_str().unwrap().contains(field));
        }
    }
    app.assert_unreadable_body("/api/v1/logs", "{\"service_name\": ")
        .await;
    // Nothing but the one good entry was stored.
    let (_, page) = app.get("/api/v1/logs", None).await;
    assert_eq!(page["total"], 1);
}

#[tokio::test]
async fn a_batch_stores_the_valid_entries_and_reports_the_rejected_ones() {
    let app = spawn_app().await;
    let batch = json!([
        {"service_name": "a", "level": "INFO", "message": "first"},
        {"service_name": "a", "level": "NOPE", "message": "bad level"},
        {"service_name": "a", "level": "error", "message": "second"},
        {"service_name": "a", "level": "INFO", "message": "bad time", "timestamp": "yesterday"},
    ]);
    let (status, body) = app.post("/api/v1/logs/batch", None, &batch).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["accepted"], 2);
    let rejected = body["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0]["index"], 1);
    assert_eq!(rejected[0]["field"], "level");
    assert_eq!(rejected[1]["index"], 3);
    assert_eq!(rejected[1]["field"], "timestamp");
    assert_eq!(body["stored"][1]["index"], 2);
    let (_, page) = app.get("/api/v1/logs", None).await;
    let mut stored = messages(&page);
    stored.sort();
    assert_eq!(stored, ["first", "second"]);

    let (status, body) = app
        .post(
            "/api/v1/logs/batch",
            None,
            &json!({"logs": [{"level": "INFO"}]}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["accepted"], 0);
    assert_eq!(body["rejected"][0]["field"], "service_name");
    app.assert_invalid_field("/api/v1/logs/batch", &json!([]), "logs")
        .await;
}

#[tokio::test]
async fn oversize_bodies_are_refused_with_a_json_error() {
    let app = spawn_with(|c| c.max_body_bytes = 4096).await;
    let big = json!({"service_name": "s", "level": "INFO", "message": "x".repeat(5000)});
    for path in ["/api/v1/logs", "/api/v1/logs/batch", "/ingest"] {
        let (status, body) = app.post(path, None, &big).await;
        assert_eq!(status, 413, "{path}");
        assert_eq!(body["error"]["code"], "payload_too_large");
    }
    let response = app
        .post_raw(
            &format!("{}/v1/logs", app.otlp_http),
            "application/x-protobuf",
            vec![0u8; 5000],
        )
        .await;
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn ingest_answers_202_with_a_generated_or_given_trace_id() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/ingest",
            None,
            &json!({"service": "auth-service", "level": "ERROR", "message": "DB connection failed",
                    "metadata": {"user_id": "42", "host": "db-primary"}}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "accepted");
    let trace_id = body["trace_id"].as_str().unwrap().to_owned();
    assert_eq!(trace_id.len(), 32);
    let (_, logs) = app
        .get(&format!("/api/v1/logs/trace/{trace_id}"), None)
        .await;
    assert_eq!(messages(&logs), ["DB connection failed"]);
    assert_eq!(logs["logs"][0]["metadata"]["host"], "db-primary");

    let (status, body) = app
        .post(
            "/ingest",
            None,
            &json!({"service": "s", "level": "INFO", "message": "m", "trace_id": "abc123"}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(body["trace_id"], "abc123");

    for (event, field) in [
        (json!({"service": "s", "level": "INFO"}), "message"),
        (
            json!({"service": "s", "level": "verbose", "message": "m"}),
            "level",
        ),
    ] {
        app.assert_invalid_field("/ingest", &event, field).await;
    }
}

#[tokio::test]
async fn grpc_send_log_stores_the_entry_and_rejects_bad_fields() {
    let app = spawn_app().await;
    let mut client = LogIngestionServiceClient::connect(format!("http://{}", app.grpc))
        .await
        .unwrap();
    let entry = Log {
        trace_id: "abc123".into(),
        span_id: "span456".into(),
        parent_id: "span123".into(),
        service: "auth-service".into(),
        level: LogLevel::Error.into(),
        message: "User login failed: invalid credentials".into(),
        timestamp: "2025-04-16T14:30:00Z".into(),
    };
    let response = client.send_log(entry.clone()).await.unwrap().into_inner();
    assert_eq!(response.status, "ok");
    assert!(response.success);
    let (status, log) = app
        .get(&format!("/api/v1/logs/{}", response.id), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        log["timestamp"], "2025-04-16T14:30:00Z",
        "the event time is kept"
    );
    assert_eq!(log["parent_span_id"], "span123");
    assert_eq!(log["level"], "ERROR");

    for (bad, field) in [
        (
            Log {
                level: 17,
                ..entry.clone()
            },
            "level",
        ),
        (
            Log {
                timestamp: "16/04/2025".into(),
                ..entry.clone()
            },
            "timestamp",
        ),
        (
            Log {
                service: String::new(),
                ..entry.clone()
            },
            "service",
        ),
        (
            Log {
                trace_id: "has space".into(),
                ..entry.clone()
            },
            "traceId",
        ),
    ] {
        let status = client.send_log(bad).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().starts_with(field), "{}", status.message());
    }

    // Malformed protobuf (a truncated length-delimited field) is INVALID_ARGUMENT, not INTERNAL.
    let path = "/logs.LogIngestionService/SendLog";
    let status = raw_grpc_status(app.grpc, path, &[0x0a, 0x10, b'a']).await;
    assert_eq!(status, "3");

    // Each refused call is counted as a rejected request of its service, as REST's are.
    let metrics = app.metrics().await;
    let refused: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("http_requests_rejected_total{code=\"invalid_argument\""))
        .filter(|l| l.contains("LogIngestionService"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(refused >= 4, "gRPC rejections are not counted: {metrics}");
}

#[tokio::test]
async fn a_full_write_queue_pushes_back_instead_of_growing() {
    let app = spawn_with(|c| c.queue_capacity = 10).await;
    let entry = json!({"service_name": "s", "level": "INFO", "message": "m"});
    let batch = serde_json::Value::Array(vec![entry.clone(); 11]);
    let (status, body) = app.post("/api/v1/logs/batch", None, &batch).await;
    assert_eq!(
        status, 422,
        "a batch larger than the whole queue can never fit: {body}"
    );

    // Many concurrent batches of 6 rows against a queue of 10: some must be told to retry.
    let batch = serde_json::Value::Array(vec![entry; 6]);
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let client = app.client.clone();
        let url = format!("{}/api/v1/logs/batch", app.rest);
        let batch = batch.clone();
        tasks.push(tokio::spawn(async move {
            let response = client.post(url).json(&batch).send().await.unwrap();
            let retry_after = response.headers().get("retry-after").is_some();
            (response.status().as_u16(), retry_after)
        }));
    }
    let mut created = 0;
    let mut throttled = 0;
    for task in tasks {
        match task.await.unwrap() {
            (201, _) => created += 1,
            (429, true) => throttled += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(throttled > 0, "queue of 10 rows never pushed back");
    assert!(created > 0);
    let (_, page) = app.get("/api/v1/logs?page_size=1", None).await;
    assert_eq!(
        page["total"],
        created * 6,
        "every acknowledged batch is stored, no other"
    );
}
