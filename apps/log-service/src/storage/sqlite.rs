//! Embedded SQLite backend: WAL journal, one writer thread doing group commits, a small pool of
//! read-only connections, FTS5 for free-text search.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params, params_from_iter};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};

use super::{StoreError, WriteJob, observe_commit, search_terms};
use crate::metrics::Metrics;
use crate::model::{
    Bucket, Interval, Level, LogFilter, LogView, SpanKind, SpanStatus, SpanView, Stats,
    StorageInfo, format_ts,
};

/// Tables and indexes. The trace and request indexes end with `ts` (and the implicit rowid) so a
/// lookup returns rows already in `ORDER BY ts, id` order: without that, the planner may walk
/// `logs_tenant_ts` in time order and filter, which is a scan of the whole tenant. Tenants and services are small lookup tables so that the big `logs` table
/// stores a tenant as an integer, and `/services` never scans it.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tenants (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS logs (
    id             INTEGER PRIMARY KEY,
    tenant         INTEGER NOT NULL,
    ts             INTEGER NOT NULL,
    level          INTEGER NOT NULL,
    service        TEXT NOT NULL,
    message        TEXT NOT NULL,
    trace_id       TEXT,
    span_id        TEXT,
    parent_span_id TEXT,
    user_id        TEXT,
    request_id     TEXT,
    source         TEXT,
    host           TEXT,
    environment    TEXT,
    attributes     TEXT
);
CREATE INDEX IF NOT EXISTS logs_tenant_ts ON logs (tenant, ts);
CREATE INDEX IF NOT EXISTS logs_tenant_trace_ts ON logs (tenant, trace_id, ts) WHERE trace_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS logs_tenant_request_ts ON logs (tenant, request_id, ts) WHERE request_id IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS logs_fts USING fts5 (
    message, content = '', contentless_delete = 1, detail = none
);
CREATE TABLE IF NOT EXISTS spans (
    tenant         INTEGER NOT NULL,
    trace_id       TEXT NOT NULL,
    span_id        TEXT NOT NULL,
    parent_span_id TEXT,
    service        TEXT NOT NULL,
    name           TEXT NOT NULL,
    kind           INTEGER NOT NULL,
    start_ns       INTEGER NOT NULL,
    end_ns         INTEGER NOT NULL,
    status         INTEGER NOT NULL,
    status_message TEXT,
    attributes     TEXT NOT NULL,
    links          TEXT NOT NULL,
    events         TEXT NOT NULL,
    PRIMARY KEY (tenant, trace_id, span_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS services (
    tenant  INTEGER NOT NULL,
    service TEXT NOT NULL,
    PRIMARY KEY (tenant, service)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS error_traces (
    tenant   INTEGER NOT NULL,
    trace_id TEXT NOT NULL,
    last_ns  INTEGER NOT NULL,
    PRIMARY KEY (tenant, trace_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS error_traces_recent ON error_traces (tenant, last_ns);
"#;

const LOG_COLUMNS: &str = "id, ts, level, service, message, trace_id, span_id, parent_span_id, \
     user_id, request_id, source, host, environment, attributes";

const SPAN_COLUMNS: &str = "trace_id, span_id, parent_span_id, service, name, kind, start_ns, \
     end_ns, status, status_message, attributes, links, events";

/// Most logs returned for one trace or request id.
const MAX_TRACE_ROWS: i64 = 50_000;

/// Opens the database, creates the schema, starts the writer thread.
pub(super) async fn open(
    path: &Path,
    rx: mpsc::UnboundedReceiver<WriteJob>,
    max_batch_rows: usize,
    metrics: Metrics,
    permits: Arc<Semaphore>,
    capacity: usize,
) -> Result<(SqliteReader, std::thread::JoinHandle<()>), StoreError> {
    let path = path.to_path_buf();
    let (writer, reader) = tokio::task::spawn_blocking(move || {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let writer = Connection::open(&path)?;
        writer.busy_timeout(std::time::Duration::from_secs(10))?;
        // WAL: readers never block the writer; synchronous=FULL: a commit is fsynced before the
        // caller hears "ok", and group commit shares that fsync between many requests.
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "FULL")?;
        writer.pragma_update(None, "cache_size", -65_536)?;
        writer.pragma_update(None, "temp_store", "MEMORY")?;
        // Checkpoint every ~32 MiB of WAL instead of 4 MiB: hot index pages are copied into the
        // database once per checkpoint, so fewer checkpoints mean less write amplification.
        writer.pragma_update(None, "wal_autocheckpoint", 8192)?;
        writer.pragma_update(None, "journal_size_limit", 67_108_864i64)?;
        writer.execute_batch(SCHEMA)?;
        let reader = SqliteReader {
            path: Arc::new(path),
            pool: Arc::new(Mutex::new(Vec::new())),
        };
        Ok::<_, StoreError>((writer, reader))
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))??;

    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || writer_loop(writer, rx, max_batch_rows, metrics, permits, capacity))?;
    Ok((reader, thread))
}

fn writer_loop(
    mut conn: Connection,
    mut rx: mpsc::UnboundedReceiver<WriteJob>,
    max_batch_rows: usize,
    metrics: Metrics,
    permits: Arc<Semaphore>,
    capacity: usize,
) {
    let mut caches = Caches::default();
    while let Some(first) = rx.blocking_recv() {
        let mut rows = first.batch.len();
        let mut jobs = vec![first];
        while rows < max_batch_rows {
            match rx.try_recv() {
                Ok(job) => {
                    rows += job.batch.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let result = write_jobs(&mut conn, &jobs, &mut caches);
        observe_commit(&metrics, started, rows, result.is_ok());
        match result {
            Ok(ids) => {
                for (job, ids) in jobs.into_iter().zip(ids) {
                    let _ = job.done.send(Ok(ids));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, rows, "group commit failed");
                // The rolled-back transaction may have added cache entries that are not stored.
                caches = Caches::default();
                let message = err.to_string();
                for job in jobs {
                    let _ = job.done.send(Err(StoreError::WriteFailed(message.clone())));
                }
            }
        }
        metrics
            .queued_rows
            .set((capacity - permits.available_permits()) as i64);
    }
    tracing::info!("log writer stopped");
}

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
    let tx = conn.transaction()?;
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
                caches.service(&tx, tenant, &log.service)?;
                insert_log.execute(params![
                    tenant,
                    log.timestamp_ns,
                    log.level as i64,
                    log.service,
                    log.message,
                    log.trace_id,
                    log.span_id,
                    log.parent_span_id,
                    log.user_id,
                    log.request_id,
                    log.source,
                    log.host,
                    log.environment,
                    log.metadata,
                ])?;
                let id = tx.last_insert_rowid();
                insert_fts.execute(params![id, log.message])?;
                if log.level.is_error()
                    && let Some(trace_id) = &log.trace_id
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

/// Read side: a pool of read-only connections used from blocking tasks.
#[derive(Clone)]
pub(super) struct SqliteReader {
    path: Arc<std::path::PathBuf>,
    pool: Arc<Mutex<Vec<Connection>>>,
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "cache_size", -32_768)?;
    conn.pragma_update(None, "mmap_size", 268_435_456i64)?;
    Ok(conn)
}

fn tenant_id(conn: &Connection, tenant: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id FROM tenants WHERE name = ?1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?)
}

fn parse_json(text: Option<String>, empty: Value) -> Value {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(empty)
}

fn log_from_row(row: &rusqlite::Row<'_>, tenant: &str) -> rusqlite::Result<LogView> {
    let ts: i64 = row.get(1)?;
    let attributes = parse_json(row.get(13)?, Value::Object(Default::default()));
    Ok(LogView {
        id: row.get(0)?,
        tenant_id: tenant.to_owned(),
        timestamp: format_ts(ts),
        timestamp_ns: ts,
        level: Level::from_i64(row.get(2)?),
        service_name: row.get(3)?,
        message: row.get(4)?,
        trace_id: row.get(5)?,
        span_id: row.get(6)?,
        parent_span_id: row.get(7)?,
        user_id: row.get(8)?,
        request_id: row.get(9)?,
        source: row.get(10)?,
        host: row.get(11)?,
        environment: row.get(12)?,
        metadata: attributes.clone(),
        attributes,
    })
}

fn span_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SpanView> {
    let start_ns: i64 = row.get(6)?;
    let end_ns: i64 = row.get(7)?;
    let status = SpanStatus::from_i64(row.get(8)?);
    let kind: i64 = row.get(5)?;
    Ok(SpanView {
        trace_id: row.get(0)?,
        span_id: row.get(1)?,
        parent_span_id: row.get(2)?,
        service: row.get(3)?,
        name: row.get(4)?,
        kind: SpanKind::from_otlp(kind as i32).as_str(),
        start_time: format_ts(start_ns),
        end_time: format_ts(end_ns),
        duration_ms: (end_ns.saturating_sub(start_ns)).max(0) as f64 / 1e6,
        status: status.as_str(),
        status_message: row.get(9)?,
        attributes: parse_json(row.get(10)?, Value::Object(Default::default())),
        links: parse_json(row.get(11)?, Value::Array(vec![])),
        events: parse_json(row.get(12)?, Value::Array(vec![])),
        start_ns,
        end_ns,
        status_code: status,
    })
}

/// WHERE clause for a filter: `tenant = ?1` always comes first.
fn where_clause(tenant: i64, filter: &LogFilter) -> (String, Vec<SqlValue>) {
    let mut sql = String::from("tenant = ?1");
    let mut params = vec![SqlValue::Integer(tenant)];
    let mut push = |sql: &mut String, clause: &str, value: SqlValue| {
        params.push(value);
        sql.push_str(&clause.replace('?', &format!("?{}", params.len())));
    };
    let text = |s: &String| SqlValue::Text(s.clone());
    if let Some(v) = &filter.service {
        push(&mut sql, " AND service = ?", text(v));
    }
    if let Some(v) = filter.level {
        push(&mut sql, " AND level = ?", SqlValue::Integer(v as i64));
    }
    if let Some(v) = filter.min_level {
        push(&mut sql, " AND level >= ?", SqlValue::Integer(v as i64));
    }
    if let Some(v) = filter.start_ns {
        push(&mut sql, " AND ts >= ?", SqlValue::Integer(v));
    }
    if let Some(v) = filter.end_ns {
        push(&mut sql, " AND ts <= ?", SqlValue::Integer(v));
    }
    if let Some(v) = &filter.trace_id {
        push(&mut sql, " AND trace_id = ?", text(v));
    }
    if let Some(v) = &filter.request_id {
        push(&mut sql, " AND request_id = ?", text(v));
    }
    if let Some(v) = &filter.user_id {
        push(&mut sql, " AND user_id = ?", text(v));
    }
    if let Some(v) = &filter.environment {
        push(&mut sql, " AND environment = ?", text(v));
    }
    if let Some(v) = &filter.search {
        let terms = search_terms(v);
        let expr = terms
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(" AND ");
        if expr.is_empty() {
            sql.push_str(" AND 0");
        } else {
            push(
                &mut sql,
                " AND id IN (SELECT rowid FROM logs_fts WHERE logs_fts MATCH ?)",
                SqlValue::Text(expr),
            );
        }
    }
    (sql, params)
}

impl SqliteReader {
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = pool.lock().map(|mut p| p.pop()).unwrap_or(None);
            let conn = match pooled {
                Some(conn) => conn,
                None => open_reader(&path)?,
            };
            let result = f(&conn);
            if let Ok(mut p) = pool.lock()
                && p.len() < 8
            {
                p.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` with the tenant's numeric id; an unknown tenant has no data, so `empty` is returned.
    async fn with_tenant<T, F>(&self, tenant: &str, empty: T, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, i64) -> Result<T, StoreError> + Send + 'static,
    {
        let tenant = tenant.to_owned();
        self.read(move |conn| match tenant_id(conn, &tenant)? {
            Some(id) => f(conn, id),
            None => Ok(empty),
        })
        .await
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .await
            .map(|_| ())
    }

    pub(super) async fn query_logs(
        &self,
        tenant: &str,
        filter: &LogFilter,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<LogView>, i64), StoreError> {
        let filter = filter.clone();
        let name = tenant.to_owned();
        self.with_tenant(tenant, (vec![], 0), move |conn, tid| {
            let (where_sql, params) = where_clause(tid, &filter);
            let sql = format!(
                "SELECT {LOG_COLUMNS} FROM logs WHERE {where_sql} \
                 ORDER BY ts DESC, id DESC LIMIT {limit} OFFSET {offset}"
            );
            let logs = conn
                .prepare_cached(&sql)?
                .query_map(params_from_iter(params.iter()), |r| log_from_row(r, &name))?
                .collect::<Result<Vec<_>, _>>()?;
            let total: i64 = conn
                .prepare_cached(&format!("SELECT COUNT(*) FROM logs WHERE {where_sql}"))?
                .query_row(params_from_iter(params.iter()), |r| r.get(0))?;
            Ok((logs, total))
        })
        .await
    }

    pub(super) async fn get_log(
        &self,
        tenant: &str,
        id: i64,
    ) -> Result<Option<LogView>, StoreError> {
        let name = tenant.to_owned();
        self.with_tenant(tenant, None, move |conn, tid| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {LOG_COLUMNS} FROM logs WHERE id = ?1 AND tenant = ?2"
                ))?
                .query_row(params![id, tid], |r| log_from_row(r, &name))
                .optional()?)
        })
        .await
    }

    async fn logs_where(
        &self,
        tenant: &str,
        column: &'static str,
        value: &str,
    ) -> Result<Vec<LogView>, StoreError> {
        let name = tenant.to_owned();
        let value = value.to_owned();
        self.with_tenant(tenant, vec![], move |conn, tid| {
            let sql = format!(
                "SELECT {LOG_COLUMNS} FROM logs WHERE tenant = ?1 AND {column} = ?2 \
                 ORDER BY ts, id LIMIT {MAX_TRACE_ROWS}"
            );
            Ok(conn
                .prepare_cached(&sql)?
                .query_map(params![tid, value], |r| log_from_row(r, &name))?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub(super) async fn logs_by_trace(
        &self,
        tenant: &str,
        trace_id: &str,
    ) -> Result<Vec<LogView>, StoreError> {
        self.logs_where(tenant, "trace_id", trace_id).await
    }

    pub(super) async fn logs_by_request(
        &self,
        tenant: &str,
        request_id: &str,
    ) -> Result<Vec<LogView>, StoreError> {
        self.logs_where(tenant, "request_id", request_id).await
    }

    pub(super) async fn spans_by_trace(
        &self,
        tenant: &str,
        trace_id: &str,
    ) -> Result<Vec<SpanView>, StoreError> {
        let trace_id = trace_id.to_owned();
        self.with_tenant(tenant, vec![], move |conn, tid| {
            let sql = format!(
                "SELECT {SPAN_COLUMNS} FROM spans WHERE tenant = ?1 AND trace_id = ?2 \
                 ORDER BY start_ns, span_id"
            );
            Ok(conn
                .prepare_cached(&sql)?
                .query_map(params![tid, trace_id], span_from_row)?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub(super) async fn services(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        self.with_tenant(tenant, vec![], |conn, tid| {
            Ok(conn
                .prepare_cached("SELECT service FROM services WHERE tenant = ?1 ORDER BY service")?
                .query_map([tid], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?)
        })
        .await
    }

    pub(super) async fn stats(
        &self,
        tenant: &str,
        start_ns: Option<i64>,
        end_ns: Option<i64>,
    ) -> Result<Stats, StoreError> {
        self.with_tenant(tenant, Stats::default(), move |conn, tid| {
            let filter = LogFilter {
                start_ns,
                end_ns,
                ..Default::default()
            };
            let (where_sql, params) = where_clause(tid, &filter);
            let mut stats = Stats::default();
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT level, COUNT(*) FROM logs WHERE {where_sql} GROUP BY level"
            ))?;
            let mut rows = stmt.query(params_from_iter(params.iter()))?;
            while let Some(row) = rows.next()? {
                let level = Level::from_i64(row.get(0)?);
                let count: i64 = row.get(1)?;
                stats.total += count;
                if level.is_error() {
                    stats.error_count += count;
                }
                stats.by_level.insert(level.as_str().into(), count.into());
            }
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT service, COUNT(*) FROM logs WHERE {where_sql} GROUP BY service"
            ))?;
            let mut rows = stmt.query(params_from_iter(params.iter()))?;
            while let Some(row) = rows.next()? {
                let service: String = row.get(0)?;
                let count: i64 = row.get(1)?;
                stats.by_service.insert(service, count.into());
            }
            let (first, last): (Option<i64>, Option<i64>) = conn
                .prepare_cached(&format!(
                    "SELECT MIN(ts), MAX(ts) FROM logs WHERE {where_sql}"
                ))?
                .query_row(params_from_iter(params.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            stats.first_timestamp = first.map(format_ts);
            stats.last_timestamp = last.map(format_ts);
            stats.trace_count_with_errors = conn
                .prepare_cached("SELECT COUNT(*) FROM error_traces WHERE tenant = ?1")?
                .query_row([tid], |r| r.get(0))?;
            Ok(stats)
        })
        .await
    }

    pub(super) async fn aggregate(
        &self,
        tenant: &str,
        filter: &LogFilter,
        interval: Interval,
    ) -> Result<Vec<Bucket>, StoreError> {
        let filter = filter.clone();
        self.with_tenant(tenant, vec![], move |conn, tid| {
            let (where_sql, params) = where_clause(tid, &filter);
            let width = interval.nanos();
            let sql = format!(
                "SELECT (ts / {width}) * {width} AS bucket, level, COUNT(*) FROM logs \
                 WHERE {where_sql} GROUP BY bucket, level ORDER BY bucket"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter(params.iter()))?;
            let mut buckets: Vec<(i64, Bucket)> = Vec::new();
            while let Some(row) = rows.next()? {
                let start: i64 = row.get(0)?;
                let level = Level::from_i64(row.get(1)?);
                let count: i64 = row.get(2)?;
                if buckets.last().is_none_or(|(s, _)| *s != start) {
                    buckets.push((
                        start,
                        Bucket {
                            bucket: format_ts(start),
                            total: 0,
                            counts: Default::default(),
                        },
                    ));
                }
                if let Some((_, bucket)) = buckets.last_mut() {
                    bucket.total += count;
                    bucket.counts.insert(level.as_str().into(), count.into());
                }
            }
            Ok(buckets.into_iter().map(|(_, b)| b).collect())
        })
        .await
    }

    pub(super) async fn storage(&self, tenant: &str) -> Result<StorageInfo, StoreError> {
        let empty = StorageInfo {
            backend: "sqlite",
            log_count: 0,
            span_count: 0,
            estimated_bytes: 0,
        };
        self.with_tenant(tenant, empty, |conn, tid| {
            let logs: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM logs WHERE tenant = ?1")?
                .query_row([tid], |r| r.get(0))?;
            let spans: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM spans WHERE tenant = ?1")?
                .query_row([tid], |r| r.get(0))?;
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            // Rowids only grow, so MAX(id) counts every log ever written without a full scan.
            let all_logs: i64 =
                conn.query_row("SELECT COALESCE(MAX(id), 0) FROM logs", [], |r| r.get(0))?;
            let all_spans: i64 = conn.query_row("SELECT COUNT(*) FROM spans", [], |r| r.get(0))?;
            let all_rows = (all_logs + all_spans).max(1);
            let share = (logs + spans) as f64 / all_rows as f64;
            Ok(StorageInfo {
                backend: "sqlite",
                log_count: logs,
                span_count: spans,
                estimated_bytes: ((pages * page_size) as f64 * share.min(1.0)) as i64,
            })
        })
        .await
    }

    pub(super) async fn error_traces(
        &self,
        tenant: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.with_tenant(tenant, vec![], move |conn, tid| {
            Ok(conn
                .prepare_cached(
                    "SELECT trace_id FROM error_traces WHERE tenant = ?1 \
                     ORDER BY last_ns DESC, trace_id LIMIT ?2 OFFSET ?3",
                )?
                .query_map(params![tid, limit, offset], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?)
        })
        .await
    }
}
