//! Exchange and queue names (with `AMQP_PREFIX`) and their declaration.

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

/// Every exchange and queue name of the topology, prefixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Topic exchange the payment events are published to (`payments`).
    pub exchange: String,
    /// Queue the email-service consumes (`email.payments`).
    pub queue: String,
    /// Queue holding deliveries waiting for their next attempt (`email.payments.retry`).
    pub retry_queue: String,
    /// Dead-letter exchange (`payments.dlx`).
    pub dead_letter_exchange: String,
    /// Dead-letter queue (`email.payments.dlq`).
    pub dead_letter_queue: String,
}

impl Names {
    /// Builds the names with `prefix` in front of each.
    pub fn new(prefix: &str) -> Self {
        Self {
            exchange: format!("{prefix}payments"),
            queue: format!("{prefix}email.payments"),
            retry_queue: format!("{prefix}email.payments.retry"),
            dead_letter_exchange: format!("{prefix}payments.dlx"),
            dead_letter_queue: format!("{prefix}email.payments.dlq"),
        }
    }
}

/// How many times a quorum queue delivers one message without an ack (a consumer that crashes
/// or loses its channel while holding it) before it dead-letters the message: the broker's
/// count, where a classic queue would redeliver a poison message forever. Handler failures do
/// not count against it: they go through the retry queue as a new message with its attempt
/// number, up to the consumer's `max_attempts`.
pub const QUORUM_DELIVERY_LIMIT: i64 = 10;

/// Where a queue's rejected and expired messages go.
struct DeadLetter<'a> {
    exchange: &'a str,
    routing_key: Option<&'a str>,
    /// A quorum queue keeps each such message until the target confirmed it (at-least-once)
    /// instead of handing it over unconfirmed. It needs the queue to nack publishes when over
    /// its limit (`reject-publish`); on RabbitMQ 3.10 such a queue also nacked every publish
    /// for minutes after its leader moved (3 of 7 stops of the leader under load), so
    /// only the retry queue, which the consumer's confirmed republish feeds, uses it.
    at_least_once: bool,
}

/// Declares the whole topology, idempotently; both the publisher and the consumer call it, so
/// either may start first without losing a message. `quorum` declares the three queues as
/// quorum queues; the retry queue then hands expired retries back to the main queue
/// at-least-once, so a retry survives a node's failure on its way back.
pub async fn declare_topology(channel: &Channel, names: &Names, quorum: bool) -> lapin::Result<()> {
    declare_exchange(channel, &names.exchange, ExchangeKind::Topic).await?;
    declare_exchange(channel, &names.dead_letter_exchange, ExchangeKind::Fanout).await?;
    let dlq_args = queue_arguments(quorum, None);
    declare_queue(channel, &names.dead_letter_queue, dlq_args).await?;
    bind_queue(
        channel,
        &names.dead_letter_queue,
        &names.dead_letter_exchange,
        "",
    )
    .await?;

    // A delivery rejected without requeue, or past the delivery limit (the last resorts),
    // still reaches the DLQ.
    let to_dlq = DeadLetter {
        exchange: &names.dead_letter_exchange,
        routing_key: None,
        at_least_once: false,
    };
    declare_queue(channel, &names.queue, queue_arguments(quorum, Some(to_dlq))).await?;
    bind_queue(channel, &names.queue, &names.exchange, "payment.*").await?;

    // Retries wait here for their per-message TTL, then dead-letter back to the main queue.
    let back_to_work = DeadLetter {
        exchange: "",
        routing_key: Some(&names.queue),
        at_least_once: true,
    };
    let retry_args = queue_arguments(quorum, Some(back_to_work));
    declare_queue(channel, &names.retry_queue, retry_args).await
}

/// The arguments of one queue: its type and where its rejected and expired messages go.
fn queue_arguments(quorum: bool, dead_letter: Option<DeadLetter<'_>>) -> FieldTable {
    let mut arguments = FieldTable::default();
    let mut text = |key: &str, value: &str| {
        arguments.insert(key.into(), AMQPValue::LongString(value.into()));
    };
    if quorum {
        text("x-queue-type", "quorum");
    }
    if let Some(dead_letter) = dead_letter {
        text("x-dead-letter-exchange", dead_letter.exchange);
        if let Some(routing_key) = dead_letter.routing_key {
            text("x-dead-letter-routing-key", routing_key);
        }
        if quorum && dead_letter.at_least_once {
            text("x-dead-letter-strategy", "at-least-once");
            text("x-overflow", "reject-publish");
        }
    }
    if quorum {
        arguments.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(QUORUM_DELIVERY_LIMIT),
        );
    }
    arguments
}

/// Deletes every queue and exchange of the topology, so a run under its own prefix leaves a
/// shared broker as it found it. Best effort: a failed deletion is skipped, not reported.
pub async fn delete_topology(channel: &Channel, names: &Names) {
    for queue in [&names.queue, &names.retry_queue, &names.dead_letter_queue] {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for exchange in [&names.exchange, &names.dead_letter_exchange] {
        let _ = channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
}

/// Declares a durable exchange of `kind`.
async fn declare_exchange(channel: &Channel, name: &str, kind: ExchangeKind) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(name.into(), kind, durable, FieldTable::default())
        .await
}

/// Declares a durable queue with `arguments`.
async fn declare_queue(channel: &Channel, name: &str, arguments: FieldTable) -> lapin::Result<()> {
    channel
        .queue_declare(name.into(), QueueDeclareOptions::durable(), arguments)
        .await
        .map(drop)
}

/// Binds `queue` to `exchange` under `routing_key`.
async fn bind_queue(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    routing_key: &str,
) -> lapin::Result<()> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            routing_key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_applies_to_every_name() {
        let n = Names::new("t1.");
        assert_eq!(n.exchange, "t1.payments");
        assert_eq!(n.queue, "t1.email.payments");
        assert_eq!(n.dead_letter_exchange, "t1.payments.dlx");
        assert_eq!(n.dead_letter_queue, "t1.email.payments.dlq");
        assert_eq!(Names::new("").exchange, "payments");
    }
}
