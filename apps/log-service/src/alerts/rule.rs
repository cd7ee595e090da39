//! A log alert rule: what a caller sends (`RuleSpec`, validated field by field), what is stored
//! (`Rule`: the spec, its tenant and id, and its evaluation `Status`), and what the API answers.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::state::{State, Status};
use crate::error::AppError;
use crate::model::{Level, LogFilter, MAX_SHORT_FIELD, format_ts, refuse_unknown_fields};
use crate::query::parse_filter;

/// The fields a rule body may hold.
const RULE_FIELDS: [&str; 9] = [
    "name",
    "service",
    "min_level",
    "query",
    "threshold",
    "window_seconds",
    "for_seconds",
    "severity",
    "enabled",
];

/// Longest window a rule may count over: one day, so a count never scans more than that.
pub const MAX_WINDOW_SECONDS: u64 = 86_400;

/// Severity of a rule that names none: the Alertmanager routes of observability/ know it.
const DEFAULT_SEVERITY: &str = "warning";

/// What a caller defines: which logs count, how many trip the rule, for how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleSpec {
    /// The alert's `alertname`; unique per tenant.
    pub name: String,
    /// Only logs of this service count (the query API's `service`).
    pub service: Option<String>,
    /// Only logs at this level or above count (the query API's `min_level`).
    pub min_level: Option<Level>,
    /// Only logs whose message holds every word count (the query API's `search`).
    pub query: Option<String>,
    /// Matching logs in the window at or above which the rule is active.
    pub threshold: u64,
    /// The window counted, ending at the evaluation.
    pub window_seconds: u64,
    /// How long the rule must stay active before it fires (Prometheus' `for`).
    pub for_seconds: u64,
    /// The alert's `severity` label.
    pub severity: String,
    /// A disabled rule is not evaluated and stays inactive.
    pub enabled: bool,
}

impl RuleSpec {
    /// Reads a rule body; every error names its field. `extra` names fields the caller's
    /// context adds (a rules file's `tenant`), read elsewhere.
    pub fn parse(obj: &Map<String, Value>, extra: &[&str]) -> Result<RuleSpec, AppError> {
        let known = [RULE_FIELDS.as_slice(), extra].concat();
        refuse_unknown_fields(obj, &known, "an alert rule")?;
        let name = match obj.get("name") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(AppError::field("name", "is required and must not be empty"));
            }
            Some(_) => return Err(AppError::field("name", "must be a string")),
        };
        if name.len() > MAX_SHORT_FIELD || name.chars().any(char::is_control) {
            return Err(AppError::field(
                "name",
                format!("must be 1..={MAX_SHORT_FIELD} printable characters"),
            ));
        }
        let filter = rule_filter(obj)?;
        let threshold =
            whole(obj, "threshold")?.ok_or_else(|| AppError::field("threshold", "is required"))?;
        if threshold < 1 {
            return Err(AppError::field("threshold", "must be at least 1"));
        }
        let window_seconds = whole(obj, "window_seconds")?
            .ok_or_else(|| AppError::field("window_seconds", "is required"))?;
        if !(1..=MAX_WINDOW_SECONDS).contains(&window_seconds) {
            return Err(AppError::field(
                "window_seconds",
                format!("must be between 1 and {MAX_WINDOW_SECONDS}"),
            ));
        }
        let for_seconds = whole(obj, "for_seconds")?.unwrap_or(0);
        if for_seconds > MAX_WINDOW_SECONDS {
            return Err(AppError::field(
                "for_seconds",
                format!("must be between 0 and {MAX_WINDOW_SECONDS}"),
            ));
        }
        let severity = match obj.get("severity") {
            None | Some(Value::Null) => DEFAULT_SEVERITY.to_owned(),
            Some(Value::String(s)) if is_label_value(s) => s.clone(),
            Some(_) => {
                return Err(AppError::field(
                    "severity",
                    "must be 1..=32 lowercase letters, digits, '-' or '_' (critical, warning, info)",
                ));
            }
        };
        let enabled = match obj.get("enabled") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(AppError::field("enabled", "must be true or false")),
        };
        Ok(RuleSpec {
            name,
            service: filter.service,
            min_level: filter.min_level,
            query: filter.search,
            threshold,
            window_seconds,
            for_seconds,
            severity,
            enabled,
        })
    }

    /// The logs this rule counts at `now_ns`: the query API's filter over `[now - window, now]`.
    pub fn filter(&self, now_ns: i64) -> LogFilter {
        let window_ns = (self.window_seconds as i64).saturating_mul(1_000_000_000);
        LogFilter {
            service: self.service.clone(),
            min_level: self.min_level,
            search: self.query.clone(),
            start_ns: Some(now_ns.saturating_sub(window_ns)),
            end_ns: Some(now_ns),
            ..LogFilter::default()
        }
    }

    /// How far an evaluation counts: as far as the query API's pages count
    /// ([`crate::query::COUNT_UP_TO`]), or to the threshold if it is higher. Past it the
    /// count only says "at least" and the rule's state is the same, while an exact count would
    /// read every matching log of the window at every evaluation (at 150k logs/s, a rule on a
    /// word of every fifth log read 60,000 rows a second for a 300 s window).
    pub fn count_bound(&self) -> u64 {
        self.threshold.max(crate::query::COUNT_UP_TO)
    }

    /// Whether `count`, counted up to [`RuleSpec::count_bound`], means "at least".
    pub fn is_lower_bound(&self, count: i64) -> bool {
        count as u64 >= self.count_bound()
    }
}

