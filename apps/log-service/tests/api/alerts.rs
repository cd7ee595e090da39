//! Log alert rules: the REST routes, their validation and tenant scoping, evaluation, storage in
//! both backends across a restart, and delivery to a real Alertmanager (Debian's
//! `prometheus-alertmanager`, which scripts/test.sh installs).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use log_service::{Application, Config};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::Service as _;
use testkit::{Alertmanager, wait_until};

use crate::helpers::{self, Stoppable, TempDir, TestApp, spawn_config, spawn_with, strings};
use crate::postgres::PostgresApp;

/// A rule body as the API takes it, counting `payment-service` ERROR logs that say "declined".
fn declined_rule(name: &str, threshold: u64, window_seconds: u64) -> Value {
    json!({
        "name": name, "service": "payment-service", "min_level": "ERROR", "query": "declined",
        "threshold": threshold, "window_seconds": window_seconds, "for_seconds": 0,
        "severity": "warning", "enabled": true
    })
}

/// Sends `method path` with an optional JSON body as `tenant`.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    tenant: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let url = format!("{}{path}", app.rest);
    helpers::call(app, method, &url, None, tenant, body).await
}

/// Creates a rule and returns it as the API shows it.
async fn create_rule(app: &TestApp, tenant: Option<&str>, body: &Value) -> Value {
    let (status, rule) = app.post("/api/v1/alerts", tenant, body).await;
    assert_eq!(status, 201, "{rule}");
    rule
}

/// Creates a rule and returns its id.
async fn create(app: &TestApp, tenant: Option<&str>, body: &Value) -> String {
    let rule = create_rule(app, tenant, body).await;
    rule["id"].as_str().expect("id").to_owned()
}

/// Stores `n` ERROR logs of payment-service saying "card declined", in `trace_id`, stamped now.
async fn ingest_declines(app: &TestApp, tenant: Option<&str>, n: usize, trace_id: &str) {
    let logs: Vec<Value> = (0..n)
        .map(|i| {
            json!({"service_name": "payment-service", "level": "ERROR",
                   "message": format!("card declined for order {i}"), "trace_id": trace_id})
        })
        .collect();
    let (status, body) = app.post("/api/v1/logs/batch", tenant, &json!(logs)).await;
    assert_eq!(status, 201, "{body}");
}

/// Waits until rule `id` of `tenant` is in `state`, and returns it.
async fn wait_for_state(app: &TestApp, tenant: Option<&str>, id: &str, state: &str) -> Value {
    wait_until(
        &format!("rule {id} {state}"),
        Duration::from_secs(15),
        || async {
            let (_, rule) = app.get(&format!("/api/v1/alerts/{id}"), tenant).await;
            (rule["state"] == state).then_some(rule)
        },
    )
    .await
}

/// The value of the sample `series` (name and labels as /metrics prints them), 0 when absent.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A test config on `db` (SQLite) that evaluates every 200 ms.
fn fast_config(db: &Path) -> Config {
    let mut config = Config::for_tests(db);
    config.alerts.eval_interval = Duration::from_millis(200);
    config
}

/// A real Alertmanager and a log-service evaluating every 200 ms that delivers to it.
async fn spawn_with_alertmanager() -> (Alertmanager, TestApp) {
    let am = Alertmanager::start().await;
    let url = am.url.clone();
    let app = spawn_with(|c| {
        c.alerts.eval_interval = Duration::from_millis(200);
        c.alerts.alertmanager_url = Some(url);
    })
    .await;
    (am, app)
}

