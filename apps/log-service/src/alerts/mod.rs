//! Log alert rules: "at least `threshold` logs matching this filter in the last
//! `window_seconds`, held for `for_seconds`", evaluated every `ALERT_EVAL_INTERVAL` and
//! delivered to Alertmanager as Prometheus delivers its alerts.
//!
//! - `rule`: what a rule is, how a body is validated, how it is shown;
//! - `state`: the inactive / pending / firing state machine of Prometheus' `rules/alerting.go`;
//! - `evaluator`: the loop that counts each rule's logs, steps its state and builds its alerts;
//! - `notifier`: the bounded queue and task that post alerts to Alertmanager's v2 API;
//! - `file`: the rules of `ALERT_RULES_FILE`, upserted by name at start.
//!
//! [`Alerts`] is the handle the REST routes and the evaluator share. Every change to a rule holds
//! its lock and marks the rule changed; an evaluation round stores its outcomes and hands over
//! its alerts under the same lock, leaving out the rules changed since it listed them. So a rule
//! disabled, deleted or edited while it is counted never fires afterwards by its old spec, and a
//! firing rule that is disabled, deleted or renamed is resolved in Alertmanager at once instead
//! of lingering until its `endsAt`.

mod evaluator;
mod file;
mod notifier;
mod rule;
mod state;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

pub use file::{FileRule, read_rules_file};
pub use notifier::Notifier;
pub use rule::{Rule, RuleSpec};
pub use state::{State, Status};

use crate::config::{AlertsConfig, DatabaseConfig};
use crate::error::AppError;
use crate::leader::Leader;
use crate::metrics::Metrics;
use crate::model::now_ns;
use crate::storage::{RuleKey, RuleStore, Store, open_rules};

/// The alert rules of every tenant, their evaluation and their delivery; cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    inner: Arc<Inner>,
}

struct Inner {
    rules: Arc<dyn RuleStore>,
    notifier: Notifier,
    metrics: Metrics,
    /// Serializes rule changes with the storing of evaluations, and holds the ids of the rules
    /// changed since the current round listed them (see the module documentation).
    lock: tokio::sync::Mutex<HashSet<String>>,
    eval_interval: Duration,
    /// Base of `trace_url` and `generatorURL`.
    public_url: String,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts")
            .field("eval_interval", &self.inner.eval_interval)
            .field("delivering", &self.inner.notifier.is_enabled())
            .finish()
    }
}

impl Alerts {
    /// Opens the rule store of `database`, starts delivery when `ALERTMANAGER_URL` is set, and
    /// upserts `file_rules` by name. `public_url` is the base of the links in alerts.
    pub async fn open(
        config: &AlertsConfig,
        database: &DatabaseConfig,
        public_url: String,
        file_rules: Vec<FileRule>,
        metrics: Metrics,
        stop: &server::Stop,
    ) -> anyhow::Result<Alerts> {
        let rules = open_rules(database)
            .await
            .context("failed to open the alert rule store")?;
        let notifier = match &config.alertmanager_url {
            Some(url) => Notifier::start(url, config.alertmanager_timeout, metrics.clone(), stop)
                .context("failed to build the Alertmanager client")?,
            None => Notifier::disabled(),
        };
        let alerts = Alerts {
            inner: Arc::new(Inner {
                rules,
                notifier,
                metrics,
                lock: tokio::sync::Mutex::new(HashSet::new()),
                eval_interval: config.eval_interval,
                public_url,
            }),
        };
        let loaded = file_rules.len();
        for FileRule { tenant, spec } in file_rules {
            alerts
                .upsert(&tenant, spec)
                .await
                .context("failed to store the rules of ALERT_RULES_FILE")?;
        }
        if let Some(path) = &config.rules_file {
            tracing::info!(path = %path.display(), rules = loaded, "alert rules loaded");
        }
        Ok(alerts)
    }

    /// Evaluates every enabled rule every `ALERT_EVAL_INTERVAL` while `leader` leads, until
    /// intake stops.
    pub async fn run_evaluator(self, store: Store, stop: server::Stop, leader: Leader) {
        evaluator::run(self, store, stop, leader).await;
    }

    /// The JSON the alert rule API answers for `rule`: its definition and state, and
    /// `delivery`, the outcome of the last delivery of its alert to Alertmanager as this
    /// replica knows it (see [`notifier::Delivery::view`]).
    pub fn view(&self, rule: &Rule) -> serde_json::Value {
        let mut view = rule.view();
        view["delivery"] = self.inner.notifier.delivery(&rule.id).view();
        view
    }

    /// True when `ALERTMANAGER_URL` is set: alerts are delivered somewhere.
    pub fn is_delivering(&self) -> bool {
        self.inner.notifier.is_enabled()
    }

    /// Counts an evaluation that failed outside a rule (the evaluator's task itself).
    pub fn count_evaluation_failure(&self) {
        self.inner.metrics.alert_evaluation_failures.inc();
    }

