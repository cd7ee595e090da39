//! Where log alert rules and their evaluation state are kept: the [`RuleStore`] trait, which
//! each backend implements beside its logs (`sqlite/rules.rs`, `postgres/rules.rs`), in a table
//! of its own that is created when the store opens.
//!
//! Rules are few and written seldom (a change through the API, one transaction of states per
//! evaluation round), so they bypass the log writer's group-commit queue: each backend writes
//! them on a connection of their own.

use std::sync::Arc;

use crate::alerts::{Rule, RuleSpec, State, Status};
use crate::config::DatabaseConfig;
use crate::model::Level;

use super::sql::Placeholders;
use super::{Read, StoreError, postgres, sqlite};

/// What a lookup of one rule names: its id or its name.
#[derive(Debug, Clone, Copy)]
pub enum RuleKey<'a> {
    Id(&'a str),
    Name(&'a str),
}

impl<'a> RuleKey<'a> {
    /// The column that holds this kind of key, the same in both backends, and the key.
    pub(super) fn column_and_value(self) -> (&'static str, &'a str) {
        match self {
            RuleKey::Id(id) => ("id", id),
            RuleKey::Name(name) => ("name", name),
        }
    }
}

/// The state of one rule after an evaluation, to store.
#[derive(Debug, Clone)]
pub struct RuleOutcome {
    /// The rule's tenant.
    pub tenant: String,
    /// The rule's id.
    pub id: String,
    /// Its state after the evaluation.
    pub status: Status,
}

/// Rules of every tenant; each call but [`RuleStore::list_rules`] with `None` is scoped to one.
pub trait RuleStore: Send + Sync {
    /// Rules of `tenant` (every tenant's with `None`: what the evaluator walks), by name.
    fn list_rules<'a>(&'a self, tenant: Option<&'a str>) -> Read<'a, Vec<Rule>>;

    /// The rule of `tenant` with that id or name (names are unique per tenant), if any.
    fn find_rule<'a>(&'a self, tenant: &'a str, key: RuleKey<'a>) -> Read<'a, Option<Rule>>;

    /// Stores `rule` whole, replacing the one with its id.
    fn put_rule<'a>(&'a self, rule: &'a Rule) -> Read<'a, ()>;

    /// Stores the outcomes of an evaluation round in one transaction (one commit and one fsync
    /// a round, however many rules), each only while its rule exists and is enabled; per
    /// outcome, `false` when the rule was deleted or disabled in the meantime.
    fn save_statuses<'a>(&'a self, outcomes: &'a [RuleOutcome]) -> Read<'a, Vec<bool>>;

    /// Deletes a rule of `tenant`; `false` when there was none.
    fn delete_rule<'a>(&'a self, tenant: &'a str, id: &'a str) -> Read<'a, bool>;
}

/// Opens the rule store of `database` (whose logs are already open), creating its table.
pub async fn open_rules(database: &DatabaseConfig) -> Result<Arc<dyn RuleStore>, StoreError> {
    match database {
        DatabaseConfig::Sqlite { path } => sqlite::open_rules(path).await,
        DatabaseConfig::Postgres { url } => postgres::open_rules(url).await,
    }
}

/// A stored row of either driver, read by column index with the types both can give: what
/// [`rule_from_row`] reads a [`Rule`] from, so that the column order is written once.
pub(super) trait RuleColumns {
    /// The driver's error for a column that does not hold the type asked for.
    type Error;
    fn text(&self, index: usize) -> Result<String, Self::Error>;
    fn optional_text(&self, index: usize) -> Result<Option<String>, Self::Error>;
    fn integer(&self, index: usize) -> Result<i64, Self::Error>;
    fn optional_integer(&self, index: usize) -> Result<Option<i64>, Self::Error>;
    fn boolean(&self, index: usize) -> Result<bool, Self::Error>;
}

/// The rule in `row`, whose columns are [`RULE_COLUMNS`] in order; counts out of range are
/// clamped to what a rule allows.
pub(super) fn rule_from_row<R: RuleColumns>(row: &R) -> Result<Rule, R::Error> {
    Ok(Rule {
        id: row.text(0)?,
        tenant: row.text(1)?,
        spec: RuleSpec {
            name: row.text(2)?,
            service: row.optional_text(3)?,
            min_level: row.optional_text(4)?.as_deref().and_then(Level::parse),
            query: row.optional_text(5)?,
            threshold: row.integer(6)?.max(1) as u64,
            window_seconds: row.integer(7)?.max(1) as u64,
            for_seconds: row.integer(8)?.max(0) as u64,
            severity: row.text(9)?,
            enabled: row.boolean(10)?,
        },
        status: Status {
            state: State::parse(&row.text(11)?),
            active_since_ns: row.optional_integer(12)?,
            fired_at_ns: row.optional_integer(13)?,
            last_value: row.optional_integer(14)?,
            last_evaluated_ns: row.optional_integer(15)?,
            trace_id: row.optional_text(16)?,
        },
    })
}

/// The columns of a rule, the same in both backends.
pub(super) const RULE_COLUMNS: &str = "id, tenant, name, service, min_level, query, threshold, \
     window_seconds, for_seconds, severity, enabled, state, active_since_ns, fired_at_ns, \
     last_value, last_evaluated_ns, trace_id";

