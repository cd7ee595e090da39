//! PostgreSQL backend with the minisource REST API's `log_entries` table (tenant, service_name, level, message,
//! timestamp, trace_id, span_id, user_id, request_id, metadata JSONB, source, host, environment),
//! plus `log_spans`, `log_services` and `log_error_traces` for traces and DAGs.
//!
//! One writer task owns a connection and inserts a whole group commit with one `UNNEST` statement per
//! table; readers share a second connection (tokio-postgres pipelines concurrent queries).
//! PostgreSQL keeps microseconds, so timestamps are stored at that precision.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row};

use super::{StoreError, WriteJob, observe_commit, search_terms};
use crate::metrics::Metrics;
use crate::model::{
    Bucket, Interval, Level, LogFilter, LogView, SpanKind, SpanStatus, SpanView, Stats,
    StorageInfo, format_ts,
};

const SCHEMA: &str = r#"
CREATE SEQUENCE IF NOT EXISTS log_entries_id_seq;
CREATE TABLE IF NOT EXISTS log_entries (
    id             BIGINT PRIMARY KEY DEFAULT nextval('log_entries_id_seq'),
    tenant_id      TEXT NOT NULL,
    service_name   VARCHAR(255) NOT NULL,
    level          VARCHAR(10) NOT NULL,
    message        TEXT NOT NULL,
    timestamp      TIMESTAMPTZ NOT NULL,
    trace_id       VARCHAR(128),
    span_id        VARCHAR(128),
    parent_span_id VARCHAR(128),
    user_id        VARCHAR(256),
    request_id     VARCHAR(256),
    metadata       JSONB,
    source         VARCHAR(256),
    host           VARCHAR(256),
    environment    VARCHAR(256),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_log_entries_tenant_timestamp ON log_entries (tenant_id, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_log_entries_trace ON log_entries (tenant_id, trace_id, timestamp) WHERE trace_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_log_entries_request ON log_entries (tenant_id, request_id, timestamp) WHERE request_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_log_entries_search ON log_entries USING GIN (to_tsvector('simple', message));
CREATE TABLE IF NOT EXISTS log_spans (
    tenant_id      TEXT NOT NULL,
    trace_id       VARCHAR(128) NOT NULL,
    span_id        VARCHAR(128) NOT NULL,
    parent_span_id VARCHAR(128),
    service_name   VARCHAR(255) NOT NULL,
    name           TEXT NOT NULL,
    kind           SMALLINT NOT NULL,
    start_us       BIGINT NOT NULL,
    end_us         BIGINT NOT NULL,
    status         SMALLINT NOT NULL,
    status_message TEXT,
    attributes     JSONB NOT NULL,
    links          JSONB NOT NULL,
    events         JSONB NOT NULL,
    PRIMARY KEY (tenant_id, trace_id, span_id)
);
CREATE TABLE IF NOT EXISTS log_services (
    tenant_id    TEXT NOT NULL,
    service_name VARCHAR(255) NOT NULL,
    PRIMARY KEY (tenant_id, service_name)
);
CREATE TABLE IF NOT EXISTS log_error_traces (
    tenant_id TEXT NOT NULL,
    trace_id  VARCHAR(128) NOT NULL,
    last_us   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, trace_id)
);
CREATE INDEX IF NOT EXISTS idx_log_error_traces_recent ON log_error_traces (tenant_id, last_us DESC);
"#;

const LOG_COLUMNS: &str = "id, tenant_id, (EXTRACT(EPOCH FROM timestamp) * 1000000)::int8, level, \
     service_name, message, trace_id, span_id, parent_span_id, user_id, request_id, source, host, \
     environment, metadata";

const SPAN_COLUMNS: &str = "trace_id, span_id, parent_span_id, service_name, name, kind, start_us, \
     end_us, status, status_message, attributes, links, events";

const MAX_TRACE_ROWS: i64 = 50_000;

async fn connect(url: &str) -> Result<Client, StoreError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::warn!(error = %err, "postgres connection closed");
        }
    });
    Ok(client)
}

