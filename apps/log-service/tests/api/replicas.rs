//! Two replicas on one PostgreSQL database behind a load balancer: either serves what the other
//! stored, a live tail on either sees both's logs, one of them evaluates rules and runs retention
//! and the other takes over when it goes, and both start together on an empty database.

use std::time::{Duration, Instant};

use log_service::Config;
use serde_json::{Value, json};
use testkit::wait_until;

use crate::helpers::{Stoppable, TestApp, hex};
use crate::otlp::{order_logs, order_trace, send_grpc, trace_id};
use crate::postgres::fresh_database;
use crate::stream::Tail;

/// A fresh database of the local server, dropped by [`Database::finish`].
struct Database {
    admin: tokio_postgres::Client,
    name: String,
}

impl Database {
    /// `None` (the test is skipped) when no PostgreSQL server answers.
    async fn create() -> Option<Database> {
        let (admin, name) = fresh_database().await?;
        Some(Database { admin, name })
    }

    /// A fresh database with two replicas on it, started one after the other, both configured
    /// by `adjust`; `None` when no PostgreSQL server answers.
    async fn with_replicas(adjust: fn(&mut Config)) -> Option<(Database, Stoppable, Stoppable)> {
        let db = Database::create().await?;
        let a = Stoppable::start(db.config(adjust)).await;
        let b = Stoppable::start(db.config(adjust)).await;
        Some((db, a, b))
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// A replica's configuration: the test defaults on this database, adjusted by `adjust`.
    fn config(&self, adjust: impl FnOnce(&mut Config)) -> Config {
        let mut config = Config::for_tests("unused.db");
        config.database = log_service::DatabaseConfig::Postgres { url: self.url() };
        adjust(&mut config);
        config
    }

    /// Stops `replicas` in order, then drops the database.
    async fn finish<const N: usize>(self, replicas: [Stoppable; N]) {
        for replica in replicas {
            replica.stop().await;
        }
        let drop_database = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = self.admin.batch_execute(&drop_database).await;
    }
}

/// Evaluation and retention every 200 ms, so leadership shows fast.
fn fast(config: &mut Config) {
    config.alerts.eval_interval = Duration::from_millis(200);
    config.retention.interval = Duration::from_millis(200);
}

/// The value of the unlabelled sample `name` on `app`'s /metrics, 0 when absent.
async fn metric(app: &TestApp, name: &str) -> f64 {
    app.metrics()
        .await
        .lines()
        .find_map(|line| {
            let (series, value) = line.split_once(' ')?;
            (series == name).then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0.0)
}

/// `Some` while `app` leads.
async fn leads(app: &TestApp) -> Option<()> {
    (metric(app, "log_service_leader").await == 1.0).then_some(())
}

/// Ingests one log saying `message` as `tenant` and returns its id.
async fn ingest(app: &TestApp, tenant: &str, message: &str) -> i64 {
    let log = json!([{"service_name": "payment-service", "level": "ERROR", "message": message,
                      "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}]);
    let (status, body) = app.post("/api/v1/logs/batch", Some(tenant), &log).await;
    assert_eq!(status, 201, "{body}");
    body["ids"][0].as_i64().expect("id")
}

/// The message of log `id`, read from `app`.
async fn message_of(app: &TestApp, tenant: &str, id: i64) -> Value {
    let (status, log) = app.get(&format!("/api/v1/logs/{id}"), Some(tenant)).await;
    assert_eq!(status, 200, "{log}");
    log["message"].clone()
}

/// Waits up to `wait` for the log events `ids` on `tail`, in any order; fails on any other
/// event, and on a second copy of one.
async fn expect_logs(tail: &mut Tail, ids: &[i64], wait: Duration) {
    let started = Instant::now();
    let mut seen = Vec::new();
    while seen.len() < ids.len() {
        let left = wait.saturating_sub(started.elapsed());
        let event = tail
            .next(left)
            .await
            .unwrap_or_else(|| panic!("only {seen:?} of {ids:?} arrived within {wait:?}"));
        assert_eq!(event.event, "log", "{event:?}");
        let id = event.id.expect("log events carry their id");
        assert!(ids.contains(&id), "unexpected log {id}: {event:?}");
        assert!(!seen.contains(&id), "log {id} came twice");
        seen.push(id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn either_replica_serves_the_logs_spans_and_live_tail_of_both() {
    let Some((db, a, b)) = Database::with_replicas(|_| {}).await else {
        return;
    };
    let tenant = "replicated";

    // Logs written on one are read on the other, by id and by query.
    let on_a = ingest(&a.app, tenant, "written on a").await;
    let on_b = ingest(&b.app, tenant, "written on b").await;
    assert_eq!(message_of(&b.app, tenant, on_a).await, "written on a");
    assert_eq!(message_of(&a.app, tenant, on_b).await, "written on b");
    for app in [&a.app, &b.app] {
        let (_, page) = app
            .post(
                "/api/v1/logs/query",
                Some(tenant),
                &json!({"search": "written"}),
            )
            .await;
        assert_eq!(page["total"], 2, "{page}");
    }

    // Spans too: a trace exported to one is whole on the other.
    for (app, trace) in [(&a.app, 31), (&b.app, 32)] {
        let (traces, logs) = (order_trace(trace), order_logs(trace, vec![]));
        send_grpc(app, Some(tenant), traces, logs).await;
    }
    for (app, trace) in [(&b.app, 31), (&a.app, 32)] {
        let id = hex(&trace_id(trace));
        let (status, body) = app.get(&format!("/api/v1/traces/{id}"), Some(tenant)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["spans"].as_array().unwrap().len(), 6, "{body}");
    }

    // A live tail on B gets A's log and B's own within 2 s, each once.
    let mut tail = Tail::open(&b.app, "", tenant, None).await;
    let mut tail_on_a = Tail::open(&a.app, "", tenant, None).await;
    let from_a = ingest(&a.app, tenant, "live from a").await;
    expect_logs(&mut tail, &[from_a], Duration::from_secs(2)).await;
    let from_b = ingest(&b.app, tenant, "live from b").await;
    expect_logs(&mut tail, &[from_b], Duration::from_secs(2)).await;
    expect_logs(&mut tail_on_a, &[from_a, from_b], Duration::from_secs(2)).await;
    assert!(
        tail.next(Duration::from_millis(500)).await.is_none(),
        "nothing more, nothing twice"
    );
    assert!(metric(&b.app, "log_service_stream_peer_logs_total").await >= 1.0);
    assert_eq!(
        metric(&b.app, "log_service_stream_listen_errors_total").await,
        0.0
    );

    // A tail resumed on A replays both replicas' logs after the id, then goes live, once each.
    let mut resumed = Tail::open(&a.app, "", tenant, Some(on_b)).await;
    let (first, second) = (from_a.min(from_b), from_a.max(from_b));
    expect_logs(&mut resumed, &[first, second], Duration::from_secs(2)).await;
    let later = ingest(&b.app, tenant, "after the resume").await;
    expect_logs(&mut resumed, &[later], Duration::from_secs(2)).await;
    assert!(resumed.next(Duration::from_millis(500)).await.is_none());

    drop((tail, tail_on_a, resumed));
    db.finish([a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tail_listener_reconnects_when_its_session_ends() {
    let Some((db, a, b)) = Database::with_replicas(|_| {}).await else {
        return;
    };
    let tenant = "reconnecting";
    let mut tail = Tail::open(&b.app, "", tenant, None).await;

    // What B sees when PostgreSQL restarts or a proxy drops it: its listening session ends.
    let terminated = db
        .admin
        .query(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND application_name = 'log-service tail listener'",
            &[&db.name],
        )
        .await
        .unwrap();
    assert_eq!(terminated.len(), 2, "one listener per replica");
    let old_pids: Vec<i32> = terminated.iter().map(|row| row.get(0)).collect();
    wait_until(
        "the lost session is counted",
        Duration::from_secs(5),
        || async {
            (metric(&b.app, "log_service_stream_listen_errors_total").await >= 1.0).then_some(())
        },
    )
    .await;

    // B listens again within its backoff, and the process went on serving meanwhile.
    wait_until("both listen again", Duration::from_secs(5), || async {
        let rows = db
            .admin
            .query(
                "SELECT pid FROM pg_stat_activity \
                 WHERE datname = $1 AND application_name = 'log-service tail listener' \
                 AND state = 'idle' AND query LIKE 'LISTEN%' AND NOT (pid = ANY($2))",
                &[&db.name, &old_pids],
            )
            .await
            .unwrap();
        (rows.len() == 2).then_some(())
    })
    .await;
    let from_a = ingest(&a.app, tenant, "after the reconnect").await;
    expect_logs(&mut tail, &[from_a], Duration::from_secs(2)).await;

    drop(tail);
    db.finish([a, b]).await;
}

/// A rule that fires on one matching log of the last minute.
fn one_error_rule() -> Value {
    json!({"name": "any payment error", "service": "payment-service", "min_level": "ERROR",
           "threshold": 1, "window_seconds": 60, "for_seconds": 0, "severity": "warning",
           "enabled": true})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_evaluates_and_runs_retention_and_the_other_takes_over_when_it_stops() {
    let Some(db) = Database::create().await else {
        return;
    };
    let a = Stoppable::start(db.config(fast)).await;
    wait_until("replica a leads", Duration::from_secs(5), || leads(&a.app)).await;
    let b = Stoppable::start(db.config(fast)).await;
    let tenant = "alerting";
    let (status, rule) = b
        .app
        .post("/api/v1/alerts", Some(tenant), &one_error_rule())
        .await;
    assert_eq!(status, 201, "{rule}");
    let id = rule["id"].as_str().unwrap().to_owned();
    ingest(&b.app, tenant, "card declined").await;

    // The leader evaluates (the state shows on either), the follower neither evaluates nor
    // runs retention.
    let fired = wait_until("the rule fires", Duration::from_secs(10), || async {
        let (_, rule) = b
            .app
            .get(&format!("/api/v1/alerts/{id}"), Some(tenant))
            .await;
        (rule["state"] == "firing").then_some(rule)
    })
    .await;
    wait_until("a few rounds", Duration::from_secs(10), || async {
        let runs = metric(&a.app, "log_service_retention_runs_total").await;
        let rounds = metric(&a.app, "log_service_alert_evaluations_total").await;
        (runs >= 2.0 && rounds >= 3.0).then_some(())
    })
    .await;
    assert_eq!(metric(&b.app, "log_service_leader").await, 0.0);
    assert_eq!(
        metric(&b.app, "log_service_alert_evaluations_total").await,
        0.0
    );
    assert_eq!(
        metric(&b.app, "log_service_retention_runs_total").await,
        0.0
    );

    // A stops: B leads within a few seconds, evaluates and runs retention.
    a.stop().await;
    let stopped = Instant::now();
    wait_until("replica b leads", Duration::from_secs(5), || leads(&b.app)).await;
    wait_until("replica b evaluates", Duration::from_secs(5), || async {
        let rounds = metric(&b.app, "log_service_alert_evaluations_total").await;
        let runs = metric(&b.app, "log_service_retention_runs_total").await;
        (rounds >= 1.0 && runs >= 1.0).then_some(())
    })
    .await;
    println!(
        "replica b took over {:?} after a stopped",
        stopped.elapsed()
    );
    // The rule's state is stored, so it goes on firing since it first fired.
    let (_, rule) = b
        .app
        .get(&format!("/api/v1/alerts/{id}"), Some(tenant))
        .await;
    assert_eq!(rule["state"], "firing", "{rule}");
    assert_eq!(rule["fired_at"], fired["fired_at"], "{rule}");

    db.finish([b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leaders_session_ends_one_replica_leads_again() {
    let Some((db, a, b)) = Database::with_replicas(fast).await else {
        return;
    };
    let leaders = || async {
        let (la, lb) = (
            metric(&a.app, "log_service_leader").await,
            metric(&b.app, "log_service_leader").await,
        );
        (la + lb == 1.0).then_some(la == 1.0)
    };
    let a_led = wait_until("one leader", Duration::from_secs(5), leaders).await;

    // What PostgreSQL sees of a SIGKILLed leader: its session ends, the lock is free.
    let terminated = db
        .admin
        .query(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_database d \
             ON d.oid = l.database WHERE l.locktype = 'advisory' AND l.granted \
             AND d.datname = $1 AND ((l.classid::int8 << 32) | l.objid::int8) = $2",
            &[&db.name, &log_service::LEADER_LOCK],
        )
        .await
        .unwrap();
    assert_eq!(terminated.len(), 1, "one session holds the leader lock");

    let ex_leader = if a_led { &a.app } else { &b.app };
    wait_until("the ex-leader notices", Duration::from_secs(5), || async {
        (metric(ex_leader, "log_service_leader_errors_total").await >= 1.0).then_some(())
    })
    .await;
    wait_until("one leader again", Duration::from_secs(5), leaders).await;
    // And it stays one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(leaders().await.is_some(), "exactly one replica leads");

    db.finish([a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_starting_together_on_an_empty_database_both_come_up() {
    let Some(db) = Database::create().await else {
        return;
    };
    let (a, b) = tokio::join!(
        Stoppable::start(db.config(|_| {})),
        Stoppable::start(db.config(|_| {}))
    );

    // Both create the partitions of new tenants at once, and neither write fails.
    for round in 0..5 {
        let tenant = format!("new-tenant-{round}");
        let (on_a, on_b) = tokio::join!(
            ingest(&a.app, &tenant, "first write on a"),
            ingest(&b.app, &tenant, "first write on b")
        );
        assert_eq!(message_of(&a.app, &tenant, on_b).await, "first write on b");
        assert_eq!(message_of(&b.app, &tenant, on_a).await, "first write on a");
    }

    db.finish([a, b]).await;
}
