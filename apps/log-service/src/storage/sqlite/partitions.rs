//! Retention's side of SQLite: policies, the partition list, and dropping a partition on a
//! connection of its own. A drop takes the write lock (BEGIN IMMEDIATE) like the writer, so the
//! writer either sees the partition gone or the drop waits for its commit; the pages freed are
//! handed back to the file system in small steps (`PRAGMA incremental_vacuum`) so ingest never
//! waits long, and a checkpoint then shrinks the file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::schema::{PartitionNames, open_maintenance};
use crate::storage::day::Day;
use crate::storage::partitions::policy_exists;
use crate::storage::{Dropped, Partitions, Policy, Read, Size, StoreError, StoredPartition};

/// Free pages given back per transaction (8 MiB): the writer waits for each step, a few hundred
/// milliseconds under full ingest.
const VACUUM_STEP_PAGES: i64 = 2048;

/// After a drop, free pages up to this share of the pages in use stay in the file, for new rows
/// to fill. Under steady ingest a dropped day's pages are what the next day's rows take again;
/// moving them back to the file system only for the file to grow again by as much is pure cost:
/// a 500,000-log day (140 MB) took 4.6 s of `incremental_vacuum` steps and the checkpoint, with
/// ingest stalled behind each step. With retention of four days or more a daily drop stays
/// within the share; what a larger purge frees beyond it goes back.
const FREE_PAGES_KEPT_PER_USED: f64 = 0.25;

/// Policies and partitions of one SQLite file, on their own read-write connection.
pub(super) struct SqlitePartitions {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

impl SqlitePartitions {
    /// Opens the maintenance connection of the file at `path` (the writer has created it).
    pub(super) fn open(path: &Path) -> Result<SqlitePartitions, StoreError> {
        Ok(SqlitePartitions {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(open_maintenance(path)?)),
        })
    }

    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| StoreError::Task("maintenance connection poisoned".into()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

const POLICY_COLUMNS: &str = "id, tenant, retention_days, created_at, updated_at";

fn policy_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Policy> {
    Ok(Policy {
        id: row.get(0)?,
        tenant_id: row.get(1)?,
        retention_days: row.get(2)?,
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
    })
}

fn one_policy(conn: &Connection, column: &str, value: &str) -> Result<Option<Policy>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {POLICY_COLUMNS} FROM retention_policies WHERE {column} = ?1"
        ))?
        .query_row([value], policy_from_row)
        .optional()?)
}

/// Drops one partition in one transaction; its rows and bytes, counted before.
/// The id of `tenant` when it has a partition of `day`.
fn partition_tenant(conn: &Connection, tenant: &str, day: Day) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT t.id FROM tenants t JOIN partitions p ON p.tenant = t.id \
             WHERE t.name = ?1 AND p.day = ?2",
        )?
        .query_row(params![tenant, day.0], |r| r.get(0))
        .optional()?)
}

fn drop_tables(conn: &mut Connection, tenant: &str, day: Day) -> Result<Dropped, StoreError> {
    let Some(tid) = partition_tenant(conn, tenant, day)? else {
        return Ok(Dropped::default());
    };
    let names = PartitionNames::new(tid, day);
    // Measured before the write lock: `dbstat` reads every page of the day (0.1 s for a
    // 500,000-log day), which the writer would wait for. An expired day's size changes only
    // by a late row; its rows are counted under the lock, exactly.
    let bytes = partition_bytes(conn, &names)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if partition_tenant(&tx, tenant, day)?.is_none() {
        return Ok(Dropped::default());
    }
    let (log_rows, span_rows) = partition_rows(&tx, &names)?;
    // Dropping the table drops its indexes; dropping the FTS table drops its shadow tables.
    for table in [&names.logs, &names.fts, &names.ts_bounds, &names.spans] {
        tx.execute_batch(&format!("DROP TABLE IF EXISTS \"{table}\";"))?;
    }
    tx.execute(
        "DELETE FROM partitions WHERE tenant = ?1 AND day = ?2",
        params![tid, day.0],
    )?;
    let error_trace_rows = tx.execute(
        "DELETE FROM error_traces WHERE tenant = ?1 AND last_ns < ?2",
        params![tid, day.end_ns()],
    )? as i64;
    tx.commit()?;
    Ok(Dropped {
        log_rows,
        span_rows,
        error_trace_rows,
        bytes,
    })
}

/// The pages of the file, and how many of them are free.
fn page_counts(conn: &Connection) -> Result<(i64, i64), StoreError> {
    let pages = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    Ok((pages, free))
}

/// Hands the free pages beyond [`FREE_PAGES_KEPT_PER_USED`] back to the file system, a step per
/// transaction, then checkpoints so that the database file itself shrinks (in WAL mode the
/// truncation happens at the checkpoint).
fn give_back_space(conn: &Connection) -> Result<(), StoreError> {
    let mut gave_back = false;
    loop {
        let (pages, free) = page_counts(conn)?;
        let kept = ((pages - free) as f64 * FREE_PAGES_KEPT_PER_USED) as i64;
        let excess = free - kept;
        if excess <= 0 {
            break;
        }
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let step = conn.execute_batch(&format!(
            "PRAGMA incremental_vacuum({})",
            excess.min(VACUUM_STEP_PAGES)
        ));
        match step {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(err) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(err.into());
            }
        }
        gave_back = true;
    }
    if gave_back {
        // Blocked readers only make the checkpoint partial; the next one finishes it.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    Ok(())
}

