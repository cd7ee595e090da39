//! RabbitMQ for tracehop: the topology ([`Names`], [`declare_topology`], [`delete_topology`]),
//! a publisher with confirms, the mandatory flag and reconnection ([`Publisher`]), and a
//! consumer with manual acks, retries with backoff, dead-lettering and reconnection
//! ([`run_consumer`]).
//!
//! The crate moves bytes and knows nothing of what they say: the publisher takes an
//! [`OutgoingMessage`] (body, routing key, ids), the consumer hands each body to its
//! [`Handler`], which decodes it into its own message type. The payment event itself is a
//! contract of the order path and lives in the `orders` crate.
//!
//! Trace context travels in the AMQP headers (`traceparent`, `tracestate`, `baggage`): the
//! publisher writes it from its PRODUCER span, the consumer makes it the parent of (and a link
//! from) its CONSUMER span.

mod carrier;
mod connection;
mod consumer;
mod metrics;
mod publisher;
mod span;
mod topology;

pub use carrier::{HeaderExtractor, HeaderInjector};
pub use connection::{Backoff, connect};
pub use consumer::{ConsumerConfig, ConsumerHandle, Delivery, HandleError, Handler, run_consumer};
pub use metrics::{ConsumerMetrics, ErrorReason, PublisherMetrics};
pub use publisher::{OutgoingMessage, PublishError, Publisher, PublisherConfig};
pub use topology::{Names, declare_topology, delete_topology};

/// Header carrying the delivery attempt number (1 for the first delivery).
pub const ATTEMPT_HEADER: &str = "x-attempt";
/// Header carrying why a message was dead-lettered.
pub const DEAD_LETTER_REASON_HEADER: &str = "x-dead-letter-reason";