#[tokio::test]
async fn a_firing_rule_reaches_alertmanager_with_a_link_to_its_trace_then_resolves() {
    let (am, app) = spawn_with_alertmanager().await;
    let tenant = Some("acme");
    let id = create(&app, tenant, &declined_rule("payment declines", 3, 3)).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";

    // Two matches are below the threshold; an INFO line and another service never count.
    ingest_declines(&app, tenant, 2, trace_id).await;
    let noise = json!([
        {"service_name": "payment-service", "level": "INFO", "message": "card declined", "trace_id": "aa"},
        {"service_name": "email-service", "level": "ERROR", "message": "card declined", "trace_id": "bb"},
    ]);
    app.post("/api/v1/logs/batch", tenant, &noise).await;
    wait_until(
        "an evaluation of the two",
        Duration::from_secs(10),
        || async {
            let (_, rule) = app.get(&format!("/api/v1/alerts/{id}"), tenant).await;
            (rule["last_value"] == 2).then_some(())
        },
    )
    .await;
    assert!(am.alerts("payment declines").await.is_empty());
    let (_, rule) = app.get(&format!("/api/v1/alerts/{id}"), tenant).await;
    assert_eq!(
        rule["delivery"],
        json!({"state": "not_sent", "at": null, "error": null}),
        "nothing fired yet"
    );

    ingest_declines(&app, tenant, 1, trace_id).await;
    let rule = wait_for_state(&app, tenant, &id, "firing").await;
    assert_eq!(rule["last_value"], 3, "{rule}");
    assert_eq!(rule["last_trace_id"], trace_id);
    let alert = am.wait_firing("payment declines").await;
    assert_eq!(
        alert["labels"],
        json!({"alertname": "payment declines", "tenant": "acme", "service": "payment-service",
               "severity": "warning", "source": "log-service"}),
        "{alert}"
    );
    assert_eq!(alert["annotations"]["trace_id"], trace_id);
    let trace_url = format!("{}/api/v1/traces/{trace_id}", app.rest);
    assert_eq!(alert["annotations"]["trace_url"], trace_url.as_str());
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("3 logs"),
        "{alert}"
    );
    assert_eq!(
        alert["generatorURL"],
        format!("{}/api/v1/alerts/{id}", app.rest)
    );
    assert_eq!(alert["status"]["state"], "active");
    // The rule says what Alertmanager says: it has the alert, delivered after it fired.
    let rule = wait_until("the delivery shown", Duration::from_secs(10), || async {
        let (_, rule) = app.get(&format!("/api/v1/alerts/{id}"), tenant).await;
        (rule["delivery"]["state"] == "delivered").then_some(rule)
    })
    .await;
    assert_eq!(rule["delivery"]["error"], Value::Null);
    let delivered_at = rule["delivery"]["at"].as_str().unwrap();
    assert!(delivered_at >= rule["fired_at"].as_str().unwrap(), "{rule}");
    let (_, list) = app.get("/api/v1/alerts", tenant).await;
    assert_eq!(list["delivering"], true);
    assert_eq!(list["rules"][0]["delivery"]["state"], "delivered");
    // The link opens the trace the alert was raised by.
    let (status, trace) = app.get(&format!("/api/v1/traces/{trace_id}"), tenant).await;
    assert_eq!(status, 200);
    assert_eq!(trace["logs"].as_array().unwrap().len(), 3);

    // Once the three logs are older than the window, the rule resolves and Alertmanager drops
    // the alert long before the `endsAt` of a firing alert (four minutes ahead).
    let rule = wait_for_state(&app, tenant, &id, "inactive").await;
    assert!(rule["last_value"].as_i64().unwrap() < 3, "{rule}");
    am.wait_resolved("payment declines").await;
    let metrics = app.metrics().await;
    assert!(
        sample(
            &metrics,
            "log_service_alert_notifications_total{outcome=\"sent\"}"
        ) >= 2.0,
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "log_service_alert_notifications_total{outcome=\"failed\"}"
        ),
        0.0
    );
}

#[tokio::test]
async fn disabling_renaming_or_deleting_a_firing_rule_resolves_its_alert_at_once() {
    let (am, app) = spawn_with_alertmanager().await;
    let id = create(&app, None, &declined_rule("declines to disable", 1, 600)).await;
    ingest_declines(&app, None, 1, "0af7651916cd43dd8448eb211c80319c").await;
    am.wait_firing("declines to disable").await;

    // Renamed while firing: the old alert is resolved, the new name fires in its place.
    let renamed = declined_rule("declines renamed", 1, 600);
    let path = format!("/api/v1/alerts/{id}");
    let (status, _) = call(&app, Method::PUT, &path, None, Some(&renamed)).await;
    assert_eq!(status, 200);
    am.wait_resolved("declines to disable").await;
    am.wait_firing("declines renamed").await;
    let (status, _) = call(
        &app,
        Method::PUT,
        &path,
        None,
        Some(&declined_rule("declines to disable", 1, 600)),
    )
    .await;
    assert_eq!(status, 200);
    am.wait_firing("declines to disable").await;

    // Deleted while firing: resolved at once.
    let doomed = create(&app, None, &declined_rule("declines to delete", 1, 600)).await;
    am.wait_firing("declines to delete").await;
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/alerts/{doomed}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 204);
    am.wait_resolved("declines to delete").await;

    let (status, rule) = app
        .post(&format!("/api/v1/alerts/{id}/disable"), None, &json!({}))
        .await;
    assert_eq!(status, 200, "{rule}");
    assert_eq!(
        (rule["enabled"].clone(), rule["state"].clone()),
        (json!(false), json!("inactive"))
    );
    am.wait_resolved("declines to disable").await;
    // A disabled rule is no longer evaluated: it stays inactive with matching logs in its window.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, rule) = app.get(&format!("/api/v1/alerts/{id}"), None).await;
    assert_eq!(rule["state"], "inactive");
    assert!(am.alerts("declines to disable").await.is_empty());
}

