//! Alert rules in SQLite: the `alert_rules` table, in a database file of its own beside the
//! logs' (`log-service.db` -> `log-service.rules.db`), on one connection of its own.
//!
//! Its own file, because in WAL mode a commit by any other connection to the logs' file makes
//! the log writer drop its whole page cache (64 MiB) at its next transaction: with the rules
//! in that file, one stored round of states every 15 s cost ingest 12-15% while it refilled
//! the cache. Rule writes are rare and small; a file of their own never touches the writer.

use std::path::{Path, PathBuf};
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

/// The rules' file beside the logs' file at `logs`.
fn rules_path(logs: &Path) -> PathBuf {
    logs.with_extension("rules.db")
}

/// Opens the rules' file beside the logs' file at `path` (which the log writer has created)
/// and its table, moving in the rules an earlier version kept in the logs' file.
pub(in crate::storage) async fn open_rules(path: &Path) -> Result<Arc<dyn RuleStore>, StoreError> {
    let logs = path.to_path_buf();
    let conn = tokio::task::spawn_blocking(move || {
        let conn = super::schema::open_maintenance(&rules_path(&logs))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(&schema(TABLE, "INTEGER", "INTEGER"))?;
        move_rules_from(&conn, &logs)?;
        Ok::<_, StoreError>(conn)
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))??;
    Ok(Arc::new(SqliteRules {
        conn: Arc::new(Mutex::new(conn)),
    }))
}

/// Moves the rules of the logs' file at `logs` (where versions before the rules' own file kept
/// them) into `conn`'s table, then drops them there. Safe to repeat: a rule already moved is
/// kept as it is.
fn move_rules_from(conn: &Connection, logs: &Path) -> Result<(), StoreError> {
    let logs = logs.to_str().ok_or_else(|| {
        StoreError::Task(format!("database path {} is not UTF-8", logs.display()))
    })?;
    conn.execute("ATTACH DATABASE ?1 AS logs", [logs])?;
    let moved = (|| -> Result<(), StoreError> {
        let exists = conn
            .query_row(
                "SELECT 1 FROM logs.sqlite_schema WHERE type = 'table' AND name = ?1",
                [TABLE],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if exists {
            conn.execute_batch(&format!(
                "INSERT OR IGNORE INTO main.{TABLE} ({RULE_COLUMNS}) \
                 SELECT {RULE_COLUMNS} FROM logs.{TABLE}; DROP TABLE logs.{TABLE};"
            ))?;
            tracing::info!(path = logs, "alert rules moved to their own file");
        }
        Ok(())
    })();
    conn.execute_batch("DETACH DATABASE logs")?;
    moved
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::RuleSpec;

    /// Rules an earlier version stored in the logs' file move to the rules' own file when the
    /// store opens, once, and the logs' file no longer holds them.
    #[tokio::test]
    async fn rules_kept_in_the_logs_file_move_to_their_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log-service.db");
        let spec = RuleSpec::parse(
            serde_json::json!({"name": "payment errors", "threshold": 5, "window_seconds": 60})
                .as_object()
                .unwrap(),
            &[],
        )
        .unwrap();
        let rule = Rule::new("acme", spec);
        {
            let logs = super::super::schema::open_writer(&path).unwrap();
            logs.execute_batch(&schema(TABLE, "INTEGER", "INTEGER"))
                .unwrap();
            let params: [&dyn ToSql; 17] = rule_params!(rule);
            logs.execute(&upsert_sql(TABLE, Placeholders::Question), params)
                .unwrap();
        }
        for _ in 0..2 {
            let rules = open_rules(&path).await.unwrap();
            let listed = rules.list_rules(None).await.unwrap();
            assert_eq!(
                listed
                    .iter()
                    .map(|r| (&r.id, &r.tenant))
                    .collect::<Vec<_>>(),
                [(&rule.id, &rule.tenant)]
            );
        }
        let logs = Connection::open(&path).unwrap();
        let left: i64 = logs
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name = ?1",
                [TABLE],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0, "the logs' file still holds the rules table");
        assert!(rules_path(&path).exists());
    }
}
