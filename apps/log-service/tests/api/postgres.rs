//! The PostgreSQL backend (the minisource REST API's schema) behind the same API, against the
//! local server.
//! Each test gets a fresh database that is dropped afterwards.

use serde_json::json;

use crate::helpers::{TempDir, TestApp, hex, messages, spawn_config};
use crate::otlp::{order_logs, order_trace, send_grpc, span_id, trace_id};

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// log-service on a fresh database of the local server, dropped by [`PostgresApp::finish`].
pub struct PostgresApp {
    pub app: TestApp,
    /// The configuration it runs with, for a second application on the same database.
    pub config: log_service::Config,
    admin: tokio_postgres::Client,
    name: String,
}

impl PostgresApp {
    /// Creates the database and starts log-service on it; `None` (the test is skipped) when no
    /// PostgreSQL server answers.
    pub async fn spawn() -> Option<PostgresApp> {
        PostgresApp::spawn_with(|_| {}).await
    }

    /// [`PostgresApp::spawn`] with the test config adjusted by `adjust`.
    pub async fn spawn_with(adjust: impl FnOnce(&mut log_service::Config)) -> Option<PostgresApp> {
        let (admin, name) = fresh_database().await?;
        let mut config = log_service::Config::for_tests("unused.db");
        config.database = log_service::DatabaseConfig::Postgres {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
        };
        adjust(&mut config);
        let app = spawn_config(config.clone(), TempDir::new()).await;
        Some(PostgresApp {
            app,
            config,
            admin,
            name,
        })
    }

    /// Runs `check` against log-service on a fresh database, then drops it; skipped when no
    /// PostgreSQL server answers.
    pub async fn check(check: impl AsyncFnOnce(&TestApp)) {
        let Some(postgres) = PostgresApp::spawn().await else {
            return;
        };
        check(&postgres.app).await;
        postgres.finish().await;
    }

    /// The first column of `sql`'s rows, run on log-service's database with `arg` as `$1`.
    pub async fn query_strings(&self, sql: &str, arg: &str) -> Vec<String> {
        let url = format!("postgres://postgres@127.0.0.1:5432/{}", self.name);
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let rows = client.query(sql, &[&arg]).await.unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }

    /// Runs `sql` (statements without parameters) on log-service's database.
    pub async fn execute(&self, sql: &str) {
        let url = format!("postgres://postgres@127.0.0.1:5432/{}", self.name);
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client.batch_execute(sql).await.unwrap();
    }

    /// Stops log-service and drops its database.
    pub async fn finish(self) {
        drop(self.app);
        let drop_database = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = self.admin.batch_execute(&drop_database).await;
    }
}

/// A new, empty database of its own for one test: the admin client and the database's name.
pub async fn fresh_database() -> Option<(tokio_postgres::Client, String)> {
    let admin = admin().await?;
    let name = format!("log_service_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    Some((admin, name))
}

/// A client of the local server's `postgres` database; `None` (the test is skipped) when none
/// answers.
pub async fn admin() -> Option<tokio_postgres::Client> {
    let url = std::env::var("LOG_SERVICE_TEST_POSTGRES").unwrap_or_else(|_| ADMIN_URL.into());
    match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            Some(client)
        }
        Err(err) => {
            eprintln!("SKIPPED: PostgreSQL not reachable at {url}: {err}");
            None
        }
    }
}

