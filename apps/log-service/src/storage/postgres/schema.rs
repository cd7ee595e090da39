//! The PostgreSQL schema: the minisource REST API's `log_entries` table (tenant, service_name,
//! level, message, timestamp, trace_id, span_id, user_id, request_id, metadata JSONB, source,
//! host, environment), plus `log_spans`, `log_services` and `log_error_traces` for traces and
//! DAGs. Every statement is idempotent, so it runs at every start.
//!
//! `log_entries` and `log_spans` are partitioned: by tenant (`LIST`), then by UTC day
//! (`RANGE` on `timestamp` and `start_us`), so retention drops one tenant's day as a table. The
//! writer creates a tenant's partitions (see [`partition_ddl`]) as its days arrive, and the
//! next day's ahead; `log_partitions` lists the day partitions and `log_tenants` numbers the
//! tenants for the partitions' names.
//!
//! The indexes that serve a page newest first (`idx_log_entries_newest`, by service, and of
//! warnings and worse) are in `ORDER BY timestamp DESC, id DESC` order and do not lead with
//! `tenant_id`: the page reads the tenant's own partition (see `page`). A database of an earlier
//! version gets them, on every partition, at the first start that lacks them, which also drops
//! `idx_log_entries_tenant_timestamp`, whose work they took over. Searches read the stored
//! `message_terms` (the words of `message`) and its GIN index `idx_log_entries_terms`; an
//! earlier version's database gets the column at its first start, in place of the index on
//! the words computed from `message` (`idx_log_entries_search`).

use tokio_postgres::Client;

use crate::storage::StoreError;
use crate::storage::day::Day;

const SCHEMA: &str = r#"
CREATE SEQUENCE IF NOT EXISTS log_entries_id_seq;
CREATE TABLE IF NOT EXISTS log_entries (
    id             BIGINT NOT NULL DEFAULT nextval('log_entries_id_seq'),
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
) PARTITION BY LIST (tenant_id);
CREATE INDEX IF NOT EXISTS idx_log_entries_id ON log_entries (id);
DROP INDEX IF EXISTS idx_log_entries_tenant_timestamp;
CREATE INDEX IF NOT EXISTS idx_log_entries_newest ON log_entries (timestamp DESC, id DESC);
CREATE INDEX IF NOT EXISTS idx_log_entries_service_newest ON log_entries (service_name, timestamp DESC, id DESC);
CREATE INDEX IF NOT EXISTS idx_log_entries_severe_newest ON log_entries (timestamp DESC, id DESC) INCLUDE (level) WHERE level IN ('WARN', 'ERROR', 'FATAL');
CREATE INDEX IF NOT EXISTS idx_log_entries_trace ON log_entries (tenant_id, trace_id, timestamp) WHERE trace_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_log_entries_request ON log_entries (tenant_id, request_id, timestamp) WHERE request_id IS NOT NULL;
-- The message's words, stored: a search that matches many rows is answered by testing rows
-- newest first (and counted in storage order), which computing each row's words again would
-- make slow. Added to a database of an earlier version, which rewrites each of its partitions
-- once; looked up first, since ALTER TABLE locks out every reader even when it has nothing to do.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'log_entries'::regclass
                   AND attname = 'message_terms' AND NOT attisdropped) THEN
        ALTER TABLE log_entries ADD COLUMN message_terms TSVECTOR
            GENERATED ALWAYS AS (to_tsvector('simple', message)) STORED;
    END IF;
