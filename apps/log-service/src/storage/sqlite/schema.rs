//! The SQLite schema, one partition per tenant and UTC day, and how connections are opened: the
//! writer's (which creates the schema) and the readers' (read-only).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::rows::SPAN_COLUMNS;
use super::ts_bounds;
use crate::storage::StoreError;
use crate::storage::day::Day;

/// Tables shared by every day. Logs and spans live in per-(tenant, day) partitions (see
/// [`partition_ddl`]); `partitions` lists them. Tenants and services are small lookup tables so
/// that partitions name a tenant by an integer and `/services` never scans logs. `layout` holds
/// the layout's version and the next log id: ids are unique across partitions, so the writer
/// hands them out instead of each partition's rowid counter.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS layout (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO layout (key, value) VALUES ('version', 4), ('next_log_id', 1);
CREATE TABLE IF NOT EXISTS tenants (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS partitions (
    tenant INTEGER NOT NULL,
    day    INTEGER NOT NULL,
    PRIMARY KEY (tenant, day)
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
CREATE TABLE IF NOT EXISTS retention_policies (
    id             TEXT PRIMARY KEY,
    tenant         TEXT NOT NULL UNIQUE,
    retention_days INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
"#;

/// The version of the layout this build writes: 2 is the per-(tenant, day) partitions, 3 stores
/// spans in rowid order with a unique (trace, span) index and indexes warnings and worse, 4 keeps
/// each partition's bounds on the time of its logs by id (see [`partition_ddl`]).
const LAYOUT_VERSION: i64 = 4;

/// The oldest version this build migrates in place at start-up (see [`migrate_to_layout_3`] and
/// [`migrate_to_layout_4`]).
const MIGRATABLE_VERSION: i64 = 2;

/// Names of one partition's tables: `p<tenant>_<YYYYMMDD>_logs`, `_fts`, `_ts_bounds` and
/// `_spans`.
#[derive(Debug, Clone)]
pub(super) struct PartitionNames {
    /// Logs, rowid = log id.
    pub logs: String,
    /// The contentless full-text index of the logs' messages, rowid = log id.
    pub fts: String,
    /// Upper bounds on the time of the logs up to an id (see [`super::ts_bounds`]).
    pub ts_bounds: String,
    /// Spans, keyed by trace and span id.
    pub spans: String,
    /// What every object of the partition (its indexes and FTS shadow tables too) starts with.
    pub prefix: String,
}

impl PartitionNames {
    /// The names of `tenant`'s partition for `day`.
    pub fn new(tenant: i64, day: Day) -> PartitionNames {
        let prefix = format!("p{tenant}_{}", day.compact());
        PartitionNames {
            logs: format!("{prefix}_logs"),
            fts: format!("{prefix}_fts"),
            ts_bounds: format!("{prefix}_ts_bounds"),
            spans: format!("{prefix}_spans"),
            prefix,
        }
    }
}

/// The statements that create one partition. The trace and request indexes end with `ts` (and
/// the implicit rowid) so a lookup returns rows already in `ORDER BY ts, id` order; the spans'
/// service index serves the trace search by service (and operation) and the lists of services
/// and operations.
///
/// Spans are kept in arrival (rowid) order with a unique index on (trace, span), not in a table
/// keyed by (trace, span): a random trace id put every ~700-byte row at a random place of the
/// table, splitting its pages and rewriting them to the WAL at each commit, and the writer
/// stored spans at half the rate (41k against 72-79k rows/s for the same rows, 300k spans in
/// commits of 600, synchronous=FULL), with a file a fifth larger.
pub(super) fn partition_ddl(names: &PartitionNames) -> String {
    format!("{}{}", logs_ddl(names), spans_ddl(names))
}

fn logs_ddl(names: &PartitionNames) -> String {
    let PartitionNames {
        logs, fts, prefix, ..
    } = names;
    let severe = severe_index_ddl(names);
    let ts_bounds = ts_bounds::ddl(names);
    format!(
        r#"
CREATE TABLE IF NOT EXISTS "{logs}" (
    id             INTEGER PRIMARY KEY,
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
CREATE INDEX IF NOT EXISTS "{prefix}_logs_ts" ON "{logs}" (ts);
CREATE INDEX IF NOT EXISTS "{prefix}_logs_trace" ON "{logs}" (trace_id, ts) WHERE trace_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS "{prefix}_logs_request" ON "{logs}" (request_id, ts) WHERE request_id IS NOT NULL;
{severe}
CREATE VIRTUAL TABLE IF NOT EXISTS "{fts}" USING fts5 (
    message, content = '', detail = none
);
{ts_bounds}
"#
    )
}

/// The term a query must carry, word for word, for SQLite to use the index of warnings and worse
/// (it does no algebra: `level >= 5` does not imply `level >= 4` to it).
pub(super) const SEVERE: &str = "level >= 4";

/// Warnings and worse by time: a page filtered to a rare level walks this small index newest
/// first instead of the whole day (at 10M rows, 82 ms for the newest 50 errors without it).
fn severe_index_ddl(names: &PartitionNames) -> String {
    let PartitionNames { logs, prefix, .. } = names;
    format!(r#"CREATE INDEX IF NOT EXISTS "{prefix}_logs_severe" ON "{logs}" (ts) WHERE {SEVERE};"#)
}

fn spans_ddl(names: &PartitionNames) -> String {
    let PartitionNames { spans, prefix, .. } = names;
    format!(
        r#"
CREATE TABLE IF NOT EXISTS "{spans}" (
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
    events         TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS "{prefix}_spans_trace" ON "{spans}" (trace_id, span_id);
CREATE INDEX IF NOT EXISTS "{prefix}_spans_service" ON "{spans}" (service, name, kind, start_ns);
"#
    )
}

/// Every partition's names, for a migration.
fn all_partitions(conn: &Connection) -> Result<Vec<PartitionNames>, StoreError> {
    Ok(conn
        .prepare("SELECT tenant, day FROM partitions")?
        .query_map([], |r| Ok(PartitionNames::new(r.get(0)?, Day(r.get(1)?))))?
        .collect::<Result<_, _>>()?)
}

/// Layout 2 to 3, in one transaction: every partition's spans move from the table keyed by
/// (trace, span) into the rowid table of [`spans_ddl`], and its logs get the index of warnings
/// and worse.
fn migrate_to_layout_3(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for names in all_partitions(&tx)? {
        let PartitionNames { spans, prefix, .. } = &names;
        tx.execute_batch(&format!(
            r#"
ALTER TABLE "{spans}" RENAME TO "{spans}_keyed";
DROP INDEX IF EXISTS "{prefix}_spans_service";
{}
INSERT INTO "{spans}" ({SPAN_COLUMNS}) SELECT {SPAN_COLUMNS} FROM "{spans}_keyed" ORDER BY start_ns;
DROP TABLE "{spans}_keyed";
{}
"#,
            spans_ddl(&names),
            severe_index_ddl(&names)
        ))?;
    }
    tx.execute("UPDATE layout SET value = 3 WHERE key = 'version'", [])?;
    tx.commit()?;
    Ok(())
}

/// Layout 3 to 4, in one transaction: every partition gets its time bounds, built from its logs
/// in id order (one pass over each partition's rowid table).
fn migrate_to_layout_4(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for names in all_partitions(&tx)? {
        tx.execute_batch(&ts_bounds::ddl(&names))?;
        ts_bounds::build(&tx, &names)?;
    }
    tx.execute("UPDATE layout SET value = 4 WHERE key = 'version'", [])?;
    tx.commit()?;
    Ok(())
}

/// Refuses a file written by a build before the partitioned layout (one `logs` table for every
/// tenant and day): its rows cannot be dropped by day, and copying them is left to the operator.
fn check_layout(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let has = |name: &str| -> Result<bool, StoreError> {
        Ok(conn
            .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1")?
            .exists([name])?)
    };
    if has("logs")? && !has("layout")? {
        return Err(StoreError::OldLayout(format!(
            "{} holds the unpartitioned layout of an earlier log-service (one `logs` table); \
             move it away (or point DATABASE_URL at a new file) and start again: log-service \
             then creates the partitioned layout",
            path.display()
        )));
    }
    if has("layout")? {
        let version: i64 =
            conn.query_row("SELECT value FROM layout WHERE key = 'version'", [], |r| {
                r.get(0)
            })?;
        if !(MIGRATABLE_VERSION..=LAYOUT_VERSION).contains(&version) {
            return Err(StoreError::OldLayout(format!(
                "{} has storage layout version {version}; this log-service reads version \
                 {LAYOUT_VERSION}; point DATABASE_URL at a new file",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Opens the writer's connection, creating the parent directory and the schema.
pub(super) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut writer = Connection::open(path)?;
    writer.busy_timeout(Duration::from_secs(10))?;
    // Before the first table, and before WAL writes the header: a dropped partition's pages can
    // then be handed back to the file system with `PRAGMA incremental_vacuum` (a file created
    // without it keeps them as free pages, reused but never returned).
    writer.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
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
    check_layout(&writer, path)?;
    writer.execute_batch(SCHEMA)?;
    let version = |writer: &Connection| -> Result<i64, StoreError> {
        Ok(
            writer.query_row("SELECT value FROM layout WHERE key = 'version'", [], |r| {
                r.get(0)
            })?,
        )
    };
    if version(&writer)? == 2 {
        migrate_to_layout_3(&mut writer)?;
        tracing::info!(path = %path.display(), "storage layout migrated from version 2 to 3");
    }
    if version(&writer)? == 3 {
        migrate_to_layout_4(&mut writer)?;
        tracing::info!(path = %path.display(), "storage layout migrated from version 3 to 4");
    }
    writer.set_prepared_statement_cache_capacity(256);
    Ok(writer)
}

/// Opens a read-write connection beside the writer (retention's, the alert rules') to a file
/// the writer has opened.
pub(super) fn open_maintenance(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// Opens a read-only connection for the reader pool.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "cache_size", -32_768)?;
    conn.pragma_update(None, "mmap_size", 268_435_456i64)?;
    // A query spans one statement per partition of the tenant.
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of layout 2 (spans in a table keyed by trace and span) is migrated when the writer
    /// opens it: its spans are kept, in a rowid table with the unique (trace, span) index.
    #[test]
    fn layout_2_spans_move_to_a_rowid_table_at_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log-service.db");
        let day = Day(20_000);
        let names = PartitionNames::new(1, day);
        {
            let writer = open_writer(&path).unwrap();
            writer
                .execute_batch(&format!(
                    r#"
UPDATE layout SET value = 2 WHERE key = 'version';
INSERT INTO tenants (id, name) VALUES (1, 'default');
INSERT INTO partitions (tenant, day) VALUES (1, {day});
{logs}
CREATE TABLE "{spans}" (
    trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_span_id TEXT, service TEXT NOT NULL,
    name TEXT NOT NULL, kind INTEGER NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
    status INTEGER NOT NULL, status_message TEXT, attributes TEXT NOT NULL, links TEXT NOT NULL,
    events TEXT NOT NULL, PRIMARY KEY (trace_id, span_id)
) WITHOUT ROWID;
CREATE INDEX "{prefix}_spans_service" ON "{spans}" (service, name, kind, start_ns);
INSERT INTO "{spans}" VALUES ('{trace}', '00000000000000b2', NULL, 'payment-service',
    'publish payments', 4, 2, 3, 0, NULL, '{{}}', '[]', '[]');
INSERT INTO "{spans}" VALUES ('{trace}', 'a1a1a1a1a1a1a1a1', NULL, 'order-gateway',
    'POST /create-order', 2, 1, 9, 0, NULL, '{{}}', '[]', '[]');
"#,
                    day = day.0,
                    logs = logs_ddl(&names),
                    spans = names.spans,
                    prefix = names.prefix,
                    trace = "4bf92f3577b34da6a3ce929d0e0e4736",
                ))
                .unwrap();
        }
        let writer = open_writer(&path).unwrap();
        let version: i64 = writer
            .query_row("SELECT value FROM layout WHERE key = 'version'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(version, LAYOUT_VERSION);
        // A rowid table: `rowid` is a column (a WITHOUT ROWID table has none), in start order.
        let spans: Vec<(i64, String)> = writer
            .prepare(&format!(
                r#"SELECT rowid, name FROM "{}" ORDER BY rowid"#,
                names.spans
            ))
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let names_in_order: Vec<&str> = spans.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names_in_order, ["POST /create-order", "publish payments"]);
        let indexes: Vec<String> = writer
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?1 ORDER BY name")
            .unwrap()
            .query_map([&names.spans], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            indexes,
            [
                format!("{}_spans_service", names.prefix),
                format!("{}_spans_trace", names.prefix)
            ]
        );
        // The unique index keeps one row per (trace, span): a re-sent span replaces its row.
        writer
            .execute(
                &format!(
                    r#"INSERT OR REPLACE INTO "{}" ({SPAN_COLUMNS}) VALUES
                       ('4bf92f3577b34da6a3ce929d0e0e4736', '00000000000000b2', NULL,
                        'payment-service', 'publish payments', 4, 2, 4, 0, NULL, '{{}}', '[]', '[]')"#,
                    names.spans
                ),
                [],
            )
            .unwrap();
        let count: i64 = writer
            .query_row(
                &format!(r#"SELECT count(*) FROM "{}""#, names.spans),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(count, 2);
    }
}