/// A log-service whose Alertmanager at `url` takes no delivery (each given up after
/// `timeout_ms`), with the rule `name` firing and at least one failed delivery counted.
async fn firing_with_failing_deliveries(
    url: String,
    timeout_ms: u64,
    name: &str,
) -> (TestApp, String) {
    let app = spawn_with(|c| {
        c.alerts.eval_interval = Duration::from_millis(100);
        c.alerts.alertmanager_url = Some(url);
        c.alerts.alertmanager_timeout = Duration::from_millis(timeout_ms);
    })
    .await;
    let id = create(&app, None, &declined_rule(name, 1, 600)).await;
    ingest_declines(&app, None, 1, &format!("trace-{name}")).await;
    wait_for_state(&app, None, &id, "firing").await;
    wait_until(
        "failed deliveries counted",
        Duration::from_secs(15),
        || async {
            let metrics = app.metrics().await;
            (sample(
                &metrics,
                "log_service_alert_notifications_total{outcome=\"failed\"}",
            ) >= 1.0)
                .then_some(())
        },
    )
    .await;
    (app, id)
}

#[tokio::test]
async fn delivery_failures_are_counted_and_ingest_goes_on() {
    // Nothing listens on this port: every delivery is refused.
    let closed = format!("http://127.0.0.1:{}", testkit::process::free_port());
    let (app, id) = firing_with_failing_deliveries(closed, 500, "undeliverable").await;
    let rule = wait_until("the failure shown", Duration::from_secs(10), || async {
        let (_, rule) = app.get(&format!("/api/v1/alerts/{id}"), None).await;
        (rule["delivery"]["state"] == "failed").then_some(rule)
    })
    .await;
    let error = rule["delivery"]["error"].as_str().unwrap();
    assert!(error.contains("after 3 attempts"), "{rule}");
    assert!(rule["delivery"]["at"].is_string(), "{rule}");

    // While every delivery fails and is retried, ingest answers as fast as ever and the rule
    // keeps being evaluated.
    let evaluations = sample(&app.metrics().await, "log_service_alert_evaluations_total");
    let started = Instant::now();
    for _ in 0..20 {
        ingest_declines(&app, None, 5, "trace-undeliverable").await;
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(5),
        "20 batches took {elapsed:?}"
    );
    wait_until("evaluation going on", Duration::from_secs(10), || async {
        let (_, rule) = app.get(&format!("/api/v1/alerts/{id}"), None).await;
        (rule["last_value"] == 101).then_some(())
    })
    .await;
    let metrics = app.metrics().await;
    assert!(sample(&metrics, "log_service_alert_evaluations_total") > evaluations);
    assert_eq!(
        sample(
            &metrics,
            "log_service_alert_notifications_total{outcome=\"sent\"}"
        ),
        0.0
    );
    assert_eq!(
        sample(&metrics, "log_service_alert_rules{state=\"firing\"}"),
        1.0
    );
}

#[tokio::test]
async fn an_alertmanager_that_never_answers_is_timed_out() {
    // Accepts connections and never answers: only the request timeout ends a delivery.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let (app, id) = firing_with_failing_deliveries(url, 200, "unanswered").await;
    let started = Instant::now();
    ingest_declines(&app, None, 1, "trace-unanswered").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    wait_until("evaluation going on", Duration::from_secs(10), || async {
        let (_, rule) = app.get(&format!("/api/v1/alerts/{id}"), None).await;
        (rule["last_value"] == 2).then_some(())
    })
    .await;
}

