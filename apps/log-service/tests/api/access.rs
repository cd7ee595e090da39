//! Access control with `API_KEYS_FILE`: every route family (REST ingest, REST queries, the live
//! tail, OTLP/HTTP, OTLP gRPC, the gRPC ingest and query services, the retention and alert admin
//! routes) refuses a missing or unknown key with 401 (UNAUTHENTICATED), a key of the wrong role
//! or another tenant with 403 (PERMISSION_DENIED), and puts what a right key writes in, and reads
//! from, the key's tenant; an admin key may name any tenant. Probes stay open.

use std::time::Duration;

use log_service::grpc::proto::logs::Log as GrpcLog;
use log_service::grpc::proto::logs::log_ingestion_service_client::LogIngestionServiceClient;
use log_service::grpc::proto::query::Empty;
use log_service::grpc::proto::query::query_service_client::QueryServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::Env;

use crate::helpers::{TempDir, TestApp, call, grpc_code, hex, messages, spawn_with, trace_request};
use crate::otlp::{order_trace, trace_id};

const READ: &str = "read-key-of-acme";
const WRITE: &str = "write-key-of-acme";
const ADMIN: &str = "admin-key-of-ops";
const UNKNOWN: &str = "no-such-key";

fn sha256_hex(key: &str) -> String {
    use sha2::Digest as _;
    hex(&sha2::Sha256::digest(key.as_bytes()))
}

/// Starts the application with `API_KEYS_FILE` naming a keys file of three keys: a reader and
/// a writer of tenant `acme` and an admin of tenant `ops`; `adjust` may change the config more.
async fn spawn_with_keys(adjust: impl FnOnce(&mut log_service::Config)) -> TestApp {
    let keys_dir = TempDir::new();
    let path = keys_dir.0.join("keys.json");
    let file = json!([
        {"name": "acme-reader", "tenant": "acme", "role": "read", "sha256": sha256_hex(READ)},
        {"name": "acme-writer", "tenant": "acme", "role": "write", "sha256": sha256_hex(WRITE)},
        {"name": "ops-admin", "tenant": "ops", "role": "admin", "sha256": sha256_hex(ADMIN)},
    ]);
    std::fs::write(&path, file.to_string()).unwrap();
    let env = Env::from_pairs([("API_KEYS_FILE", path.to_str().unwrap())]);
    let api_keys = log_service::Config::from_env(&env)
        .expect("the keys file loads")
        .api_keys;
    assert!(api_keys.is_some());
    spawn_with(|config| {
        config.api_keys = api_keys;
        adjust(config);
    })
    .await
}

/// The status of `GET url` with an optional bearer key and tenant header.
async fn get_status(
    app: &TestApp,
    url: &str,
    key: Option<&str>,
    tenant: Option<&str>,
) -> StatusCode {
    call(app, Method::GET, url, key, tenant, None).await.0
}

/// One route: method, URL, body, and the keys that may use it.
struct Route {
    method: Method,
    url: String,
    body: Option<Value>,
    role: &'static str,
}

fn route(method: Method, url: String, body: Option<Value>, role: &'static str) -> Route {
    Route {
        method,
        url,
        body,
        role,
    }
}

