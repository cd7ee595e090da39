//! Alert rules in SQLite: the `alert_rules` table, written and read on one connection of its own
//! (rule writes are small; WAL and the busy timeout let them interleave with the log writer's
//! commits, and the writer alone checkpoints).

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, ToSql};

use crate::alerts::Rule;
use crate::storage::rules::{
    RULE_COLUMNS, RuleColumns, RuleKey, RuleOutcome, RuleStore, rule_from_row, rule_params,
    save_status_sql, schema, status_params, upsert_sql,
};
use crate::storage::sql::Placeholders;
use crate::storage::{Read, StoreError};

/// The rules table.
const TABLE: &str = "alert_rules";

/// The rule store on its own read-write connection.
pub(super) struct SqliteRules {
    conn: Arc<Mutex<Connection>>,
}

/// Opens a connection to the database at `path` (created by the log writer) and the table.
pub(in crate::storage) async fn open_rules(path: &Path) -> Result<Arc<dyn RuleStore>, StoreError> {
    let path = path.to_path_buf();
    let conn = tokio::task::spawn_blocking(move || {
        let conn = super::schema::open_maintenance(&path)?;
        // The writer checkpoints (every ~32 MiB of WAL). With SQLite's default of 1,000 pages
        // the WAL is always past this connection's threshold, so each status saved copied the
        // whole WAL into the database itself: a save took up to 1.4 s while ingest ran, and
        // ingest stalled behind it (10% fewer records/s with rules evaluated every 15 s).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.execute_batch(&schema(TABLE, "INTEGER", "INTEGER"))?;
        Ok::<_, StoreError>(conn)
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))??;
    Ok(Arc::new(SqliteRules {
        conn: Arc::new(Mutex::new(conn)),
    }))
}

impl RuleColumns for rusqlite::Row<'_> {
    type Error = rusqlite::Error;
    fn text(&self, index: usize) -> Result<String, Self::Error> {
        self.get(index)
    }
    fn optional_text(&self, index: usize) -> Result<Option<String>, Self::Error> {
        self.get(index)
    }
    fn integer(&self, index: usize) -> Result<i64, Self::Error> {
        self.get(index)
    }
    fn optional_integer(&self, index: usize) -> Result<Option<i64>, Self::Error> {
        self.get(index)
    }
    fn boolean(&self, index: usize) -> Result<bool, Self::Error> {
        self.get(index)
    }
}

impl SqliteRules {
    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

impl RuleStore for SqliteRules {
    fn list_rules<'a>(&'a self, tenant: Option<&'a str>) -> Read<'a, Vec<Rule>> {
        let tenant = tenant.map(str::to_owned);
        Box::pin(self.with(move |conn| {
            let sql = format!(
                "SELECT {RULE_COLUMNS} FROM {TABLE} \
                 WHERE ?1 IS NULL OR tenant = ?1 ORDER BY tenant, name"
            );
            Ok(conn
                .prepare_cached(&sql)?
                .query_map([tenant], |row| rule_from_row(row))?
                .collect::<Result<Vec<_>, _>>()?)
        }))
    }

    fn find_rule<'a>(&'a self, tenant: &'a str, key: RuleKey<'a>) -> Read<'a, Option<Rule>> {
        let (column, value) = key.column_and_value();
        let (tenant, value) = (tenant.to_owned(), value.to_owned());
        Box::pin(self.with(move |conn| {
            let sql =
                format!("SELECT {RULE_COLUMNS} FROM {TABLE} WHERE tenant = ?1 AND {column} = ?2");
            Ok(conn
                .prepare_cached(&sql)?
                .query_row([tenant, value], |row| rule_from_row(row))
                .optional()?)
        }))
    }

    fn put_rule<'a>(&'a self, rule: &'a Rule) -> Read<'a, ()> {
        let rule = rule.clone();
        Box::pin(self.with(move |conn| {
            let params: [&dyn ToSql; 17] = rule_params!(rule);
            let sql = upsert_sql(TABLE, Placeholders::Question);
            conn.prepare_cached(&sql)?.execute(params)?;
            Ok(())
        }))
    }

    fn save_statuses<'a>(&'a self, outcomes: &'a [RuleOutcome]) -> Read<'a, Vec<bool>> {
        let outcomes = outcomes.to_vec();
        Box::pin(self.with(move |conn| {
            let sql = save_status_sql(TABLE, Placeholders::Question);
            let tx = conn.unchecked_transaction()?;
            let mut saved = Vec::with_capacity(outcomes.len());
            {
                let mut statement = tx.prepare_cached(&sql)?;
                for RuleOutcome { tenant, id, status } in &outcomes {
                    let params: [&dyn ToSql; 8] = status_params!([tenant, id] status);
                    saved.push(statement.execute(params)? > 0);
                }
            }
            tx.commit()?;
            Ok(saved)
        }))
    }

    fn delete_rule<'a>(&'a self, tenant: &'a str, id: &'a str) -> Read<'a, bool> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        Box::pin(self.with(move |conn| {
            let deleted = conn
                .prepare_cached("DELETE FROM alert_rules WHERE tenant = ?1 AND id = ?2")?
                .execute([tenant, id])?;
            Ok(deleted > 0)
        }))
    }
}
