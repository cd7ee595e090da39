//! Retention: policy CRUD and its validation, the admin token, a run that removes exactly one
//! tenant's expired days, the size cap, the disk space coming back, and the same on PostgreSQL.

use chrono::{Duration, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, on_both_backends, spawn_app, spawn_with};
use crate::postgres::PostgresApp;

/// An instant `days` days ago at noon UTC, so that it falls on that calendar day whatever
/// the time of the test.
fn days_ago_ns(days: i64) -> i64 {
    let today = Utc::now().date_naive();
    let noon = (today - Duration::days(days))
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc();
    noon.timestamp_nanos_opt().unwrap()
}

fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn iso_day(days: i64) -> String {
    (Utc::now().date_naive() - Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

/// A 32-hex-digit trace id for `(tenant, days)`.
fn trace_of(tenant: &str, days: i64) -> String {
    let tag: u32 = tenant.bytes().map(u32::from).sum();
    format!("{tag:08x}{days:024x}")
}

/// `logs` logs and one failed span of the trace [`trace_of`]`(tenant, days)`, `days` days ago.
async fn ingest_day(app: &TestApp, tenant: &str, days: i64, logs: usize, message: &str) {
    let ns = days_ago_ns(days);
    let trace = trace_of(tenant, days);
    let batch: Vec<Value> = (0..logs)
        .map(|i| {
            json!({
                "service_name": "api",
                "level": "INFO",
                "message": format!("{message} {i}"),
                "timestamp": rfc3339(ns + i as i64 * 1000),
                "trace_id": trace,
            })
        })
        .collect();
    for chunk in batch.chunks(1000) {
        let (status, body) = app
            .post("/api/v1/logs/batch", Some(tenant), &json!(chunk))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let spans = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": trace, "spanId": "00000000000000a1", "name": "GET /thing", "kind": 2,
            "startTimeUnixNano": ns.to_string(), "endTimeUnixNano": (ns + 5_000_000).to_string(),
            "status": {"code": 2, "message": "boom"}
        }]}]
    }]});
    let response = app
        .client
        .post(format!("{}/v1/traces", app.otlp_http))
        .header("x-tenant-id", tenant)
        .json(&spans)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Sends a request to a retention route with an optional bearer token.
