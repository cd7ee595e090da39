//! The PostgreSQL reader: every read on one shared connection, scoped by `tenant_id`.

use std::sync::Arc;

use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use super::page::{self, TenantTables};
use super::partitions::{day_names, day_usage};
use super::{Params, micros, param, refs};
use crate::model::{
    Bucket, Interval, Level, LogContext, LogFilter, LogView, NewSpan, SpanKind, SpanStatus,
    SpanView, Stats, StorageInfo, format_ts,
};
use crate::storage::day::Day;
use crate::storage::sql::{Conditions, Placeholders};
use crate::storage::{
    Backend, LogKey, MAX_TRACE_ROWS, Read, StoreError, add_bucket_row, add_level_count,
    search_terms,
};

/// The columns `log_from_row` reads, in its order.
pub(super) const LOG_COLUMNS: &str = "id, tenant_id, (EXTRACT(EPOCH FROM timestamp) * 1000000)::int8, level, \
     service_name, message, trace_id, span_id, parent_span_id, user_id, request_id, source, host, \
     environment, metadata";

const SPAN_COLUMNS: &str = "trace_id, span_id, parent_span_id, service_name, name, kind, start_us, \
     end_us, status, status_message, attributes::text, links::text, events::text";

/// Read side of the PostgreSQL backend: one connection shared by every read, which
/// tokio-postgres pipelines.
pub(super) struct PgReader {
    pub(super) client: Arc<Client>,
    tenant_tables: TenantTables,
}

/// A log row as the API shows it.
pub(super) fn log_from_row(row: &Row) -> LogView {
    let us: i64 = row.get(2);
    let ts = us.saturating_mul(1000);
    let metadata: Option<Value> = row.get(14);
    let level: String = row.get(3);
    LogView {
        id: row.get(0),
        tenant_id: row.get(1),
        timestamp: format_ts(ts),
        timestamp_ns: ts,
        level: Level::parse(&level).unwrap_or(Level::Info),
        service_name: row.get(4),
        message: row.get(5),
        context: LogContext {
            trace_id: row.get(6),
            span_id: row.get(7),
            parent_span_id: row.get(8),
            user_id: row.get(9),
            request_id: row.get(10),
            source: row.get(11),
            host: row.get(12),
            environment: row.get(13),
        },
        metadata: metadata.unwrap_or_else(|| Value::Object(Default::default())),
    }
}

fn span_from_row(row: &Row) -> SpanView {
    NewSpan {
        trace_id: row.get(0),
        span_id: row.get(1),
        parent_span_id: row.get(2),
        service: row.get(3),
        name: row.get(4),
        kind: SpanKind::from_i64(row.get::<_, i16>(5).into()),
        start_ns: row.get::<_, i64>(6).saturating_mul(1000),
        end_ns: row.get::<_, i64>(7).saturating_mul(1000),
        status: SpanStatus::from_i64(row.get::<_, i16>(8).into()),
        status_message: row.get(9),
        attributes: row.get::<_, Option<String>>(10).unwrap_or_default(),
        links: row.get::<_, Option<String>>(11).unwrap_or_default(),
        events: row.get::<_, Option<String>>(12).unwrap_or_default(),
    }
    .into()
}

/// The WHERE clause of `filter` over `log_entries`, scoped to `tenant`.
fn where_clause(tenant: &str, filter: &LogFilter) -> (String, Params) {
    filter_conditions(Some(tenant), filter)
}

