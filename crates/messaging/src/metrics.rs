//! The messaging metrics of docs/architecture.md, registered in the owning service's registry.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use telemetry::metrics::register;

/// `amqp_messages_published_total{exchange, routing_key, outcome}`.
#[derive(Clone)]
pub struct PublisherMetrics {
    pub(crate) published: IntCounterVec,
}

/// The `outcome` values of `amqp_messages_published_total`.
const PUBLISH_OUTCOMES: [&str; 3] = ["confirmed", "nacked", "error"];

impl PublisherMetrics {
    /// Counts one publish. The routing keys belong to the messages, not to this crate, so the
    /// series of a key start with its first message, which also creates the key's other
    /// outcome series at zero: an error ratio is defined from then on, before the first error.
    pub(crate) fn count_published(&self, exchange: &str, routing_key: &str, outcome: &str) {
        for other in PUBLISH_OUTCOMES {
            let counter = self
                .published
                .with_label_values(&[exchange, routing_key, other]);
            if other == outcome {
                counter.inc();
            }
        }
    }

    /// Creates and registers the publisher counters.
    pub fn new(registry: &Registry) -> Self {
        let published = IntCounterVec::new(
            Opts::new(
                "amqp_messages_published_total",
                "Messages published to RabbitMQ, by exchange, routing key and outcome (confirmed, nacked, error).",
            ),
            &["exchange", "routing_key", "outcome"],
        )
        .expect("valid counter options");
        Self {
            published: register(registry, published),
        }
    }
}

/// `amqp_messages_consumed_total{queue, outcome}` and `amqp_message_processing_duration_seconds{queue}`.
#[derive(Clone)]
pub struct ConsumerMetrics {
    pub(crate) consumed: IntCounterVec,
    pub(crate) duration: HistogramVec,
}

impl ConsumerMetrics {
    /// Creates every series of `queue` at zero, so an increase is visible from the first event.
    pub fn init_series(&self, queue: &str) {
        for outcome in ["acked", "retried", "dead_lettered", "requeued"] {
            self.consumed.with_label_values(&[queue, outcome]);
        }
    }

    /// Creates and registers the consumer metrics.
    pub fn new(registry: &Registry) -> Self {
        let consumed = IntCounterVec::new(
            Opts::new(
                "amqp_messages_consumed_total",
                "Deliveries consumed from RabbitMQ, by queue and outcome (acked, retried, dead_lettered, or requeued when the retry or dead-letter copy was not confirmed).",
            ),
            &["queue", "outcome"],
        )
        .expect("valid counter options");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "amqp_message_processing_duration_seconds",
                "Time from delivery to ack, retry or dead-letter, by queue.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["queue"],
        )
        .expect("valid histogram options");
        Self {
            consumed: register(registry, consumed),
            duration: register(registry, duration),
        }
    }
}