#[tokio::test]
async fn without_alertmanager_rules_are_evaluated_and_their_state_shown() {
    let app = spawn_with(|c| c.alerts.eval_interval = Duration::from_millis(200)).await;
    let held = json!({"name": "held", "service": "payment-service", "query": "declined",
                      "threshold": 2, "window_seconds": 600, "for_seconds": 1});
    let rule = create_rule(&app, None, &held).await;
    assert_eq!(rule["state"], "inactive");
    assert_eq!(rule["last_value"], Value::Null);
    assert_eq!(rule["last_evaluated_at"], Value::Null);
    let id = rule["id"].as_str().unwrap();

    ingest_declines(&app, None, 2, "t-held").await;
    // Held for `for_seconds` first: pending, then firing.
    let pending = wait_for_state(&app, None, id, "pending").await;
    assert_eq!(pending["last_value"], 2);
    assert_eq!(pending["last_value_relation"], "eq");
    assert!(pending["last_evaluated_at"].is_string());
    let firing = wait_for_state(&app, None, id, "firing").await;
    assert_eq!(firing["active_since"], pending["active_since"]);
    assert_eq!(firing["delivery"]["state"], "not_sent");
    let (_, list) = app.get("/api/v1/alerts", None).await;
    assert_eq!(list["delivering"], false);
    let metrics = app.metrics().await;
    assert_eq!(
        sample(&metrics, "log_service_alert_rules{state=\"firing\"}"),
        1.0
    );
    // Each round over the rules is timed.
    assert!(sample(&metrics, "log_service_alert_round_duration_seconds_count") >= 2.0);
    assert_eq!(
        sample(
            &metrics,
            "log_service_alert_notifications_total{outcome=\"sent\"}"
        ),
        0.0
    );
}

#[tokio::test]
async fn an_evaluation_counts_up_to_its_bound_and_says_at_least() {
    let app = spawn_with(|c| c.alerts.eval_interval = Duration::from_millis(200)).await;
    for _ in 0..5 {
        ingest_declines(&app, None, 2_010, "t-many").await;
    }
    // Past the query API's bound of 10,000 the count stops; a threshold above it is counted to,
    // so 10,050 matches of 10,060 needed are an exact count.
    let rules = [
        ("low", 3, json!(["firing", 10_000, "gte"])),
        ("high", 10_060, json!(["inactive", 10_050, "eq"])),
    ];
    for (name, threshold, expected) in rules {
        let id = create(&app, None, &declined_rule(name, threshold, 600)).await;
        let rule = wait_until("an evaluation", Duration::from_secs(15), || async {
            let (_, rule) = app.get(&format!("/api/v1/alerts/{id}"), None).await;
            rule["last_value"].is_number().then_some(rule)
        })
        .await;
        let seen = json!([
            rule["state"],
            rule["last_value"],
            rule["last_value_relation"]
        ]);
        assert_eq!(seen, expected, "rule {name}");
    }
}

#[tokio::test]
async fn rules_are_created_read_replaced_toggled_and_deleted() {
    let app = spawn_with(|c| c.alerts.eval_interval = Duration::from_secs(3600)).await;
    let rule = create_rule(&app, None, &declined_rule("payment errors", 5, 60)).await;
    let id = rule["id"].as_str().unwrap().to_owned();
    assert_eq!(rule["name"], "payment errors");
    assert_eq!(rule["min_level"], "ERROR");
    assert_eq!(rule["query"], "declined");
    assert_eq!(rule["state"], "inactive");
    let path = format!("/api/v1/alerts/{id}");

    let (status, read) = app.get(&path, None).await;
    assert_eq!(status, 200);
    assert_eq!(read["threshold"], 5);
    let second = create(&app, None, &declined_rule("another", 1, 60)).await;
    let (_, list) = app.get("/api/v1/alerts", None).await;
    assert_eq!(list["count"], 2);
    assert_eq!(
        strings(&list, "rules", "name"),
        ["another", "payment errors"]
    );

    let mut replacement = declined_rule("payment errors", 10, 120);
    replacement["service"] = Value::Null;
    let (status, replaced) = call(&app, Method::PUT, &path, None, Some(&replacement)).await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(
        (replaced["id"].as_str(), replaced["threshold"].as_i64()),
        (Some(id.as_str()), Some(10))
    );
    assert_eq!(replaced["service"], Value::Null);
    assert_eq!(app.get(&path, None).await.1["window_seconds"], 120);
    // A name is unique per tenant.
    let taken = declined_rule("another", 1, 60);
    let (status, error) = call(&app, Method::PUT, &path, None, Some(&taken)).await;
    assert_eq!(
        (status.as_u16(), error["error"]["field"].as_str()),
        (422, Some("name"))
    );
    app.assert_invalid_field("/api/v1/alerts", &taken, "name")
        .await;

    let (status, disabled) = app.post(&format!("{path}/disable"), None, &json!({})).await;
    assert_eq!(
        (status.as_u16(), disabled["enabled"].as_bool()),
        (200, Some(false))
    );
    let (_, enabled) = app.post(&format!("{path}/enable"), None, &json!({})).await;
    assert_eq!(enabled["enabled"], true);

    let (status, _) = call(&app, Method::DELETE, &path, None, None).await;
    assert_eq!(status, 204);
    let (status, error) = app.get(&path, None).await;
    assert_eq!(status, 404, "{error}");
    assert_eq!(error["error"]["code"], "not_found");
    let (status, _) = call(&app, Method::DELETE, &path, None, None).await;
    assert_eq!(status, 404);
    let (_, list) = app.get("/api/v1/alerts", None).await;
    assert_eq!(list["rules"][0]["id"], second.as_str());
}