/// The WHERE clause of `filter`, with `tenant_id = $1` first when `tenant` is given.
pub(super) fn filter_conditions(tenant: Option<&str>, filter: &LogFilter) -> (String, Params) {
    let mut sql = match tenant {
        Some(tenant) => Conditions::new(
            Placeholders::Dollar,
            "tenant_id = $1",
            vec![param(tenant.to_owned())],
        ),
        None => Conditions::new(Placeholders::Dollar, "true", Vec::new()),
    };
    if let Some(v) = &filter.service {
        sql.push(" AND service_name = ?", [param(v.clone())]);
    }
    // Level names are written into the statement, not bound: the planner then sees that the
    // condition implies the predicate of the index of warnings and worse, in any plan.
    if let Some(v) = filter.level {
        sql.push_sql(&format!(" AND level = '{}'", v.as_str()));
    }
    if let Some(v) = filter.min_level {
        let names: Vec<String> = Level::ALL
            .iter()
            .filter(|l| **l >= v)
            .map(|l| format!("'{}'", l.as_str()))
            .collect();
        sql.push_sql(&format!(" AND level IN ({})", names.join(", ")));
    }
    let ts = "'epoch'::timestamptz + ?::int8 * interval '1 microsecond'";
    if let Some(v) = filter.start_ns {
        sql.push(&format!(" AND timestamp >= {ts}"), [param(micros(v))]);
    }
    if let Some(v) = filter.end_ns {
        sql.push(&format!(" AND timestamp <= {ts}"), [param(micros(v))]);
    }
    for (column, value) in filter.exact_matches() {
        sql.push(&format!(" AND {column} = ?"), [param(value.to_owned())]);
    }
    if let Some(v) = &filter.search {
        let terms = search_terms(v);
        if terms.is_empty() {
            sql.push_sql(" AND false");
        } else {
            sql.push(
                " AND message_terms @@ plainto_tsquery('simple', ?)",
                [param(terms.join(" "))],
            );
        }
    }
    sql.finish()
}

impl PgReader {
    /// A reader on `client`.
    pub(super) fn new(client: Arc<Client>) -> PgReader {
        PgReader {
            client,
            tenant_tables: TenantTables::default(),
        }
    }

    /// The rows of `sql` with `params`, each read into a value by `read`.
    pub(super) async fn query_map<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        read: impl Fn(&Row) -> T,
    ) -> Result<Vec<T>, StoreError> {
        let rows = self.client.query(sql, params).await?;
        Ok(rows.iter().map(read).collect())
    }

    /// The logs matching the WHERE clause `where_sql` (of [`where_clause`]), with `rest` (more
    /// conditions, order, limit) after it.
    async fn logs_where(
        &self,
        where_sql: &str,
        params: &Params,
        rest: &str,
    ) -> Result<Vec<LogView>, StoreError> {
        let sql = format!("SELECT {LOG_COLUMNS} FROM log_entries WHERE {where_sql} {rest}");
        self.query_map(&sql, &refs(params), log_from_row).await
    }
}

