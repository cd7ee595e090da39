//! Alert rules in PostgreSQL: the `log_alert_rules` table, on a connection of its own (reopened
//! when the server closed it) so a rule change never queues behind the log writer's inserts.

use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use crate::alerts::Rule;
use crate::storage::rules::{
    RULE_COLUMNS, RuleColumns, RuleKey, RuleOutcome, RuleStore, rule_from_row, rule_params,
    save_status_sql, schema, status_params, upsert_sql,
};
use crate::storage::sql::Placeholders;
use crate::storage::{Read, StoreError};

/// The rules table.
const TABLE: &str = "log_alert_rules";

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
    tx.batch_execute(&schema(TABLE, "BIGINT", "BOOLEAN"))
        .await?;
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

impl RuleColumns for Row {
    type Error = tokio_postgres::Error;
    fn text(&self, index: usize) -> Result<String, Self::Error> {
        self.try_get(index)
    }
    fn optional_text(&self, index: usize) -> Result<Option<String>, Self::Error> {
        self.try_get(index)
    }
    fn integer(&self, index: usize) -> Result<i64, Self::Error> {
        self.try_get(index)
    }
    fn optional_integer(&self, index: usize) -> Result<Option<i64>, Self::Error> {
        self.try_get(index)
    }
    fn boolean(&self, index: usize) -> Result<bool, Self::Error> {
        self.try_get(index)
    }
}

impl RuleStore for PgRules {
    fn list_rules<'a>(&'a self, tenant: Option<&'a str>) -> Read<'a, Vec<Rule>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {RULE_COLUMNS} FROM {TABLE} \
                 WHERE $1::text IS NULL OR tenant = $1 ORDER BY tenant, name"
            );
            let rows = self.client().await?.query(&sql, &[&tenant]).await?;
            Ok(rows.iter().map(rule_from_row).collect::<Result<_, _>>()?)
        })
    }

    fn find_rule<'a>(&'a self, tenant: &'a str, key: RuleKey<'a>) -> Read<'a, Option<Rule>> {
        Box::pin(async move {
            let (column, value) = key.column_and_value();
            let sql =
                format!("SELECT {RULE_COLUMNS} FROM {TABLE} WHERE tenant = $1 AND {column} = $2");
            let row = self
                .client()
                .await?
                .query_opt(&sql, &[&tenant, &value])
                .await?;
            Ok(row.as_ref().map(rule_from_row).transpose()?)
        })
    }

    fn put_rule<'a>(&'a self, rule: &'a Rule) -> Read<'a, ()> {
        Box::pin(async move {
            let params: [&(dyn ToSql + Sync); 17] = rule_params!(rule);
            let sql = upsert_sql(TABLE, Placeholders::Dollar);
            self.client().await?.execute(&sql, &params).await?;
            Ok(())
        })
    }

    fn save_statuses<'a>(&'a self, outcomes: &'a [RuleOutcome]) -> Read<'a, Vec<bool>> {
        Box::pin(async move {
            let sql = save_status_sql(TABLE, Placeholders::Dollar);
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let statement = tx.prepare(&sql).await?;
            let mut saved = Vec::with_capacity(outcomes.len());
            for RuleOutcome { tenant, id, status } in outcomes {
                let params: [&(dyn ToSql + Sync); 8] = status_params!([tenant, id] status);
                saved.push(tx.execute(&statement, &params).await? > 0);
            }
            tx.commit().await?;
            Ok(saved)
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
