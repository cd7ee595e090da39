//! The broadcast hub between the writer and the live tails.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use crate::metrics::Metrics;
use crate::model::{LogView, NewLog, format_ts, json_or};

/// Committed logs, shared by every subscriber; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<LogView>>,
    metrics: Metrics,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("subscribers", &self.tx.receiver_count())
            .finish()
    }
}

/// One subscription; the subscriber gauge counts it until it is dropped.
pub(super) struct Subscription {
    pub(super) rx: broadcast::Receiver<Arc<LogView>>,
    pub(super) metrics: Metrics,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.metrics.stream_subscribers.dec();
    }
}

impl Hub {
    /// A hub that keeps the last `capacity` logs for subscribers that are behind.
    pub fn new(capacity: usize, metrics: Metrics) -> Hub {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Hub { tx, metrics }
    }

    /// True while some live tail listens: without one, a log need not even be read.
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Publishes a log read back from storage: another replica's, announced by its commit.
    pub fn publish(&self, log: LogView) {
        // An error only means the last subscriber left meanwhile.
        let _ = self.tx.send(Arc::new(log));
    }

    /// Subscribes to every log published from now on.
    pub(super) fn subscribe(&self) -> Subscription {
        self.metrics.stream_subscribers.inc();
        Subscription {
            rx: self.tx.subscribe(),
            metrics: self.metrics.clone(),
        }
    }
}

/// The writer's end of the hub: turns committed rows into the views the query API returns.
pub struct Publisher {
    hub: Hub,
    /// The backend's timestamp resolution in nanoseconds (PostgreSQL keeps microseconds), so a
    /// live log reads exactly as the stored one.
    resolution_ns: i64,
}

impl Publisher {
    /// Publishes to `hub` logs whose timestamps are stored at `resolution_ns`.
    pub fn new(hub: Hub, resolution_ns: i64) -> Publisher {
        Publisher {
            hub,
            resolution_ns: resolution_ns.max(1),
        }
    }

    /// Publishes the committed `logs` of `tenant` under their stored `ids`; does nothing (not
    /// even building the views) when nobody is subscribed.
    pub fn publish(&self, tenant: &str, logs: &[NewLog], ids: &[i64]) {
        if self.hub.tx.receiver_count() == 0 {
            return;
        }
        for (log, id) in logs.iter().zip(ids) {
            let ts = log.timestamp_ns.div_euclid(self.resolution_ns) * self.resolution_ns;
            let view = LogView {
                id: *id,
                tenant_id: tenant.to_owned(),
                timestamp: format_ts(ts),
                timestamp_ns: ts,
                service_name: log.service.clone(),
                level: log.level,
                message: log.message.clone(),
                context: log.context.clone(),
                metadata: json_or(log.metadata.as_deref(), Value::Object(Default::default())),
            };
            // An error only means the last subscriber left meanwhile.
            let _ = self.hub.tx.send(Arc::new(view));
        }
    }
}
