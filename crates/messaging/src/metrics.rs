//! The messaging metrics of docs/architecture.md, registered in the owning service's registry.
//!
//! As in Vector's instrumentation spec, every error path of a component both logs and counts:
//! each `warn!` or `error!` of this crate increments its component's errors counter with one
//! [`ErrorReason`], a fixed set, so the label stays bounded and an alert can key on it.

use prometheus::{HistogramVec, IntCounterVec, Registry};
use telemetry::metrics::{counter, duration_histogram};

/// Why a messaging component logged a warning or an error: the `reason` label of
/// `amqp_consumer_errors_total` and `amqp_publisher_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorReason {
    /// The broker did not accept a connection (down, refused, bad credentials).
    ConnectFailed,
    /// Connected, but the channel, the topology, confirm mode, the prefetch or the consumer
    /// registration was refused.
    DeclareFailed,
    /// An open connection, channel or consumer stream was lost.
    ConnectionLost,
    /// Consumer: a body the handler could not decode (dead-lettered at once).
    Undecodable,
    /// Consumer: the handler failed an attempt (retried or dead-lettered).
    HandlerFailed,
    /// Consumer: an ack failed (the broker redelivers; the handler's idempotency absorbs it).
    AckFailed,
    /// Consumer: a nack back onto the queue failed (the broker redelivers when the channel
    /// closes).
    NackFailed,
    /// Consumer: the copy for the retry or dead-letter queue was not confirmed, so the delivery
    /// was requeued.
    RepublishUnconfirmed,
    /// Consumer: in-flight deliveries outlived the drain at shutdown (the broker redelivers).
    DrainTimeout,
    /// Publisher: no confirmed channel when a message was to be published.
    Unavailable,
    /// Publisher: the broker did not confirm within the deadline.
    ConfirmTimeout,
    /// Publisher: the broker refused the message.
    Nacked,
    /// Publisher: no queue bound for the routing key (mandatory flag).
    Unroutable,
    /// Publisher: the channel failed while publishing.
    ChannelError,
    /// Publisher: a property does not fit AMQP (an id or key over 255 bytes).
    InvalidMessage,
}

impl ErrorReason {
    /// The reasons a consumer counts, each created at zero.
    pub const CONSUMER: [Self; 9] = [
        Self::ConnectFailed,
        Self::DeclareFailed,
        Self::ConnectionLost,
        Self::Undecodable,
        Self::HandlerFailed,
        Self::AckFailed,
        Self::NackFailed,
        Self::RepublishUnconfirmed,
        Self::DrainTimeout,
    ];

    /// The reasons a publisher counts, each created at zero.
    pub const PUBLISHER: [Self; 9] = [
        Self::ConnectFailed,
        Self::DeclareFailed,
        Self::ConnectionLost,
        Self::Unavailable,
        Self::ConfirmTimeout,
        Self::Nacked,
        Self::Unroutable,
        Self::ChannelError,
        Self::InvalidMessage,
    ];

    /// Returns the label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectFailed => "connect_failed",
            Self::DeclareFailed => "declare_failed",
            Self::ConnectionLost => "connection_lost",
            Self::Undecodable => "undecodable",
            Self::HandlerFailed => "handler_failed",
            Self::AckFailed => "ack_failed",
            Self::NackFailed => "nack_failed",
            Self::RepublishUnconfirmed => "republish_unconfirmed",
            Self::DrainTimeout => "drain_timeout",
            Self::Unavailable => "unavailable",
            Self::ConfirmTimeout => "confirm_timeout",
            Self::Nacked => "nacked",
            Self::Unroutable => "unroutable",
            Self::ChannelError => "channel_error",
            Self::InvalidMessage => "invalid_message",
        }
    }
}

/// `amqp_messages_published_total{exchange, routing_key, outcome}` and
/// `amqp_publisher_errors_total{exchange, reason}`.
#[derive(Clone)]
pub struct PublisherMetrics {
    published: IntCounterVec,
    errors: IntCounterVec,
}

/// The `outcome` values of `amqp_messages_published_total`.
const PUBLISH_OUTCOMES: [&str; 3] = ["confirmed", "nacked", "error"];

