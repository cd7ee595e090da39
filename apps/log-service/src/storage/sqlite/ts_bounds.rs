//! Each partition's time bounds by id: rows `(id, max_ts)` saying "every log of the partition
//! with an id up to `id` has a timestamp up to `max_ts`", the running maximum of `ts` in id order.
//!
//! Ids follow arrival and arrival is nearly time order, so the bound of the ids below a point is
//! close to the time of the logs there. That is what lets a free-text search walk its matches by
//! id, newest id first, and still answer in time order exactly: it stops once the bound of the
//! ids it has not seen is no later than the last log of its page (see [`super::text`]). A log
//! that arrives late (an old timestamp) does not raise the bound; one dated ahead raises it for
//! every later id, which only makes walks longer.
//!
//! The writer adds a bound every [`BOUND_EVERY_ROWS`] logs of a partition and at the end of each
//! transaction that wrote to it, in that transaction, so every committed log is covered.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::schema::PartitionNames;
use crate::storage::StoreError;
use crate::storage::day::Day;

/// Logs of a partition between two bounds: a walk reads at most about this many logs past the
/// point where it could have stopped. 10M logs of one partition take some 45k bounds (under 1 MiB),
/// with the one each commit ends on.
pub(super) const BOUND_EVERY_ROWS: u32 = 256;

/// The table of one partition's bounds.
pub(super) fn ddl(names: &PartitionNames) -> String {
    let PartitionNames { ts_bounds, .. } = names;
    format!(
        r#"CREATE TABLE IF NOT EXISTS "{ts_bounds}" (
    id     INTEGER PRIMARY KEY,
    max_ts INTEGER NOT NULL
);"#
    )
}

/// The bound of the partition's every log: the last one, since bounds grow with the id.
fn latest(conn: &Connection, names: &PartitionNames) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT max_ts FROM \"{}\" ORDER BY id DESC LIMIT 1",
            names.ts_bounds
        ))?
        .query_row([], |r| r.get(0))
        .optional()?)
}

/// Below which id no log of the partition is at or after `start_ns`: the last bound before it
/// (0 when there is none, ids starting at 1).
pub(super) fn ids_before(
    conn: &Connection,
    names: &PartitionNames,
    start_ns: Option<i64>,
) -> Result<i64, StoreError> {
    let Some(start_ns) = start_ns else {
        return Ok(0);
    };
    // The bounds grow with the id, so the scan from the newest stops at the first one below.
    let id: Option<i64> = conn
        .prepare_cached(&format!(
            "SELECT id FROM \"{}\" WHERE max_ts < ?1 ORDER BY id DESC LIMIT 1",
            names.ts_bounds
        ))?
        .query_row([start_ns], |r| r.get(0))
        .optional()?;
    Ok(id.unwrap_or(0))
}

/// Writes the bounds of a partition's existing logs, one per [`BOUND_EVERY_ROWS`] in id order
/// and one at its last log: what a migration gives a partition written without them.
pub(super) fn build(tx: &Transaction<'_>, names: &PartitionNames) -> Result<(), StoreError> {
    let mut insert = tx.prepare(&insert_sql(names))?;
    let mut scan = tx.prepare(&format!(
        "SELECT id, ts FROM \"{}\" ORDER BY id",
        names.logs
    ))?;
    let mut rows = scan.query([])?;
    let mut running = Running::default();
    while let Some(row) = rows.next()? {
        if let Some((id, max_ts)) = running.add(row.get(0)?, row.get(1)?) {
            insert.execute(params![id, max_ts])?;
        }
    }
    if let Some((id, max_ts)) = running.finish() {
        insert.execute(params![id, max_ts])?;
    }
    Ok(())
}

fn insert_sql(names: &PartitionNames) -> String {
    format!(
        "INSERT INTO \"{}\" (id, max_ts) VALUES (?1, ?2)",
        names.ts_bounds
    )
}

/// The running maximum of one partition, and the logs added since its last bound.
#[derive(Debug, Clone, Copy)]
struct Running {
    max_ts: i64,
    last_id: i64,
    unbounded: u32,
}

impl Default for Running {
    fn default() -> Self {
        Running {
            max_ts: i64::MIN,
            last_id: 0,
            unbounded: 0,
        }
    }
}

impl Running {
    /// Takes a log in; the bound to write when it ends a run of [`BOUND_EVERY_ROWS`].
    fn add(&mut self, id: i64, ts: i64) -> Option<(i64, i64)> {
        self.max_ts = self.max_ts.max(ts);
        self.last_id = id;
        self.unbounded += 1;
        if self.unbounded >= BOUND_EVERY_ROWS {
            self.finish()
        } else {
            None
        }
    }

    /// The bound covering every log taken in, when some are not covered yet.
    fn finish(&mut self) -> Option<(i64, i64)> {
        (self.unbounded > 0).then(|| {
            self.unbounded = 0;
            (self.last_id, self.max_ts)
        })
    }
}

/// The writer's side: each partition's running maximum, read from its last bound the first time
/// a partition is written after a start (or after a failed transaction), so a restart never lowers
/// a bound.
#[derive(Default)]
pub(super) struct BoundsWriter {
    running: HashMap<(i64, Day), Running>,
    /// Partitions written in the open transaction.
    touched: Vec<(i64, Day)>,
}

impl BoundsWriter {
    /// Forgets every partition: after retention dropped some, or a transaction rolled back.
    pub(super) fn clear(&mut self) {
        self.running.clear();
        self.touched.clear();
    }

    /// Takes in the log `id` at `ts` of the partition `key`, writing a bound when it ends a run.
    pub(super) fn add(
        &mut self,
        tx: &Transaction<'_>,
        key: (i64, Day),
        names: &PartitionNames,
        id: i64,
        ts: i64,
    ) -> Result<(), StoreError> {
        let running = match self.running.get_mut(&key) {
            Some(running) => running,
            None => {
                let max_ts = latest(tx, names)?.unwrap_or(i64::MIN);
                self.running.entry(key).or_insert(Running {
                    max_ts,
                    ..Running::default()
                })
            }
        };
        if running.unbounded == 0 {
            self.touched.push(key);
        }
        if let Some((id, max_ts)) = running.add(id, ts) {
            tx.prepare_cached(&insert_sql(names))?
                .execute(params![id, max_ts])?;
        }
        Ok(())
    }

    /// Writes the bound of every partition whose last logs have none yet: before the commit.
    pub(super) fn finish(&mut self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        for key in self.touched.drain(..) {
            let Some(running) = self.running.get_mut(&key) else {
                continue;
            };
            if let Some((id, max_ts)) = running.finish() {
                let names = PartitionNames::new(key.0, key.1);
                tx.prepare_cached(&insert_sql(&names))?
                    .execute(params![id, max_ts])?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bound every run of rows and one at the end, each the running maximum: a late (older)
    /// row never lowers it.
    #[test]
    fn bounds_are_the_running_maximum_by_id() {
        let mut running = Running::default();
        let mut bounds = Vec::new();
        let n = BOUND_EVERY_ROWS as i64;
        for id in 1..=2 * n + 3 {
            // Row n is dated far ahead; the rest go up by one, with row n + 1 late.
            let ts = match id {
                id if id == n => 1_000_000,
                id if id == n + 1 => -5,
                id => id,
            };
            bounds.extend(running.add(id, ts));
        }
        bounds.extend(running.finish());
        assert_eq!(
            bounds,
            [(n, 1_000_000), (2 * n, 1_000_000), (2 * n + 3, 1_000_000)]
        );
        assert_eq!(running.finish(), None);
    }
}
