//! The minisource REST API's query routes against a known data set: filters, pagination,
//! aggregation, stats.

use serde_json::{Value, json};

use crate::helpers::{TestApp, ids, messages, on_both_backends, spawn_app, strings};

/// Seven entries across two services, two days and every filterable field.
fn dataset() -> Value {
    let e = |svc: &str,
             level: &str,
             ts: &str,
             msg: &str,
             trace: &str,
             req: &str,
             user: &str,
             env: &str| {
        json!({
            "service_name": svc, "level": level, "timestamp": ts, "message": msg,
            "trace_id": trace, "request_id": req, "user_id": user, "environment": env,
            "metadata": {"k": msg.len()}, "host": "pod-1", "source": "handler.rs:1"
        })
    };
    json!([
        e(
            "auth",
            "INFO",
            "2024-01-15T10:00:00Z",
            "user login ok",
            "t1",
            "r1",
            "u1",
            "production"
        ),
        e(
            "auth",
            "WARN",
            "2024-01-15T10:00:30Z",
            "slow password hash",
            "t1",
            "r1",
            "u1",
            "production"
        ),
        e(
            "auth",
            "ERROR",
            "2024-01-15T10:01:10Z",
            "authentication failed for user",
            "t2",
            "r2",
            "u2",
            "production"
        ),
        e(
            "billing",
            "INFO",
            "2024-01-15T10:30:00Z",
            "invoice created",
            "t3",
            "r3",
            "u1",
            "staging"
        ),
        e(
            "billing",
            "DEBUG",
            "2024-01-15T11:05:00Z",
            "cache miss invoice",
            "t3",
            "r3",
            "u1",
            "staging"
        ),
        e(
            "billing",
            "FATAL",
            "2024-01-15T11:10:00Z",
            "database authentication failed",
            "t4",
            "r4",
            "u3",
            "production"
        ),
        e(
            "auth",
            "INFO",
            "2024-01-16T09:00:00Z",
            "user logout",
            "t5",
            "r5",
            "u1",
            "production"
        ),
    ])
}

async fn app_with_dataset() -> (TestApp, Vec<i64>) {
    let app = spawn_app().await;
    let ids = post_dataset(&app).await;
    (app, ids)
}

