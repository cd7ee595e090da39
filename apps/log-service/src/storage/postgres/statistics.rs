//! Planner statistics and visibility of the day partitions of `log_entries`, kept up by
//! log-service itself.
//!
//! The search page's plans turn on how common a service, a level or a word is in a day: a word
//! in a fifth of the messages is found soonest by walking the newest-first index, a rare one
//! through the full-text index, and a count of warnings reads only the index when the day's
//! pages are marked all-visible. Without statistics the planner takes every value for a rare
//! one, and without a vacuum no page is all-visible. Autovacuum keeps both, but a server may run
//! without it; so every second each replica vacuums and analyzes the day partitions whose
//! rows changed by half since their last analyze (and by at least [`MIN_CHANGED_ROWS`]). A day
//! of two million rows is so analyzed about a dozen times while it fills; with autovacuum on,
//! which analyzes at a tenth, this rarely finds one.

use std::future::Future;
use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::connect;
use crate::metrics::Metrics;
use crate::storage::StoreError;

/// How often the partitions are looked at: a look is one read of the statistics view, and a day
/// filled in seconds (a backfill) is then planned with statistics seconds later.
const INTERVAL: Duration = Duration::from_secs(1);

/// Fewer changed rows are never worth an analyze.
const MIN_CHANGED_ROWS: i64 = 1000;

/// Day partitions of `log_entries` whose statistics lag behind their rows. A partition never
/// analyzed has `reltuples` -1.
const STALE_DAYS: &str = "SELECT s.relname::text FROM pg_stat_user_tables s \
     JOIN pg_class c ON c.oid = s.relid \
     WHERE s.schemaname = current_schema() AND s.relname LIKE 'log\\_entries\\_t%\\_%' \
     AND s.n_mod_since_analyze >= GREATEST($1::int8, c.reltuples::int8 / 2) \
     ORDER BY s.relname";

/// Runs until `stopped`; a lost connection is reopened at the next look, never fatal. Each
/// failure is logged and counted.
pub(super) async fn keep(url: String, metrics: Metrics, stopped: impl Future<Output = ()>) {
    tokio::pin!(stopped);
    let mut client: Option<Client> = None;
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
        let refreshed = tokio::select! {
            _ = &mut stopped => return,
            refreshed = refresh(&mut client, &url) => refreshed,
        };
        if let Err(err) = refreshed {
            tracing::warn!(error = %err, "refreshing log partition statistics failed");
            metrics.statistics_failures.inc();
            client = None;
        }
    }
}

/// Vacuums and analyzes every stale day partition, connecting first when needed.
async fn refresh(client: &mut Option<Client>, url: &str) -> Result<(), StoreError> {
    let client = match client {
        Some(c) if !c.is_closed() => c,
        slot => slot.insert(connect(url).await?),
    };
    let stale = client.query(STALE_DAYS, &[&MIN_CHANGED_ROWS]).await?;
    for row in stale {
        let table: String = row.get(0);
        // SKIP_LOCKED: a drop by retention, or another replica's run, goes first. An insert-only
        // day has no dead rows: the vacuum sets the visibility map and flushes the full-text
        // index's pending entries, and reads only the pages written since the last one.
        let vacuumed = client
            .batch_execute(&format!("VACUUM (ANALYZE, SKIP_LOCKED) {table}"))
            .await;
        match vacuumed {
            Ok(()) => tracing::debug!(table, "log partition analyzed"),
            // Dropped by retention since it was listed.
            Err(err) if err.code() == Some(&SqlState::UNDEFINED_TABLE) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}