/// `service`, `min_level` and `query` read by the query API's own filter parser, so a rule
/// selects exactly what the same words select in `POST /api/v1/logs/query`.
fn rule_filter(obj: &Map<String, Value>) -> Result<LogFilter, AppError> {
    let mut filter_obj = Map::new();
    for (from, to) in [
        ("service", "service"),
        ("min_level", "min_level"),
        ("query", "search"),
    ] {
        if let Some(value) = obj.get(from) {
            filter_obj.insert(to.to_owned(), value.clone());
        }
    }
    parse_filter(&filter_obj).map_err(|err| match err {
        AppError::InvalidArgument {
            field: Some(field),
            message,
        } if field == "search" => AppError::field("query", message),
        other => other,
    })
}

/// A whole, non-negative number; a negative or fractional one is refused by name.
fn whole(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>, AppError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| AppError::field(key, "must be a whole number, not negative")),
        Some(_) => Err(AppError::field(key, "must be a number")),
    }
}

/// A label value that routes and reads well: `critical`, `warning`, `page-team_a`.
fn is_label_value(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A stored rule: its spec, owner, id and the state of its last evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// A UUID, so ids are alike in both backends and never reused.
    pub id: String,
    /// Only this tenant's logs count, and only this tenant sees the rule.
    pub tenant: String,
    /// What the rule counts and when it fires.
    pub spec: RuleSpec,
    /// Where the last evaluation left it.
    pub status: Status,
}

impl Rule {
    /// A new rule of `tenant`, inactive and never evaluated.
    pub fn new(tenant: &str, spec: RuleSpec) -> Rule {
        Rule {
            id: uuid::Uuid::new_v4().to_string(),
            tenant: tenant.to_owned(),
            spec,
            status: Status::default(),
        }
    }

    /// The labels that identify the rule's alert in Alertmanager.
    pub fn labels(&self) -> Map<String, Value> {
        let mut labels = Map::new();
        labels.insert("alertname".into(), self.spec.name.clone().into());
        labels.insert("tenant".into(), self.tenant.clone().into());
        if let Some(service) = &self.spec.service {
            labels.insert("service".into(), service.clone().into());
        }
        labels.insert("severity".into(), self.spec.severity.clone().into());
        labels.insert("source".into(), "log-service".into());
        labels
    }

