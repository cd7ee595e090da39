//! Tenant isolation matrix: what tenant A writes, through any ingest path, is invisible to tenant B
//! (and to the default tenant) through every read route, REST and gRPC alike, even when both use
//! the same trace, request and span ids. The tenant list and the web view's trace pages keep
//! to the same rule.

use log_service::grpc::proto::query::Empty;
use serde_json::{Value, json};

use crate::helpers::{TestApp, grpc_code, hex, messages, spawn_app, trace_request, with_tenant};
use crate::otlp::{order_logs, order_trace, send_grpc, span_id, trace_id};

#[tokio::test]
async fn no_route_shows_one_tenant_the_data_of_another() {
    let app = spawn_app().await;
    let a = Some("tenant-a");
    // Tenant A writes through REST single, batch, /ingest and OTLP gRPC (spans with an error).
    let (status, body) = app
        .post(
            "/api/v1/logs",
            a,
            &json!({"service_name": "a-svc", "level": "ERROR", "message": "secret of a",
                    "trace_id": "shared-trace", "request_id": "shared-req", "span_id": "s1"}),
        )
        .await;
    assert_eq!(status, 201);
    let a_log_id = body["id"].as_i64().unwrap();
    let (status, _) = app
        .post(
            "/api/v1/logs/batch",
            a,
            &json!([{"service_name": "a-svc", "level": "INFO", "message": "more of a"}]),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = app
        .post("/ingest", a, &json!({"service": "a-ingest", "level": "INFO", "message": "ingest of a", "trace_id": "shared-trace"}))
        .await;
    assert_eq!(status, 202);
    let otlp_trace = hex(&trace_id(7));
    let logs = order_logs(
        7,
        vec![opentelemetry_proto::tonic::logs::v1::LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000,
            severity_number: 17,
            trace_id: trace_id(7),
            span_id: span_id(1),
            ..Default::default()
        }],
    );
    send_grpc(&app, a, order_trace(7), logs).await;

    // Sanity: A sees its own data everywhere.
    let (_, page) = app.get("/api/v1/logs", a).await;
    assert_eq!(page["total"], 4);
    let (status, _) = app.get(&format!("/api/v1/traces/{otlp_trace}"), a).await;
    assert_eq!(status, 200);
    let (_, dags) = app.get("/api/v1/dags", a).await;
    assert_eq!(dags["dags"].as_array().unwrap().len(), 2);

    // Tenant B writes one log on the same trace id, so "empty" is not the only thing B can see.
    let b = Some("tenant-b");
    let (status, _) = app
        .post("/api/v1/logs", b, &json!({"service_name": "b-svc", "level": "INFO", "message": "b only", "trace_id": "shared-trace", "request_id": "shared-req"}))
        .await;
    assert_eq!(status, 201);

    for (tenant, own_logs) in [(b, 1), (None, 0)] {
        let label = format!("{tenant:?}");
        let (_, page) = app.get("/api/v1/logs", tenant).await;
        assert_eq!(page["total"], own_logs, "{label} list");
        let (_, page) = app
            .post("/api/v1/logs/query", tenant, &json!({"search": "secret"}))
            .await;
        assert_eq!(page["total"], 0, "{label} search");
        let (status, _) = app.get(&format!("/api/v1/logs/{a_log_id}"), tenant).await;
        assert_eq!(status, 404, "{label} by id");
        let (_, logs) = app.get("/api/v1/logs/trace/shared-trace", tenant).await;
        assert!(
            logs["logs"].as_array().map_or(own_logs == 0, |logs| logs
                .iter()
                .all(|l| l["message"] == "b only")),
            "{label} by trace: {logs}"
        );
        let (_, logs) = app.get("/api/v1/logs/request/shared-req", tenant).await;
        assert_eq!(logs["count"], own_logs, "{label} by request");
        let (status, _) = app
            .get(&format!("/api/v1/traces/{otlp_trace}"), tenant)
            .await;
        assert_eq!(status, 404, "{label} trace");
        let (status, _) = app
            .get(&format!("/api/v1/traces/{otlp_trace}/dag"), tenant)
            .await;
        assert_eq!(status, 404, "{label} dag");
        let (_, trace) = app.get("/api/v1/traces/shared-trace", tenant).await;
        if own_logs > 0 {
            assert_eq!(
                trace["logs"].as_array().unwrap().len(),
                1,
                "{label} shared trace"
            );
        }
        let (_, dags) = app.get("/api/v1/dags", tenant).await;
        assert_eq!(dags["dags"], json!([]), "{label} dags");
        let (_, stats) = app.get("/api/v1/logs/stats", tenant).await;
        assert_eq!(stats["total"], own_logs, "{label} stats");
        assert_eq!(stats["error_count"], 0, "{label} stats errors");
        assert_eq!(stats["trace_count_with_errors"], 0, "{label} stats traces");
        let (_, services) = app.get("/api/v1/logs/services", tenant).await;
        let expected: Value = if own_logs > 0 {
            json!(["b-svc"])
        } else {
            json!([])
        };
        assert_eq!(services["services"], expected, "{label} services");
        let (_, storage) = app.get("/api/v1/logs/storage", tenant).await;
        assert_eq!(storage["log_count"], own_logs, "{label} storage");
        assert_eq!(storage["span_count"], 0, "{label} storage spans");
        let (_, agg) = app
            .post(
                "/api/v1/logs/aggregate",
                tenant,
                &json!({"interval": "day"}),
            )
            .await;
        let total: i64 = agg["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["total"].as_i64().unwrap())
            .sum();
        assert_eq!(total, own_logs, "{label} aggregate");

        let mut client = app.query_client().await;
        let logs = client
            .get_logs(with_tenant(
                Empty {
                    limit: 100,
                    offset: 0,
                },
                tenant,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(logs.logs.len() as i64, own_logs, "{label} grpc GetLogs");
        let logs = client
            .get_logs_by_trace_id(trace_request(&otlp_trace, tenant))
            .await;
        let code = grpc_code(logs);
        assert_eq!(code, tonic::Code::NotFound, "{label} grpc GetLogsByTraceId");
        let dag = client
            .get_dag_by_trace_id(trace_request(&otlp_trace, tenant))
            .await;
        let code = grpc_code(dag);
        assert_eq!(code, tonic::Code::NotFound, "{label} grpc GetDagByTraceId");
        let dags = client
            .get_dags(with_tenant(Empty::default(), tenant))
            .await
            .unwrap()
            .into_inner();
        assert!(dags.dags.is_empty(), "{label} grpc GetDags");
    }

    // And A still does not see B's log on the shared trace.
    let (_, logs) = app.get("/api/v1/logs/trace/shared-trace", a).await;
    let msgs = messages(&logs);
    assert_eq!(msgs.len(), 2);
    assert!(!msgs.iter().any(|m| m == "b only"));
}

/// What the web view's tenant picker and trace page need of a backend: `GET /api/v1/tenants`
/// lists exactly the tenants that hold logs or spans, and `/trace/{id}` answers 404 unless the
/// tenant it is asked for holds a span or a log of the trace.
pub async fn tenants_are_listed_and_trace_pages_are_scoped(app: &TestApp) {
    // Nothing stored: no tenant, not even the default one.
    let (status, body) = app.get("/api/v1/tenants", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tenants"], json!([]));

    // "zeta" has only logs, one on a trace nobody sent spans of; "alpha" only spans.
    let logged_trace = "0af7651916cd43dd8448eb211c80319c";
    let (status, _) = app
        .post(
            "/api/v1/logs",
            Some("zeta"),
            &json!({"service_name": "z-svc", "level": "INFO", "message": "z", "trace_id": logged_trace}),
        )
        .await;
    assert_eq!(status, 201);
    send_grpc(app, Some("alpha"), order_trace(4), order_logs(4, vec![])).await;
    let spanned_trace = hex(&trace_id(4));

    let (_, body) = app.get("/api/v1/tenants", Some("zeta")).await;
    assert_eq!(
        body["tenants"],
        json!(["alpha", "zeta"]),
        "sorted, either kind of data"
    );

    let page = |trace: &str, tenant: &str| {
        let url = format!("{}/trace/{trace}?tenant={tenant}", app.rest);
        async move { app.client.get(url).send().await.unwrap().status() }
    };
    assert_eq!(page(&spanned_trace, "alpha").await, 200, "spans only");
    assert_eq!(page(logged_trace, "zeta").await, 200, "logs only");
    assert_eq!(
        page(&spanned_trace, "zeta").await,
        404,
        "another tenant's trace"
    );
    assert_eq!(
        page(logged_trace, "alpha").await,
        404,
        "another tenant's trace"
    );
    assert_eq!(page(&"f".repeat(32), "alpha").await, 404, "unknown trace");
    assert_eq!(page("f00", "alpha").await, 400, "not a trace id");
}

#[tokio::test]
async fn tenants_are_listed_and_trace_pages_are_scoped_on_sqlite() {
    tenants_are_listed_and_trace_pages_are_scoped(&spawn_app().await).await;
}