impl Backend for PgReader {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn ping(&self) -> Read<'_, ()> {
        Box::pin(async move {
            self.client.query_one("SELECT 1", &[]).await?;
            Ok(())
        })
    }

    fn query_logs<'a>(
        &'a self,
        tenant: &'a str,
        filter: &'a LogFilter,
        limit: u32,
        offset: u64,
        count_up_to: Option<u64>,
    ) -> Read<'a, (Vec<LogView>, i64)> {
        Box::pin(page::query_logs(
            &self.client,
            &self.tenant_tables,
            tenant,
            filter,
            (limit, offset),
            count_up_to,
        ))
    }

    fn get_log<'a>(&'a self, tenant: &'a str, id: i64) -> Read<'a, Option<LogView>> {
        Box::pin(async move {
            let row = self
                .client
                .query_opt(
                    &format!(
                        "SELECT {LOG_COLUMNS} FROM log_entries WHERE id = $1 AND tenant_id = $2"
                    ),
                    &[&id, &tenant],
                )
                .await?;
            Ok(row.as_ref().map(log_from_row))
        })
    }

    fn logs_by<'a>(&'a self, tenant: &'a str, key: LogKey<'a>) -> Read<'a, Vec<LogView>> {
        let (column, id) = key.column_and_id();
        Box::pin(async move {
            self.query_map(
                &format!(
                    "SELECT {LOG_COLUMNS} FROM log_entries WHERE tenant_id = $1 AND {column} = $2 \
                     ORDER BY timestamp, id LIMIT {MAX_TRACE_ROWS}"
                ),
                &[&tenant, &id],
                log_from_row,
            )
            .await
        })
    }

    fn spans_by_trace<'a>(&'a self, tenant: &'a str, trace_id: &'a str) -> Read<'a, Vec<SpanView>> {
        Box::pin(async move {
            self.query_map(
                &format!(
                    "SELECT {SPAN_COLUMNS} FROM log_spans WHERE tenant_id = $1 AND trace_id = $2 \
                     ORDER BY start_us, span_id"
                ),
                &[&tenant, &trace_id],
                span_from_row,
            )
            .await
        })
    }

    fn services<'a>(&'a self, tenant: &'a str) -> Read<'a, Vec<String>> {
        Box::pin(async move {
            self.query_map(
                "SELECT service_name FROM log_services WHERE tenant_id = $1 ORDER BY service_name",
                &[&tenant],
                |r| r.get(0),
            )
            .await
        })
    }

    fn stats<'a>(
        &'a self,
        tenant: &'a str,
        start_ns: Option<i64>,
        end_ns: Option<i64>,
    ) -> Read<'a, Stats> {
        Box::pin(async move {
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
                add_level_count(&mut stats, level, row.get(1));
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
        })
    }

    fn aggregate<'a>(
        &'a self,
        tenant: &'a str,
        filter: &'a LogFilter,
        interval: Interval,
    ) -> Read<'a, Vec<Bucket>> {
        Box::pin(async move {
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
            let mut buckets = Vec::new();
            for row in rows {
                let start_us: i64 = row.get(0);
                let level = Level::parse(row.get(1)).unwrap_or(Level::Info);
                add_bucket_row(&mut buckets, start_us * 1000, level, row.get(2));
            }
            Ok(buckets.into_iter().map(|(_, b)| b).collect())
        })
    }

    fn storage<'a>(&'a self, tenant: &'a str) -> Read<'a, StorageInfo> {
        Box::pin(async move {
            let mut info = StorageInfo::empty("postgres");
            let days = self
                .client
                .query(
                    "SELECT day FROM log_partitions WHERE tenant_id = $1 ORDER BY day",
                    &[&tenant],
                )
                .await?;
            for row in days {
                let day = Day(row.get::<_, i32>(0) as i64);
                let Some(names) = day_names(self.client.as_ref(), tenant, day).await? else {
                    continue;
                };
                let (logs, spans, bytes) = day_usage(self.client.as_ref(), &names).await?;
                // The writer creates each day's next day ahead; an empty one is not data yet,
                // though its tables take room.
                if logs + spans == 0 {
                    info.estimated_bytes += bytes;
                    continue;
                }
                info.add_day(day.iso(), logs, spans, bytes);
            }
            Ok(info)
        })
    }

    fn logs_after<'a>(
        &'a self,
        tenant: &'a str,
        filter: &'a LogFilter,
        after_id: i64,
        limit: u32,
    ) -> Read<'a, Vec<LogView>> {
        Box::pin(async move {
            let (where_sql, params) = where_clause(tenant, filter);
            let after = format!("AND id > {after_id} ORDER BY id LIMIT {limit}");
            self.logs_where(&where_sql, &params, &after).await
        })
    }

    fn error_traces<'a>(
        &'a self,
        tenant: &'a str,
        limit: u32,
        offset: u32,
    ) -> Read<'a, Vec<String>> {
        Box::pin(async move {
            self.query_map(
                "SELECT trace_id FROM log_error_traces WHERE tenant_id = $1 \
                 ORDER BY last_us DESC, trace_id LIMIT $2 OFFSET $3",
                &[&tenant, &(limit as i64), &(offset as i64)],
                |r| r.get(0),
            )
            .await
        })
    }

    fn tenants(&self) -> Read<'_, Vec<String>> {
        Box::pin(async move {
            // `log_partitions` also lists the day ahead the writer creates empty, so each
            // tenant's tables are probed instead: the tenant's value prunes both to its own
            // partitions, and the first row found ends each probe.
            self.query_map(
                "SELECT t.tenant_id FROM log_tenants t \
                 WHERE EXISTS (SELECT 1 FROM log_entries e WHERE e.tenant_id = t.tenant_id) \
                 OR EXISTS (SELECT 1 FROM log_spans s WHERE s.tenant_id = t.tenant_id) \
                 ORDER BY 1",
                &[],
                |r| r.get(0),
            )
            .await
        })
    }
}