    /// The rules of `tenant`, by name.
    pub async fn list(&self, tenant: &str) -> Result<Vec<Rule>, AppError> {
        Ok(self.inner.rules.list_rules(Some(tenant)).await?)
    }

    /// One rule of `tenant`; not found when it is another tenant's.
    pub async fn get(&self, tenant: &str, id: &str) -> Result<Rule, AppError> {
        self.inner
            .rules
            .find_rule(tenant, RuleKey::Id(id))
            .await?
            .ok_or_else(|| AppError::NotFound(format!("alert rule {id} not found")))
    }

    /// Creates a rule of `tenant`; its name must be new to the tenant.
    pub async fn create(&self, tenant: &str, spec: RuleSpec) -> Result<Rule, AppError> {
        let _guard = self.inner.lock.lock().await;
        self.check_name_free(tenant, &spec.name, None).await?;
        let rule = Rule::new(tenant, spec);
        self.inner.rules.put_rule(&rule).await?;
        Ok(rule)
    }

    /// Replaces the spec of a rule and keeps its state, as Prometheus keeps an alert's state
    /// across a reload; the next evaluation judges it by the new spec.
    pub async fn replace(&self, tenant: &str, id: &str, spec: RuleSpec) -> Result<Rule, AppError> {
        let mut changed = self.inner.lock.lock().await;
        let old = self.get(tenant, id).await?;
        self.check_name_free(tenant, &spec.name, Some(id)).await?;
        self.change(&mut changed, old, spec).await
    }

    /// Enables or disables a rule; a disabled rule is inactive.
    pub async fn set_enabled(
        &self,
        tenant: &str,
        id: &str,
        enabled: bool,
    ) -> Result<Rule, AppError> {
        let mut changed = self.inner.lock.lock().await;
        let old = self.get(tenant, id).await?;
        let spec = RuleSpec {
            enabled,
            ..old.spec.clone()
        };
        self.change(&mut changed, old, spec).await
    }

    /// Deletes a rule, resolving its alert if it fires.
    pub async fn delete(&self, tenant: &str, id: &str) -> Result<(), AppError> {
        let mut changed = self.inner.lock.lock().await;
        let old = self.get(tenant, id).await?;
        changed.insert(old.id.clone());
        self.inner.rules.delete_rule(tenant, id).await?;
        self.resolve_now(&old);
        Ok(())
    }

    /// Creates the rule called `spec.name` or replaces its spec: what a rules file does at start.
    async fn upsert(&self, tenant: &str, spec: RuleSpec) -> Result<Rule, AppError> {
        let mut changed = self.inner.lock.lock().await;
        let by_name = || {
            self.inner
                .rules
                .find_rule(tenant, RuleKey::Name(&spec.name))
        };
        if let Some(old) = by_name().await? {
            return self.change(&mut changed, old, spec).await;
        }
        let rule = Rule::new(tenant, spec.clone());
        let Err(error) = self.inner.rules.put_rule(&rule).await else {
            return Ok(rule);
        };
        // Another replica starting with the same file may have stored it first (names are
        // unique per tenant): then it is that rule that is upserted.
        match by_name().await? {
            Some(old) => self.change(&mut changed, old, spec).await,
            None => Err(error.into()),
        }
    }

    /// Stores `old` with `spec`, or keeps it as it is when its spec is already `spec`; resolves
    /// its alert first when the change ends it (disabled) or renames it (other labels:
    /// Alertmanager would hold the old one until its `endsAt`). The caller holds the lock,
    /// whose set of changed rules gets this one when it changes.
    async fn change(
        &self,
        changed: &mut HashSet<String>,
        old: Rule,
        spec: RuleSpec,
    ) -> Result<Rule, AppError> {
        if old.spec == spec {
            return Ok(old);
        }
        changed.insert(old.id.clone());
        let mut rule = Rule {
            spec,
            ..old.clone()
        };
        if !rule.spec.enabled {
            rule.status = Status::default();
        }
        if old.is_firing() && (!rule.spec.enabled || rule.labels() != old.labels()) {
            self.resolve_now(&old);
            rule.status = Status::default();
        }
        self.inner.rules.put_rule(&rule).await?;
        Ok(rule)
    }

    /// 422 on `name` when another rule of `tenant` than `except` has it.
    async fn check_name_free(
        &self,
        tenant: &str,
        name: &str,
        except: Option<&str>,
    ) -> Result<(), AppError> {
        match self
            .inner
            .rules
            .find_rule(tenant, RuleKey::Name(name))
            .await?
        {
            Some(other) if Some(other.id.as_str()) != except => Err(AppError::field(
                "name",
                format!("a rule named {name:?} exists already (id {})", other.id),
            )),
            _ => Ok(()),
        }
    }

    /// Sends the resolution of `rule`'s alert when it fires.
    fn resolve_now(&self, rule: &Rule) {
        if rule.is_firing() {
            let alert = evaluator::postable(rule, &rule.status, now_ns(), &self.inner.public_url);
            self.inner.notifier.send(&rule.id, alert);
        }
    }
}