    /// The JSON the API answers.
    pub fn view(&self) -> Value {
        let spec = &self.spec;
        let status = &self.status;
        json!({
            "id": self.id,
            "name": spec.name,
            "service": spec.service,
            "min_level": spec.min_level,
            "query": spec.query,
            "threshold": spec.threshold,
            "window_seconds": spec.window_seconds,
            "for_seconds": spec.for_seconds,
            "severity": spec.severity,
            "enabled": spec.enabled,
            "state": status.state.as_str(),
            "last_value": status.last_value,
            // As a page's `total_relation`: `gte` when the count stopped at its bound.
            "last_value_relation": status.last_value.map(|v| {
                if spec.is_lower_bound(v) { "gte" } else { "eq" }
            }),
            "last_evaluated_at": status.last_evaluated_ns.map(format_ts),
            "active_since": status.active_since_ns.map(format_ts),
            "fired_at": status.fired_at_ns.map(format_ts),
            "last_trace_id": status.trace_id,
        })
    }

    /// True when the rule's alert is in Alertmanager now.
    pub fn is_firing(&self) -> bool {
        self.status.state == State::Firing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(body: Value) -> Result<RuleSpec, AppError> {
        RuleSpec::parse(body.as_object().unwrap(), &[])
    }

    fn field_of(body: Value) -> String {
        match spec(body).unwrap_err() {
            AppError::InvalidArgument { field, .. } => field.unwrap_or_default(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_full_rule_reads_and_defaults_fill_the_rest() {
        let rule = spec(json!({
            "name": "payment errors", "service": "payment-service", "min_level": "error",
            "query": "declined", "threshold": 5, "window_seconds": 60, "for_seconds": 0,
            "severity": "warning", "enabled": true
        }))
        .unwrap();
        assert_eq!(rule.min_level, Some(Level::Error));
        assert_eq!(rule.query.as_deref(), Some("declined"));
        let minimal = spec(json!({"name": "any", "threshold": 1, "window_seconds": 1})).unwrap();
        assert_eq!(
            (
                minimal.for_seconds,
                minimal.severity.as_str(),
                minimal.enabled
            ),
            (0, "warning", true)
        );
        assert_eq!((minimal.service, minimal.min_level), (None, None));
    }

    #[test]
    fn every_bad_value_names_its_field() {
        let base = |key: &str, value: Value| {
            let mut body = json!({"name": "r", "threshold": 5, "window_seconds": 60});
            body[key] = value;
            body
        };
        assert_eq!(field_of(base("threshold", json!(0))), "threshold");
        assert_eq!(field_of(base("threshold", json!(-3))), "threshold");
        assert_eq!(field_of(base("window_seconds", json!(0))), "window_seconds");
        assert_eq!(
            field_of(base("window_seconds", json!(86_401))),
            "window_seconds"
        );
        assert_eq!(field_of(base("for_seconds", json!(-1))), "for_seconds");
        assert_eq!(field_of(base("min_level", json!("LOUD"))), "min_level");
        assert_eq!(field_of(base("name", json!("  "))), "name");
        assert_eq!(field_of(base("query", json!("!!"))), "query");
        assert_eq!(field_of(base("severity", json!("Page Me"))), "severity");
        assert_eq!(field_of(base("enabled", json!("yes"))), "enabled");
        assert_eq!(field_of(base("windw_seconds", json!(5))), "windw_seconds");
        assert_eq!(
            field_of(json!({"name": "r", "window_seconds": 5})),
            "threshold"
        );
    }

    #[test]
    fn the_filter_counts_the_window_ending_now() {
        let rule = spec(json!({"name": "r", "service": "s", "query": "declined", "threshold": 1, "window_seconds": 60}))
            .unwrap();
        let filter = rule.filter(100_000_000_000);
        assert_eq!(filter.start_ns, Some(40_000_000_000));
        assert_eq!(filter.end_ns, Some(100_000_000_000));
        assert_eq!(filter.service.as_deref(), Some("s"));
        assert_eq!(filter.search.as_deref(), Some("declined"));
    }
}