/// Stores [`dataset`]; the ids of its entries, in its order.
async fn post_dataset(app: &TestApp) -> Vec<i64> {
    let (status, body) = app.post("/api/v1/logs/batch", None, &dataset()).await;
    assert_eq!(status, 201, "{body}");
    body["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

async fn query(app: &TestApp, filter: Value) -> Value {
    let (status, body) = app.post("/api/v1/logs/query", None, &filter).await;
    assert_eq!(status, 200, "{filter} -> {body}");
    body
}

/// Each filter of the query body alone, and two together, select the entries they name, newest
/// first, and count them.
async fn every_filter_of_the_query_body_selects_the_expected_entries(app: &TestApp) {
    let id = post_dataset(app).await;
    let cases: Vec<(Value, Vec<i64>)> = vec![
        (
            json!({}),
            vec![id[6], id[5], id[4], id[3], id[2], id[1], id[0]],
        ),
        (
            json!({"service_name": "auth"}),
            vec![id[6], id[2], id[1], id[0]],
        ),
        (json!({"level": "error"}), vec![id[2]]),
        (json!({"min_level": "WARN"}), vec![id[5], id[2], id[1]]),
        (
            json!({"start_time": "2024-01-15T10:00:30Z", "end_time": "2024-01-15T10:59:59Z"}),
            vec![id[3], id[2], id[1]],
        ),
        (json!({"trace_id": "t1"}), vec![id[1], id[0]]),
        (json!({"request_id": "r3"}), vec![id[4], id[3]]),
        (
            json!({"user_id": "u1"}),
            vec![id[6], id[4], id[3], id[1], id[0]],
        ),
        (
            json!({"search": "Authentication FAILED"}),
            vec![id[5], id[2]],
        ),
        (json!({"search": "invoice"}), vec![id[4], id[3]]),
        (json!({"search": "nothing-like-this"}), vec![]),
        (json!({"environment": "staging"}), vec![id[4], id[3]]),
        (
            json!({"service_name": "billing", "min_level": "ERROR"}),
            vec![id[5]],
        ),
    ];
    for (filter, expected) in cases {
        let body = query(app, filter.clone()).await;
        assert_eq!(ids(&body), expected, "filter {filter}");
        assert_eq!(body["total"], expected.len(), "filter {filter}");
    }
}

on_both_backends!(
    every_filter_of_the_query_body_selects_the_expected_entries_on_sqlite,
    every_filter_of_the_query_body_selects_the_expected_entries_on_postgres,
    every_filter_of_the_query_body_selects_the_expected_entries
);

#[tokio::test]
async fn the_list_route_paginates_newest_first_and_takes_filters_as_parameters() {
    let (app, id) = app_with_dataset().await;
    let mut seen = Vec::new();
    for page in 1..=3 {
        let (status, body) = app
            .get(&format!("/api/v1/logs?page={page}&page_size=3"), None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["total"], 7);
        assert_eq!(body["page"], page);
        assert_eq!(body["page_size"], 3);
        seen.extend(ids(&body));
    }
    assert_eq!(seen, vec![id[6], id[5], id[4], id[3], id[2], id[1], id[0]]);

    let (_, body) = app.get("/api/v1/logs?service=billing&limit=2", None).await;
    assert_eq!(
        messages(&body),
        ["database authentication failed", "cache miss invoice"]
    );
    assert_eq!(body["total"], 3);

    let (status, body) = app.get("/api/v1/logs?page_size=1001", None).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "page_size");
    for (filter, field) in [
        (json!({"page": 0}), "page"),
        (json!({"min_level": "LOUD"}), "min_level"),
        (json!({"start_time": "monday"}), "start_time"),
        (json!({"search": "***"}), "search"),
        // A misspelt filter is refused, not ignored into a query of everything.
        (json!({"servce": "billing"}), "servce"),
    ] {
        app.assert_invalid_field("/api/v1/logs/query", &filter, field)
            .await;
    }
}

/// 10,030 entries a second apart across midnight (two day partitions), and five of another
/// service: a page counts matches up to 10,000 (then says "at least"), still pages past them
/// exactly, and counts a small match exactly.
async fn a_page_counts_up_to_ten_thousand_and_still_pages_past_them(app: &TestApp) {
    let start = chrono::DateTime::parse_from_rfc3339("2024-03-01T22:00:00Z").unwrap();
    let entry = |n: i64, service: &str| {
        json!({
            "service_name": service, "level": "INFO", "message": format!("entry {n}"),
            "timestamp": (start + chrono::Duration::seconds(n)).to_rfc3339(),
        })
    };
    for first in [0, 5015] {
        let batch: Vec<Value> = (first..first + 5015).map(|n| entry(n, "many")).collect();
        let (status, body) = app
            .post("/api/v1/logs/batch", None, &Value::Array(batch))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let few: Vec<Value> = (0..5).map(|n| entry(n, "few")).collect();
    app.post("/api/v1/logs/batch", None, &Value::Array(few))
        .await;

    let (status, body) = app.get("/api/v1/logs?limit=50&service=many", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(messages(&body).first().unwrap(), "entry 10029");
    assert_eq!(body["total"], 10_000);
    assert_eq!(body["count"], 10_000);
    assert_eq!(body["total_relation"], "gte");
    // Past the counted matches, the window is still exact: the oldest 30, oldest last.
    let (_, body) = app
        .get("/api/v1/logs?limit=50&offset=10000&service=many", None)
        .await;
    let expected: Vec<String> = (0..30).rev().map(|n| format!("entry {n}")).collect();
    assert_eq!(messages(&body), expected);
    // The same by text, which every entry of both services holds.
    let (_, body) = app.get("/api/v1/logs?limit=50&search=entry", None).await;
    assert_eq!(messages(&body).first().unwrap(), "entry 10029");
    assert_eq!(body["total"], 10_000);
    assert_eq!(body["total_relation"], "gte");
    let (_, body) = app
        .get("/api/v1/logs?limit=50&offset=10000&search=entry", None)
        .await;
    // Entries 4 to 0 of both services share their times: the later written (`few`) comes first.
    let expected: Vec<(String, &str)> = (5..30)
        .rev()
        .map(|n| (format!("entry {n}"), "many"))
        .chain((0..5).rev().flat_map(|n| {
            [
                (format!("entry {n}"), "few"),
                (format!("entry {n}"), "many"),
            ]
        }))
        .collect();
    let services = strings(&body, "logs", "service_name");
    let found: Vec<(String, &str)> = messages(&body)
        .into_iter()
        .zip(services.iter().map(String::as_str))
        .collect();
    assert_eq!(found, expected);
    let (_, body) = app.get("/api/v1/logs?service=few", None).await;
    assert_eq!(body["total"], 5);
    assert_eq!(body["total_relation"], "eq");
}

on_both_backends!(
    a_page_counts_up_to_ten_thousand_on_sqlite,
    a_page_counts_up_to_ten_thousand_on_postgres,
    a_page_counts_up_to_ten_thousand_and_still_pages_past_them
);

#[tokio::test]
async fn the_traceflow_listing_skips_offset_entries_and_counts_every_match() {
    let app = spawn_app().await;
    // 120 entries a second apart: entry n is the n-th oldest.
    let batch: Vec<Value> = (0..120)
        .map(|n| {
            json!({
                "service_name": "listing", "level": "INFO", "message": format!("entry {n}"),
                "timestamp": format!("2024-03-01T10:{:02}:{:02}Z", n / 60, n % 60),
            })
        })
        .collect();
    let (status, body) = app
        .post("/api/v1/logs/batch", None, &Value::Array(batch))
        .await;
    assert_eq!(status, 201, "{body}");

    let (status, body) = app.get("/api/v1/logs?limit=50&offset=50", None).await;
    assert_eq!(status, 200, "{body}");
    // Newest first, past the newest 50: entries 69 down to 20.
    let expected: Vec<String> = (20..70).rev().map(|n| format!("entry {n}")).collect();
    assert_eq!(messages(&body), expected);
    assert_eq!(body["count"], 120);
    assert_eq!(body["total"], 120);
    assert_eq!(body["offset"], 50);

    // The last, partial window, and one past the end.
    let (_, body) = app.get("/api/v1/logs?limit=50&offset=100", None).await;
    assert_eq!(messages(&body).len(), 20);
    assert_eq!(messages(&body).last().unwrap(), "entry 0");
    let (status, body) = app.get("/api/v1/logs?limit=50&offset=500", None).await;
    assert_eq!(status, 200);
    assert!(messages(&body).is_empty());
    assert_eq!(body["count"], 120);

    for bad in [
        "offset=-1",
        "offset=fifty",
        "offset=1000000001",
        "offset=50&page=2",
    ] {
        let (status, body) = app.get(&format!("/api/v1/logs?{bad}"), None).await;
        assert_eq!(status, 422, "{bad} -> {body}");
        assert_eq!(body["error"]["field"], "offset", "{bad} -> {body}");
    }
}

#[tokio::test]
async fn logs_are_found_by_id_trace_and_request() {
    let (app, id) = app_with_dataset().await;
    let (status, log) = app.get(&format!("/api/v1/logs/{}", id[2]), None).await;
    assert_eq!(status, 200);
    assert_eq!(log["message"], "authentication failed for user");
    assert_eq!(log["level"], "ERROR");
    assert_eq!(log["service_name"], "auth");
    assert_eq!(log["timestamp"], "2024-01-15T10:01:10Z");
    assert_eq!(log["metadata"], json!({"k": 30}));
    assert!(
        log.get("attributes").is_none(),
        "one name for the fields: {log}"
    );
    assert_eq!(log["host"], "pod-1");
    assert_eq!(log["environment"], "production");

    let (status, body) = app.get("/api/v1/logs/999999", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = app.get("/api/v1/logs/abc", None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "id");

    let (_, body) = app.get("/api/v1/logs/trace/t1", None).await;
    assert_eq!(messages(&body), ["user login ok", "slow password hash"]);
    let (_, body) = app.get("/api/v1/logs/request/r3", None).await;
    assert_eq!(messages(&body), ["invoice created", "cache miss invoice"]);
    let (status, body) = app.get("/api/v1/logs/trace/unknown", None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn aggregation_counts_levels_per_minute_hour_and_day() {
    let (app, _) = app_with_dataset().await;
    let cases = [
        (
            json!({"interval": "hour"}),
            json!([
                {"bucket": "2024-01-15T10:00:00Z", "total": 4, "counts": {"INFO": 2, "WARN": 1, "ERROR": 1}},
                {"bucket": "2024-01-15T11:00:00Z", "total": 2, "counts": {"DEBUG": 1, "FATAL": 1}},
                {"bucket": "2024-01-16T09:00:00Z", "total": 1, "counts": {"INFO": 1}},
            ]),
        ),
        (
            json!({"interval": "day", "service_name": "auth"}),
            json!([
                {"bucket": "2024-01-15T00:00:00Z", "total": 3, "counts": {"INFO": 1, "WARN": 1, "ERROR": 1}},
                {"bucket": "2024-01-16T00:00:00Z", "total": 1, "counts": {"INFO": 1}},
            ]),
        ),
    ];
    for (request, buckets) in cases {
        let (status, body) = app.post("/api/v1/logs/aggregate", None, &request).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["buckets"], buckets, "{request}");
    }
    let (_, body) = app
        .post(
            "/api/v1/logs/aggregate",
            None,
            &json!({"interval": "minute", "end_time": "2024-01-15T10:59:00Z"}),
        )
        .await;
    assert_eq!(
        strings(&body, "buckets", "bucket"),
        [
            "2024-01-15T10:00:00Z",
            "2024-01-15T10:01:00Z",
            "2024-01-15T10:30:00Z"
        ]
    );
    let week = json!({"interval": "week"});
    app.assert_invalid_field("/api/v1/logs/aggregate", &week, "interval")
        .await;
}

#[tokio::test]
async fn stats_services_and_storage_describe_the_data() {
    let (app, _) = app_with_dataset().await;
    let (status, stats) = app.get("/api/v1/logs/stats", None).await;
    assert_eq!(status, 200);
    assert_eq!(stats["total"], 7);
    assert_eq!(stats["error_count"], 2);
    assert_eq!(stats["trace_count_with_errors"], 2);
    assert_eq!(
        stats["by_level"],
        json!({"DEBUG": 1, "INFO": 3, "WARN": 1, "ERROR": 1, "FATAL": 1})
    );
    assert_eq!(stats["by_service"], json!({"auth": 4, "billing": 3}));
    assert_eq!(stats["first_timestamp"], "2024-01-15T10:00:00Z");
    assert_eq!(stats["last_timestamp"], "2024-01-16T09:00:00Z");
    let (_, stats) = app
        .get("/api/v1/logs/stats?start_time=2024-01-16T00:00:00Z", None)
        .await;
    assert_eq!(stats["total"], 1);

    let (_, body) = app.get("/api/v1/logs/services", None).await;
    assert_eq!(body["services"], json!(["auth", "billing"]));
    let (_, body) = app.get("/api/v1/logs/storage", None).await;
    assert_eq!(body["backend"], "sqlite");
    assert_eq!(body["log_count"], 7);
    assert!(body["estimated_bytes"].as_i64().unwrap() > 0);

    for path in ["/health", "/live", "/ready"] {
        let (status, _) = app.get(path, None).await;
        assert_eq!(status, 200, "{path}");
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"log_service_ingested_records_total{outcome="accepted",protocol="rest",signal="logs"} 7"#),
        "{metrics}"
    );
}
