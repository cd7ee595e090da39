//! Retention's side of PostgreSQL: policies, the partition list, and dropping one tenant's day,
//! on a connection of its own. A drop holds the partition lock exclusively, so it waits for the
//! writer's transaction in flight and the writer's next one sees the partition gone.

use tokio::sync::Mutex;
use tokio_postgres::{Client, Row};

use super::connect;
use super::schema::{PARTITION_LOCK, TenantNames};
use crate::storage::day::Day;
use crate::storage::partitions::policy_exists;
use crate::storage::{Dropped, Partitions, Policy, Read, Size, StoreError, StoredPartition};

/// Policies and partitions of one database.
pub(super) struct PgPartitions {
    url: String,
    client: Mutex<Client>,
}

const POLICY_COLUMNS: &str = "id, tenant_id, retention_days::int8, created_at, updated_at";

fn policy_from_row(row: &Row) -> Policy {
    Policy {
        id: row.get(0),
        tenant_id: row.get(1),
        retention_days: row.get(2),
        created_at: row.get(3),
        updated_at: row.get(4),
    }
}

impl PgPartitions {
    /// Connects retention's own connection.
    pub(super) async fn open(url: &str) -> Result<PgPartitions, StoreError> {
        Ok(PgPartitions {
            url: url.to_owned(),
            client: Mutex::new(connect(url).await?),
        })
    }

    /// The connection, reopened when the server closed it.
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Client>, StoreError> {
        let mut client = self.client.lock().await;
        if client.is_closed() {
            *client = connect(&self.url).await?;
        }
        Ok(client)
    }

    async fn one_policy(&self, column: &str, value: &str) -> Result<Option<Policy>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {POLICY_COLUMNS} FROM log_retention_policies WHERE {column} = $1"),
                &[&value],
            )
            .await?;
        Ok(row.as_ref().map(policy_from_row))
    }
}

/// The tenant's day tables, `None` when the tenant never wrote.
pub(super) async fn day_names(
    client: &impl tokio_postgres::GenericClient,
    tenant: &str,
    day: Day,
) -> Result<Option<TenantNames>, StoreError> {
    let row = client
        .query_opt(
            "SELECT id FROM log_tenants WHERE tenant_id = $1",
            &[&tenant],
        )
        .await?;
    Ok(row.map(|r| TenantNames::new(r.get(0)).day(day)))
}

/// Rows and bytes of one day's tables.
pub(super) async fn day_usage(
    client: &impl tokio_postgres::GenericClient,
    names: &TenantNames,
) -> Result<(i64, i64, i64), StoreError> {
    let row = client
        .query_one(
            &format!(
                "SELECT (SELECT COUNT(*) FROM {logs}), (SELECT COUNT(*) FROM {spans}), \
                 pg_total_relation_size('{logs}') + pg_total_relation_size('{spans}')",
                logs = names.logs,
                spans = names.spans
            ),
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

impl Partitions for PgPartitions {
    fn policies(&self) -> Read<'_, Vec<Policy>> {
        Box::pin(async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {POLICY_COLUMNS} FROM log_retention_policies ORDER BY tenant_id"
                    ),
                    &[],
                )
                .await?;
            Ok(rows.iter().map(policy_from_row).collect())
        })
    }

    fn tenant_policy<'a>(&'a self, tenant: &'a str) -> Read<'a, Option<Policy>> {
        Box::pin(self.one_policy("tenant_id", tenant))
    }

    fn create_policy<'a>(&'a self, policy: &'a Policy) -> Read<'a, ()> {
        Box::pin(async move {
            let client = self.client().await?;
            let days = policy.retention_days as i32;
            let inserted = client
                .execute(
                    "INSERT INTO log_retention_policies \
                     (id, tenant_id, retention_days, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO NOTHING",
                    &[
                        &policy.id,
                        &policy.tenant_id,
                        &days,
                        &policy.created_at,
                        &policy.updated_at,
                    ],
                )
                .await?;
            if inserted == 0 {
                return Err(policy_exists(policy));
            }
            Ok(())
        })
    }

    fn update_policy<'a>(
        &'a self,
        id: &'a str,
        retention_days: i64,
        updated_at: &'a str,
    ) -> Read<'a, Option<Policy>> {
        Box::pin(async move {
            let client = self.client().await?;
            let days = retention_days as i32;
            let row = client
                .query_opt(
                    &format!(
                        "UPDATE log_retention_policies SET retention_days = $2, updated_at = $3 \
                         WHERE id = $1 RETURNING {POLICY_COLUMNS}"
                    ),
                    &[&id, &days, &updated_at],
                )
                .await?;
            Ok(row.as_ref().map(policy_from_row))
        })
    }

    fn delete_policy<'a>(&'a self, id: &'a str) -> Read<'a, bool> {
        Box::pin(async move {
            let client = self.client().await?;
            let n = client
                .execute("DELETE FROM log_retention_policies WHERE id = $1", &[&id])
                .await?;
            Ok(n > 0)
        })
    }

    fn partitions(&self) -> Read<'_, Vec<StoredPartition>> {
        Box::pin(async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT tenant_id, day FROM log_partitions ORDER BY day, tenant_id",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| StoredPartition {
                    tenant: r.get(0),
                    day: Day(r.get::<_, i32>(1) as i64),
                })
                .collect())
        })
    }

    fn drop_partition<'a>(&'a self, tenant: &'a str, day: Day) -> Read<'a, Dropped> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
                .await?;
            let day_no = day.0 as i32;
            let listed = tx
                .query_opt(
                    "DELETE FROM log_partitions WHERE tenant_id = $1 AND day = $2 RETURNING day",
                    &[&tenant, &day_no],
                )
                .await?;
            let Some(names) = day_names(&tx, tenant, day).await? else {
                return Ok(Dropped::default());
            };
            if listed.is_none() {
                return Ok(Dropped::default());
            }
            let (log_rows, span_rows, bytes) = day_usage(&tx, &names).await?;
            // DROP, not DETACH and DROP: the lock above already keeps the writer out.
            tx.batch_execute(&format!(
                "DROP TABLE IF EXISTS {}; DROP TABLE IF EXISTS {};",
                names.logs, names.spans
            ))
            .await?;
            let end_us = day.end_ns() / 1000;
            let error_trace_rows = tx
                .execute(
                    "DELETE FROM log_error_traces WHERE tenant_id = $1 AND last_us < $2",
                    &[&tenant, &end_us],
                )
                .await? as i64;
            tx.commit().await?;
            Ok(Dropped {
                log_rows,
                span_rows,
                error_trace_rows,
                bytes,
            })
        })
    }

    fn size(&self) -> Read<'_, Size> {
        Box::pin(async move {
            let client = self.client().await?;
            let bytes: i64 = client
                .query_one("SELECT pg_database_size(current_database())", &[])
                .await?
                .get(0);
            Ok(Size {
                used: bytes,
                on_disk: bytes,
            })
        })
    }
}
