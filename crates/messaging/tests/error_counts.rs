//! Every error the messaging components log is counted, with a bounded `reason`:
//! `amqp_publisher_errors_total{exchange, reason}` and `amqp_consumer_errors_total{queue, reason}`.
//!
//! Each test has its own prefixed topology, so the tests run in parallel on one broker.

use std::sync::Arc;
use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use lapin::types::FieldTable;
use messaging::{
    Delivery, HandleError, Handler, OutgoingMessage, PublishError, Publisher, PublisherConfig,
    PublisherMetrics,
};
use support::{
    Consumer, WAIT, amqp_url, consumer_config, delete_topology, fresh_names, side_channel, value,
    wait_until,
};
use tokio_util::sync::CancellationToken;

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_errors_are_counted_by_reason() {
    // Arrange
    let names = fresh_names();
    let registry = prometheus::Registry::new();
    let shutdown = CancellationToken::new();
    let (publisher, supervisor) = Publisher::start(
        PublisherConfig {
            url: amqp_url(),
            names: names.clone(),
            quorum: false,
            app_id: "messaging-test".into(),
            confirm_timeout: Duration::from_secs(5),
        },
        PublisherMetrics::new(&registry),
        shutdown.clone(),
    );
    wait_until("the publisher's channel", || publisher.is_ready()).await;
    let errors = |reason: &str| {
        value(
            &registry,
            &format!(
                "amqp_publisher_errors_total{{exchange=\"{}\",reason=\"{reason}\"}}",
                names.exchange
            ),
        )
    };
    assert_eq!(
        errors("unroutable"),
        0.0,
        "the series exists before the first error"
    );
    let long_id = "x".repeat(300);
    let message = |routing_key, message_id| OutgoingMessage {
        routing_key,
        message_id,
        correlation_id: "order-1",
        content_type: "application/json",
        body: b"{}",
    };

    // Act: a routing key no queue is bound to, then an id AMQP cannot carry.
    let unroutable = publisher.publish(&message("other.key", "m-1")).await;
    let invalid = publisher
        .publish(&message("payment.succeeded", &long_id))
        .await;
    let confirmed = publisher
        .publish(&message("payment.succeeded", "m-2"))
        .await;

    // Assert
    assert!(
        matches!(unroutable, Err(PublishError::Unroutable(_))),
        "{unroutable:?}"
    );
    assert!(
        matches!(invalid, Err(PublishError::Invalid(_))),
        "{invalid:?}"
    );
    assert!(confirmed.is_ok(), "{confirmed:?}");
    assert_eq!(errors("unroutable"), 1.0);
    assert_eq!(errors("invalid_message"), 1.0);
    assert_eq!(errors("connect_failed"), 0.0);
    assert_eq!(
        value(
            &registry,
            &format!(
                "amqp_messages_published_total{{exchange=\"{}\",outcome=\"error\",routing_key=\"other.key\"}}",
                names.exchange
            )
        ),
        1.0
    );
    shutdown.cancel();
    let _ = tokio::time::timeout(WAIT, supervisor).await;
    delete_topology(&names).await;
}

/// Hands every body over as is, unless it is `poison`; always succeeds.
struct Accepts;

impl Handler for Accepts {
    type Message = Vec<u8>;
    type DecodeError = &'static str;

    fn decode(&self, body: &[u8]) -> Result<Vec<u8>, &'static str> {
        if body == b"poison" {
            Err("not a message")
        } else {
            Ok(body.to_vec())
        }
    }

    async fn handle(&self, _delivery: Delivery<Vec<u8>>) -> Result<(), HandleError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_message_is_counted_once_and_dead_lettered() {
    // Arrange
    let names = fresh_names();
    let consumer = Consumer::spawn(consumer_config(amqp_url(), &names), Arc::new(Accepts));
    wait_until("the consumer", || consumer.handle.is_consuming()).await;

    // Act
    let (connection, channel) = side_channel().await;
    for body in [&b"poison"[..], b"fine"] {
        channel
            .basic_publish(
                names.exchange.as_str().into(),
                "payment.succeeded".into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_headers(FieldTable::default()),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }
    wait_until("both deliveries", || {
        consumer.consumed(&names.queue, "acked") == 1.0
            && consumer.consumed(&names.queue, "dead_lettered") == 1.0
    })
    .await;

    // Assert
    assert_eq!(consumer.errors(&names.queue, "undecodable"), 1.0);
    assert_eq!(consumer.errors(&names.queue, "handler_failed"), 0.0);
    assert_eq!(consumer.errors(&names.queue, "republish_unconfirmed"), 0.0);
    let _ = connection.close(200, "done".into()).await;
    let _ = consumer.stop().await;
    delete_topology(&names).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_counted_as_connect_failed() {
    // Arrange: a port where no broker listens.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let names = fresh_names();

    // Act
    let consumer = Consumer::spawn(
        consumer_config(format!("amqp://guest:guest@127.0.0.1:{port}/%2f"), &names),
        Arc::new(Accepts),
    );
    wait_until("two failed connection attempts", || {
        consumer.errors(&names.queue, "connect_failed") >= 2.0
    })
    .await;

    // Assert: the other reasons stayed at zero, and nothing pretends to consume.
    assert!(!consumer.handle.is_consuming());
    assert_eq!(consumer.errors(&names.queue, "declare_failed"), 0.0);
    consumer
        .stop()
        .await
        .expect("the consumer stops while waiting for the broker")
        .expect("no panic");
}