#[tokio::test]
async fn every_rest_and_otlp_http_route_checks_the_key_its_role_and_its_tenant() {
    let app = spawn_with_keys(|_| {}).await;
    let rest = |path: &str| format!("{}{path}", app.rest);
    let entry = json!({"service_name": "svc", "level": "INFO", "message": "m", "trace_id": "t1"});
    let otlp_logs = json!({"resourceLogs": []});
    let routes = [
        route(
            Method::POST,
            rest("/api/v1/logs"),
            Some(entry.clone()),
            "write",
        ),
        route(
            Method::POST,
            rest("/api/v1/logs/batch"),
            Some(json!([entry])),
            "write",
        ),
        route(
            Method::POST,
            rest("/ingest"),
            Some(json!({"service": "svc", "level": "INFO", "message": "m"})),
            "write",
        ),
        route(
            Method::POST,
            format!("{}/v1/logs", app.otlp_http),
            Some(otlp_logs),
            "write",
        ),
        route(Method::GET, rest("/api/v1/logs"), None, "read"),
        route(
            Method::POST,
            rest("/api/v1/logs/query"),
            Some(json!({})),
            "read",
        ),
        route(Method::GET, rest("/api/v1/logs/trace/t1"), None, "read"),
        route(Method::GET, rest("/api/v1/logs/stats"), None, "read"),
        route(Method::GET, rest("/api/v1/logs/services"), None, "read"),
        route(Method::GET, rest("/api/v1/dags"), None, "read"),
        route(Method::GET, rest("/api/v1/services/summary"), None, "read"),
        route(Method::GET, rest("/api/v1/logs/stream"), None, "read"),
        route(Method::GET, rest("/api/v1/alerts"), None, "admin"),
        route(Method::GET, rest("/api/v1/retention"), None, "admin"),
        route(Method::POST, rest("/api/v1/retention/run"), None, "admin"),
    ];
    for r in &routes {
        let send = |key, tenant| call(&app, r.method.clone(), &r.url, key, tenant, r.body.as_ref());
        let what = format!("{} {}", r.method, r.url);
        let otlp = r.url.starts_with(&app.otlp_http);

        let (status, body) = send(None, None).await;
        assert_eq!(status, 401, "{what} without a key: {body}");
        let message = if otlp {
            assert_eq!(
                body["code"], 16,
                "{what}: UNAUTHENTICATED in the OTLP shape: {body}"
            );
            body["message"].clone()
        } else {
            assert_eq!(body["error"]["code"], "unauthorized", "{what}: {body}");
            body["error"]["message"].clone()
        };
        assert!(
            message.as_str().unwrap().contains("API key is required"),
            "{what}: {body}"
        );

        let (status, body) = send(Some(UNKNOWN), Some("acme")).await;
        assert_eq!(status, 401, "{what} with an unknown key: {body}");
        assert!(body.to_string().contains("not known"), "{what}: {body}");

        let wrong: &[&str] = match r.role {
            "write" => &[READ],
            "read" => &[WRITE],
            _ => &[READ, WRITE],
        };
        for key in wrong {
            let (status, body) = send(Some(key), None).await;
            assert_eq!(status, 403, "{what} with a key of another role: {body}");
            assert!(body.to_string().contains("this needs"), "{what}: {body}");
        }

        let own = match r.role {
            "write" => WRITE,
            "read" => READ,
            _ => ADMIN,
        };
        let (status, body) = send(Some(own), None).await;
        assert!(
            status.is_success() || status == 404,
            "{what} with its key: {status} {body}"
        );
        assert!(status != 404 || r.url.contains("/trace/"), "{what}: {body}");
        if r.role != "admin" {
            let (status, body) = send(Some(own), Some("beta")).await;
            assert_eq!(status, 403, "{what} naming another tenant: {body}");
            assert!(
                body.to_string().contains("may not act for tenant"),
                "{what}: {body}"
            );
            let (status, body) = send(Some(own), Some("acme")).await;
            assert!(
                status.is_success(),
                "{what} naming its own tenant: {status} {body}"
            );
        }
        let (status, body) = send(Some(ADMIN), Some("beta")).await;
        assert!(
            status.is_success(),
            "{what}: admin names any tenant: {status} {body}"
        );
    }

    // A protobuf export is refused before its body is read, in the protobuf status shape.
    let url = format!("{}/v1/traces", app.otlp_http);
    let response = app
        .post_raw(&url, "application/x-protobuf", vec![0xff; 8])
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");

    // Probes stay open.
    for probe in ["/health", "/ready", "/metrics", "/live"] {
        let (status, _) = call(&app, Method::GET, &rest(probe), None, None, None).await;
        assert_eq!(status, 200, "{probe}");
    }
    // Refusals are counted by reason.
    let metrics = app.metrics().await;
    for reason in ["missing_key", "unknown_key", "wrong_role", "other_tenant"] {
        let line = format!("log_service_access_refused_total{{reason=\"{reason}\"}}");
        assert!(metrics.contains(&line), "{reason}: {metrics}");
    }
}