/// The columns of an evaluation's outcome, the last of [`RULE_COLUMNS`].
const STATUS_COLUMNS: [&str; 6] = [
    "state",
    "active_since_ns",
    "fired_at_ns",
    "last_value",
    "last_evaluated_ns",
    "trace_id",
];

/// The rules table `table` of a dialect whose integer and boolean types are named `integer` and
/// `boolean`; names are unique per tenant, so a rules file upserts by name.
pub(super) fn schema(table: &str, integer: &str, boolean: &str) -> String {
    format!(
        r#"
CREATE TABLE IF NOT EXISTS {table} (
    id                TEXT PRIMARY KEY,
    tenant            TEXT NOT NULL,
    name              TEXT NOT NULL,
    service           TEXT,
    min_level         TEXT,
    query             TEXT,
    threshold         {integer} NOT NULL,
    window_seconds    {integer} NOT NULL,
    for_seconds       {integer} NOT NULL,
    severity          TEXT NOT NULL,
    enabled           {boolean} NOT NULL,
    state             TEXT NOT NULL,
    active_since_ns   {integer},
    fired_at_ns       {integer},
    last_value        {integer},
    last_evaluated_ns {integer},
    trace_id          TEXT,
    UNIQUE (tenant, name)
);
"#
    )
}

/// The statement that stores a whole rule in `table`, replacing the one with its id; its
/// parameters are [`rule_params!`].
pub(super) fn upsert_sql(table: &str, placeholders: Placeholders) -> String {
    let columns: Vec<&str> = RULE_COLUMNS.split(", ").collect();
    let values = placeholders.list(1, columns.len());
    let updates: Vec<String> = columns[2..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO {table} ({RULE_COLUMNS}) VALUES ({values}) ON CONFLICT (id) DO UPDATE SET {}",
        updates.join(", ")
    )
}

/// The statement that stores an evaluation's outcome in `table` while the rule exists and is
/// enabled; its parameters are [`status_params!`] after the tenant and the id.
pub(super) fn save_status_sql(table: &str, placeholders: Placeholders) -> String {
    let updates: Vec<String> = STATUS_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = {}", placeholders.nth(i + 3)))
        .collect();
    format!(
        "UPDATE {table} SET {} WHERE tenant = {} AND id = {} AND enabled",
        updates.join(", "),
        placeholders.nth(1),
        placeholders.nth(2)
    )
}

/// The parameters of [`save_status_sql`]: the values before it (`[$tenant, $id]`), then those
/// of `status` in [`STATUS_COLUMNS`] order, as an array that coerces to either driver's
/// parameter references.
macro_rules! status_params {
    ([$($before:expr),*] $status:expr) => {
        [
            $($before,)*
            &$status.state.as_str(),
            &$status.active_since_ns,
            &$status.fired_at_ns,
            &$status.last_value,
            &$status.last_evaluated_ns,
            &$status.trace_id,
        ]
    };
}
pub(super) use status_params;

/// The parameters of [`upsert_sql`]: the values of `rule` in [`RULE_COLUMNS`] order, as an
/// array that coerces to either driver's parameter references.
macro_rules! rule_params {
    ($rule:expr) => {
        $crate::storage::rules::status_params!(
            [
                &$rule.id,
                &$rule.tenant,
                &$rule.spec.name,
                &$rule.spec.service,
                &$rule.spec.min_level.map(|l| l.as_str()),
                &$rule.spec.query,
                &($rule.spec.threshold as i64),
                &($rule.spec.window_seconds as i64),
                &($rule.spec.for_seconds as i64),
                &$rule.spec.severity,
                &$rule.spec.enabled
            ]
            $rule.status
        )
    };
}
pub(super) use rule_params;

#[cfg(test)]
mod tests {
    use super::*;

    /// `sql` with its white space folded.
    fn folded(sql: &str) -> String {
        sql.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn the_statements_number_their_parameters_in_each_dialect() {
        assert_eq!(
            folded(&upsert_sql("alert_rules", Placeholders::Question)),
            folded(
                "INSERT INTO alert_rules (id, tenant, name, service, min_level, query, threshold, \
                 window_seconds, for_seconds, severity, enabled, state, active_since_ns, \
                 fired_at_ns, last_value, last_evaluated_ns, trace_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, service = excluded.service, \
                 min_level = excluded.min_level, query = excluded.query, \
                 threshold = excluded.threshold, window_seconds = excluded.window_seconds, \
                 for_seconds = excluded.for_seconds, severity = excluded.severity, \
                 enabled = excluded.enabled, state = excluded.state, \
                 active_since_ns = excluded.active_since_ns, fired_at_ns = excluded.fired_at_ns, \
                 last_value = excluded.last_value, last_evaluated_ns = excluded.last_evaluated_ns, \
                 trace_id = excluded.trace_id"
            )
        );
        assert_eq!(
            save_status_sql("log_alert_rules", Placeholders::Dollar),
            "UPDATE log_alert_rules SET state = $3, active_since_ns = $4, fired_at_ns = $5, \
             last_value = $6, last_evaluated_ns = $7, trace_id = $8 \
             WHERE tenant = $1 AND id = $2 AND enabled"
        );
    }
}
