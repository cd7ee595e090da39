//! The SQLite reader: a small pool of read-only connections, used from blocking tasks so a slow
//! query never holds up the async runtime. WAL lets them read while the writer commits.
//!
//! A read visits the tenant's day partitions one by one, inside one read transaction so that a
//! partition dropped meanwhile is still there for it. Days are disjoint time ranges, so rows in
//! time order are the partitions' rows in day order, and a page newest first stops at the day
//! that fills it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::matches::{Matches, where_clause};
use super::partitions::{partition_bytes, partition_rows};
use super::rows::{LOG_COLUMNS, SPAN_COLUMNS, log_from_row, span_from_row};
use super::schema::{PartitionNames, open_reader};
use crate::model::{
    Bucket, Interval, Level, LogFilter, LogView, SpanView, Stats, StorageInfo, format_ts,
};
use crate::storage::day::Day;
use crate::storage::{
    Backend, LogKey, MAX_TRACE_ROWS, Read, StoreError, add_bucket_row, add_level_count,
};

/// Most idle connections kept for reuse.
const POOL_SIZE: usize = 8;

/// Read side: a pool of read-only connections used from blocking tasks.
#[derive(Clone)]
pub(super) struct SqliteReader {
    path: Arc<PathBuf>,
    pool: Arc<Mutex<Vec<Connection>>>,
}

fn tenant_id(conn: &Connection, tenant: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id FROM tenants WHERE name = ?1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?)
}

/// The tenant's partitions, oldest first, that may hold rows between `start_ns` and `end_ns`.
pub(super) fn partitions(
    conn: &Connection,
    tenant: i64,
    start_ns: Option<i64>,
    end_ns: Option<i64>,
) -> Result<Vec<(Day, PartitionNames)>, StoreError> {
    let first = start_ns.map_or(i64::MIN, |ns| Day::of_ns(ns).0);
    let last = end_ns.map_or(i64::MAX, |ns| Day::of_ns(ns).0);
    Ok(conn
        .prepare_cached(
            "SELECT day FROM partitions WHERE tenant = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day",
        )?
        .query_map(params![tenant, first, last], |r| Ok(Day(r.get(0)?)))?
        .map(|day| day.map(|d| (d, PartitionNames::new(tenant, d))))
        .collect::<Result<_, _>>()?)
}