#[tokio::test]
async fn the_postgres_backend_answers_like_sqlite() {
    let Some(postgres) = PostgresApp::spawn().await else {
        return;
    };
    let app = &postgres.app;

    let batch = json!([
        {"service_name": "auth", "level": "INFO", "message": "user login ok", "timestamp": "2024-01-15T10:00:00Z", "trace_id": "t1", "request_id": "r1"},
        {"service_name": "auth", "level": "ERROR", "message": "authentication failed", "timestamp": "2024-01-15T10:01:10.123456Z", "trace_id": "t1", "metadata": {"code": "AUTH_001"}},
        {"service_name": "billing", "level": "WARN", "message": "invoice late", "timestamp": "2024-01-15T11:30:00Z", "environment": "staging"},
        {"service_name": "billing", "level": "LOUD", "message": "rejected"},
    ]);
    let (status, body) = app.post("/api/v1/logs/batch", None, &batch).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["accepted"], 3);
    let first = body["ids"][1].as_i64().unwrap();

    let (_, log) = app.get(&format!("/api/v1/logs/{first}"), None).await;
    assert_eq!(log["timestamp"], "2024-01-15T10:01:10.123456Z");
    assert_eq!(log["metadata"]["code"], "AUTH_001");
    let (_, page) = app
        .post("/api/v1/logs/query", None, &json!({"min_level": "WARN"}))
        .await;
    assert_eq!(page["total"], 2);
    let (_, page) = app
        .post(
            "/api/v1/logs/query",
            None,
            &json!({"search": "authentication"}),
        )
        .await;
    assert_eq!(page["total"], 1);
    let (_, page) = app
        .get("/api/v1/logs?environment=staging&page_size=1", None)
        .await;
    assert_eq!(page["logs"][0]["message"], "invoice late");
    let (_, agg) = app
        .post("/api/v1/logs/aggregate", None, &json!({"interval": "hour"}))
        .await;
    assert_eq!(
        agg["buckets"],
        json!([
            {"bucket": "2024-01-15T10:00:00Z", "total": 2, "counts": {"INFO": 1, "ERROR": 1}},
            {"bucket": "2024-01-15T11:00:00Z", "total": 1, "counts": {"WARN": 1}},
        ])
    );
    let (_, stats) = app.get("/api/v1/logs/stats", None).await;
    assert_eq!(stats["total"], 3);
    assert_eq!(stats["by_service"], json!({"auth": 2, "billing": 1}));
    let (_, services) = app.get("/api/v1/logs/services", None).await;
    assert_eq!(services["services"], json!(["auth", "billing"]));

    send_grpc(
        app,
        Some("pg-tenant"),
        order_trace(8),
        order_logs(8, vec![]),
    )
    .await;
    let id = hex(&trace_id(8));
    let (status, trace) = app
        .get(&format!("/api/v1/traces/{id}"), Some("pg-tenant"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(trace["spans"].as_array().unwrap().len(), 6);
    assert_eq!(trace["spans"][0]["kind"], "SERVER");
    let (_, dag) = app
        .get(&format!("/api/v1/traces/{id}/dag"), Some("pg-tenant"))
        .await;
    assert_eq!(dag["root_span_id"], hex(&span_id(1)));
    assert_eq!(dag["edges"].as_array().unwrap().len(), 5);
    let (status, _) = app.get(&format!("/api/v1/traces/{id}"), None).await;
    assert_eq!(status, 404, "another tenant's trace");
    let (_, dags) = app.get("/api/v1/dags", Some("pg-tenant")).await;
    assert_eq!(dags["dags"].as_array().unwrap().len(), 1);
    let (_, storage) = app.get("/api/v1/logs/storage", Some("pg-tenant")).await;
    assert_eq!(storage["backend"], "postgres");
    assert_eq!(storage["span_count"], 6);

    postgres.finish().await;
}

#[tokio::test]
async fn tenants_are_listed_and_trace_pages_are_scoped_on_postgres() {
    let Some(postgres) = PostgresApp::spawn().await else {
        return;
    };
    crate::tenants::tenants_are_listed_and_trace_pages_are_scoped(&postgres.app).await;
    postgres.finish().await;
}

#[tokio::test]
async fn a_database_in_the_old_layout_is_refused_naming_it() {
    let Some(admin) = admin().await else {
        return;
    };
    let name = format!("log_service_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let (old, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    old.batch_execute("CREATE TABLE log_entries (id BIGINT PRIMARY KEY, tenant_id TEXT)")
        .await
        .unwrap();
    drop(old);
    let mut config = log_service::Config::for_tests("unused.db");
    config.database = log_service::DatabaseConfig::Postgres { url };

    let built =
        <log_service::Application as server::Service>::build(config, &server::Stop::new()).await;

    let message = format!("{:#}", built.unwrap_err());
    assert!(message.contains(&name), "{message}");
    assert!(message.contains("unpartitioned"), "{message}");
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
}

/// The day partitions' indexes of `log_entries`, sorted.
async fn day_indexes(postgres: &PostgresApp) -> Vec<String> {
    let mut names = postgres
        .query_strings(
            "SELECT indexname::text FROM pg_indexes WHERE tablename LIKE $1",
            "log\\_entries\\_t%\\_%",
        )
        .await;
    names.sort();
    names
}

#[tokio::test]
async fn a_database_of_the_previous_version_gets_the_page_indexes_and_stored_words_on_its_days() {
    let Some(postgres) = PostgresApp::spawn().await else {
        return;
    };
    let batch = json!([
        {"service_name": "auth", "level": "INFO", "message": "older", "timestamp": "2024-01-15T10:00:00Z"},
        {"service_name": "auth", "level": "ERROR", "message": "newer", "timestamp": "2024-01-15T10:00:01Z"},
    ]);
    let (status, body) = postgres.app.post("/api/v1/logs/batch", None, &batch).await;
    assert_eq!(status, 201, "{body}");
    let current = day_indexes(&postgres).await;
    // The previous version's indexes: one by tenant and time, none in page order, and the
    // words of messages computed for the full-text index instead of stored.
    postgres
        .execute(
            "DROP INDEX idx_log_entries_newest, idx_log_entries_service_newest, \
             idx_log_entries_severe_newest; \
             CREATE INDEX idx_log_entries_tenant_timestamp ON log_entries (tenant_id, timestamp DESC); \
             ALTER TABLE log_entries DROP COLUMN message_terms; \
             CREATE INDEX idx_log_entries_search ON log_entries \
             USING GIN (to_tsvector('simple', message));",
        )
        .await;
    assert_ne!(day_indexes(&postgres).await, current);

    let restarted = spawn_config(postgres.config.clone(), TempDir::new()).await;

    assert_eq!(day_indexes(&postgres).await, current);
    assert!(
        current.iter().any(|i| i.contains("timestamp_id_level")),
        "{current:?}"
    );
    assert!(
        !current
            .iter()
            .any(|i| i.ends_with("tenant_id_timestamp_idx"))
    );
    let (_, page) = restarted.get("/api/v1/logs?min_level=ERROR", None).await;
    assert_eq!(messages(&page), ["newer"]);
    let (_, page) = restarted.get("/api/v1/logs?service=auth", None).await;
    assert_eq!(messages(&page), ["newer", "older"]);
    let (_, page) = restarted.get("/api/v1/logs?search=OLDER", None).await;
    assert_eq!(messages(&page), ["older"]);
    assert_eq!(page["total"], 1);
    drop(restarted);
    postgres.finish().await;
}

#[tokio::test]
async fn a_day_that_grew_by_a_thousand_rows_is_analyzed_within_seconds() {
    let Some(postgres) = PostgresApp::spawn().await else {
        return;
    };
    let start = chrono::DateTime::parse_from_rfc3339("2024-02-01T08:00:00Z").unwrap();
    for first in (0..1200).step_by(400) {
        let batch: Vec<serde_json::Value> = (first..first + 400)
            .map(|n| {
                json!({
                    "service_name": "auth", "level": "INFO", "message": format!("entry {n}"),
                    "timestamp": (start + chrono::Duration::seconds(n)).to_rfc3339(),
                })
            })
            .collect();
        let (status, body) = postgres
            .app
            .post("/api/v1/logs/batch", None, &serde_json::Value::Array(batch))
            .await;
        assert_eq!(status, 201, "{body}");
    }

    // The server may run without autovacuum: log-service analyzes the day itself.
    let analyzed = "SELECT relname::text FROM pg_stat_user_tables \
         WHERE relname LIKE $1 AND COALESCE(last_analyze, last_autoanalyze) IS NOT NULL";
    let day = "log\\_entries\\_t%\\_20240201";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while postgres.query_strings(analyzed, day).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the day was not analyzed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // The next day, created ahead and empty, is left alone.
    let next_day = "log\\_entries\\_t%\\_20240202";
    assert!(postgres.query_strings(analyzed, next_day).await.is_empty());
    postgres.finish().await;
}