#[tokio::test]
async fn bad_rules_are_refused_naming_the_field() {
    let app = spawn_with(|c| c.alerts.eval_interval = Duration::from_secs(3600)).await;
    let with = |key: &str, value: Value| {
        let mut body = declined_rule("r", 5, 60);
        body[key] = value;
        body
    };
    for (body, field) in [
        (with("threshold", json!(0)), "threshold"),
        (with("window_seconds", json!(0)), "window_seconds"),
        (with("window_seconds", json!(86_401)), "window_seconds"),
        (with("for_seconds", json!(-5)), "for_seconds"),
        (with("min_level", json!("LOUD")), "min_level"),
        (with("name", json!("")), "name"),
        (with("threshhold", json!(5)), "threshhold"),
        (with("query", json!("***")), "query"),
    ] {
        app.assert_invalid_field("/api/v1/alerts", &body, field)
            .await;
    }
    let id = create(&app, None, &declined_rule("r", 5, 60)).await;
    let (status, error) = call(
        &app,
        Method::PUT,
        &format!("/api/v1/alerts/{id}"),
        None,
        Some(&with("threshold", json!(0))),
    )
    .await;
    assert_eq!(
        (status.as_u16(), error["error"]["field"].as_str()),
        (422, Some("threshold"))
    );

    app.assert_unreadable_body("/api/v1/alerts", "{\"name\": ")
        .await;
    let (status, _) = app.post("/api/v1/alerts", None, &json!([1, 2])).await;
    assert_eq!(status, 400);
    let (status, error) = app.get("/api/v1/alerts/no-such-rule", None).await;
    assert_eq!(
        (status.as_u16(), error["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = app
        .post("/api/v1/alerts/no-such-rule/enable", None, &json!({}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn no_tenant_sees_changes_or_deletes_another_tenants_rules() {
    let app = spawn_with(|c| c.alerts.eval_interval = Duration::from_millis(200)).await;
    let id = create(&app, Some("acme"), &declined_rule("acme declines", 1, 600)).await;
    let path = format!("/api/v1/alerts/{id}");
    // The same name is free in another tenant.
    create(
        &app,
        Some("globex"),
        &declined_rule("acme declines", 1, 600),
    )
    .await;

    let globex = Some("globex");
    assert_eq!(app.get(&path, globex).await.0, 404);
    assert_eq!(app.get(&path, None).await.0, 404);
    let body = declined_rule("taken over", 1, 60);
    assert_eq!(
        call(&app, Method::PUT, &path, globex, Some(&body)).await.0,
        404
    );
    assert_eq!(call(&app, Method::DELETE, &path, globex, None).await.0, 404);
    assert_eq!(
        app.post(&format!("{path}/disable"), globex, &json!({}))
            .await
            .0,
        404
    );
    let (_, list) = app.get("/api/v1/alerts", globex).await;
    assert_eq!(list["count"], 1);
    assert_ne!(list["rules"][0]["id"], id.as_str());
    assert_eq!(app.get("/api/v1/alerts", None).await.1["count"], 0);

    // A rule counts only its own tenant's logs.
    ingest_declines(&app, globex, 3, "globex-trace").await;
    let (_, globex_rules) = app.get("/api/v1/alerts", globex).await;
    let globex_id = globex_rules["rules"][0]["id"].as_str().unwrap().to_owned();
    wait_for_state(&app, globex, &globex_id, "firing").await;
    let (status, acme) = app.get(&path, Some("acme")).await;
    assert_eq!(status, 200);
    assert_eq!(acme["name"], "acme declines");
    assert_eq!(acme["enabled"], true);
    assert_eq!(acme["state"], "inactive");
    assert_eq!(acme["last_value"], 0);
}

#[tokio::test]
async fn rules_and_their_state_survive_a_restart() {
    let dir = TempDir::new();
    let db = dir.0.join("logs.db");
    let first = Stoppable::start(fast_config(&db)).await;
    let id = create(
        &first.app,
        Some("acme"),
        &declined_rule("survivor", 2, 3600),
    )
    .await;
    ingest_declines(&first.app, Some("acme"), 2, "trace-survivor").await;
    let before = wait_for_state(&first.app, Some("acme"), &id, "firing").await;
    first.stop().await;

    let second = Stoppable::start(fast_config(&db)).await;
    let (status, after) = second
        .app
        .get(&format!("/api/v1/alerts/{id}"), Some("acme"))
        .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["name"], "survivor");
    assert_eq!(after["state"], "firing");
    // Resumed, not fired anew: the alert keeps its start (Alertmanager's `startsAt`).
    assert_eq!(after["fired_at"], before["fired_at"]);
    assert_eq!(after["last_trace_id"], "trace-survivor");
    assert_eq!(
        second.app.get("/api/v1/alerts", Some("acme")).await.1["count"],
        1
    );
    second.stop().await;
}

fn write_rules(path: &PathBuf, threshold: u64) {
    let rules = json!({"rules": [
        {"name": "file declines", "service": "payment-service", "query": "declined",
         "threshold": threshold, "window_seconds": 60},
        {"name": "file declines", "tenant": "acme", "service": "payment-service",
         "threshold": 1, "window_seconds": 60, "severity": "critical"},
    ]});
    std::fs::write(path, rules.to_string()).unwrap();
}

#[tokio::test]
async fn a_rules_file_is_upserted_by_name_at_every_start() {
    let dir = TempDir::new();
    let db = dir.0.join("logs.db");
    let rules_file = dir.0.join("rules.json");
    write_rules(&rules_file, 5);
    let config = || {
        let mut config = fast_config(&db);
        config.alerts.rules_file = Some(rules_file.clone());
        config
    };
    let first = Stoppable::start(config()).await;
    let (_, list) = first.app.get("/api/v1/alerts", None).await;
    assert_eq!(list["count"], 1, "{list}");
    let id = list["rules"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(list["rules"][0]["threshold"], 5);
    let (_, acme) = first.app.get("/api/v1/alerts", Some("acme")).await;
    assert_eq!(acme["rules"][0]["severity"], "critical");
    first.stop().await;

    write_rules(&rules_file, 7);
    let second = Stoppable::start(config()).await;
    let (_, list) = second.app.get("/api/v1/alerts", None).await;
    assert_eq!(list["count"], 1, "no copy after a restart: {list}");
    assert_eq!(list["rules"][0]["id"], id.as_str());
    assert_eq!(list["rules"][0]["threshold"], 7);
    second.stop().await;

    // A bad file stops the start, naming the entry and the field.
    std::fs::write(
        &rules_file,
        r#"[{"name": "x", "threshold": 0, "window_seconds": 5}]"#,
    )
    .unwrap();
    let err = Application::build(config(), &server::Stop::new())
        .await
        .expect_err("a bad rules file is refused");
    assert!(format!("{err:#}").contains("rule 0: threshold"), "{err:#}");
}

#[tokio::test]
async fn the_postgres_backend_stores_and_evaluates_rules() {
    let Some(postgres) = PostgresApp::spawn_with(|c| {
        c.alerts.eval_interval = Duration::from_millis(200);
    })
    .await
    else {
        return;
    };
    let app = &postgres.app;
    let id = create(app, Some("acme"), &declined_rule("pg declines", 2, 600)).await;
    let path = format!("/api/v1/alerts/{id}");
    assert_eq!(app.get(&path, Some("globex")).await.0, 404);
    ingest_declines(app, Some("acme"), 2, "pg-trace").await;
    let firing = wait_for_state(app, Some("acme"), &id, "firing").await;
    assert_eq!(firing["last_value"], 2);
    assert_eq!(firing["last_trace_id"], "pg-trace");

    // Another log-service on the same database reads the rule and its state.
    let other = spawn_config(postgres.config.clone(), TempDir::new()).await;
    let (status, seen) = other.get(&path, Some("acme")).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["state"], "firing");
    assert_eq!(seen["fired_at"], firing["fired_at"]);
    drop(other);

    let (status, _) = call(app, Method::DELETE, &path, Some("acme"), None).await;
    assert_eq!(status, 204);
    assert_eq!(app.get(&path, Some("acme")).await.0, 404);
    postgres.finish().await;
}