impl SqliteReader {
    /// A reader of the database at `path`; connections are opened on first use.
    pub(super) fn new(path: PathBuf) -> SqliteReader {
        SqliteReader {
            path: Arc::new(path),
            pool: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Runs `f` in one read transaction, so every partition it lists stays readable to it.
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
            conn.execute_batch("BEGIN")?;
            let result = f(&conn);
            let ended = conn.execute_batch("COMMIT");
            if let Ok(mut p) = pool.lock()
                && p.len() < POOL_SIZE
                && ended.is_ok()
            {
                p.push(conn);
            }
            let value = result?;
            ended?;
            Ok(value)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` with the tenant's numeric id; an unknown tenant has no data, so `empty` is returned.
    pub(super) async fn with_tenant<T, F>(
        &self,
        tenant: &str,
        empty: T,
        f: F,
    ) -> Result<T, StoreError>
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
}

impl Backend for SqliteReader {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn ping(&self) -> Read<'_, ()> {
        Box::pin(async move {
            self.read(|conn| Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
                .await
                .map(|_| ())
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
        let filter = filter.clone();
        let name = tenant.to_owned();
        Box::pin(self.with_tenant(tenant, (vec![], 0), move |conn, tid| {
            let mut logs = Vec::new();
            let mut total = 0i64;
            let mut skip = offset as i64;
            let mut want = limit as i64;
            let cap = count_up_to.map(|c| c as i64);
            for (_, names) in partitions(conn, tid, filter.start_ns, filter.end_ns)?
                .iter()
                .rev()
            {
                if want == 0 && cap.is_some_and(|c| total >= c) {
                    break;
                }
                let matches = Matches::new(conn, names, &filter)?;
                // A bounded count still counts past `skip + want`: a partition counted at its
                // bound then holds the whole page, so the skip arithmetic stays exact.
                let count = matches.count(conn, cap.map(|cap| (cap - total).max(skip + want)))?;
                total += count;
                if want == 0 {
                    continue;
                }
                if skip >= count {
                    skip -= count;
                    continue;
                }
                let page = matches.page(conn, &name, skip, want)?;
                skip = 0;
                want -= page.len() as i64;
                logs.extend(page);
            }
            Ok((logs, count_up_to.map_or(total, |c| total.min(c as i64))))
        }))
    }

    fn get_log<'a>(&'a self, tenant: &'a str, id: i64) -> Read<'a, Option<LogView>> {
        let name = tenant.to_owned();
        Box::pin(self.with_tenant(tenant, None, move |conn, tid| {
            for (_, names) in partitions(conn, tid, None, None)?.iter().rev() {
                let found = conn
                    .prepare_cached(&format!(
                        "SELECT {LOG_COLUMNS} FROM \"{}\" WHERE id = ?1",
                        names.logs
                    ))?
                    .query_row([id], |r| log_from_row(r, &name))
                    .optional()?;
                if found.is_some() {
                    return Ok(found);
                }
            }
            Ok(None)
        }))
    }

    fn logs_by<'a>(&'a self, tenant: &'a str, key: LogKey<'a>) -> Read<'a, Vec<LogView>> {
        let (column, id) = key.column_and_id();
        let name = tenant.to_owned();
        let id = id.to_owned();
        Box::pin(self.with_tenant(tenant, vec![], move |conn, tid| {
            let mut logs = Vec::new();
            for (_, names) in partitions(conn, tid, None, None)? {
                let left = MAX_TRACE_ROWS - logs.len() as i64;
                if left <= 0 {
                    break;
                }
                let sql = format!(
                    "SELECT {LOG_COLUMNS} FROM \"{}\" WHERE {column} = ?1 \
                     ORDER BY ts, id LIMIT {left}",
                    names.logs
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                for log in stmt.query_map([&id], |r| log_from_row(r, &name))? {
                    logs.push(log?);
                }
            }
            Ok(logs)
        }))
    }

    fn spans_by_trace<'a>(&'a self, tenant: &'a str, trace_id: &'a str) -> Read<'a, Vec<SpanView>> {
        let trace_id = trace_id.to_owned();
        Box::pin(self.with_tenant(tenant, vec![], move |conn, tid| {
            let mut spans = Vec::new();
            for (_, names) in partitions(conn, tid, None, None)? {
                let sql = format!(
                    "SELECT {SPAN_COLUMNS} FROM \"{}\" WHERE trace_id = ?1 \
                     ORDER BY start_ns, span_id",
                    names.spans
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                for span in stmt.query_map([&trace_id], span_from_row)? {
                    spans.push(span?);
                }
            }
            Ok(spans)
        }))
    }

    fn services<'a>(&'a self, tenant: &'a str) -> Read<'a, Vec<String>> {
        Box::pin(self.with_tenant(tenant, vec![], |conn, tid| {
            Ok(conn
                .prepare_cached("SELECT service FROM services WHERE tenant = ?1 ORDER BY service")?
                .query_map([tid], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?)
        }))
    }

    fn stats<'a>(
        &'a self,
        tenant: &'a str,
        start_ns: Option<i64>,
        end_ns: Option<i64>,
    ) -> Read<'a, Stats> {
        Box::pin(
            self.with_tenant(tenant, Stats::default(), move |conn, tid| {
                let filter = LogFilter {
                    start_ns,
                    end_ns,
                    ..Default::default()
                };
                let mut stats = Stats::default();
                let mut by_service: std::collections::BTreeMap<String, i64> = Default::default();
                let (mut first, mut last): (Option<i64>, Option<i64>) = (None, None);
                for (_, names) in partitions(conn, tid, start_ns, end_ns)? {
                    let (where_sql, params) = where_clause(&filter, &names.fts);
                    let logs = &names.logs;
                    let mut stmt = conn.prepare_cached(&format!(
                        "SELECT level, COUNT(*) FROM \"{logs}\" WHERE {where_sql} GROUP BY level"
                    ))?;
                    let mut rows = stmt.query(params_from_iter(params.iter()))?;
                    while let Some(row) = rows.next()? {
                        add_level_count(&mut stats, Level::from_i64(row.get(0)?), row.get(1)?);
                    }
                    let mut stmt = conn.prepare_cached(&format!(
                        "SELECT service, COUNT(*) FROM \"{logs}\" WHERE {where_sql} GROUP BY service"
                    ))?;
                    let mut rows = stmt.query(params_from_iter(params.iter()))?;
                    while let Some(row) = rows.next()? {
                        *by_service.entry(row.get(0)?).or_default() += row.get::<_, i64>(1)?;
                    }
                    let (lo, hi): (Option<i64>, Option<i64>) = conn
                        .prepare_cached(&format!(
                            "SELECT MIN(ts), MAX(ts) FROM \"{logs}\" WHERE {where_sql}"
                        ))?
                        .query_row(params_from_iter(params.iter()), |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })?;
                    first = first.or(lo);
                    last = hi.or(last);
                }
                for (service, count) in by_service {
                    stats.by_service.insert(service, count.into());
                }
                stats.first_timestamp = first.map(format_ts);
                stats.last_timestamp = last.map(format_ts);
                stats.trace_count_with_errors = conn
                    .prepare_cached("SELECT COUNT(*) FROM error_traces WHERE tenant = ?1")?
                    .query_row([tid], |r| r.get(0))?;
                Ok(stats)
            }),
        )
    }

    fn aggregate<'a>(
        &'a self,
        tenant: &'a str,
        filter: &'a LogFilter,
        interval: Interval,
    ) -> Read<'a, Vec<Bucket>> {
        let filter = filter.clone();
        Box::pin(self.with_tenant(tenant, vec![], move |conn, tid| {
            let width = interval.nanos();
            let mut buckets = Vec::new();
            // A bucket is at most a day wide and days start on its multiples, so no bucket
            // spans two partitions and the rows arrive in bucket order.
            for (_, names) in partitions(conn, tid, filter.start_ns, filter.end_ns)? {
                let (where_sql, params) = where_clause(&filter, &names.fts);
                let sql = format!(
                    "SELECT (ts / {width}) * {width} AS bucket, level, COUNT(*) FROM \"{}\" \
                     WHERE {where_sql} GROUP BY bucket, level ORDER BY bucket",
                    names.logs
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut rows = stmt.query(params_from_iter(params.iter()))?;
                while let Some(row) = rows.next()? {
                    add_bucket_row(
                        &mut buckets,
                        row.get(0)?,
                        Level::from_i64(row.get(1)?),
                        row.get(2)?,
                    );
                }
            }
            Ok(buckets.into_iter().map(|(_, b)| b).collect())
        }))
    }

    fn storage<'a>(&'a self, tenant: &'a str) -> Read<'a, StorageInfo> {
        let empty = StorageInfo::empty("sqlite");
        Box::pin(self.with_tenant(tenant, empty, |conn, tid| {
            let mut info = StorageInfo::empty("sqlite");
            for (day, names) in partitions(conn, tid, None, None)? {
                let (logs, spans) = partition_rows(conn, &names)?;
                let bytes = partition_bytes(conn, &names)?;
                info.add_day(day.iso(), logs, spans, bytes);
            }
            Ok(info)
        }))
    }

    fn logs_after<'a>(
        &'a self,
        tenant: &'a str,
        filter: &'a LogFilter,
        after_id: i64,
        limit: u32,
    ) -> Read<'a, Vec<LogView>> {
        let filter = filter.clone();
        let name = tenant.to_owned();
        Box::pin(self.with_tenant(tenant, vec![], move |conn, tid| {
            // Ids follow arrival, not time: a late log of an old day has a larger id than
            // earlier logs of later days, so every partition is asked and the answers merged.
            let mut logs = Vec::new();
            for (_, names) in partitions(conn, tid, filter.start_ns, filter.end_ns)? {
                let (where_sql, params) = where_clause(&filter, &names.fts);
                // NOT INDEXED keeps the planner on the rowid range from the resume point.
                let sql = format!(
                    "SELECT {LOG_COLUMNS} FROM \"{}\" NOT INDEXED WHERE {where_sql} \
                     AND id > {after_id} ORDER BY id LIMIT {limit}",
                    names.logs
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                for log in
                    stmt.query_map(params_from_iter(params.iter()), |r| log_from_row(r, &name))?
                {
                    logs.push(log?);
                }
            }
            logs.sort_by_key(|l: &LogView| l.id);
            logs.truncate(limit as usize);
            Ok(logs)
        }))
    }

    fn error_traces<'a>(
        &'a self,
        tenant: &'a str,
        limit: u32,
        offset: u32,
    ) -> Read<'a, Vec<String>> {
        Box::pin(self.with_tenant(tenant, vec![], move |conn, tid| {
            Ok(conn
                .prepare_cached(
                    "SELECT trace_id FROM error_traces WHERE tenant = ?1 \
                     ORDER BY last_ns DESC, trace_id LIMIT ?2 OFFSET ?3",
                )?
                .query_map(params![tid, limit, offset], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?)
        }))
    }

    fn tenants(&self) -> Read<'_, Vec<String>> {
        // The writer lists a partition with its first row and retention unlists it with its
        // drop, so a listed partition holds rows: no partition table is read.
        Box::pin(self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT t.name FROM tenants t WHERE EXISTS \
                     (SELECT 1 FROM partitions p WHERE p.tenant = t.id) ORDER BY t.name",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?)
        }))
    }
}
