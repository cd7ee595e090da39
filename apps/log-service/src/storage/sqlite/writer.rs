//! The SQLite writer: one thread that owns the writing connection and commits each group of
//! queued batches in one transaction.

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use crate::model::SpanStatus;
use crate::storage::{QueueReceiver, StoreError, WriteJob};

/// Runs until the queue is closed and drained.
pub(super) fn run(mut conn: Connection, mut queue: QueueReceiver) {
    let mut caches = Caches::default();
    while let Some(group) = queue.blocking_next_group() {
        let result = write_jobs(&mut conn, &group.jobs, &mut caches);
        if result.is_err() {
            // The rolled-back transaction may have added cache entries that are not stored.
            caches = Caches::default();
        }
        queue.finish(group, result);
    }
    tracing::info!("log writer stopped");
}

/// Tenant ids and known services, so the hot path neither looks them up nor re-inserts them.
#[derive(Default)]
struct Caches {
    loaded: bool,
    tenants: HashMap<String, i64>,
    /// Services known per tenant id; looked up by `&str` so the hot path never allocates.
    services: HashMap<i64, HashSet<String>>,
}

impl Caches {
    fn load(&mut self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        if self.loaded {
            return Ok(());
        }
        let mut stmt = tx.prepare("SELECT name, id FROM tenants")?;
        self.tenants = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut stmt = tx.prepare("SELECT tenant, service FROM services")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        self.services.clear();
        for row in rows {
            let (tenant, service) = row?;
            self.services.entry(tenant).or_default().insert(service);
        }
        self.loaded = true;
        Ok(())
    }

    fn tenant(&mut self, tx: &Transaction<'_>, name: &str) -> Result<i64, StoreError> {
        if let Some(id) = self.tenants.get(name) {
            return Ok(*id);
        }
        let id: i64 = tx.query_row(
            "INSERT INTO tenants (name) VALUES (?1) RETURNING id",
            [name],
            |r| r.get(0),
        )?;
        self.tenants.insert(name.to_owned(), id);
        Ok(id)
    }

    fn service(&mut self, tx: &Transaction<'_>, tenant: i64, name: &str) -> Result<(), StoreError> {
        let known = self.services.entry(tenant).or_default();
        if !known.contains(name) {
            tx.prepare_cached("INSERT OR IGNORE INTO services (tenant, service) VALUES (?1, ?2)")?
                .execute(params![tenant, name])?;
            known.insert(name.to_owned());
        }
        Ok(())
    }
}

fn write_jobs(
    conn: &mut Connection,
    jobs: &[WriteJob],
    caches: &mut Caches,
) -> Result<Vec<Vec<i64>>, StoreError> {
    // IMMEDIATE takes the write lock first: a deferred transaction that reads (the caches) and
    // then writes fails at once with SQLITE_BUSY when another connection (the alert rules')
    // committed in between, where the busy timeout cannot help.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    caches.load(&tx)?;
    let mut all_ids = Vec::with_capacity(jobs.len());
    {
        let mut insert_log = tx.prepare_cached(
            "INSERT INTO logs (tenant, ts, level, service, message, trace_id, span_id, \
             parent_span_id, user_id, request_id, source, host, environment, attributes) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        let mut insert_fts =
            tx.prepare_cached("INSERT INTO logs_fts (rowid, message) VALUES (?1, ?2)")?;
        let mut insert_span = tx.prepare_cached(
            "INSERT OR REPLACE INTO spans (tenant, trace_id, span_id, parent_span_id, service, \
             name, kind, start_ns, end_ns, status, status_message, attributes, links, events) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        let mut mark_error = tx.prepare_cached(
            "INSERT INTO error_traces (tenant, trace_id, last_ns) VALUES (?1, ?2, ?3) \
             ON CONFLICT (tenant, trace_id) DO UPDATE SET last_ns = max(last_ns, excluded.last_ns)",
        )?;
        for job in jobs {
            let batch = &job.batch;
            let tenant = caches.tenant(&tx, &batch.tenant)?;
            let mut ids = Vec::with_capacity(batch.logs.len());
            for log in &batch.logs {
                let context = &log.context;
                caches.service(&tx, tenant, &log.service)?;
                insert_log.execute(params![
                    tenant,
                    log.timestamp_ns,
                    log.level as i64,
                    log.service,
                    log.message,
                    context.trace_id,
                    context.span_id,
                    context.parent_span_id,
                    context.user_id,
                    context.request_id,
                    context.source,
                    context.host,
                    context.environment,
                    log.metadata,
                ])?;
                let id = tx.last_insert_rowid();
                insert_fts.execute(params![id, log.message])?;
                if log.level.is_error()
                    && let Some(trace_id) = &context.trace_id
                {
                    mark_error.execute(params![tenant, trace_id, log.timestamp_ns])?;
                }
                ids.push(id);
            }
            for span in &batch.spans {
                caches.service(&tx, tenant, &span.service)?;
                insert_span.execute(params![
                    tenant,
                    span.trace_id,
                    span.span_id,
                    span.parent_span_id,
                    span.service,
                    span.name,
                    span.kind as i64,
                    span.start_ns,
                    span.end_ns,
                    span.status as i64,
                    span.status_message,
                    span.attributes.to_string(),
                    span.links.to_string(),
                    span.events.to_string(),
                ])?;
                if span.status == SpanStatus::Error {
                    mark_error.execute(params![tenant, span.trace_id, span.end_ns])?;
                }
            }
            all_ids.push(ids);
        }
    }
    tx.commit()?;
    Ok(all_ids)
}
