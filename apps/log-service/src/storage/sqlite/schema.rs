//! The SQLite schema, one partition per tenant and UTC day, and how connections are opened: the
//! writer's (which creates the schema) and the readers' (read-only).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

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
INSERT OR IGNORE INTO layout (key, value) VALUES ('version', 2), ('next_log_id', 1);
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

/// The version of the layout this build writes: 2 is the per-(tenant, day) partitions.
const LAYOUT_VERSION: i64 = 2;

/// Names of one partition's tables: `p<tenant>_<YYYYMMDD>_logs`, `_fts` and `_spans`.
#[derive(Debug, Clone)]
pub(super) struct PartitionNames {
    /// Logs, rowid = log id.
    pub logs: String,
    /// The contentless full-text index of the logs' messages, rowid = log id.
    pub fts: String,
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
            spans: format!("{prefix}_spans"),
            prefix,
        }
    }
}

/// The statements that create one partition. The trace and request indexes end with `ts` (and
/// the implicit rowid) so a lookup returns rows already in `ORDER BY ts, id` order; the spans'
/// service index serves the trace search by service (and operation) and the lists of services
/// and operations.
pub(super) fn partition_ddl(names: &PartitionNames) -> String {
    let PartitionNames {
        logs,
        fts,
        spans,
        prefix,
    } = names;
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
CREATE VIRTUAL TABLE IF NOT EXISTS "{fts}" USING fts5 (
    message, content = '', detail = none
);
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
    events         TEXT NOT NULL,
    PRIMARY KEY (trace_id, span_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "{prefix}_spans_service" ON "{spans}" (service, name, kind, start_ns);
"#
    )
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
        if version != LAYOUT_VERSION {
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
    let writer = Connection::open(path)?;
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
    writer.set_prepared_statement_cache_capacity(256);
    Ok(writer)
}

/// Opens retention's read-write connection to a file the writer has opened.
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