fn file_len(path: &Path) -> i64 {
    std::fs::metadata(path).map_or(0, |m| m.len() as i64)
}

impl Partitions for SqlitePartitions {
    fn policies(&self) -> Read<'_, Vec<Policy>> {
        Box::pin(self.with(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {POLICY_COLUMNS} FROM retention_policies ORDER BY tenant"
                ))?
                .query_map([], policy_from_row)?
                .collect::<Result<_, _>>()?)
        }))
    }

    fn tenant_policy<'a>(&'a self, tenant: &'a str) -> Read<'a, Option<Policy>> {
        let tenant = tenant.to_owned();
        Box::pin(self.with(move |conn| one_policy(conn, "tenant", &tenant)))
    }

    fn create_policy<'a>(&'a self, policy: &'a Policy) -> Read<'a, ()> {
        let policy = policy.clone();
        Box::pin(self.with(move |conn| {
            let inserted = conn.execute(
                "INSERT INTO retention_policies (id, tenant, retention_days, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant) DO NOTHING",
                params![
                    policy.id,
                    policy.tenant_id,
                    policy.retention_days,
                    policy.created_at,
                    policy.updated_at
                ],
            )?;
            if inserted == 0 {
                return Err(policy_exists(&policy));
            }
            Ok(())
        }))
    }

    fn update_policy<'a>(
        &'a self,
        id: &'a str,
        retention_days: i64,
        updated_at: &'a str,
    ) -> Read<'a, Option<Policy>> {
        let (id, updated_at) = (id.to_owned(), updated_at.to_owned());
        Box::pin(self.with(move |conn| {
            conn.execute(
                "UPDATE retention_policies SET retention_days = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, retention_days, updated_at],
            )?;
            one_policy(conn, "id", &id)
        }))
    }

    fn delete_policy<'a>(&'a self, id: &'a str) -> Read<'a, bool> {
        let id = id.to_owned();
        Box::pin(self.with(move |conn| {
            Ok(conn.execute("DELETE FROM retention_policies WHERE id = ?1", [id])? > 0)
        }))
    }

    fn partitions(&self) -> Read<'_, Vec<StoredPartition>> {
        Box::pin(self.with(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT t.name, p.day FROM partitions p JOIN tenants t ON t.id = p.tenant \
                     ORDER BY p.day, t.name",
                )?
                .query_map([], |r| {
                    Ok(StoredPartition {
                        tenant: r.get(0)?,
                        day: Day(r.get(1)?),
                    })
                })?
                .collect::<Result<_, _>>()?)
        }))
    }

    fn drop_partition<'a>(&'a self, tenant: &'a str, day: Day) -> Read<'a, Dropped> {
        let tenant = tenant.to_owned();
        Box::pin(self.with(move |conn| {
            let dropped = drop_tables(conn, &tenant, day)?;
            if dropped != Dropped::default() {
                give_back_space(conn)?;
            }
            Ok(dropped)
        }))
    }

    fn size(&self) -> Read<'_, Size> {
        let path = self.path.clone();
        Box::pin(self.with(move |conn| {
            let (pages, free) = page_counts(conn)?;
            let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let mut wal = path.clone().into_os_string();
            wal.push("-wal");
            Ok(Size {
                used: (pages - free) * page_size,
                on_disk: file_len(&path) + file_len(Path::new(&wal)),
            })
        }))
    }
}

/// Bytes the b-trees of one partition (its tables, indexes and full-text index) occupy.
pub(super) fn partition_bytes(
    conn: &Connection,
    names: &PartitionNames,
) -> Result<i64, StoreError> {
    let objects: Vec<String> = conn
        .prepare_cached(
            "SELECT name FROM sqlite_schema WHERE rootpage > 0 AND substr(name, 1, ?2) = ?1",
        )?
        .query_map(
            params![format!("{}_", names.prefix), names.prefix.len() + 1],
            |r| r.get(0),
        )?
        .collect::<Result<_, _>>()?;
    let mut bytes = 0;
    for name in objects {
        bytes += conn
            .prepare_cached(
                "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = ?1 AND aggregate = 1",
            )?
            .query_row([name], |r| r.get::<_, i64>(0))?;
    }
    Ok(bytes)
}

/// Rows of one partition: logs and spans.
pub(super) fn partition_rows(
    conn: &Connection,
    names: &PartitionNames,
) -> Result<(i64, i64), StoreError> {
    let count = |table: &str| -> Result<i64, StoreError> {
        Ok(conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM \"{table}\""))?
            .query_row([], |r| r.get(0))?)
    };
    Ok((count(&names.logs)?, count(&names.spans)?))
}
