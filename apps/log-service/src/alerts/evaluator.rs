//! The evaluation loop: every `ALERT_EVAL_INTERVAL`, each enabled rule counts its matching logs
//! in `[now - window, now]` through the query API's bounded count (`Backend::query_logs`, up to
//! [`super::rule::RuleSpec::count_bound`]) and steps its state; the round's states are stored
//! together, and each rule's alert handed to the notifier: every evaluation while it fires (as
//! Prometheus re-sends), once more with `endsAt` when it resolves.

use serde_json::{Map, Value, json};
use tokio::time::MissedTickBehavior;

use super::Alerts;
use super::rule::Rule;
use super::state::{State, Status, Transition, step};
use crate::leader::Leader;
use crate::model::{format_ts, now_ns};
use crate::storage::{RuleOutcome, Store};

/// Newest matching logs looked at for a trace id: the newest match may carry none.
const NEWEST_FOR_TRACE: u32 = 20;

/// Prometheus' resend delay; a firing alert's `endsAt` lies four of these (or four evaluation
/// intervals, if longer) ahead, so Alertmanager resolves it by itself only when log-service has
/// stopped sending it.
const RESEND_DELAY_NS: i64 = 60 * 1_000_000_000;

/// Runs until intake stops; a round in progress is abandoned then (its rules keep their state).
/// Rounds run only while this replica leads; the state of every rule is stored after each of
/// its evaluations, so a replica taking over goes on from where the last leader left it.
pub(super) async fn run(alerts: Alerts, store: Store, stop: server::Stop, leader: Leader) {
    let mut ticker = tokio::time::interval(alerts.inner.eval_interval);
    // A round slower than the interval delays the next instead of bunching them up.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let stopped = stop.intake_stopped();
    tokio::pin!(stopped);
    let mut leading = false;
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = ticker.tick() => {}
        }
        if !leader.is_leader() {
            if leading {
                // The leader's gauge shows the rules' states; a follower's would be stale.
                for state in State::ALL {
                    let gauge = alerts
                        .inner
                        .metrics
                        .alert_rules
                        .with_label_values(&[state.as_str()]);
                    gauge.set(0);
                }
                leading = false;
            }
            continue;
        }
        leading = true;
        tokio::select! {
            _ = &mut stopped => return,
            _ = evaluate_all(&alerts, &store) => {}
        }
    }
}

/// One round over every tenant's rules: each enabled rule's logs are counted, the outcomes
/// stored in one transaction, then the alerts handed to the notifier; last the rules-by-state
/// gauge.
async fn evaluate_all(alerts: &Alerts, store: &Store) {
    let inner = &alerts.inner;
    // Rules changed from here on are left out of this round's outcomes: they were counted by
    // the spec listed below, which the change has replaced.
    inner.lock.lock().await.clear();
    let rules = match inner.rules.list_rules(None).await {
        Ok(rules) => rules,
        Err(error) => {
            tracing::warn!(%error, "alert rules unreadable, evaluation skipped");
            inner.metrics.alert_evaluation_failures.inc();
            return;
        }
    };
    let round = inner.metrics.alert_round_seconds.start_timer();
    let mut by_state = [0i64; 3];
    let mut evaluated = Vec::new();
    for rule in rules {
        if !rule.spec.enabled {
            by_state[State::Inactive as usize] += 1;
        } else if let Some(evaluation) = evaluate(alerts, store, &rule).await {
            evaluated.push((rule, evaluation));
        } else {
            by_state[rule.status.state as usize] += 1;
        }
    }
    let changed = inner.lock.lock().await;
    let (evaluated, changed_meanwhile): (Vec<_>, Vec<_>) = evaluated
        .into_iter()
        .partition(|(rule, _)| !changed.contains(&rule.id));
    for (_, evaluation) in &changed_meanwhile {
        by_state[evaluation.before.state as usize] += 1;
    }
    let outcomes: Vec<RuleOutcome> = evaluated
        .iter()
        .map(|(rule, evaluation)| RuleOutcome {
            tenant: rule.tenant.clone(),
            id: rule.id.clone(),
            status: evaluation.status.clone(),
        })
        .collect();
    match inner.rules.save_statuses(&outcomes).await {
        Ok(saved) => {
            for ((rule, evaluation), saved) in evaluated.into_iter().zip(saved) {
                // Deleted or disabled since the listing: it has no alert any more.
                let state = if saved {
                    deliver(alerts, rule, evaluation)
                } else {
                    State::Inactive
                };
                by_state[state as usize] += 1;
            }
        }
        Err(error) => {
            tracing::warn!(%error, rules = outcomes.len(), "alert rule states not stored");
            inner
                .metrics
                .alert_evaluation_failures
                .inc_by(outcomes.len() as u64);
            for (_, evaluation) in &evaluated {
                by_state[evaluation.before.state as usize] += 1;
            }
        }
    }
    drop(changed);
    round.observe_duration();
    for state in State::ALL {
        inner
            .metrics
            .alert_rules
            .with_label_values(&[state.as_str()])
            .set(by_state[state as usize]);
    }
}