impl PublisherMetrics {
    /// Creates the error series of `exchange` at zero, so an alert sees them before the first
    /// error.
    pub fn init_series(&self, exchange: &str) {
        for reason in ErrorReason::PUBLISHER {
            self.errors.with_label_values(&[exchange, reason.as_str()]);
        }
    }

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

    /// Counts one logged error of the publisher of `exchange`.
    pub(crate) fn error(&self, exchange: &str, reason: ErrorReason) {
        self.errors
            .with_label_values(&[exchange, reason.as_str()])
            .inc();
    }

    /// Creates and registers the publisher counters.
    pub fn new(registry: &Registry) -> Self {
        Self {
            published: counter(
                registry,
                "amqp_messages_published_total",
                "Messages published to RabbitMQ, by exchange, routing key and outcome (confirmed, nacked, error).",
                &["exchange", "routing_key", "outcome"],
            ),
            errors: counter(
                registry,
                "amqp_publisher_errors_total",
                "Errors logged by the RabbitMQ publisher, by exchange and reason (connect_failed, declare_failed, connection_lost, unavailable, confirm_timeout, nacked, unroutable, channel_error, invalid_message).",
                &["exchange", "reason"],
            ),
        }
    }
}

/// `amqp_messages_consumed_total{queue, outcome}`, `amqp_message_processing_duration_seconds{queue}`
/// and `amqp_consumer_errors_total{queue, reason}`.
#[derive(Clone)]
pub struct ConsumerMetrics {
    pub(crate) consumed: IntCounterVec,
    pub(crate) duration: HistogramVec,
    errors: IntCounterVec,
}

impl ConsumerMetrics {
    /// Creates every series of `queue` at zero, so an increase is visible from the first event.
    pub fn init_series(&self, queue: &str) {
        for outcome in ["acked", "retried", "dead_lettered", "requeued"] {
            self.consumed.with_label_values(&[queue, outcome]);
        }
        for reason in ErrorReason::CONSUMER {
            self.errors.with_label_values(&[queue, reason.as_str()]);
        }
    }

    /// Counts one logged error of the consumer of `queue`.
    pub(crate) fn error(&self, queue: &str, reason: ErrorReason) {
        self.errors
            .with_label_values(&[queue, reason.as_str()])
            .inc();
    }

    /// Creates and registers the consumer metrics.
    pub fn new(registry: &Registry) -> Self {
        Self {
            consumed: counter(
                registry,
                "amqp_messages_consumed_total",
                "Deliveries consumed from RabbitMQ, by queue and outcome (acked, retried, dead_lettered, or requeued when the retry or dead-letter copy was not confirmed).",
                &["queue", "outcome"],
            ),
            duration: duration_histogram(
                registry,
                "amqp_message_processing_duration_seconds",
                "Time from delivery to ack, retry or dead-letter, by queue.",
                &["queue"],
            ),
            errors: counter(
                registry,
                "amqp_consumer_errors_total",
                "Errors logged by the RabbitMQ consumer, by queue and reason (connect_failed, declare_failed, connection_lost, undecodable, handler_failed, ack_failed, nack_failed, republish_unconfirmed, drain_timeout).",
                &["queue", "reason"],
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_series_exists_at_zero_and_counts() {
        let registry = Registry::new();
        let consumer = ConsumerMetrics::new(&registry);
        let publisher = PublisherMetrics::new(&registry);
        consumer.init_series("q");
        publisher.init_series("x");
        consumer.error("q", ErrorReason::AckFailed);
        let text = telemetry::metrics::render(&registry);
        for reason in ErrorReason::CONSUMER {
            let expected = if reason == ErrorReason::AckFailed {
                1
            } else {
                0
            };
            let line = format!(
                "amqp_consumer_errors_total{{queue=\"q\",reason=\"{}\"}} {expected}",
                reason.as_str()
            );
            assert!(text.contains(&line), "{line}\n{text}");
        }
        for reason in ErrorReason::PUBLISHER {
            let line = format!(
                "amqp_publisher_errors_total{{exchange=\"x\",reason=\"{}\"}} 0",
                reason.as_str()
            );
            assert!(text.contains(&line), "{line}\n{text}");
        }
    }
}