async fn admin(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, format!("{}{path}", app.rest));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn create_policy(app: &TestApp, tenant: &str, days: i64) -> Value {
    let (status, body) = app
        .post(
            "/api/v1/retention",
            None,
            &json!({"tenant_id": tenant, "retention_days": days}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn run(app: &TestApp) -> Value {
    let (status, body) = app.post("/api/v1/retention/run", None, &json!({})).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// `(tenant, day, reason)` of every partition a run removed.
fn removed(report: &Value) -> Vec<(String, String, String)> {
    report["removed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["log_rows"].as_i64().unwrap() + r["span_rows"].as_i64().unwrap() > 0)
        .map(|r| {
            (
                r["tenant_id"].as_str().unwrap().to_owned(),
                r["day"].as_str().unwrap().to_owned(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Days listed by `/api/v1/logs/storage` for `tenant`, with their log counts.
async fn stored_days(app: &TestApp, tenant: &str) -> Vec<(String, i64)> {
    let (status, storage) = app.get("/api/v1/logs/storage", Some(tenant)).await;
    assert_eq!(status, 200);
    storage["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["day"].as_str().unwrap().to_owned(),
                d["log_count"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn policies_are_created_read_updated_and_deleted() {
    let app = spawn_app().await;

    let policy = create_policy(&app, "acme", 7).await;
    assert_eq!(policy["tenant_id"], "acme");
    assert_eq!(policy["retention_days"], 7);
    for key in ["id", "created_at", "updated_at"] {
        assert!(policy[key].is_string(), "{key} in {policy}");
    }
    let id = policy["id"].as_str().unwrap().to_owned();

    let (status, body) = app
        .post(
            "/api/v1/retention",
            None,
            &json!({"tenant_id": "acme", "retention_days": 9}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");

    let (status, body) = app.get("/api/v1/retention/tenant/acme", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["retention_days"], 7);
    assert_eq!(body["default"], false);
    let (_, body) = app.get("/api/v1/retention/tenant/globex", None).await;
    assert_eq!(
        body,
        json!({"tenant_id": "globex", "retention_days": 30, "default": true})
    );

    let (status, list) = app.get("/api/v1/retention", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["policies"].as_array().unwrap().len(), 1);
    assert_eq!(list["default_retention_days"], 30);

    let path = format!("/api/v1/retention/{id}");
    let put = reqwest::Method::PUT;
    let (status, body) = admin(
        &app,
        put.clone(),
        &path,
        None,
        Some(json!({"retention_days": 3})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["retention_days"], 3);
    assert_eq!(body["created_at"], policy["created_at"]);
    let (_, body) = app.get("/api/v1/retention/tenant/acme", None).await;
    assert_eq!(body["retention_days"], 3);

    let unknown = "/api/v1/retention/00000000-0000-0000-0000-000000000000";
    let (status, body) = admin(&app, put, unknown, None, Some(json!({"retention_days": 3}))).await;
    assert_eq!(status, 404, "{body}");

    let delete = reqwest::Method::DELETE;
    let (status, _) = admin(&app, delete.clone(), &path, None, None).await;
    assert_eq!(status, 204);
    let (_, body) = app.get("/api/v1/retention/tenant/acme", None).await;
    assert_eq!(body["default"], true, "back to the default: {body}");
    assert_eq!(body["retention_days"], 30);
    let (status, _) = admin(&app, delete, &path, None, None).await;
    assert_eq!(status, 404);
    let (status, _) = admin(&app, reqwest::Method::DELETE, unknown, None, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_policies_are_refused_naming_the_field() {
    let app = spawn_app().await;
    for (body, field) in [
        (
            json!({"tenant_id": "a", "retention_days": 0}),
            "retention_days",
        ),
        (
            json!({"tenant_id": "a", "retention_days": -3}),
            "retention_days",
        ),
        (
            json!({"tenant_id": "a", "retention_days": 3651}),
            "retention_days",
        ),
        (
            json!({"tenant_id": "a", "retention_days": "7"}),
            "retention_days",
        ),
        (
            json!({"tenant_id": "a", "retention_days": 1.5}),
            "retention_days",
        ),
        (json!({"tenant_id": "a"}), "retention_days"),
        (json!({"retention_days": 7}), "tenant_id"),
        (json!({"tenant_id": "", "retention_days": 7}), "tenant_id"),
        (json!({"tenant_id": 5, "retention_days": 7}), "tenant_id"),
        (
            json!({"tenant_id": "a", "retention_days": 7, "days": 7}),
            "days",
        ),
    ] {
        app.assert_invalid_field("/api/v1/retention", &body, field)
            .await;
    }
    app.assert_unreadable_body("/api/v1/retention", "{not json")
        .await;

    let policy = create_policy(&app, "a", 7).await;
    let path = format!("/api/v1/retention/{}", policy["id"].as_str().unwrap());
    for (body, field) in [
        (json!({"retention_days": 0}), "retention_days"),
        (json!({"retention_days": 7, "tenant_id": "b"}), "tenant_id"),
    ] {
        let (status, answer) = admin(&app, reqwest::Method::PUT, &path, None, Some(body)).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["error"]["field"], field);
    }
    let (_, list) = app.get("/api/v1/retention", None).await;
    assert_eq!(
        list["policies"].as_array().unwrap().len(),
        1,
        "nothing bad stored"
    );
}

#[tokio::test]
async fn the_admin_token_guards_every_retention_route_when_set() {
    let app = spawn_with(|c| c.admin_token = Some("s3cret".into())).await;
    let body = json!({"tenant_id": "acme", "retention_days": 7});
    let id = "/api/v1/retention/00000000-0000-0000-0000-000000000000";
    let routes = [
        (reqwest::Method::GET, "/api/v1/retention", None),
        (
            reqwest::Method::POST,
            "/api/v1/retention",
            Some(body.clone()),
        ),
        (reqwest::Method::GET, "/api/v1/retention/tenant/acme", None),
        (reqwest::Method::PUT, id, Some(json!({"retention_days": 3}))),
        (reqwest::Method::DELETE, id, None),
        (reqwest::Method::POST, "/api/v1/retention/run", None),
    ];
    for (method, path, body) in &routes {
        for token in [None, Some("wrong!")] {
            let (status, answer) = admin(&app, method.clone(), path, token, body.clone()).await;
            assert_eq!(status, 401, "{method} {path} with {token:?}: {answer}");
            assert_eq!(answer["error"]["code"], "unauthorized");
        }
    }
    // The tenant header is no credential: a tenant cannot read or create its own policy.
    let (status, _) = app.get("/api/v1/retention/tenant/acme", Some("acme")).await;
    assert_eq!(status, 401);
    let (status, _) = app.post("/api/v1/retention", Some("acme"), &body).await;
    assert_eq!(status, 401);

    let token = Some("s3cret");
    let (status, policy) = admin(
        &app,
        reqwest::Method::POST,
        "/api/v1/retention",
        token,
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{policy}");
    for (method, path) in [
        (reqwest::Method::GET, "/api/v1/retention/tenant/acme"),
        (reqwest::Method::POST, "/api/v1/retention/run"),
    ] {
        let (status, answer) = admin(&app, method, path, token, None).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    let path = format!("/api/v1/retention/{}", policy["id"].as_str().unwrap());
    let (status, _) = admin(&app, reqwest::Method::DELETE, &path, token, None).await;
    assert_eq!(status, 204);
}

/// Two tenants with logs and spans 10 days ago, 3 days ago and today; `acme` keeps 7 days.
/// Shared by the SQLite and the PostgreSQL test.
async fn only_the_expired_days_of_one_tenant_go(app: &TestApp) {
    for tenant in ["acme", "globex"] {
        for days in [10, 3, 0] {
            ingest_day(app, tenant, days, 20, "work done").await;
        }
    }
    assert_eq!(
        stored_days(app, "acme").await,
        vec![(iso_day(10), 20), (iso_day(3), 20), (iso_day(0), 20)]
    );
    let old_trace = format!("/api/v1/traces/{}", trace_of("acme", 10));
    let (status, _) = app.get(&old_trace, Some("acme")).await;
    assert_eq!(status, 200);
    create_policy(app, "acme", 7).await;

    let report = run(app).await;

    assert_eq!(
        removed(&report),
        vec![("acme".to_owned(), iso_day(10), "retention".to_owned())],
        "{report}"
    );
    assert_eq!(report["rows_removed"], 21, "20 logs and one span: {report}");
    assert!(report["bytes_on_disk"].as_i64().unwrap() > 0);
    let (status, _) = app.get(&old_trace, Some("acme")).await;
    assert_eq!(status, 404, "the removed trace is gone");
    for days in [3, 0] {
        let path = format!("/api/v1/traces/{}", trace_of("acme", days));
        let (status, trace) = app.get(&path, Some("acme")).await;
        assert_eq!(status, 200);
        assert_eq!(trace["spans"].as_array().unwrap().len(), 1);
        assert_eq!(trace["logs"].as_array().unwrap().len(), 20);
    }
    assert_eq!(
        stored_days(app, "acme").await,
        vec![(iso_day(3), 20), (iso_day(0), 20)]
    );
    assert_eq!(
        stored_days(app, "globex").await,
        vec![(iso_day(10), 20), (iso_day(3), 20), (iso_day(0), 20)],
        "the other tenant keeps every day"
    );
    let path = format!("/api/v1/traces/{}", trace_of("globex", 10));
    let (status, trace) = app.get(&path, Some("globex")).await;
    assert_eq!(status, 200);
    assert_eq!(trace["logs"].as_array().unwrap().len(), 20);
    // The error-trace index forgot the removed trace, and only it.
    let (_, dags) = app.get("/api/v1/dags", Some("acme")).await;
    assert_eq!(dags["dags"].as_array().unwrap().len(), 2, "{dags}");
    let (_, dags) = app.get("/api/v1/dags", Some("globex")).await;
    assert_eq!(dags["dags"].as_array().unwrap().len(), 3);
    let (_, page) = app.get("/api/v1/logs?page_size=1", Some("acme")).await;
    assert_eq!(page["total"], 40);

    let again = run(app).await;
    assert!(removed(&again).is_empty(), "{again}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("log_service_retention_rows_removed_total{signal=\"logs\"} 20"),
        "{metrics}"
    );
    assert!(metrics.contains("log_service_retention_rows_removed_total{signal=\"spans\"} 1"));
    assert!(metrics.contains("log_service_retention_runs_total 2"));
    assert!(metrics.contains("log_service_retention_failures_total 0"));
    assert!(metrics.contains("log_service_storage_bytes "));
}

#[tokio::test]
async fn a_run_removes_only_the_expired_days_of_the_tenant_with_the_policy() {
    let app = spawn_app().await;
    only_the_expired_days_of_one_tenant_go(&app).await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("log_service_retention_partitions_dropped_total{reason=\"retention\"} 1")
    );
}

#[tokio::test]
async fn postgres_retention_removes_only_the_expired_days_of_the_tenant_with_the_policy() {
    let Some(postgres) = PostgresApp::spawn().await else {
        return;
    };
    only_the_expired_days_of_one_tenant_go(&postgres.app).await;
    // The day went as a table: acme has no partition of that day any more, globex has.
    let tables = postgres
        .query_strings(
            "SELECT c.relname FROM pg_class c JOIN log_tenants t ON c.relname LIKE 'log_entries_t' || t.id || '\\_%' \
             WHERE t.tenant_id = $1 ORDER BY 1",
            "acme",
        )
        .await;
    let day10 = (Utc::now().date_naive() - Duration::days(10))
        .format("%Y%m%d")
        .to_string();
    assert!(!tables.iter().any(|t| t.ends_with(&day10)), "{tables:?}");
    assert!(!tables.is_empty());
    postgres.finish().await;
}

#[tokio::test]
async fn over_the_size_cap_the_oldest_day_goes_first() {
    // A 1 MiB cap: the 10-day-old day alone is several MiB, the others a few pages each.
    let app = spawn_with(|c| c.retention.max_size_bytes = 1 << 20).await;
    let big = "x".repeat(1000);
    ingest_day(&app, "a", 10, 4000, &big).await;
    ingest_day(&app, "b", 5, 10, "small").await;
    ingest_day(&app, "a", 0, 10, "small").await;

    let report = run(&app).await;

    assert_eq!(
        removed(&report),
        vec![("a".to_owned(), iso_day(10), "size_cap".to_owned())],
        "{report}"
    );
    assert_eq!(stored_days(&app, "b").await, vec![(iso_day(5), 10)]);
    assert_eq!(stored_days(&app, "a").await, vec![(iso_day(0), 10)]);
    assert!(
        report["bytes_on_disk"].as_i64().unwrap() < 1 << 20,
        "{report}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("log_service_retention_partitions_dropped_total{reason=\"size_cap\"} 1")
    );
}

/// Bytes of the SQLite database and its WAL.
fn sqlite_bytes(app: &TestApp) -> u64 {
    let db = app._dir.0.join("db").join("logs.db");
    let len = |p: std::path::PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    len(db.clone()) + len(db.with_extension("db-wal"))
}

#[tokio::test]
async fn dropping_a_day_gives_its_space_back_to_the_file_system() {
    let app = spawn_app().await;
    let big = "y".repeat(1000);
    ingest_day(&app, "acme", 10, 6000, &big).await;
    ingest_day(&app, "acme", 0, 10, "small").await;
    let before = sqlite_bytes(&app);
    assert!(before > 6_000_000, "{before}");
    create_policy(&app, "acme", 1).await;

    let report = run(&app).await;

    assert_eq!(removed(&report).len(), 1, "{report}");
    let after = sqlite_bytes(&app);
    assert!(
        after < before / 4,
        "the file shrank from {before} to {after} bytes"
    );
    assert!(report["bytes_on_disk"].as_i64().unwrap() as u64 <= after);
    assert_eq!(stored_days(&app, "acme").await, vec![(iso_day(0), 10)]);
}

/// The database's pages: (in the file, free), as the running service sees them.
fn sqlite_pages(app: &TestApp) -> (i64, i64) {
    let conn = rusqlite::Connection::open(app._dir.0.join("db").join("logs.db")).unwrap();
    let pragma = |name: &str| -> i64 {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .unwrap()
    };
    (pragma("page_count"), pragma("freelist_count"))
}

#[tokio::test]
async fn a_day_dropped_under_steady_ingest_leaves_its_pages_to_the_next_rows() {
    let app = spawn_app().await;
    let big = "z".repeat(1000);
    // Five days of which the oldest expires: the freed pages are a fifth of the file, within
    // what is kept for reuse.
    for days in [10, 3, 2, 1, 0] {
        ingest_day(&app, "acme", days, 1500, &big).await;
    }
    create_policy(&app, "acme", 5).await;
    let (pages, free) = sqlite_pages(&app);
    assert_eq!(free, 0);

    let report = run(&app).await;

    assert_eq!(
        removed(&report),
        vec![("acme".to_owned(), iso_day(10), "retention".to_owned())],
        "{report}"
    );
    let (pages_after_drop, freed) = sqlite_pages(&app);
    assert_eq!(
        pages_after_drop, pages,
        "the freed pages stayed in the file"
    );
    assert!(
        freed * 6 > pages,
        "a fifth of the file is free: {freed} of {pages}"
    );
    // Today's next rows take the freed pages: the file does not grow by another day.
    ingest_day(&app, "acme", 0, 1500, &big).await;
    let (refilled, free) = sqlite_pages(&app);
    assert!(
        refilled < pages + pages / 20 && free < freed / 4,
        "a day's rows went into the freed pages: {pages} -> {refilled} pages, {free} free"
    );
}

#[tokio::test]
async fn a_database_in_the_old_layout_is_refused_naming_the_file() {
    let dir = crate::helpers::TempDir::new();
    let path = dir.0.join("old.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE logs (id INTEGER PRIMARY KEY, tenant INTEGER, ts INTEGER);")
        .unwrap();
    drop(conn);
    let config = log_service::Config::for_tests(&path);
    let err = <log_service::Application as server::Service>::build(config, &server::Stop::new())
        .await
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("unpartitioned layout"), "{message}");
}

#[tokio::test]
async fn retention_runs_by_itself_every_interval() {
    let app = spawn_with(|c| {
        c.retention.default_days = 1;
        c.retention.interval = std::time::Duration::from_millis(200);
    })
    .await;
    ingest_day(&app, "acme", 5, 10, "old").await;
    ingest_day(&app, "acme", 0, 10, "new").await;

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while stored_days(&app, "acme").await.len() > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "no periodic run removed the old day"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    assert_eq!(stored_days(&app, "acme").await, vec![(iso_day(0), 10)]);
    let metrics = app.metrics().await;
    assert!(
        !metrics.contains("log_service_retention_runs_total 0\n"),
        "{metrics}"
    );
    assert!(metrics.contains("log_service_retention_failures_total 0"));
}

on_both_backends!(
    ingest_into_a_day_being_dropped_never_fails,
    postgres_ingest_into_a_day_being_dropped_never_fails,
    ingest_races_retention
);

/// Ingest into a day retention keeps dropping, and retention runs, at the same time.
async fn ingest_races_retention(app: &TestApp) {
    create_policy(app, "acme", 7).await;
    let writes = async {
        for round in 0..40 {
            ingest_day(app, "acme", 10, 50, &format!("late {round}")).await;
            ingest_day(app, "acme", 0, 5, "now").await;
        }
    };
    let runs = async {
        let mut dropped = 0;
        for _ in 0..40 {
            dropped += removed(&run(app).await).len();
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        dropped
    };

    let ((), dropped) = tokio::join!(writes, runs);

    // Every ingest call above asserted its 201; the old day was dropped and recreated.
    assert!(dropped > 0);
    let last = run(app).await;
    let today = stored_days(app, "acme").await;
    assert_eq!(today, vec![(iso_day(0), 200)], "{last}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("log_service_commit_failures_total 0"),
        "{metrics}"
    );
}
