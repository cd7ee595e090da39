//! Delivery to Alertmanager's v2 API (`POST <ALERTMANAGER_URL>/api/v2/alerts`), in its own task
//! behind a bounded queue, as Prometheus' `notifier/` delivers: the evaluator only pushes, never
//! waits; when the queue is full the oldest alerts give way (a newer copy of the same alert
//! supersedes them); a batch is retried with backoff, each try bounded by a timeout, and what
//! still fails is logged and counted, then dropped: the next evaluation sends a firing alert again.
//! The outcome of the last delivery of each rule's alert is kept (in memory, by this replica),
//! so the alert rule API can say whether Alertmanager has it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::model::{format_ts, now_ns};

/// Alerts that may wait for delivery (Prometheus' default queue capacity).
const QUEUE_CAPACITY: usize = 10_000;
/// Most alerts in one request (Prometheus' default batch size).
const MAX_BATCH: usize = 256;
/// Tries of one batch before it is dropped.
const ATTEMPTS: u32 = 3;
/// Wait before the first retry; doubled for each one after.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// The evaluator's end of the delivery queue; cheap to clone. Without `ALERTMANAGER_URL` it
/// takes alerts and sends nothing.
#[derive(Clone, Debug)]
pub struct Notifier {
    queue: Option<Arc<Queue>>,
}

struct Queue {
    /// Alerts waiting, each with the id of the rule it is of.
    alerts: Mutex<VecDeque<(String, Value)>>,
    wake: Notify,
    metrics: Metrics,
    /// The outcome of the last delivery of each rule's alert, by rule id.
    outcomes: Mutex<HashMap<String, Delivery>>,
}

/// What became of the last alert of one rule handed to the notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// None has been delivered or given up yet (nothing fired, it waits in the queue, or no
    /// Alertmanager is configured).
    NotSent,
    /// Alertmanager accepted it at `at_ns`.
    Delivered { at_ns: i64 },
    /// It was given up at `at_ns`: every try failed, or the full queue dropped it.
    Failed { at_ns: i64, error: String },
}

impl Delivery {
    /// The `delivery` object of the alert rule API: `state` (`delivered`, `failed` or
    /// `not_sent`), `at` (RFC 3339, or null) and `error` (or null).
    pub fn view(&self) -> Value {
        match self {
            Delivery::NotSent => json!({"state": "not_sent", "at": null, "error": null}),
            Delivery::Delivered { at_ns } => {
                json!({"state": "delivered", "at": format_ts(*at_ns), "error": null})
            }
            Delivery::Failed { at_ns, error } => {
                json!({"state": "failed", "at": format_ts(*at_ns), "error": error})
            }
        }
    }
}

impl Queue {
    /// Records `outcome` as the last delivery of every rule in `rules`.
    fn record<'a>(&self, rules: impl IntoIterator<Item = &'a str>, outcome: &Delivery) {
        let mut outcomes = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        for rule in rules {
            outcomes.insert(rule.to_owned(), outcome.clone());
        }
    }
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Queue")
    }
}

impl Notifier {
    /// A notifier that sends nothing, for a log-service without `ALERTMANAGER_URL`.
    pub fn disabled() -> Notifier {
        Notifier { queue: None }
    }

    /// Starts the delivery task for Alertmanager at `base_url`; it stops with `stop`.
    pub fn start(
        base_url: &str,
        timeout: Duration,
        metrics: Metrics,
        stop: &server::Stop,
    ) -> anyhow::Result<Notifier> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        let queue = Arc::new(Queue {
            alerts: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            metrics,
            outcomes: Mutex::new(HashMap::new()),
        });
        let endpoint = format!("{base_url}/api/v2/alerts");
        stop.spawn(deliver(
            queue.clone(),
            client,
            endpoint,
            stop.background_token(),
        ));
        Ok(Notifier { queue: Some(queue) })
    }

    /// The outcome of the last delivery of the alert of the rule `rule_id`.
    pub fn delivery(&self, rule_id: &str) -> Delivery {
        let Some(queue) = &self.queue else {
            return Delivery::NotSent;
        };
        let outcomes = queue.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        outcomes.get(rule_id).cloned().unwrap_or(Delivery::NotSent)
    }

    /// True when alerts go somewhere.
    pub fn is_enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Queues `alert` (Alertmanager's postable alert) of the rule `rule_id` without waiting.
    pub fn send(&self, rule_id: &str, alert: Value) {
        let Some(queue) = &self.queue else {
            return;
        };
        let dropped: Vec<String> = {
            let mut pending = queue.alerts.lock().unwrap_or_else(|e| e.into_inner());
            pending.push_back((rule_id.to_owned(), alert));
            let excess = pending.len().saturating_sub(QUEUE_CAPACITY);
            let dropped = pending.drain(..excess).map(|(rule, _)| rule).collect();
            queue.metrics.alert_queue.set(pending.len() as i64);
            dropped
        };
        if !dropped.is_empty() {
            let outcome = Delivery::Failed {
                at_ns: now_ns(),
                error: "dropped: the delivery queue was full".into(),
            };
            queue.record(dropped.iter().map(String::as_str), &outcome);
            let dropped = dropped.len();
            tracing::warn!(dropped, "alert queue full, oldest alerts dropped");
            queue.metrics.count_notifications("dropped", dropped);
        }
        queue.wake.notify_one();
    }
}

