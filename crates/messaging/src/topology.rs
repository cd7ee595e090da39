//! Exchange and queue names (with `AMQP_PREFIX`) and their declaration.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
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

/// Declares the whole topology, idempotently; both the publisher and the consumer call it, so
/// either may start first without losing a message.
pub async fn declare_topology(channel: &Channel, names: &Names) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            names.exchange.as_str().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            names.dead_letter_exchange.as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(
            names.dead_letter_queue.as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            names.dead_letter_queue.as_str().into(),
            names.dead_letter_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    // A delivery rejected without requeue (the consumer's last resort) still reaches the DLQ.
    let mut main_args = FieldTable::default();
    main_args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(names.dead_letter_exchange.as_str().into()),
    );
    channel
        .queue_declare(
            names.queue.as_str().into(),
            QueueDeclareOptions::durable(),
            main_args,
        )
        .await?;
    channel
        .queue_bind(
            names.queue.as_str().into(),
            names.exchange.as_str().into(),
            "payment.*".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    // Retries wait here for their per-message TTL, then dead-letter back to the main queue.
    let mut retry_args = FieldTable::default();
    retry_args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    retry_args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(names.queue.as_str().into()),
    );
    channel
        .queue_declare(
            names.retry_queue.as_str().into(),
            QueueDeclareOptions::durable(),
            retry_args,
        )
        .await?;
    Ok(())
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
