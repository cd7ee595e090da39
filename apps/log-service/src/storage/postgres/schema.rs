//! The PostgreSQL schema: the minisource REST API's `log_entries` table (tenant, service_name,
//! level, message, timestamp, trace_id, span_id, user_id, request_id, metadata JSONB, source,
//! host, environment), plus `log_spans`, `log_services` and `log_error_traces` for traces and
//! DAGs. Every statement is idempotent, so it runs at every start.

use tokio_postgres::Client;

use crate::storage::StoreError;

const SCHEMA: &str = r#"
CREATE SEQUENCE IF NOT EXISTS log_entries_id_seq;
CREATE TABLE IF NOT EXISTS log_entries (
    id             BIGINT PRIMARY KEY DEFAULT nextval('log_entries_id_seq'),
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
);
CREATE INDEX IF NOT EXISTS idx_log_entries_tenant_timestamp ON log_entries (tenant_id, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_log_entries_trace ON log_entries (tenant_id, trace_id, timestamp) WHERE trace_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_log_entries_request ON log_entries (tenant_id, request_id, timestamp) WHERE request_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_log_entries_search ON log_entries USING GIN (to_tsvector('simple', message));
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
    PRIMARY KEY (tenant_id, trace_id, span_id)
);
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
"#;

/// Creates whatever is missing of the schema.
pub(super) async fn create(client: &Client) -> Result<(), StoreError> {
    client.batch_execute(SCHEMA).await?;
    Ok(())
}