/// Connects, creates the schema, starts the writer task.
pub(super) async fn open(
    url: &str,
    rx: mpsc::UnboundedReceiver<WriteJob>,
    max_batch_rows: usize,
    metrics: Metrics,
    permits: Arc<Semaphore>,
    capacity: usize,
) -> Result<(PgStore, tokio::task::JoinHandle<()>), StoreError> {
    let writer = connect(url).await?;
    writer.batch_execute(SCHEMA).await?;
    let reader = connect(url).await?;
    let task = tokio::spawn(writer_loop(
        url.to_owned(),
        writer,
        rx,
        max_batch_rows,
        metrics,
        permits,
        capacity,
    ));
    Ok((
        PgStore {
            client: Arc::new(reader),
        },
        task,
    ))
}

async fn writer_loop(
    url: String,
    mut client: Client,
    mut rx: mpsc::UnboundedReceiver<WriteJob>,
    max_batch_rows: usize,
    metrics: Metrics,
    permits: Arc<Semaphore>,
    capacity: usize,
) {
    while let Some(first) = rx.recv().await {
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
        if client.is_closed() {
            match connect(&url).await {
                Ok(new) => client = new,
                Err(err) => tracing::error!(error = %err, "postgres reconnect failed"),
            }
        }
        let started = Instant::now();
        let result = write_jobs(&mut client, &jobs).await;
        observe_commit(&metrics, started, rows, result.is_ok());
        match result {
            Ok(ids) => {
                for (job, ids) in jobs.into_iter().zip(ids) {
                    let _ = job.done.send(Ok(ids));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, rows, "group commit failed");
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
}

/// Column arrays of one `UNNEST` insert into `log_spans`.
#[derive(Default)]
struct SpanColumns {
    tenant: Vec<String>,
    trace: Vec<String>,
    span: Vec<String>,
    parent: Vec<Option<String>>,
    service: Vec<String>,
    name: Vec<String>,
    kind: Vec<i16>,
    start: Vec<i64>,
    end: Vec<i64>,
    status: Vec<i16>,
    status_message: Vec<Option<String>>,
    attributes: Vec<String>,
    links: Vec<String>,
    events: Vec<String>,
}

fn micros(ns: i64) -> i64 {
    ns.div_euclid(1000)
}

async fn write_jobs(client: &mut Client, jobs: &[WriteJob]) -> Result<Vec<Vec<i64>>, StoreError> {
    let log_count: i64 = jobs.iter().map(|j| j.batch.logs.len() as i64).sum();
    let tx = client.transaction().await?;
    let ids: Vec<i64> = if log_count > 0 {
        tx.query(
            "SELECT nextval('log_entries_id_seq') FROM generate_series(1, $1::int8)",
            &[&log_count],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect()
    } else {
        Vec::new()
    };

    let mut tenant = Vec::new();
    let mut ts = Vec::new();
    let mut level = Vec::new();
    let mut service = Vec::new();
    let mut message = Vec::new();
    let mut trace_id = Vec::new();
    let mut span_id = Vec::new();
    let mut parent = Vec::new();
    let mut user_id = Vec::new();
    let mut request_id = Vec::new();
    let mut source = Vec::new();
    let mut host = Vec::new();
    let mut environment = Vec::new();
    let mut metadata = Vec::new();
    let mut services: HashMap<(String, String), ()> = HashMap::new();
    let mut errors: HashMap<(String, String), i64> = HashMap::new();
    let mut per_job = Vec::with_capacity(jobs.len());
    let mut next = 0usize;
    for job in jobs {
        let b = &job.batch;
        per_job.push(ids[next..next + b.logs.len()].to_vec());
        next += b.logs.len();
        for log in &b.logs {
            tenant.push(b.tenant.clone());
            ts.push(micros(log.timestamp_ns));
            level.push(log.level.as_str().to_owned());
            service.push(log.service.clone());
            message.push(log.message.clone());
            trace_id.push(log.trace_id.clone());
            span_id.push(log.span_id.clone());
            parent.push(log.parent_span_id.clone());
            user_id.push(log.user_id.clone());
            request_id.push(log.request_id.clone());
            source.push(log.source.clone());
            host.push(log.host.clone());
            environment.push(log.environment.clone());
            metadata.push(log.metadata.clone());
            services.insert((b.tenant.clone(), log.service.clone()), ());
            if log.level.is_error()
                && let Some(t) = &log.trace_id
            {
                let slot = errors
                    .entry((b.tenant.clone(), t.clone()))
                    .or_insert(i64::MIN);
                *slot = (*slot).max(micros(log.timestamp_ns));
            }
        }
    }
    if log_count > 0 {
        tx.execute(
            "INSERT INTO log_entries (id, tenant_id, timestamp, level, service_name, message, \
             trace_id, span_id, parent_span_id, user_id, request_id, source, host, environment, metadata) \
             SELECT id, tenant, 'epoch'::timestamptz + ts * interval '1 microsecond', level, service, \
             message, trace_id, span_id, parent, user_id, request_id, source, host, env, meta::jsonb \
             FROM unnest($1::int8[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], \
             $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], \
             $14::text[], $15::text[]) AS t(id, tenant, ts, level, service, message, trace_id, \
             span_id, parent, user_id, request_id, source, host, env, meta)",
            &[
                &ids,
                &tenant,
                &ts,
                &level,
                &service,
                &message,
                &trace_id,
                &span_id,
                &parent,
                &user_id,
                &request_id,
                &source,
                &host,
                &environment,
                &metadata,
            ],
        )
        .await?;
    }

    // Spans: deduplicated on (tenant, trace, span) so a re-sent export replaces, never duplicates.
    let mut spans: HashMap<(String, String, String), &crate::model::NewSpan> = HashMap::new();
    for job in jobs {
        for span in &job.batch.spans {
            services.insert((job.batch.tenant.clone(), span.service.clone()), ());
            if span.status == SpanStatus::Error {
                let slot = errors
                    .entry((job.batch.tenant.clone(), span.trace_id.clone()))
                    .or_insert(i64::MIN);
                *slot = (*slot).max(micros(span.end_ns));
            }
            spans.insert(
                (
                    job.batch.tenant.clone(),
                    span.trace_id.clone(),
                    span.span_id.clone(),
                ),
                span,
            );
        }
    }
    if !spans.is_empty() {
        let mut cols = SpanColumns::default();
        for ((tenant, _, _), s) in &spans {
            cols.tenant.push(tenant.clone());
            cols.trace.push(s.trace_id.clone());
            cols.span.push(s.span_id.clone());
            cols.parent.push(s.parent_span_id.clone());
            cols.service.push(s.service.clone());
            cols.name.push(s.name.clone());
            cols.kind.push(s.kind as i16);
            cols.start.push(micros(s.start_ns));
            cols.end.push(micros(s.end_ns));
            cols.status.push(s.status as i16);
            cols.status_message.push(s.status_message.clone());
            cols.attributes.push(s.attributes.to_string());
            cols.links.push(s.links.to_string());
            cols.events.push(s.events.to_string());
        }
        tx.execute(
            "INSERT INTO log_spans (tenant_id, trace_id, span_id, parent_span_id, service_name, name, \
             kind, start_us, end_us, status, status_message, attributes, links, events) \
             SELECT t, tr, sp, pa, se, na, ki, st, en, stt, sm, at::jsonb, li::jsonb, ev::jsonb \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
             $7::int2[], $8::int8[], $9::int8[], $10::int2[], $11::text[], $12::text[], $13::text[], \
             $14::text[]) AS u(t, tr, sp, pa, se, na, ki, st, en, stt, sm, at, li, ev) \
             ON CONFLICT (tenant_id, trace_id, span_id) DO UPDATE SET parent_span_id = excluded.parent_span_id, \
             service_name = excluded.service_name, name = excluded.name, kind = excluded.kind, \
             start_us = excluded.start_us, end_us = excluded.end_us, status = excluded.status, \
             status_message = excluded.status_message, attributes = excluded.attributes, \
             links = excluded.links, events = excluded.events",
            &[
                &cols.tenant, &cols.trace, &cols.span, &cols.parent, &cols.service, &cols.name, &cols.kind, &cols.start, &cols.end,
                &cols.status, &cols.status_message, &cols.attributes, &cols.links, &cols.events,
            ],
        )
        .await?;
    }
    if !services.is_empty() {
        let (t, s): (Vec<String>, Vec<String>) = services.into_keys().unzip();
        tx.execute(
            "INSERT INTO log_services (tenant_id, service_name) SELECT * FROM unnest($1::text[], $2::text[]) \
             ON CONFLICT DO NOTHING",
            &[&t, &s],
        )
        .await?;
    }
    if !errors.is_empty() {
        let mut t = Vec::new();
        let mut tr = Vec::new();
        let mut last = Vec::new();
        for ((tenant, trace), us) in errors {
            t.push(tenant);
            tr.push(trace);
            last.push(us);
        }
        tx.execute(
            "INSERT INTO log_error_traces (tenant_id, trace_id, last_us) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) \
             ON CONFLICT (tenant_id, trace_id) DO UPDATE \
             SET last_us = GREATEST(log_error_traces.last_us, excluded.last_us)",
            &[&t, &tr, &last],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(per_job)
}

/// Read side of the PostgreSQL backend.
pub(super) struct PgStore {
    client: Arc<Client>,
}

fn log_from_row(row: &Row) -> LogView {
    let us: i64 = row.get(2);
    let ts = us.saturating_mul(1000);
    let attributes: Option<Value> = row.get(14);
    let attributes = attributes.unwrap_or_else(|| Value::Object(Default::default()));
    let level: String = row.get(3);
    LogView {
        id: row.get(0),
        tenant_id: row.get(1),
        timestamp: format_ts(ts),
        timestamp_ns: ts,
        level: Level::parse(&level).unwrap_or(Level::Info),
        service_name: row.get(4),
        message: row.get(5),
        trace_id: row.get(6),
        span_id: row.get(7),
        parent_span_id: row.get(8),
        user_id: row.get(9),
        request_id: row.get(10),
        source: row.get(11),
        host: row.get(12),
        environment: row.get(13),
        metadata: attributes.clone(),
        attributes,
    }
}

fn span_from_row(row: &Row) -> SpanView {
    let start_ns = row.get::<_, i64>(6).saturating_mul(1000);
    let end_ns = row.get::<_, i64>(7).saturating_mul(1000);
    let status = SpanStatus::from_i64(row.get::<_, i16>(8) as i64);
    SpanView {
        trace_id: row.get(0),
        span_id: row.get(1),
        parent_span_id: row.get(2),
        service: row.get(3),
        name: row.get(4),
        kind: SpanKind::from_otlp(row.get::<_, i16>(5) as i32).as_str(),
        start_time: format_ts(start_ns),
        end_time: format_ts(end_ns),
        duration_ms: (end_ns.saturating_sub(start_ns)).max(0) as f64 / 1e6,
        status: status.as_str(),
        status_message: row.get(9),
        attributes: row.get(10),
        links: row.get(11),
        events: row.get(12),
        start_ns,
        end_ns,
        status_code: status,
    }
}

/// Owned query parameters, so that a WHERE clause can be built up before it is borrowed for a call.
type Params = Vec<Box<dyn ToSql + Sync + Send>>;

fn where_clause(tenant: &str, filter: &LogFilter) -> (String, Params) {
    let mut sql = String::from("tenant_id = $1");
    let mut params: Params = vec![Box::new(tenant.to_owned())];
    let mut push = |sql: &mut String, clause: &str, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        sql.push_str(&clause.replace('?', &format!("${}", params.len())));
    };
    if let Some(v) = &filter.service {
        push(&mut sql, " AND service_name = ?", Box::new(v.clone()));
    }
    if let Some(v) = filter.level {
        push(&mut sql, " AND level = ?", Box::new(v.as_str().to_owned()));
    }
    if let Some(v) = filter.min_level {
        let names: Vec<String> = Level::ALL
            .iter()
            .filter(|l| **l >= v)
            .map(|l| l.as_str().to_owned())
            .collect();
        push(&mut sql, " AND level = ANY(?)", Box::new(names));
    }
    let ts = "'epoch'::timestamptz + ?::int8 * interval '1 microsecond'";
    if let Some(v) = filter.start_ns {
        push(
            &mut sql,
            &format!(" AND timestamp >= {ts}"),
            Box::new(micros(v)),
        );
    }
    if let Some(v) = filter.end_ns {
        push(
            &mut sql,
            &format!(" AND timestamp <= {ts}"),
            Box::new(micros(v)),
        );
    }
    if let Some(v) = &filter.trace_id {
        push(&mut sql, " AND trace_id = ?", Box::new(v.clone()));
    }
    if let Some(v) = &filter.request_id {
        push(&mut sql, " AND request_id = ?", Box::new(v.clone()));
    }
    if let Some(v) = &filter.user_id {
        push(&mut sql, " AND user_id = ?", Box::new(v.clone()));
    }
    if let Some(v) = &filter.environment {
        push(&mut sql, " AND environment = ?", Box::new(v.clone()));
    }
    if let Some(v) = &filter.search {
        let terms = search_terms(v);
        if terms.is_empty() {
            sql.push_str(" AND false");
        } else {
            push(
                &mut sql,
                " AND to_tsvector('simple', message) @@ plainto_tsquery('simple', ?)",
                Box::new(terms.join(" ")),
            );
        }
    }
    (sql, params)
}

fn refs(params: &Params) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

impl PgStore {
    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        self.client.query_one("SELECT 1", &[]).await?;
        Ok(())
    }

    pub(super) async fn query_logs(
        &self,
        tenant: &str,
        filter: &LogFilter,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<LogView>, i64), StoreError> {
        let (where_sql, params) = where_clause(tenant, filter);
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT {LOG_COLUMNS} FROM log_entries WHERE {where_sql} \
                     ORDER BY timestamp DESC, id DESC LIMIT {limit} OFFSET {offset}"
                ),
                &refs(&params),
            )
            .await?;
        let total: i64 = self
            .client
            .query_one(
                &format!("SELECT COUNT(*) FROM log_entries WHERE {where_sql}"),
                &refs(&params),
            )
            .await?
            .get(0);
        Ok((rows.iter().map(log_from_row).collect(), total))
    }

    pub(super) async fn get_log(
        &self,
        tenant: &str,
        id: i64,
    ) -> Result<Option<LogView>, StoreError> {
        let row = self
            .client
            .query_opt(
                &format!("SELECT {LOG_COLUMNS} FROM log_entries WHERE id = $1 AND tenant_id = $2"),
                &[&id, &tenant],
            )
            .await?;
        Ok(row.as_ref().map(log_from_row))
    }

    async fn logs_where(
        &self,
        tenant: &str,
        column: &str,
        value: &str,
    ) -> Result<Vec<LogView>, StoreError> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT {LOG_COLUMNS} FROM log_entries WHERE tenant_id = $1 AND {column} = $2 \
                     ORDER BY timestamp, id LIMIT {MAX_TRACE_ROWS}"
                ),
                &[&tenant, &value],
            )
            .await?;
        Ok(rows.iter().map(log_from_row).collect())
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
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT {SPAN_COLUMNS} FROM log_spans WHERE tenant_id = $1 AND trace_id = $2 \
                     ORDER BY start_us, span_id"
                ),
                &[&tenant, &trace_id],
            )
            .await?;
        Ok(rows.iter().map(span_from_row).collect())
    }

    pub(super) async fn services(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT service_name FROM log_services WHERE tenant_id = $1 ORDER BY service_name",
                &[&tenant],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub(super) async fn stats(
        &self,
        tenant: &str,
        start_ns: Option<i64>,
        end_ns: Option<i64>,
    ) -> Result<Stats, StoreError> {
        let filter = LogFilter {
            start_ns,
            end_ns,
            ..Default::default()
        };
        let (where_sql, params) = where_clause(tenant, &filter);
        let mut stats = Stats::default();
        for row in self
            .client
            .query(
                &format!(
                    "SELECT level, COUNT(*) FROM log_entries WHERE {where_sql} GROUP BY level"
                ),
                &refs(&params),
            )
            .await?
        {
            let level = Level::parse(row.get(0)).unwrap_or(Level::Info);
            let count: i64 = row.get(1);
            stats.total += count;
            if level.is_error() {
                stats.error_count += count;
            }
            let slot = stats
                .by_level
                .entry(level.as_str().to_owned())
                .or_insert(0.into());
            *slot = (slot.as_i64().unwrap_or(0) + count).into();
        }
        for row in self
            .client
            .query(
                &format!(
                    "SELECT service_name, COUNT(*) FROM log_entries WHERE {where_sql} GROUP BY service_name"
                ),
                &refs(&params),
            )
            .await?
        {
            let count: i64 = row.get(1);
            stats.by_service.insert(row.get(0), count.into());
        }
        let row = self
            .client
            .query_one(
                &format!(
                    "SELECT (EXTRACT(EPOCH FROM MIN(timestamp)) * 1000000)::int8, \
                     (EXTRACT(EPOCH FROM MAX(timestamp)) * 1000000)::int8 FROM log_entries WHERE {where_sql}"
                ),
                &refs(&params),
            )
            .await?;
        let first: Option<i64> = row.get(0);
        let last: Option<i64> = row.get(1);
        stats.first_timestamp = first.map(|us| format_ts(us * 1000));
        stats.last_timestamp = last.map(|us| format_ts(us * 1000));
        stats.trace_count_with_errors = self
            .client
            .query_one(
                "SELECT COUNT(*) FROM log_error_traces WHERE tenant_id = $1",
                &[&tenant],
            )
            .await?
            .get(0);
        Ok(stats)
    }

    pub(super) async fn aggregate(
        &self,
        tenant: &str,
        filter: &LogFilter,
        interval: Interval,
    ) -> Result<Vec<Bucket>, StoreError> {
        let (where_sql, params) = where_clause(tenant, filter);
        let unit = interval.as_str();
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT (EXTRACT(EPOCH FROM date_trunc('{unit}', timestamp AT TIME ZONE 'UTC')) * 1000000)::int8 AS b, \
                     level, COUNT(*) FROM log_entries WHERE {where_sql} GROUP BY b, level ORDER BY b"
                ),
                &refs(&params),
            )
            .await?;
        let mut buckets: Vec<(i64, Bucket)> = Vec::new();
        for row in rows {
            let start: i64 = row.get(0);
            let level = Level::parse(row.get(1)).unwrap_or(Level::Info);
            let count: i64 = row.get(2);
            if buckets.last().is_none_or(|(s, _)| *s != start) {
                buckets.push((
                    start,
                    Bucket {
                        bucket: format_ts(start * 1000),
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
    }

    pub(super) async fn storage(&self, tenant: &str) -> Result<StorageInfo, StoreError> {
        let logs: i64 = self
            .client
            .query_one(
                "SELECT COUNT(*) FROM log_entries WHERE tenant_id = $1",
                &[&tenant],
            )
            .await?
            .get(0);
        let spans: i64 = self
            .client
            .query_one(
                "SELECT COUNT(*) FROM log_spans WHERE tenant_id = $1",
                &[&tenant],
            )
            .await?
            .get(0);
        let row = self
            .client
            .query_one(
                "SELECT pg_total_relation_size('log_entries') + pg_total_relation_size('log_spans'), \
                 GREATEST(COALESCE((SELECT last_value FROM log_entries_id_seq), 0), 0) \
                 + (SELECT COUNT(*) FROM log_spans)",
                &[],
            )
            .await?;
        let bytes: i64 = row.get(0);
        let all_rows: i64 = row.get(1);
        let share = (logs + spans) as f64 / all_rows.max(1) as f64;
        Ok(StorageInfo {
            backend: "postgres",
            log_count: logs,
            span_count: spans,
            estimated_bytes: (bytes as f64 * share.min(1.0)) as i64,
        })
    }

    pub(super) async fn error_traces(
        &self,
        tenant: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<String>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT trace_id FROM log_error_traces WHERE tenant_id = $1 \
                 ORDER BY last_us DESC, trace_id LIMIT $2 OFFSET $3",
                &[&tenant, &(limit as i64), &(offset as i64)],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
