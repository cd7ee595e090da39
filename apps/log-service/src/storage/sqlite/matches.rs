//! The logs of one partition a filter matches, counted and paged newest first. A filter with
//! text is answered by the partition's full-text index, newest id first ([`TextSearch`]);
//! any other by the logs table and its indexes.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};

use super::rows::{LOG_COLUMNS, log_from_row};
use super::schema::{PartitionNames, SEVERE};
use super::text::{TextSearch, match_expr};
use crate::model::{Level, LogFilter, LogView};
use crate::storage::StoreError;
use crate::storage::sql::{Conditions, Placeholders};

/// The conditions of a filter on the logs' columns, everything but its text.
fn column_conditions(filter: &LogFilter) -> Conditions<SqlValue> {
    let mut sql = Conditions::new(Placeholders::Question, "1", Vec::new());
    let text = |s: &str| SqlValue::Text(s.to_owned());
    if let Some(v) = &filter.service {
        sql.push(" AND service = ?", [text(v)]);
    }
    if let Some(v) = filter.level {
        sql.push(" AND level = ?", [SqlValue::Integer(v as i64)]);
    }
    if let Some(v) = filter.min_level {
        sql.push(" AND level >= ?", [SqlValue::Integer(v as i64)]);
    }
    // Implied by the filter already; spelled out so the planner may use the severe index.
    if filter
        .level
        .or(filter.min_level)
        .is_some_and(|v| v >= Level::Warn)
    {
        sql.push_sql(&format!(" AND {SEVERE}"));
    }
    if let Some(v) = filter.start_ns {
        sql.push(" AND ts >= ?", [SqlValue::Integer(v)]);
    }
    if let Some(v) = filter.end_ns {
        sql.push(" AND ts <= ?", [SqlValue::Integer(v)]);
    }
    for (column, value) in filter.exact_matches() {
        sql.push(&format!(" AND {column} = ?"), [text(value)]);
    }
    sql
}

/// WHERE clause for a filter within one partition, whose full-text index is `fts`.
pub(super) fn where_clause(filter: &LogFilter, fts: &str) -> (String, Vec<SqlValue>) {
    let mut sql = column_conditions(filter);
    match filter.search.as_deref().map(match_expr) {
        None => {}
        Some(None) => sql.push_sql(" AND 0"),
        Some(Some(expr)) => {
            let clause =
                format!(" AND id IN (SELECT rowid FROM \"{fts}\" WHERE \"{fts}\" MATCH ?)");
            sql.push(&clause, [SqlValue::Text(expr)]);
        }
    }
    sql.finish()
}

/// What one partition holds of a filter's matches.
pub(super) enum Matches<'a> {
    /// A text with no word in it: nothing.
    Nothing,
    /// No text: the logs table, `where_sql` over `params`.
    Rows {
        logs: &'a str,
        where_sql: String,
        params: Vec<SqlValue>,
    },
    /// A text: its matches by the full-text index.
    Text(TextSearch<'a>),
}

impl<'a> Matches<'a> {
    /// The matches of `filter` within `names`.
    pub(super) fn new(
        conn: &Connection,
        names: &'a PartitionNames,
        filter: &LogFilter,
    ) -> Result<Matches<'a>, StoreError> {
        let columns = column_conditions(filter).finish();
        Ok(match filter.search.as_deref().map(match_expr) {
            None => Matches::Rows {
                logs: &names.logs,
                where_sql: columns.0,
                params: columns.1,
            },
            Some(None) => Matches::Nothing,
            Some(Some(expr)) => {
                Matches::Text(TextSearch::new(conn, names, filter, columns, &expr)?)
            }
        })
    }

    /// How many there are, counted up to `limit` when there is one.
    pub(super) fn count(&self, conn: &Connection, limit: Option<i64>) -> Result<i64, StoreError> {
        match self {
            Matches::Nothing => Ok(0),
            Matches::Text(search) => search.count(conn, limit),
            Matches::Rows {
                logs,
                where_sql,
                params,
            } => {
                let count = |sql: String, limit: Option<&SqlValue>| -> Result<i64, StoreError> {
                    Ok(conn
                        .prepare_cached(&sql)?
                        .query_row(params_from_iter(params.iter().chain(limit)), |r| r.get(0))?)
                };
                match limit {
                    // The bound is a parameter, so the statement is prepared once.
                    Some(limit) => count(
                        format!(
                            "SELECT COUNT(*) FROM (SELECT 1 FROM \"{logs}\" WHERE {where_sql} LIMIT ?)"
                        ),
                        Some(&SqlValue::Integer(limit)),
                    ),
                    None => count(
                        format!("SELECT COUNT(*) FROM \"{logs}\" WHERE {where_sql}"),
                        None,
                    ),
                }
            }
        }
    }

    /// Up to `want` of them newest first by (ts, id), after the newest `skip`, as logs of `tenant`.
    pub(super) fn page(
        &self,
        conn: &Connection,
        tenant: &str,
        skip: i64,
        want: i64,
    ) -> Result<Vec<LogView>, StoreError> {
        match self {
            Matches::Nothing => Ok(Vec::new()),
            Matches::Text(search) => {
                let ids = search.newest(conn, (skip + want) as usize)?;
                let mut by_id = conn.prepare_cached(&format!(
                    "SELECT {LOG_COLUMNS} FROM \"{}\" WHERE id = ?1",
                    search.logs()
                ))?;
                ids.iter()
                    .skip(skip as usize)
                    .map(|id| Ok(by_id.query_row([id], |r| log_from_row(r, tenant))?))
                    .collect()
            }
            Matches::Rows {
                logs,
                where_sql,
                params,
            } => Ok(conn
                .prepare_cached(&format!(
                    "SELECT {LOG_COLUMNS} FROM \"{logs}\" WHERE {where_sql} \
                     ORDER BY ts DESC, id DESC LIMIT {want} OFFSET {skip}"
                ))?
                .query_map(params_from_iter(params.iter()), |r| log_from_row(r, tenant))?
                .collect::<Result<Vec<_>, _>>()?),
        }
    }
}
