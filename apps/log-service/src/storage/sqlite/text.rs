//! A free-text search of one partition, driven by its full-text index: the index hands out a
//! term's matches by id, newest id first, at little cost each, where filtering the logs by the
//! whole list of matches first (one log in five says "retrying") took 868 ms at 10M rows.
//!
//! A page is in time order, not id order, so the walk keeps the best `offset + limit` matches by
//! (ts, id) and stops once the partition's time bound of the ids it has not seen yet
//! ([`super::ts_bounds`]) is no later than the worst of them: an unseen log could at best tie
//! it on time, and then loses on id, unseen ids being smaller. A time range's start becomes the
//! lowest id worth reading through the same bounds, so a short window (an alert rule's) reads
//! only the matches of its last ids.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};

use super::schema::PartitionNames;
use super::ts_bounds::ids_before;
use crate::model::LogFilter;
use crate::storage::StoreError;

/// The `MATCH` expression of a search: every word, quoted, so input is never query syntax;
/// `None` when it has no word, which matches nothing.
pub(super) fn match_expr(search: &str) -> Option<String> {
    let terms = crate::storage::search_terms(search);
    (!terms.is_empty()).then(|| {
        terms
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(" AND ")
    })
}

/// A search of one partition: the filter's conditions on the logs' columns (numbered `?1..`,
/// the text aside), the match expression, and the ids below which no log is in the time range.
pub(super) struct TextSearch<'a> {
    names: &'a PartitionNames,
    /// `1` when the filter names nothing but the text.
    columns_sql: String,
    params: Vec<SqlValue>,
    ids_above: i64,
}

impl<'a> TextSearch<'a> {
    /// The search for `expr` within `names`, where the rest of the filter is `columns_sql` over
    /// `params`.
    pub(super) fn new(
        conn: &Connection,
        names: &'a PartitionNames,
        filter: &LogFilter,
        (columns_sql, mut params): (String, Vec<SqlValue>),
        expr: &str,
    ) -> Result<TextSearch<'a>, StoreError> {
        let ids_above = ids_before(conn, names, filter.start_ns)?;
        params.push(SqlValue::Text(expr.to_owned()));
        params.push(SqlValue::Integer(ids_above));
        Ok(TextSearch {
            names,
            columns_sql,
            params,
            ids_above,
        })
    }

    /// The partition's logs table.
    pub(super) fn logs(&self) -> &str {
        &self.names.logs
    }

    /// `MATCH ?m AND rowid > ?i`, numbered after the columns' parameters.
    fn match_sql(&self) -> String {
        let fts = &self.names.fts;
        let n = self.params.len();
        format!("\"{fts}\" MATCH ?{} AND \"{fts}\".rowid > ?{n}", n - 1)
    }

    /// Matches, counted up to `limit` when there is one.
    pub(super) fn count(&self, conn: &Connection, limit: Option<i64>) -> Result<i64, StoreError> {
        let PartitionNames { logs, fts, .. } = self.names;
        let limit = SqlValue::Integer(limit.unwrap_or(-1));
        let matches = self.match_sql();
        let n = self.params.len() + 1;
        // With nothing but the text to check, the index alone answers.
        let sql = if self.columns_sql == "1" {
            format!("SELECT COUNT(*) FROM (SELECT 1 FROM \"{fts}\" WHERE {matches} LIMIT ?{n})")
        } else {
            format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM \"{fts}\" CROSS JOIN \"{logs}\" AS l \
                 ON l.id = \"{fts}\".rowid WHERE {matches} AND {} LIMIT ?{n})",
                self.columns_sql
            )
        };
        Ok(conn
            .prepare_cached(&sql)?
            .query_row(params_from_iter(self.params.iter().chain([&limit])), |r| {
                r.get(0)
            })?)
    }

    /// The ids of the newest `keep` matches by (ts, id), newest first.
    pub(super) fn newest(&self, conn: &Connection, keep: usize) -> Result<Vec<i64>, StoreError> {
        if keep == 0 {
            return Ok(Vec::new());
        }
        let PartitionNames {
            logs,
            fts,
            ts_bounds,
            ..
        } = self.names;
        // The filter is a column rather than a condition, so that every match comes back and
        // the bound is checked at each one, not after a long run of logs the filter refuses.
        let mut walk = conn.prepare_cached(&format!(
            "SELECT l.id, l.ts, {} FROM \"{fts}\" CROSS JOIN \"{logs}\" AS l \
             ON l.id = \"{fts}\".rowid WHERE {} ORDER BY \"{fts}\".rowid DESC",
            self.columns_sql,
            self.match_sql()
        ))?;
        let mut bounds = conn.prepare_cached(&format!(
            "SELECT id, max_ts FROM \"{ts_bounds}\" WHERE id > ?1 ORDER BY id DESC"
        ))?;
        let mut bounds = bounds.query([self.ids_above])?;
        let mut next_bound = || -> Result<Option<(i64, i64)>, StoreError> {
            Ok(match bounds.next()? {
                Some(row) => Some((row.get(0)?, row.get(1)?)),
                None => None,
            })
        };
        // `covering` is the smallest bound at or above the current id seen so far, `below` the
        // next one down.
        let mut covering = next_bound()?;
        let mut below = next_bound()?;
        // The worst kept match on top.
        let mut kept: BinaryHeap<Reverse<(i64, i64)>> = BinaryHeap::new();
        let mut matches = walk.query(params_from_iter(self.params.iter()))?;
        while let Some(row) = matches.next()? {
            // A condition on a null column is null: the log does not pass.
            let (id, ts, passes): (i64, i64, Option<bool>) =
                (row.get(0)?, row.get(1)?, row.get(2)?);
            while let Some(bound) = below.filter(|(bound_id, _)| *bound_id >= id) {
                covering = Some(bound);
                below = next_bound()?;
            }
            // Every log from this one down is at or before `max_ts`.
            let max_ts = match covering {
                Some((bound_id, max_ts)) if bound_id >= id => max_ts,
                _ => i64::MAX,
            };
            if kept.len() == keep
                && kept
                    .peek()
                    .is_some_and(|Reverse((worst, _))| max_ts <= *worst)
            {
                break;
            }
            if passes == Some(true) {
                kept.push(Reverse((ts, id)));
                if kept.len() > keep {
                    kept.pop();
                }
            }
        }
        Ok(kept
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse((_, id))| id)
            .collect())
    }
}

#[cfg(test)]
mod tests;
