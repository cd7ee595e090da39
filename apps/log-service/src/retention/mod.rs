//! Retention: each tenant keeps its logs and spans for its policy's days (or the default's),
//! and the whole store stays under a size cap. Storage is laid out in (tenant, day) partitions,
//! so enforcing both is dropping whole partitions, never deleting rows one by one.
//!
//! [`Retention::run`] enforces now (the admin route `POST /api/v1/retention/run` calls it);
//! [`Retention::spawn`] runs it every `RETENTION_INTERVAL` until the stop. Runs never overlap.

mod plan;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::leader::Leader;
use crate::metrics::Metrics;
use crate::storage::day::Day;
use crate::storage::{Dropped, Store, StoreError};

pub use plan::expired;

/// Retention settings (`LOG_RETENTION_DAYS`, `LOG_MAX_SIZE_GB`, `RETENTION_INTERVAL`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetentionConfig {
    /// Days kept for a tenant without a policy.
    pub default_days: i64,
    /// Most bytes of data the store may hold; past it the oldest day goes.
    pub max_size_bytes: u64,
    /// Time between two enforcements.
    pub interval: Duration,
}

/// Most days a policy or the default may keep: ten years.
pub const MAX_RETENTION_DAYS: i64 = 3650;

/// Why a partition was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Older than the tenant's policy (or the default).
    Retention,
    /// The store was over `LOG_MAX_SIZE_GB`.
    SizeCap,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Retention => "retention",
            Reason::SizeCap => "size_cap",
        }
    }
}

/// One dropped partition in a run's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    pub tenant_id: String,
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub reason: Reason,
    #[serde(flatten)]
    pub dropped: Dropped,
}

/// What one run removed.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RunReport {
    /// Every dropped partition, in the order dropped.
    pub removed: Vec<Removed>,
    pub partitions_dropped: usize,
    /// Logs and spans removed.
    pub rows_removed: i64,
    /// The database's size on disk after the run.
    pub bytes_on_disk: i64,
}

/// Enforces retention on one store.
#[derive(Debug, Clone)]
pub struct Retention {
    store: Store,
    config: RetentionConfig,
    metrics: Metrics,
    running: Arc<tokio::sync::Mutex<()>>,
}

impl Retention {
    /// Retention of `store` with `config`.
    pub fn new(store: Store, config: RetentionConfig, metrics: Metrics) -> Retention {
        Retention {
            store,
            config,
            metrics,
            running: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> RetentionConfig {
        self.config
    }

    /// Enforces every policy and the size cap now; counts the run, and a failure is logged and
    /// counted too.
    pub async fn run(&self) -> Result<RunReport, StoreError> {
        let _one_at_a_time = self.running.lock().await;
        self.metrics.retention_runs.inc();
        let result = self.enforce(Day::today()).await;
        match &result {
            Ok(report) if report.partitions_dropped > 0 => tracing::info!(
                partitions = report.partitions_dropped,
                rows = report.rows_removed,
                bytes_on_disk = report.bytes_on_disk,
                "retention run removed data"
            ),
            Ok(_) => tracing::debug!("retention run removed nothing"),
            Err(err) => {
                self.metrics.retention_failures.inc();
                tracing::error!(error = %err, "retention run failed");
            }
        }
        result
    }

    async fn enforce(&self, today: Day) -> Result<RunReport, StoreError> {
        let partitions = self.store.partitions();
        let policies: HashMap<String, i64> = partitions
            .policies()
            .await?
            .into_iter()
            .map(|p| (p.tenant_id, p.retention_days))
            .collect();
        let mut stored = partitions.partitions().await?;
        let mut report = RunReport::default();
        for (tenant, day) in expired(&stored, &policies, self.config.default_days, today) {
            let dropped = partitions.drop_partition(&tenant, day).await?;
            self.record(&mut report, tenant, day, Reason::Retention, dropped);
        }
        stored.retain(|p| {
            !report
                .removed
                .iter()
                .any(|r| r.tenant_id == p.tenant && r.day == p.day.iso())
        });
        // Over the cap the oldest day goes first, whoever's it is; today's data stays, since it
        // is what ingest writes now.
        loop {
            let size = partitions.size().await?;
            if size.used as u64 <= self.config.max_size_bytes {
                break;
            }
            let Some(oldest) = stored.first().map(|p| p.day).filter(|d| *d < today) else {
                tracing::warn!(
                    used_bytes = size.used,
                    max_bytes = self.config.max_size_bytes,
                    "storage over its size cap with only today's data left"
                );
                self.metrics.retention_failures.inc();
                break;
            };
            let day_partitions: Vec<_> =
                stored.iter().filter(|p| p.day == oldest).cloned().collect();
            stored.retain(|p| p.day != oldest);
            for p in day_partitions {
                let dropped = partitions.drop_partition(&p.tenant, p.day).await?;
                tracing::warn!(
                    tenant = %p.tenant,
                    day = %p.day.iso(),
                    used_bytes = size.used,
                    max_bytes = self.config.max_size_bytes,
                    "size cap dropped the oldest day"
                );
                self.record(&mut report, p.tenant, p.day, Reason::SizeCap, dropped);
            }
        }
        let size = partitions.size().await?;
        self.metrics.storage_bytes.set(size.on_disk);
        report.bytes_on_disk = size.on_disk;
        Ok(report)
    }

    fn record(
        &self,
        report: &mut RunReport,
        tenant: String,
        day: Day,
        reason: Reason,
        dropped: Dropped,
    ) {
        let metrics = &self.metrics;
        metrics
            .retention_rows
            .with_label_values(&["logs"])
            .inc_by(dropped.log_rows as u64);
        metrics
            .retention_rows
            .with_label_values(&["spans"])
            .inc_by(dropped.span_rows as u64);
        metrics
            .retention_partitions
            .with_label_values(&[reason.as_str()])
            .inc();
        report.partitions_dropped += 1;
        report.rows_removed += dropped.log_rows + dropped.span_rows;
        report.removed.push(Removed {
            tenant_id: tenant,
            day: day.iso(),
            reason,
            dropped,
        });
    }

    /// Runs retention every interval (the first one interval after the start) until the stop,
    /// while `leader` leads: replicas on one database run it once between them.
    pub fn spawn(&self, stop: &server::Stop, leader: Leader) {
        let retention = self.clone();
        let stopped = stop.intake_stopped();
        stop.spawn(async move {
            let period = retention.config.interval;
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tokio::pin!(stopped);
            // The gauge shows the size from the start, not only after the first run.
            match retention.store.partitions().size().await {
                Ok(size) => retention.metrics.storage_bytes.set(size.on_disk),
                Err(err) => {
                    retention.metrics.retention_failures.inc();
                    tracing::error!(error = %err, "storage size unreadable");
                }
            }
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticks.tick() => {
                        if !leader.is_leader() {
                            tracing::debug!("retention skipped: another replica leads");
                            continue;
                        }
                        // A failure is logged and counted by `run`; the next tick tries again.
                        let _ = retention.run().await;
                    }
                }
            }
        });
    }
}