/// A rule's evaluation, before it is stored.
struct Evaluation {
    before: Status,
    status: Status,
    transition: Transition,
    count: i64,
    now: i64,
}

/// Counts the logs of one rule and steps its state; `None` when the count failed.
async fn evaluate(alerts: &Alerts, store: &Store, rule: &Rule) -> Option<Evaluation> {
    let inner = &alerts.inner;
    let now = now_ns();
    let filter = rule.spec.filter(now);
    let (newest, count) = match store
        .query_logs(
            &rule.tenant,
            &filter,
            NEWEST_FOR_TRACE,
            0,
            Some(rule.spec.count_bound()),
        )
        .await
    {
        Ok(answer) => answer,
        Err(error) => {
            tracing::warn!(%error, rule = %rule.spec.name, tenant = %rule.tenant, "alert rule evaluation failed");
            inner.metrics.alert_evaluation_failures.inc();
            return None;
        }
    };
    inner.metrics.alert_evaluations.inc();
    let mut status = rule.status.clone();
    let hold_ns = (rule.spec.for_seconds as i64).saturating_mul(1_000_000_000);
    let transition = step(
        &mut status,
        count >= rule.spec.threshold as i64,
        now,
        hold_ns,
    );
    status.last_value = Some(count);
    status.last_evaluated_ns = Some(now);
    if let Some(trace_id) = newest.iter().find_map(|log| log.context.trace_id.clone()) {
        status.trace_id = Some(trace_id);
    }
    Some(Evaluation {
        before: rule.status.clone(),
        status,
        transition,
        count,
        now,
    })
}

/// Hands a stored evaluation's alert to the notifier and returns the rule's new state.
fn deliver(alerts: &Alerts, rule: Rule, evaluation: Evaluation) -> State {
    let inner = &alerts.inner;
    let Evaluation {
        before,
        status,
        transition,
        count,
        now,
    } = evaluation;
    let rule = Rule { status, ..rule };
    match transition {
        Transition::Fired => {
            tracing::info!(rule = %rule.spec.name, tenant = %rule.tenant, count, "alert firing");
        }
        Transition::Resolved => {
            tracing::info!(rule = %rule.spec.name, tenant = %rule.tenant, count, "alert resolved");
        }
        _ => {}
    }
    if rule.status.state == State::Firing {
        let interval_ns = inner.eval_interval.as_nanos().min(i64::MAX as u128) as i64;
        let valid_until = now.saturating_add(4 * interval_ns.max(RESEND_DELAY_NS));
        let alert = postable(&rule, &rule.status, valid_until, &inner.public_url);
        inner.notifier.send(&rule.id, alert);
    } else if transition == Transition::Resolved {
        // The alert keeps the start and trace it fired with; the count is the one that ended it.
        let fired = Status {
            last_value: rule.status.last_value,
            ..before
        };
        inner
            .notifier
            .send(&rule.id, postable(&rule, &fired, now, &inner.public_url));
    }
    rule.status.state
}

