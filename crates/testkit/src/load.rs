//! Concurrent order load, keeping every answer, for the tests that judge what happened to each
//! order while something failed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

/// One `POST /create-order` and its answer.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When the request was sent.
    pub started: Instant,
    /// Time to the complete answer (or to the transport error).
    pub latency: Duration,
    /// Status code; 0 when no HTTP answer came (connection error or the client's timeout).
    pub status: u16,
    /// `order_id` of the body, when present (201, 402).
    pub order_id: Option<String>,
    /// `trace_id` of the body (present in every answer of the gateway, errors included).
    pub trace_id: Option<String>,
    /// `error.code` of an error body.
    pub code: Option<String>,
}

/// Places one sample order (empty body) at `gateway_url`.
pub async fn order_once(client: &reqwest::Client, gateway_url: &str) -> Sample {
    let started = Instant::now();
    let response = crate::http::create_order(client, gateway_url, None).await;
    let (status, body) = match response {
        Ok(r) => (r.status, r.json),
        Err(_) => (0, serde_json::Value::Null),
    };
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    Sample {
        started,
        latency: started.elapsed(),
        status,
        order_id: text(&body["order_id"]),
        trace_id: text(&body["trace_id"]),
        code: text(&body["error"]["code"]),
    }
}

/// The order ids of the confirmed (201) answers among `samples`, in the order they came.
pub fn confirmed_order_ids(samples: &[Sample]) -> Vec<&str> {
    samples
        .iter()
        .filter(|s| s.status == 201)
        .map(|s| s.order_id.as_deref().expect("a 201 carries the order id"))
        .collect()
}

/// The `p`-th percentile (0..=100) of `latencies`, nearest rank; zero for none.
pub fn percentile(latencies: &[Duration], p: f64) -> Duration {
    if latencies.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Asserts what a client may get while the broker or a node is away: 201, or 503 with the
/// `payment_unavailable` code; never a timeout, a 500 or another error.
pub fn assert_confirmed_or_unavailable(samples: &[Sample]) {
    for s in samples {
        assert!(
            s.status == 201 || s.status == 503,
            "an order got neither 201 nor 503: {s:?}"
        );
        if s.status == 503 {
            assert_eq!(s.code.as_deref(), Some("payment_unavailable"), "{s:?}");
        }
    }
}

/// Workers placing orders concurrently, each at most one every `pace`, until stopped or until
/// `max_orders` were sent.
pub struct Load {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    workers: JoinSet<()>,
}

impl Load {
    /// Starts `workers` workers against `gateway_url`.
    pub fn start(
        client: &reqwest::Client,
        gateway_url: &str,
        workers: usize,
        pace: Duration,
        max_orders: usize,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let issued = Arc::new(AtomicUsize::new(0));
        let mut set = JoinSet::new();
        for _ in 0..workers {
            let (client, url) = (client.clone(), gateway_url.to_owned());
            let (stop, samples, issued) = (stop.clone(), samples.clone(), issued.clone());
            set.spawn(async move {
                let mut tick = tokio::time::interval(pace);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while !stop.load(Ordering::Acquire)
                    && issued.fetch_add(1, Ordering::AcqRel) < max_orders
                {
                    tick.tick().await;
                    let sample = order_once(&client, &url).await;
                    samples.lock().unwrap().push(sample);
                }
            });
        }
        Self {
            stop,
            samples,
            workers: set,
        }
    }

    /// A copy of the answers so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().clone()
    }

    /// How many answers so far.
    pub fn answered(&self) -> usize {
        self.samples.lock().unwrap().len()
    }

    /// How many answers so far had `status`.
    pub fn count(&self, status: u16) -> usize {
        self.samples
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.status == status)
            .count()
    }

    /// Waits until `more` answers with `status` have come on top of those so far; panics with
    /// `what` after `timeout`.
    pub async fn wait_for_more(&self, status: u16, more: usize, what: &str, timeout: Duration) {
        let target = self.count(status) + more;
        crate::wait_until(what, timeout, || async move {
            (self.count(status) >= target).then_some(())
        })
        .await;
    }

    /// Stops the workers, lets each finish its current order, and returns every answer.
    pub async fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Release);
        while let Some(joined) = self.workers.join_next().await {
            joined.expect("load worker");
        }
        self.samples()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_the_nearest_rank() {
        let ms = |n: u64| Duration::from_millis(n);
        let latencies: Vec<Duration> = (1..=100).rev().map(ms).collect();
        assert_eq!(percentile(&latencies, 99.0), ms(99));
        assert_eq!(percentile(&latencies, 50.0), ms(50));
        assert_eq!(percentile(&latencies, 100.0), ms(100));
        assert_eq!(percentile(&latencies, 0.0), ms(1));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }
}
