//! Prometheus metrics of log-service, all in one registry per application (so tests that start
//! several applications in one process never collide).

use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Handles to every metric; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Records received, by `protocol` (otlp_grpc, otlp_http, rest, grpc), `signal` (logs, spans)
    /// and `outcome` (accepted, rejected, throttled, failed).
    pub ingested: IntCounterVec,
    /// Rows waiting for the writer.
    pub queued_rows: IntGauge,
    /// Duration of one group commit.
    pub commit_seconds: Histogram,
    /// Rows in one group commit.
    pub commit_rows: Histogram,
    /// Group commits that failed and were rolled back.
    pub commit_failures: IntCounter,
    /// Live tails (`/api/v1/logs/stream`) open now.
    pub stream_subscribers: IntGauge,
    /// `lagged` events sent to live tails that fell behind.
    pub stream_lagged: IntCounter,
    /// Logs a lagging live tail skipped.
    pub stream_skipped: IntCounter,
    /// Live tails ended by a failed replay read.
    pub stream_failures: IntCounter,
    /// Logs another replica committed, read back and published to this replica's live tails.
    pub tail_peer_logs: IntCounter,
    /// Failures of the listener for other replicas' commits (lost connection, bad payload).
    pub tail_listen_errors: IntCounter,
    /// Failed looks at the PostgreSQL day partitions' statistics (lost connection, failed
    /// vacuum).
    pub statistics_failures: IntCounter,
    /// 1 while this replica leads (evaluates alert rules, runs retention), else 0.
    pub leader: IntGauge,
    /// Failures of the leadership session (connect, lock, health check).
    pub leader_errors: IntCounter,
    /// Evaluations of log alert rules (one per enabled rule per `ALERT_EVAL_INTERVAL`).
    pub alert_evaluations: IntCounter,
    /// Duration of one round over every enabled rule (Prometheus' rule group duration): at
    /// `ALERT_EVAL_INTERVAL` apart, the share of time that evaluation takes.
    pub alert_round_seconds: Histogram,
    /// Evaluations that could not count or could not store their outcome.
    pub alert_evaluation_failures: IntCounter,
    /// Alerts handed to Alertmanager, by `outcome` (sent, failed, dropped).
    pub alert_notifications: IntCounterVec,
    /// Log alert rules by `state` (inactive, pending, firing) after the last evaluation.
    pub alert_rules: IntGaugeVec,
    /// Alerts waiting for delivery to Alertmanager.
    pub alert_queue: IntGauge,
    /// Logs and spans removed by retention, by `signal` (logs, spans).
    pub retention_rows: IntCounterVec,
    /// Partitions (one tenant's day) dropped, by `reason` (retention, size_cap).
    pub retention_partitions: IntCounterVec,
    /// Bytes of the database on disk, measured at each retention run.
    pub storage_bytes: IntGauge,
    /// Retention runs, periodic and asked for.
    pub retention_runs: IntCounter,
    /// Retention runs that failed, and runs that left the store over its cap.
    pub retention_failures: IntCounter,
    /// Requests refused by the access check, by `reason` (missing_key, unknown_key, wrong_role,
    /// other_tenant, admin_token).
    pub access_refused: IntCounterVec,
    /// The HTTP metrics every server has: request durations and rejections.
    pub http: telemetry::http::HttpMetrics,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Creates and registers every metric, plus the process collector.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let metrics = Metrics {
            ingested: counter_vec(
                &registry,
                "log_service_ingested_records_total",
                "Records received by log-service, by protocol, signal and outcome.",
                &["protocol", "signal", "outcome"],
            )?,
            queued_rows: gauge(
                &registry,
                "log_service_write_queue_rows",
                "Rows waiting for the storage writer.",
            )?,
            commit_seconds: registered(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "log_service_commit_duration_seconds",
                        "Duration of one group commit.",
                    )
                    .buckets(vec![
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    ]),
                )?,
            )?,
            commit_rows: registered(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "log_service_commit_rows",
                        "Rows written by one group commit.",
                    )
                    .buckets(prometheus::exponential_buckets(1.0, 4.0, 9)?),
                )?,
            )?,
            commit_failures: counter(
                &registry,
                "log_service_commit_failures_total",
                "Group commits that failed and were rolled back.",
            )?,
            stream_subscribers: gauge(
                &registry,
                "log_service_stream_subscribers",
                "Live tails (GET /api/v1/logs/stream) open now.",
            )?,
            stream_lagged: counter(
                &registry,
                "log_service_stream_lagged_total",
                "Lagged events sent to live tails that fell behind the broadcast buffer.",
            )?,
            stream_skipped: counter(
                &registry,
                "log_service_stream_skipped_logs_total",
                "Logs skipped by live tails that fell behind the broadcast buffer.",
            )?,
            stream_failures: counter(
                &registry,
                "log_service_stream_replay_failures_total",
                "Live tails ended because a replay read from storage failed.",
            )?,
            tail_peer_logs: counter(
                &registry,
                "log_service_stream_peer_logs_total",
                "Logs committed by another replica and published to this replica's live tails.",
            )?,
            tail_listen_errors: counter(
                &registry,
                "log_service_stream_listen_errors_total",
                "Failures of the listener for other replicas' commits (lost connection, bad payload).",
            )?,
            statistics_failures: counter(
                &registry,
                "log_service_statistics_failures_total",
                "Failed refreshes of the PostgreSQL day partitions' planner statistics.",
            )?,
            leader: gauge(
                &registry,
                "log_service_leader",
                "1 while this replica leads: evaluates alert rules and runs retention.",
            )?,
            leader_errors: counter(
                &registry,
                "log_service_leader_errors_total",
                "Failures of the leadership session: connect, lock or health check.",
            )?,
            alert_evaluations: counter(
                &registry,
                "log_service_alert_evaluations_total",
                "Evaluations of log alert rules.",
            )?,
            alert_round_seconds: registered(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "log_service_alert_round_duration_seconds",
                        "Duration of one evaluation round over every enabled log alert rule.",
                    )
                    .buckets(vec![
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                    ]),
                )?,
            )?,
            alert_evaluation_failures: counter(
                &registry,
                "log_service_alert_evaluation_failures_total",
                "Evaluations of log alert rules that failed to count matching logs or to store the outcome.",
            )?,
            alert_notifications: counter_vec(
                &registry,
                "log_service_alert_notifications_total",
                "Alerts delivered to Alertmanager, by outcome (sent, failed, dropped).",
                &["outcome"],
            )?,
            alert_rules: registered(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "log_service_alert_rules",
                        "Log alert rules by state (inactive, pending, firing).",
                    ),
                    &["state"],
                )?,
            )?,
            alert_queue: gauge(
                &registry,
                "log_service_alert_queue_alerts",
                "Alerts waiting for delivery to Alertmanager.",
            )?,
            retention_rows: counter_vec(
                &registry,
                "log_service_retention_rows_removed_total",
                "Logs and spans removed by retention, by signal.",
                &["signal"],
            )?,
            retention_partitions: counter_vec(
                &registry,
                "log_service_retention_partitions_dropped_total",
                "Partitions (one tenant's day) dropped, by reason (retention, size_cap).",
                &["reason"],
            )?,
            storage_bytes: gauge(
                &registry,
                "log_service_storage_bytes",
                "Bytes of the database on disk, measured at each retention run.",
            )?,
            retention_runs: counter(
                &registry,
                "log_service_retention_runs_total",
                "Retention runs, periodic and asked for.",
            )?,
            retention_failures: counter(
                &registry,
                "log_service_retention_failures_total",
                "Retention runs that failed or left the store over its size cap.",
            )?,
            access_refused: counter_vec(
                &registry,
                "log_service_access_refused_total",
                "Requests refused by the access check, by reason.",
                &["reason"],
            )?,
            http: telemetry::http::HttpMetrics::new(&registry),
            registry,
        };
        // Every outcome and state shows from the start, so a rate or an alert on them has a series.
        for outcome in ["sent", "failed", "dropped"] {
            metrics
                .alert_notifications
                .with_label_values(&[outcome])
                .inc_by(0);
        }
        for state in ["inactive", "pending", "firing"] {
            metrics.alert_rules.with_label_values(&[state]).set(0);
        }
        Ok(metrics)
    }

    /// Counts `n` alerts handed to Alertmanager with one outcome.
    pub fn count_notifications(&self, outcome: &str, n: usize) {
        self.alert_notifications
            .with_label_values(&[outcome])
            .inc_by(n as u64);
    }

    /// Counts `n` records of one protocol, signal and outcome.
    pub fn count(&self, protocol: &str, signal: &str, outcome: &str, n: usize) {
        if n > 0 {
            self.ingested
                .with_label_values(&[protocol, signal, outcome])
                .inc_by(n as u64);
        }
    }

    /// The registry `/metrics` renders.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// Registers `metric` in `registry` and hands it back, so a metric is registered where it is
/// made.
fn registered<C: Collector + Clone + 'static>(
    registry: &Registry,
    metric: C,
) -> Result<C, prometheus::Error> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// A registered counter without labels.
fn counter(registry: &Registry, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
    registered(registry, IntCounter::new(name, help)?)
}

/// A registered gauge without labels.
fn gauge(registry: &Registry, name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
    registered(registry, IntGauge::new(name, help)?)
}

/// A registered counter with `labels`.
fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    registered(registry, IntCounterVec::new(Opts::new(name, help), labels)?)
}
