//! The SQLite schema and how connections are opened: the writer's (which creates the schema) and
//! the readers' (read-only).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::storage::StoreError;

/// Tables and indexes. The trace and request indexes end with `ts` (and the implicit rowid) so a
/// lookup returns rows already in `ORDER BY ts, id` order: without that, the planner may walk
/// `logs_tenant_ts` in time order and filter, which is a scan of the whole tenant. Tenants and
/// services are small lookup tables so that the big `logs` table stores a tenant as an integer,
/// and `/services` never scans it.
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

/// Opens the writer's connection, creating the parent directory and the schema.
pub(super) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let writer = Connection::open(path)?;
    writer.busy_timeout(Duration::from_secs(10))?;
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
    Ok(writer)
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
    Ok(conn)
}
