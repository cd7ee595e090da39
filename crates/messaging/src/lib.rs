//! RabbitMQ for tracehop: the topology ([`Names`], [`declare_topology`]), the payment events
//! ([`PaymentEvent`]), a publisher with confirms, the mandatory flag and reconnection
//! ([`Publisher`]), and a consumer with manual acks, retries with backoff, dead-lettering and
//! reconnection ([`run_consumer`]).
//!
//! Trace context travels in the AMQP headers (`traceparent`, `tracestate`, `baggage`): the
//! publisher writes it from its PRODUCER span, the consumer makes it the parent of (and a link
//! from) its CONSUMER span.

mod connection;
mod consumer;
mod event;
mod metrics;
mod publisher;
mod topology;

pub use connection::{Backoff, connect};
pub use consumer::{ConsumerConfig, ConsumerHandle, Delivery, HandleError, Handler, run_consumer};
pub use event::{DecodeError, PaymentEvent, PaymentEventType};
pub use metrics::{ConsumerMetrics, PublisherMetrics};
pub use publisher::{PublishError, Publisher, PublisherConfig};
pub use topology::{Names, declare_topology};

/// Header carrying the delivery attempt number (1 for the first delivery).
pub const ATTEMPT_HEADER: &str = "x-attempt";
/// Header carrying why a message was dead-lettered.
pub const DEAD_LETTER_REASON_HEADER: &str = "x-dead-letter-reason";