/// The delivery task: takes up to a batch, posts it, repeats; ends when `stop` is cancelled.
async fn deliver(
    queue: Arc<Queue>,
    client: reqwest::Client,
    endpoint: String,
    stop: CancellationToken,
) {
    loop {
        let batch: Vec<(String, Value)> = {
            let mut pending = queue.alerts.lock().unwrap_or_else(|e| e.into_inner());
            let n = pending.len().min(MAX_BATCH);
            let batch = pending.drain(..n).collect();
            queue.metrics.alert_queue.set(pending.len() as i64);
            batch
        };
        if batch.is_empty() {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = queue.wake.notified() => continue,
            }
        }
        let n = batch.len();
        let (rules, alerts): (Vec<String>, Vec<Value>) = batch.into_iter().unzip();
        let rules = rules.iter().map(String::as_str);
        tokio::select! {
            _ = stop.cancelled() => return,
            result = post_with_retries(&client, &endpoint, &alerts) => match result {
                Ok(()) => {
                    queue.record(rules, &Delivery::Delivered { at_ns: now_ns() });
                    queue.metrics.count_notifications("sent", n);
                }
                Err(error) => {
                    tracing::warn!(%error, alerts = n, endpoint = %endpoint, "alert delivery failed");
                    queue.record(rules, &Delivery::Failed { at_ns: now_ns(), error });
                    queue.metrics.count_notifications("failed", n);
                }
            },
        }
    }
}

/// Posts `batch`, retrying a refused connection, a timeout or a 5xx/429 with backoff; a 4xx is
/// final, since Alertmanager will refuse the same alerts again.
async fn post_with_retries(
    client: &reqwest::Client,
    endpoint: &str,
    batch: &[Value],
) -> Result<(), String> {
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        let error = match client.post(endpoint).json(batch).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                let error = format!("alertmanager answered {status}: {}", body.trim());
                if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
                    return Err(error);
                }
                error
            }
            Err(err) => chain(&err),
        };
        if attempt >= ATTEMPTS {
            return Err(format!("{error} (after {attempt} attempts)"));
        }
        tracing::debug!(%error, attempt, "alert delivery failed, retrying");
        tokio::time::sleep(backoff).await;
        backoff *= 2;
        attempt += 1;
    }
}

/// An error with its causes, `a: b: c`: reqwest's own message alone ("error sending request")
/// does not say that the connection was refused or timed out.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_shows_its_state_time_and_error() {
        assert_eq!(
            Delivery::NotSent.view(),
            json!({"state": "not_sent", "at": null, "error": null})
        );
        let at_ns = 1_700_000_000_000_000_000;
        assert_eq!(
            Delivery::Delivered { at_ns }.view(),
            json!({"state": "delivered", "at": "2023-11-14T22:13:20Z", "error": null})
        );
        let failed = Delivery::Failed {
            at_ns,
            error: "connection refused".into(),
        };
        assert_eq!(
            failed.view(),
            json!({"state": "failed", "at": "2023-11-14T22:13:20Z", "error": "connection refused"})
        );
    }

    #[test]
    fn an_alert_the_full_queue_drops_is_a_failed_delivery() {
        // A queue with no delivery task: nothing leaves it but what the capacity pushes out.
        let queue = Arc::new(Queue {
            alerts: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            metrics: Metrics::new().unwrap(),
            outcomes: Mutex::new(HashMap::new()),
        });
        let notifier = Notifier { queue: Some(queue) };
        notifier.send("oldest", json!({}));
        for _ in 0..QUEUE_CAPACITY - 1 {
            notifier.send("newer", json!({}));
        }
        assert_eq!(notifier.delivery("oldest"), Delivery::NotSent, "waiting");
        notifier.send("newer", json!({}));
        match notifier.delivery("oldest") {
            Delivery::Failed { error, .. } => assert!(error.contains("queue was full"), "{error}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(notifier.delivery("newer"), Delivery::NotSent);
    }

    #[test]
    fn without_alertmanager_nothing_is_sent() {
        let notifier = Notifier::disabled();
        notifier.send("rule", json!({"labels": {}}));
        assert_eq!(notifier.delivery("rule"), Delivery::NotSent);
    }
}
