//! Where log alert rules and their evaluation state are kept: the [`RuleStore`] trait, which
//! each backend implements beside its logs (`sqlite/rules.rs`, `postgres/rules.rs`), in a table
//! of its own that is created when the store opens.
//!
//! Rules are few and written seldom (a change through the API, one state update per rule per
//! evaluation), so they bypass the log writer's group-commit queue: each backend writes them on
//! a connection of their own.

use std::sync::Arc;

use crate::alerts::{Rule, RuleSpec, State, Status};
use crate::config::DatabaseConfig;
use crate::model::Level;

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

/// Rules of every tenant; each call but [`RuleStore::list_rules`] with `None` is scoped to one.
pub trait RuleStore: Send + Sync {
    /// Rules of `tenant` (every tenant's with `None`: what the evaluator walks), by name.
    fn list_rules<'a>(&'a self, tenant: Option<&'a str>) -> Read<'a, Vec<Rule>>;

    /// The rule of `tenant` with that id or name (names are unique per tenant), if any.
    fn find_rule<'a>(&'a self, tenant: &'a str, key: RuleKey<'a>) -> Read<'a, Option<Rule>>;

    /// Stores `rule` whole, replacing the one with its id.
    fn put_rule<'a>(&'a self, rule: &'a Rule) -> Read<'a, ()>;

    /// Stores an evaluation's outcome, only while the rule exists and is enabled; `false` when
    /// it was deleted or disabled in the meantime.
    fn save_status<'a>(
        &'a self,
        tenant: &'a str,
        id: &'a str,
        status: &'a Status,
    ) -> Read<'a, bool>;

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

/// One stored row, in the column order both backends select (`RULE_COLUMNS`), with the types
/// both can give: what each backend's row is read into before it becomes a [`Rule`].
pub(super) struct RuleRow {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub service: Option<String>,
    pub min_level: Option<String>,
    pub query: Option<String>,
    pub threshold: i64,
    pub window_seconds: i64,
    pub for_seconds: i64,
    pub severity: String,
    pub enabled: bool,
    pub state: String,
    pub active_since_ns: Option<i64>,
    pub fired_at_ns: Option<i64>,
    pub last_value: Option<i64>,
    pub last_evaluated_ns: Option<i64>,
    pub trace_id: Option<String>,
}

/// The columns of a rule, the same in both backends.
pub(super) const RULE_COLUMNS: &str = "id, tenant, name, service, min_level, query, threshold, \
     window_seconds, for_seconds, severity, enabled, state, active_since_ns, fired_at_ns, \
     last_value, last_evaluated_ns, trace_id";

impl From<RuleRow> for Rule {
    fn from(row: RuleRow) -> Rule {
        Rule {
            id: row.id,
            tenant: row.tenant,
            spec: RuleSpec {
                name: row.name,
                service: row.service,
                min_level: row.min_level.as_deref().and_then(Level::parse),
                query: row.query,
                threshold: row.threshold.max(1) as u64,
                window_seconds: row.window_seconds.max(1) as u64,
                for_seconds: row.for_seconds.max(0) as u64,
                severity: row.severity,
                enabled: row.enabled,
            },
            status: Status {
                state: State::parse(&row.state),
                active_since_ns: row.active_since_ns,
                fired_at_ns: row.fired_at_ns,
                last_value: row.last_value,
                last_evaluated_ns: row.last_evaluated_ns,
                trace_id: row.trace_id,
            },
        }
    }
}
