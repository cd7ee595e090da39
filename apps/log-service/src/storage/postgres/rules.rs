//! Alert rules in PostgreSQL: the `log_alert_rules` table, on a connection of its own (reopened
//! when the server closed it) so a rule change never queues behind the log writer's inserts.

use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::{Client, Row};

use crate::alerts::{Rule, Status};
use crate::storage::rules::{RULE_COLUMNS, RuleKey, RuleRow, RuleStore};
use crate::storage::{Read, StoreError};

/// The rules table; names are unique per tenant, so a rules file upserts by name.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS log_alert_rules (
    id                TEXT PRIMARY KEY,
    tenant            TEXT NOT NULL,
    name              TEXT NOT NULL,
    service           TEXT,
    min_level         TEXT,
    query             TEXT,
    threshold         BIGINT NOT NULL,
    window_seconds    BIGINT NOT NULL,
    for_seconds       BIGINT NOT NULL,
    severity          TEXT NOT NULL,
    enabled           BOOLEAN NOT NULL,
    state             TEXT NOT NULL,
    active_since_ns   BIGINT,
    fired_at_ns       BIGINT,
    last_value        BIGINT,
    last_evaluated_ns BIGINT,
    trace_id          TEXT,
    UNIQUE (tenant, name)
);
"#;

/// The rule store on its own connection.
pub(super) struct PgRules {
    url: String,
    client: Mutex<Client>,
}

/// Connects and creates the table.
pub(in crate::storage) async fn open_rules(url: &str) -> Result<Arc<dyn RuleStore>, StoreError> {
    let mut client = super::connect(url).await?;
    // Under the DDL lock, so replicas starting together do not create the table twice.
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&super::schema::DDL_LOCK],
    )
    .await?;
    tx.batch_execute(SCHEMA).await?;
    tx.commit().await?;
    Ok(Arc::new(PgRules {
        url: url.to_owned(),
        client: Mutex::new(client),
    }))
}

impl PgRules {
    /// The connection, reopened when the server closed it.
    async fn client(&self) -> Result<MutexGuard<'_, Client>, StoreError> {
        let mut client = self.client.lock().await;
        if client.is_closed() {
            *client = super::connect(&self.url).await?;
        }
        Ok(client)
    }
}

fn rule_from_row(row: &Row) -> Rule {
    RuleRow {
        id: row.get(0),
        tenant: row.get(1),
        name: row.get(2),
        service: row.get(3),
        min_level: row.get(4),
        query: row.get(5),
        threshold: row.get(6),
        window_seconds: row.get(7),
        for_seconds: row.get(8),
        severity: row.get(9),
        enabled: row.get(10),
        state: row.get(11),
        active_since_ns: row.get(12),
        fired_at_ns: row.get(13),
        last_value: row.get(14),
        last_evaluated_ns: row.get(15),
        trace_id: row.get(16),
    }
    .into()
}

impl RuleStore for PgRules {
    fn list_rules<'a>(&'a self, tenant: Option<&'a str>) -> Read<'a, Vec<Rule>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {RULE_COLUMNS} FROM log_alert_rules \
                 WHERE $1::text IS NULL OR tenant = $1 ORDER BY tenant, name"
            );
            let rows = self.client().await?.query(&sql, &[&tenant]).await?;
            Ok(rows.iter().map(rule_from_row).collect())
        })
    }

    fn find_rule<'a>(&'a self, tenant: &'a str, key: RuleKey<'a>) -> Read<'a, Option<Rule>> {
        Box::pin(async move {
            let (column, value) = key.column_and_value();
            let sql = format!(
                "SELECT {RULE_COLUMNS} FROM log_alert_rules WHERE tenant = $1 AND {column} = $2"
            );
            let row = self
                .client()
                .await?
                .query_opt(&sql, &[&tenant, &value])
                .await?;
            Ok(row.as_ref().map(rule_from_row))
        })
    }

    fn put_rule<'a>(&'a self, rule: &'a Rule) -> Read<'a, ()> {
        Box::pin(async move {
            let (spec, status) = (&rule.spec, &rule.status);
            let sql = format!(
                "INSERT INTO log_alert_rules ({RULE_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, service = excluded.service, \
                 min_level = excluded.min_level, query = excluded.query, \
                 threshold = excluded.threshold, window_seconds = excluded.window_seconds, \
                 for_seconds = excluded.for_seconds, severity = excluded.severity, \
                 enabled = excluded.enabled, state = excluded.state, \
                 active_since_ns = excluded.active_since_ns, fired_at_ns = excluded.fired_at_ns, \
                 last_value = excluded.last_value, last_evaluated_ns = excluded.last_evaluated_ns, \
                 trace_id = excluded.trace_id"
            );
            let min_level = spec.min_level.map(|l| l.as_str());
            self.client()
                .await?
                .execute(
                    &sql,
                    &[
                        &rule.id,
                        &rule.tenant,
                        &spec.name,
                        &spec.service,
                        &min_level,
                        &spec.query,
                        &(spec.threshold as i64),
                        &(spec.window_seconds as i64),
                        &(spec.for_seconds as i64),
                        &spec.severity,
                        &spec.enabled,
                        &status.state.as_str(),
                        &status.active_since_ns,
                        &status.fired_at_ns,
                        &status.last_value,
                        &status.last_evaluated_ns,
                        &status.trace_id,
                    ],
                )
                .await?;
            Ok(())
        })
    }

    fn save_status<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
        status: &'a Status,
    ) -> Read<'a, bool> {
        Box::pin(async move {
            let changed = self
                .client()
                .await?
                .execute(
                    "UPDATE log_alert_rules SET state = $3, active_since_ns = $4, \
                     fired_at_ns = $5, last_value = $6, last_evaluated_ns = $7, trace_id = $8 \
                     WHERE tenant = $1 AND id = $2 AND enabled",
                    &[
                        &tenant,
                        &id,
                        &status.state.as_str(),
                        &status.active_since_ns,
                        &status.fired_at_ns,
                        &status.last_value,
                        &status.last_evaluated_ns,
                        &status.trace_id,
                    ],
                )
                .await?;
            Ok(changed > 0)
        })
    }

    fn delete_rule<'a>(&'a self, tenant: &'a str, id: &'a str) -> Read<'a, bool> {
        Box::pin(async move {
            let deleted = self
                .client()
                .await?
                .execute(
                    "DELETE FROM log_alert_rules WHERE tenant = $1 AND id = $2",
                    &[&tenant, &id],
                )
                .await?;
            Ok(deleted > 0)
        })
    }
}
