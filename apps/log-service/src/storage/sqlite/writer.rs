//! The SQLite writer: one thread that owns the writing connection and commits each group of
//! queued batches in one transaction, creating each (tenant, day) partition as its first row
//! arrives.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use rusqlite::{CachedStatement, Connection, Transaction, TransactionBehavior, params};

use super::schema::{PartitionNames, partition_ddl};
use super::ts_bounds::BoundsWriter;
use crate::model::SpanStatus;
use crate::storage::day::Day;
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

/// Tenant ids, known services and partitions, and the next log id, so the hot path neither
/// looks them up nor re-inserts them.
#[derive(Default)]
struct Caches {
    loaded: bool,
    tenants: HashMap<String, i64>,
    /// Services known per tenant id; looked up by `&str` so the hot path never allocates.
    services: HashMap<i64, HashSet<String>>,
    /// Partitions that exist, with their table names.
    partitions: HashMap<(i64, Day), PartitionNames>,
    /// The schema version after this writer's last commit: another value at the start of a
    /// transaction means retention dropped partitions in between, and `partitions` is reloaded.
    schema_version: i64,
    next_log_id: i64,
    /// Each partition's running maximum of log time, written as its time bounds.
    bounds: BoundsWriter,
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
        self.load_partitions(tx)?;
        self.next_log_id = tx.query_row(
            "SELECT value FROM layout WHERE key = 'next_log_id'",
            [],
            |r| r.get(0),
        )?;
        self.loaded = true;
        Ok(())
    }

    fn load_partitions(&mut self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let mut stmt = tx.prepare("SELECT tenant, day FROM partitions")?;
        self.partitions = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, Day(r.get(1)?))))?
            .map(|row| row.map(|(t, d)| ((t, d), PartitionNames::new(t, d))))
            .collect::<Result<_, _>>()?;
        // A dropped partition may come back (a late log of its day) with no bounds yet.
        self.bounds.clear();
        self.schema_version = schema_version(tx)?;
        Ok(())
    }

    /// The partition of `tenant` for `day`, created when it is the first row of that day.
    fn partition(
        &mut self,
        tx: &Transaction<'_>,
        tenant: i64,
        day: Day,
    ) -> Result<&PartitionNames, StoreError> {
        match self.partitions.entry((tenant, day)) {
            Entry::Occupied(known) => Ok(known.into_mut()),
            Entry::Vacant(slot) => {
                let names = PartitionNames::new(tenant, day);
                tx.execute_batch(&partition_ddl(&names))?;
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO partitions (tenant, day) VALUES (?1, ?2)",
                )?
                .execute(params![tenant, day.0])?;
                Ok(slot.insert(names))
            }
        }
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

fn schema_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA schema_version", [], |r| r.get(0))?)
}

/// The insert statements of the partition the previous row went to: consecutive rows of one
/// batch almost always share a day, so a statement is looked up once per run of rows.
struct Current<'c> {
    key: (i64, Day),
    insert: CachedStatement<'c>,
    fts: Option<CachedStatement<'c>>,
}

/// The statements for a row of the partition `key`: `current`'s when the previous row went to
/// the same partition, else those of the insert and full-text SQL `sql` gives for the
/// partition's tables (which are created when this is their first row).
fn statements_for<'s, 'c>(
    current: &'s mut Option<Current<'c>>,
    key: (i64, Day),
    tx: &'c Transaction<'_>,
    caches: &mut Caches,
    sql: impl FnOnce(&PartitionNames) -> (String, Option<String>),
) -> Result<&'s mut Current<'c>, StoreError> {
    if current.as_ref().is_none_or(|c| c.key != key) {
        let (insert, fts) = sql(caches.partition(tx, key.0, key.1)?);
        *current = Some(Current {
            key,
            insert: tx.prepare_cached(&insert)?,
            fts: fts.map(|fts| tx.prepare_cached(&fts)).transpose()?,
        });
    }
    Ok(current.as_mut().expect("set above"))
}

fn write_jobs(
    conn: &mut Connection,
    jobs: &[WriteJob],
    caches: &mut Caches,
) -> Result<Vec<Vec<i64>>, StoreError> {
    // IMMEDIATE: the write lock is taken before the partitions are checked, so a partition
    // dropped by retention is either gone from the cache or still in the file; and a deferred
    // transaction that reads first would fail at once with SQLITE_BUSY when another connection
    // (the alert rules') committed in between, where the busy timeout cannot help.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    caches.load(&tx)?;
    if schema_version(&tx)? != caches.schema_version {
        caches.load_partitions(&tx)?;
    }
    let mut all_ids = Vec::with_capacity(jobs.len());
    {
        let mut mark_error = tx.prepare_cached(
            "INSERT INTO error_traces (tenant, trace_id, last_ns) VALUES (?1, ?2, ?3) \
             ON CONFLICT (tenant, trace_id) DO UPDATE SET last_ns = max(last_ns, excluded.last_ns)",
        )?;
        let mut logs: Option<Current<'_>> = None;
        let mut spans: Option<Current<'_>> = None;
        for job in jobs {
            let batch = &job.batch;
            let tenant = caches.tenant(&tx, &batch.tenant)?;
            let mut ids = Vec::with_capacity(batch.logs.len());
            for log in &batch.logs {
                let context = &log.context;
                caches.service(&tx, tenant, &log.service)?;
                let key = (tenant, Day::of_ns(log.timestamp_ns));
                let current = statements_for(&mut logs, key, &tx, caches, |names| {
                    let insert = format!(
                        "INSERT INTO \"{}\" (id, ts, level, service, message, trace_id, \
                         span_id, parent_span_id, user_id, request_id, source, host, \
                         environment, attributes) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                        names.logs
                    );
                    let fts = format!(
                        "INSERT INTO \"{}\" (rowid, message) VALUES (?1, ?2)",
                        names.fts
                    );
                    (insert, Some(fts))
                })?;
                let id = caches.next_log_id;
                caches.next_log_id += 1;
                current.insert.execute(params![
                    id,
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
                if let Some(fts) = current.fts.as_mut() {
                    fts.execute(params![id, log.message])?;
                }
                let names = &caches.partitions[&key];
                caches.bounds.add(&tx, key, names, id, log.timestamp_ns)?;
                if log.level.is_error()
                    && let Some(trace_id) = &context.trace_id
                {
                    mark_error.execute(params![tenant, trace_id, log.timestamp_ns])?;
                }
                ids.push(id);
            }
            for span in &batch.spans {
                caches.service(&tx, tenant, &span.service)?;
                let key = (tenant, Day::of_ns(span.start_ns));
                let current = statements_for(&mut spans, key, &tx, caches, |names| {
                    let insert = format!(
                        "INSERT OR REPLACE INTO \"{}\" (trace_id, span_id, parent_span_id, \
                         service, name, kind, start_ns, end_ns, status, status_message, \
                         attributes, links, events) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                        names.spans
                    );
                    (insert, None)
                })?;
                current.insert.execute(params![
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
                    span.attributes,
                    span.links,
                    span.events,
                ])?;
                if span.status == SpanStatus::Error {
                    mark_error.execute(params![tenant, span.trace_id, span.end_ns])?;
                }
            }
            all_ids.push(ids);
        }
        caches.bounds.finish(&tx)?;
        tx.prepare_cached("UPDATE layout SET value = ?1 WHERE key = 'next_log_id'")?
            .execute([caches.next_log_id])?;
    }
    tx.commit()?;
    caches.schema_version = schema_version(conn)?;
    Ok(all_ids)
}