END $$;
DROP INDEX IF EXISTS idx_log_entries_search;
CREATE INDEX IF NOT EXISTS idx_log_entries_terms ON log_entries USING GIN (message_terms);
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
    PRIMARY KEY (tenant_id, trace_id, span_id, start_us)
) PARTITION BY LIST (tenant_id);
CREATE INDEX IF NOT EXISTS idx_log_spans_service ON log_spans (tenant_id, service_name, name, kind, start_us);
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
CREATE TABLE IF NOT EXISTS log_tenants (
    id        SERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS log_partitions (
    tenant_id TEXT NOT NULL,
    day       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day)
);
CREATE TABLE IF NOT EXISTS log_retention_policies (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL UNIQUE,
    retention_days INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
"#;

/// The advisory lock that orders the writer's transactions (shared) against partition drops
/// (exclusive): a drop never lands between the writer's check of a partition and its insert.
pub(super) const PARTITION_LOCK: i64 = 0x6c6f_6773_7061_7274;

/// The advisory lock that serializes DDL between replicas on one database: the schema's
/// creation at start and the writers' creation of partitions. PostgreSQL's `IF NOT EXISTS`
/// does not make two concurrent creations of one table safe (the second fails on the catalog's
/// unique index), so the creators take turns.
pub(super) const DDL_LOCK: i64 = 0x6c6f_6773_6464_6c00;

/// Names of one tenant's tables.
#[derive(Debug, Clone)]
pub(super) struct TenantNames {
    pub logs: String,
    pub spans: String,
}

impl TenantNames {
    /// The names of the tenant numbered `n` in `log_tenants`.
    pub fn new(n: i32) -> TenantNames {
        TenantNames {
            logs: format!("log_entries_t{n}"),
            spans: format!("log_spans_t{n}"),
        }
    }

    /// The names of the tenant's partitions for `day`.
    pub fn day(&self, day: Day) -> TenantNames {
        TenantNames {
            logs: format!("{}_{}", self.logs, day.compact()),
            spans: format!("{}_{}", self.spans, day.compact()),
        }
    }
}

/// A string as an SQL literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Creates the tenant's own partitions (the parents of its days).
pub(super) fn tenant_ddl(names: &TenantNames, tenant: &str) -> String {
    let value = literal(tenant);
    format!(
        "CREATE TABLE IF NOT EXISTS {} PARTITION OF log_entries FOR VALUES IN ({value}) \
         PARTITION BY RANGE (timestamp);
         CREATE TABLE IF NOT EXISTS {} PARTITION OF log_spans FOR VALUES IN ({value}) \
         PARTITION BY RANGE (start_us);",
        names.logs, names.spans
    )
}

/// Creates the tenant's partitions of one day.
pub(super) fn partition_ddl(tenant: &TenantNames, day: Day) -> String {
    let names = tenant.day(day);
    let (from_us, to_us) = (day.start_ns() / 1000, day.end_ns() / 1000);
    // Bounds must be constants: the instants are spelled out in UTC.
    let instant = |d: Day| format!("'{} 00:00:00+00'", d.iso());
    format!(
        "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({});
         CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({from_us}) TO ({to_us});",
        names.logs,
        tenant.logs,
        instant(day),
        instant(Day(day.0 + 1)),
        names.spans,
        tenant.spans,
    )
}

/// Creates whatever is missing of the schema; refuses a database that holds the unpartitioned
/// tables of an earlier log-service.
pub(super) async fn create(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&DDL_LOCK])
        .await?;
    let row = tx
        .query_opt(
            "SELECT c.relkind::text, current_database() FROM pg_class c \
             WHERE c.relname = 'log_entries' AND c.relnamespace = current_schema()::regnamespace",
            &[],
        )
        .await?;
    if let Some(row) = row {
        let kind: String = row.get(0);
        let database: String = row.get(1);
        if kind != "p" {
            return Err(StoreError::OldLayout(format!(
                "database {database} holds the unpartitioned log_entries table of an earlier \
                 log-service; rename or drop log_entries, log_spans, log_services and \
                 log_error_traces (or point DATABASE_URL at a new database) and start again: \
                 log-service then creates the partitioned layout"
            )));
        }
    }
    tx.batch_execute(SCHEMA).await?;
    tx.commit().await?;
    Ok(())
}
