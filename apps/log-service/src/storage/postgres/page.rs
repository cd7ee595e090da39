//! The search page's read: a page of a tenant's logs newest first, and the number of matches
//! up to a bound.
//!
//! Both statements read the tenant's own partition (`log_entries_t<n>`, its days below it)
//! rather than `log_entries` with a `tenant_id` condition. Each tenant partition holds one
//! tenant, so the condition selects every row, yet without statistics (the server may run
//! without autovacuum) the planner takes it for a rare value, builds bitmaps of the whole
//! partition and sorts them. Without it, the newest-first indexes of every day
//! (`idx_log_entries_newest`, `..._service_newest`, `..._severe_newest`, see `schema`) match
//! the `ORDER BY`, the days are appended newest first, and the scan stops at the page's end.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio_postgres::Client;

use super::reader::{LOG_COLUMNS, filter_conditions, log_from_row};
use super::schema::TenantNames;
use super::{Params, refs};
use crate::model::{LogFilter, LogView};
use crate::storage::StoreError;

/// The tenants' partitions of `log_entries` by tenant, as `log_tenants` numbers them. A
/// tenant's number never changes, so a name once found stays right.
#[derive(Default)]
pub(super) struct TenantTables {
    known: Mutex<HashMap<String, String>>,
}

impl TenantTables {
    /// The tenant's partition of `log_entries`; `None` while the tenant has never written.
    async fn logs(&self, client: &Client, tenant: &str) -> Result<Option<String>, StoreError> {
        if let Some(table) = self.lock().get(tenant) {
            return Ok(Some(table.clone()));
        }
        let Some(row) = client
            .query_opt(
                "SELECT id FROM log_tenants WHERE tenant_id = $1",
                &[&tenant],
            )
            .await?
        else {
            return Ok(None);
        };
        let table = TenantNames::new(row.get(0)).logs;
        self.lock().insert(tenant.to_owned(), table.clone());
        Ok(Some(table))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // The map is only ever extended with right names: one poisoned by a panic is still good.
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Up to `limit` of the tenant's logs matching `filter` after `offset`, newest first, and the
/// number of matches, counted up to `count_up_to` when given.
pub(super) async fn query_logs(
    client: &Client,
    tables: &TenantTables,
    tenant: &str,
    filter: &LogFilter,
    (limit, offset): (u32, u64),
    count_up_to: Option<u64>,
) -> Result<(Vec<LogView>, i64), StoreError> {
    let Some(table) = tables.logs(client, tenant).await? else {
        return Ok((Vec::new(), 0));
    };
    let (where_sql, params) = tenant_partition_clause(tenant, filter);
    let page_sql = format!(
        "SELECT {LOG_COLUMNS} FROM {table} WHERE {where_sql} \
         ORDER BY timestamp DESC, id DESC LIMIT {limit} OFFSET {offset}"
    );
    // The count needs no order, so the planner takes the cheapest way to its bound: a scan in
    // storage order for a common value (testing a common word's stored terms row by row), an
    // index for a rare one; either stops at the bound's match.
    let count_sql = match count_up_to {
        Some(cap) => format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE {where_sql} LIMIT {cap}) AS bounded"
        ),
        None => format!("SELECT COUNT(*) FROM {table} WHERE {where_sql}"),
    };
    let params = refs(&params);
    // One connection pipelines both statements: the page costs the slower of the two.
    let (rows, total) = tokio::try_join!(
        client.query(&page_sql, &params),
        client.query_one(&count_sql, &params),
    )?;
    Ok((rows.iter().map(log_from_row).collect(), total.get(0)))
}

/// The WHERE clause of `filter` within the tenant's partition. Only a trace or request id
/// filter names the tenant too: those ids' indexes lead with `tenant_id`.
fn tenant_partition_clause(tenant: &str, filter: &LogFilter) -> (String, Params) {
    let by_id = filter.trace_id.is_some() || filter.request_id.is_some();
    filter_conditions(by_id.then_some(tenant), filter)
}