/// Alertmanager's postable alert (API v2) for `rule` as `status` stands, ending at `ends_at_ns`.
pub(super) fn postable(rule: &Rule, status: &Status, ends_at_ns: i64, public_url: &str) -> Value {
    let mut annotations = Map::new();
    annotations.insert("summary".into(), summary(rule, status).into());
    if let Some(trace_id) = &status.trace_id {
        annotations.insert("trace_id".into(), trace_id.clone().into());
        annotations.insert(
            "trace_url".into(),
            format!("{public_url}/api/v1/traces/{trace_id}").into(),
        );
    }
    let starts_at = status
        .fired_at_ns
        .or(status.active_since_ns)
        .unwrap_or(ends_at_ns);
    json!({
        "labels": rule.labels(),
        "annotations": annotations,
        "startsAt": format_ts(starts_at),
        "endsAt": format_ts(ends_at_ns),
        "generatorURL": format!("{public_url}/api/v1/alerts/{}", rule.id),
    })
}

/// "7 logs (ERROR or above, service payment-service, matching "declined") in the last 60s;
/// threshold 5".
fn summary(rule: &Rule, status: &Status) -> String {
    let spec = &rule.spec;
    let mut conditions = Vec::new();
    if let Some(level) = spec.min_level {
        conditions.push(format!("{level} or above"));
    }
    if let Some(service) = &spec.service {
        conditions.push(format!("service {service}"));
    }
    if let Some(query) = &spec.query {
        conditions.push(format!("matching {query:?}"));
    }
    let which = if conditions.is_empty() {
        String::new()
    } else {
        format!(" ({})", conditions.join(", "))
    };
    let count = status.last_value.unwrap_or(0);
    let at_least = if spec.is_lower_bound(count) {
        "at least "
    } else {
        ""
    };
    format!(
        "{at_least}{count} logs{which} in the last {}s; threshold {}",
        spec.window_seconds, spec.threshold
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::RuleSpec;

    #[test]
    fn a_firing_alert_carries_labels_trace_link_and_times() {
        let spec = RuleSpec::parse(
            json!({"name": "payment errors", "service": "payment-service", "min_level": "ERROR",
                   "query": "declined", "threshold": 5, "window_seconds": 60})
            .as_object()
            .unwrap(),
            &[],
        )
        .unwrap();
        let mut rule = Rule::new("acme", spec);
        rule.status = Status {
            state: State::Firing,
            fired_at_ns: Some(1_700_000_000_000_000_000),
            last_value: Some(7),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            ..Status::default()
        };
        let alert = postable(
            &rule,
            &rule.status,
            1_700_000_240_000_000_000,
            "http://logs:5002",
        );
        assert_eq!(
            alert["labels"],
            json!({"alertname": "payment errors", "tenant": "acme", "service": "payment-service",
                   "severity": "warning", "source": "log-service"})
        );
        assert_eq!(
            alert["annotations"]["trace_url"],
            "http://logs:5002/api/v1/traces/4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(
            alert["annotations"]["summary"],
            "7 logs (ERROR or above, service payment-service, matching \"declined\") in the last 60s; threshold 5"
        );
        rule.status.last_value = Some(10_000);
        let counted_to_the_bound = postable(&rule, &rule.status, 0, "http://logs:5002");
        assert_eq!(
            counted_to_the_bound["annotations"]["summary"],
            "at least 10000 logs (ERROR or above, service payment-service, matching \"declined\") in the last 60s; threshold 5"
        );
        assert_eq!(alert["startsAt"], "2023-11-14T22:13:20Z");
        assert_eq!(alert["endsAt"], "2023-11-14T22:17:20Z");
        assert_eq!(
            alert["generatorURL"],
            format!("http://logs:5002/api/v1/alerts/{}", rule.id)
        );
    }
}