#[tokio::test]
async fn the_key_decides_the_tenant_of_what_is_written_and_read() {
    let app = spawn_with_keys(|_| {}).await;
    let rest = |path: &str| format!("{}{path}", app.rest);
    // The writer names no tenant: its logs land in acme.
    let entry = json!({"service_name": "svc", "level": "ERROR", "message": "acme's log",
                       "trace_id": "trace-a"});
    let (status, body) = call(
        &app,
        Method::POST,
        &rest("/api/v1/logs"),
        Some(WRITE),
        None,
        Some(&entry),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("{}/v1/traces", app.otlp_http),
        Some(WRITE),
        None,
        Some(&json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": hex(&trace_id(9)), "spanId": "0102030405060708", "name": "checkout",
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000"
        }]}]}]})),
    )
    .await;
    assert_eq!(status, 200);
    // The admin writes into a tenant it names.
    let beta = json!({"service_name": "svc", "level": "INFO", "message": "beta's log"});
    let (status, _) = call(
        &app,
        Method::POST,
        &rest("/api/v1/logs"),
        Some(ADMIN),
        Some("beta"),
        Some(&beta),
    )
    .await;
    assert_eq!(status, 201);

    // The reader of acme sees acme's log, its trace and only those.
    let (status, page) = call(
        &app,
        Method::GET,
        &rest("/api/v1/logs"),
        Some(READ),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(messages(&page), ["acme's log"]);
    let (status, logs) = call(
        &app,
        Method::GET,
        &rest("/api/v1/logs/trace/trace-a"),
        Some(READ),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{logs}");
    assert_eq!(messages(&logs), ["acme's log"]);
    let trace_url = rest(&format!("/api/v1/traces/{}", hex(&trace_id(9))));
    let (status, trace) = call(&app, Method::GET, &trace_url, Some(READ), None, None).await;
    assert_eq!(status, 200, "{trace}");
    // Without a header the admin acts for its own tenant, which holds nothing; naming a tenant
    // it reads that tenant.
    let (_, page) = call(
        &app,
        Method::GET,
        &rest("/api/v1/logs"),
        Some(ADMIN),
        None,
        None,
    )
    .await;
    assert_eq!(page["total"], 0, "{page}");
    let (_, page) = call(
        &app,
        Method::GET,
        &rest("/api/v1/logs"),
        Some(ADMIN),
        Some("beta"),
        None,
    )
    .await;
    assert_eq!(messages(&page), ["beta's log"]);
    let status = get_status(&app, &trace_url, Some(ADMIN), Some("acme")).await;
    assert_eq!(status, 200);
    let status = get_status(&app, &trace_url, Some(ADMIN), Some("beta")).await;
    assert_eq!(status, 404, "acme's trace is not beta's");
}

#[tokio::test]
async fn the_live_tail_streams_the_keys_tenant_only() {
    let app = spawn_with_keys(|_| {}).await;
    let mut stream = app
        .client
        .get(format!("{}/api/v1/logs/stream", app.rest))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    for (key, tenant, message) in [(ADMIN, Some("beta"), "beta's"), (WRITE, None, "acme's")] {
        let body = json!({"service_name": "svc", "level": "INFO", "message": message});
        let url = format!("{}/api/v1/logs", app.rest);
        let (status, _) = call(&app, Method::POST, &url, Some(key), tenant, Some(&body)).await;
        assert_eq!(status, 201);
    }
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("acme's") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("acme's log arrives")
            .unwrap()
            .expect("stream open");
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(!seen.contains("beta's"), "{seen}");
}

/// A gRPC request with `authorization: Bearer <key>` and `x-tenant-id` metadata when given.
fn grpc_request<T>(message: T, key: Option<&str>, tenant: Option<&str>) -> tonic::Request<T> {
    let mut request = crate::helpers::with_tenant(message, tenant);
    if let Some(key) = key {
        let value = format!("Bearer {key}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The refusals every gRPC method gives: no key and an unknown key are UNAUTHENTICATED, a key of
/// another role or naming another tenant PERMISSION_DENIED. `send(tenant, key)` calls the method.
async fn assert_grpc_refusals<F, Fut>(
    what: &str,
    wrong_role: &'static str,
    own: &'static str,
    send: F,
) where
    F: Fn(Option<&'static str>, Option<&'static str>) -> Fut,
    Fut: std::future::Future<Output = tonic::Code>,
{
    use tonic::Code;
    assert_eq!(
        send(None, None).await,
        Code::Unauthenticated,
        "{what}: no key"
    );
    assert_eq!(
        send(Some("acme"), Some(UNKNOWN)).await,
        Code::Unauthenticated,
        "{what}: unknown key"
    );
    assert_eq!(
        send(None, Some(wrong_role)).await,
        Code::PermissionDenied,
        "{what}: wrong role"
    );
    assert_eq!(
        send(Some("beta"), Some(own)).await,
        Code::PermissionDenied,
        "{what}: other tenant"
    );
}

#[tokio::test]
async fn grpc_ingest_query_and_otlp_check_the_key_its_role_and_its_tenant() {
    use tonic::Code;
    let app = spawn_with_keys(|_| {}).await;
    let grpc = format!("http://{}", app.grpc);
    let ingest = LogIngestionServiceClient::connect(grpc.clone())
        .await
        .unwrap();
    let query = QueryServiceClient::connect(grpc).await.unwrap();
    let otlp = TraceServiceClient::connect(format!("http://{}", app.otlp_grpc))
        .await
        .unwrap();
    let log = |message: &str| GrpcLog {
        trace_id: "grpc-trace".into(),
        service: "svc".into(),
        message: message.into(),
        ..Default::default()
    };
    let send_log = |tenant, key| {
        let mut client = ingest.clone();
        let request = grpc_request(log("refused"), key, tenant);
        async move { grpc_code(client.send_log(request).await) }
    };
    assert_grpc_refusals("SendLog", READ, WRITE, send_log).await;
    let get_logs = |tenant, key| {
        let mut client = query.clone();
        let request = grpc_request(Empty::default(), key, tenant);
        async move { grpc_code(client.get_logs(request).await) }
    };
    assert_grpc_refusals("GetLogs", WRITE, READ, get_logs).await;
    let by_trace = |tenant, key: Option<&str>| {
        let mut client = query.clone();
        let mut request = trace_request("grpc-trace", tenant);
        if let Some(key) = key {
            let value = format!("Bearer {key}").parse().unwrap();
            request.metadata_mut().insert("authorization", value);
        }
        async move { grpc_code(client.get_logs_by_trace_id(request).await) }
    };
    assert_grpc_refusals("GetLogsByTraceId", WRITE, READ, by_trace).await;
    let export = |tenant, key| {
        let mut client = otlp.clone();
        let request = grpc_request(order_trace(5), key, tenant);
        async move { grpc_code(client.export(request).await) }
    };
    assert_grpc_refusals("OTLP TraceService/Export", READ, WRITE, export).await;
    // Nothing refused was stored.
    assert_eq!(by_trace(None, Some(ADMIN)).await, Code::NotFound);

    // The right keys write into and read from acme; the admin may name any tenant.
    let mut client = ingest.clone();
    let request = grpc_request(log("acme over grpc"), Some(WRITE), None);
    client.send_log(request).await.expect("the writer sends");
    let request = grpc_request(log("beta over grpc"), Some(ADMIN), Some("beta"));
    client
        .send_log(request)
        .await
        .expect("the admin sends for beta");
    assert_eq!(export(None, Some(WRITE)).await, Code::Ok);
    assert_eq!(export(Some("beta"), Some(ADMIN)).await, Code::Ok);

    let mut client = query.clone();
    let request = grpc_request(Empty::default(), Some(READ), None);
    let logs = client.get_logs(request).await.unwrap().into_inner().logs;
    let texts: Vec<_> = logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(texts, ["acme over grpc"]);
    assert_eq!(by_trace(None, Some(READ)).await, Code::Ok);
    assert_eq!(by_trace(Some("acme"), Some(READ)).await, Code::Ok);
    let request = grpc_request(Empty::default(), Some(ADMIN), Some("beta"));
    let logs = client.get_logs(request).await.unwrap().into_inner().logs;
    let texts: Vec<_> = logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(texts, ["beta over grpc"]);
    // The OTLP export of the writer landed in acme: its trace is acme's.
    let trace_url = format!("{}/api/v1/traces/{}", app.rest, hex(&trace_id(5)));
    let (status, _) = call(&app, Method::GET, &trace_url, Some(READ), None, None).await;
    assert_eq!(status, 200);
    let status = get_status(&app, &trace_url, Some(ADMIN), Some("beta")).await;
    assert_eq!(status, 200, "the admin's export for beta");
    let status = get_status(&app, &trace_url, Some(ADMIN), Some("gamma")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn admin_routes_take_an_admin_key_or_the_admin_token() {
    let app = spawn_with_keys(|config| config.admin_token = Some("s3cret".into())).await;
    let url = format!("{}/api/v1/retention", app.rest);
    let policy = json!({"tenant_id": "acme", "retention_days": 7});
    let (status, _) = call(
        &app,
        Method::POST,
        &url,
        Some("s3cret"),
        None,
        Some(&policy),
    )
    .await;
    assert_eq!(status, 201, "ADMIN_TOKEN still works");
    let (status, list) = call(&app, Method::GET, &url, Some(ADMIN), None, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["policies"].as_array().map(Vec::len), Some(1), "{list}");
    for (key, expected) in [(None, 401), (Some(UNKNOWN), 401), (Some(READ), 403)] {
        let (status, body) = call(&app, Method::GET, &url, key, None, None).await;
        assert_eq!(status, expected, "{key:?}: {body}");
    }

    // Alert rules belong to the tenant the admin key acts for.
    let alerts = format!("{}/api/v1/alerts", app.rest);
    let rule = json!({"name": "errors", "min_level": "ERROR", "query": "declined",
                      "threshold": 1, "window_seconds": 60, "for_seconds": 0,
                      "severity": "warning", "enabled": true});
    let (status, body) = call(
        &app,
        Method::POST,
        &alerts,
        Some(ADMIN),
        Some("acme"),
        Some(&rule),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, acme) = call(&app, Method::GET, &alerts, Some(ADMIN), Some("acme"), None).await;
    let (_, ops) = call(&app, Method::GET, &alerts, Some(ADMIN), None, None).await;
    assert_eq!(acme["rules"].as_array().map(Vec::len), Some(1), "{acme}");
    assert_eq!(ops["rules"].as_array().map(Vec::len), Some(0), "{ops}");
    let (status, _) = call(&app, Method::POST, &alerts, Some(WRITE), None, Some(&rule)).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_jaeger_api_checks_the_key_and_refuses_in_jaegers_envelope() {
    let app = spawn_with_keys(|_| {}).await;
    for path in [
        "/api/services",
        "/api/traces?service=svc",
        "/api/dependencies",
    ] {
        let url = format!("{}{path}", app.rest);
        let (status, body) = call(&app, Method::GET, &url, None, None, None).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(body["data"], Value::Null, "{path}: {body}");
        assert_eq!(body["errors"][0]["code"], 401, "{path}: {body}");
        let message = body["errors"][0]["msg"].as_str().unwrap();
        assert!(message.contains("API key is required"), "{path}: {body}");
        let (status, body) = call(&app, Method::GET, &url, Some(WRITE), None, None).await;
        assert_eq!(status, 403, "{path} with a write key: {body}");
        assert_eq!(body["errors"][0]["code"], 403, "{path}: {body}");
        let (status, body) = call(&app, Method::GET, &url, Some(READ), Some("beta"), None).await;
        assert_eq!(status, 403, "{path} naming another tenant: {body}");
        let (status, body) = call(&app, Method::GET, &url, Some(READ), None, None).await;
        assert_eq!(status, 200, "{path} with its key: {body}");
        assert_eq!(body["data"], json!([]), "{path}: {body}");
    }
}

#[tokio::test]
async fn a_read_key_sees_only_its_own_tenant_listed_and_an_admin_key_sees_every_tenant() {
    let app = spawn_with_keys(|_| {}).await;
    let url = format!("{}/api/v1/tenants", app.rest);
    let entry = json!({"service_name": "svc", "level": "INFO", "message": "m"});
    let logs = format!("{}/api/v1/logs", app.rest);
    let (status, _) = call(&app, Method::POST, &logs, Some(WRITE), None, Some(&entry)).await;
    assert_eq!(status, 201);
    for tenant in ["beta", "gamma"] {
        let (status, _) = call(
            &app,
            Method::POST,
            &logs,
            Some(ADMIN),
            Some(tenant),
            Some(&entry),
        )
        .await;
        assert_eq!(status, 201);
    }

    let list = |key, tenant| call(&app, Method::GET, &url, key, tenant, None);
    let (status, body) = list(Some(READ), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tenants"], json!(["acme"]));
    // Naming another tenant changes nothing: the key decides what is listed.
    let (_, body) = list(Some(READ), Some("beta")).await;
    assert_eq!(body["tenants"], json!(["acme"]));
    let (_, body) = list(Some(ADMIN), None).await;
    assert_eq!(body["tenants"], json!(["acme", "beta", "gamma"]));
    let (status, _) = list(Some(WRITE), None).await;
    assert_eq!(status, 403, "a write key reads nothing");
    let (status, _) = list(None, None).await;
    assert_eq!(status, 401);
    let (status, _) = list(Some(UNKNOWN), None).await;
    assert_eq!(status, 401);
}
