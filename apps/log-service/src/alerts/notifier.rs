//! Delivery to Alertmanager's v2 API (`POST <ALERTMANAGER_URL>/api/v2/alerts`), in its own task
//! behind a bounded queue, as Prometheus' `notifier/` delivers: the evaluator only pushes, never
//! waits; when the queue is full the oldest alerts give way (a newer copy of the same alert
//! supersedes them); a batch is retried with backoff, each try bounded by a timeout, and what
//! still fails is logged and counted, then dropped: the next evaluation sends a firing alert again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

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
    alerts: Mutex<VecDeque<Value>>,
    wake: Notify,
    metrics: Metrics,
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

    /// True when alerts go somewhere.
    pub fn is_enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Queues `alerts` (Alertmanager's postable alerts) without waiting.
    pub fn send(&self, alerts: Vec<Value>) {
        let Some(queue) = &self.queue else {
            return;
        };
        if alerts.is_empty() {
            return;
        }
        let dropped = {
            let mut pending = queue.alerts.lock().unwrap_or_else(|e| e.into_inner());
            pending.extend(alerts);
            let excess = pending.len().saturating_sub(QUEUE_CAPACITY);
            pending.drain(..excess);
            queue.metrics.alert_queue.set(pending.len() as i64);
            excess
        };
        if dropped > 0 {
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
        let batch: Vec<Value> = {
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
        tokio::select! {
            _ = stop.cancelled() => return,
            result = post_with_retries(&client, &endpoint, &batch) => match result {
                Ok(()) => queue.metrics.count_notifications("sent", n),
                Err(error) => {
                    tracing::warn!(%error, alerts = n, endpoint = %endpoint, "alert delivery failed");
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
