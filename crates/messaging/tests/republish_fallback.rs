//! When the consumer cannot republish a failed delivery (to the retry queue or to the
//! dead-letter exchange), it puts the delivery back on its queue. The outcome it reports, and
//! the `amqp_messages_consumed_total` series it counts (which the EmailDeadLetters alert reads),
//! must say that, never "retried" or "dead_lettered".
//!
//! Each test has its own `AMQP_PREFIX`-style prefix, so the tests run in parallel on one broker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use lapin::options::{BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use messaging::{ConsumerConfig, Delivery, HandleError, Handler, Names};
use support::{
    Consumer, amqp_url, consumer_config, delete_topology, fresh_names, side_channel, wait_until,
};

mod support;

/// A handler whose mail server always says no, counting the deliveries it saw.
#[derive(Default)]
struct AlwaysFails {
    deliveries: AtomicU32,
}

impl Handler for AlwaysFails {
    type Message = Vec<u8>;
    type DecodeError = std::convert::Infallible;

    fn decode(&self, body: &[u8]) -> Result<Vec<u8>, Self::DecodeError> {
        Ok(body.to_vec())
    }

    async fn handle(&self, _delivery: Delivery<Vec<u8>>) -> Result<(), HandleError> {
        self.deliveries.fetch_add(1, Ordering::SeqCst);
        Err(HandleError::Transient("mail server said no".into()))
    }
}

/// One consumer on a private topology, and a side connection to break and inspect it.
struct Fixture {
    names: Names,
    handler: Arc<AlwaysFails>,
    consumer: Consumer,
    connection: Connection,
    channel: Channel,
}

impl Fixture {
    /// Starts consuming a fresh prefixed topology and waits until the consumer is registered.
    async fn start(max_attempts: u32) -> Self {
        let names = fresh_names();
        let handler = Arc::new(AlwaysFails::default());
        let consumer = Consumer::spawn(
            ConsumerConfig {
                prefetch: 1,
                max_attempts,
                ..consumer_config(amqp_url(), &names)
            },
            handler.clone(),
        );
        wait_until("the consumer to register", || {
            consumer.handle.is_consuming()
        })
        .await;
        let (connection, channel) = side_channel().await;
        Self {
            names,
            handler,
            consumer,
            connection,
            channel,
        }
    }

    /// Deletes `queue`, so a mandatory publish routed only to it comes back unroutable.
    async fn delete_queue(&self, queue: &str) {
        self.channel
            .queue_delete(queue.into(), QueueDeleteOptions::default())
            .await
            .expect("queue.delete");
    }

    /// Publishes one message the consumer's binding (`payment.*`) routes to its queue.
    async fn publish(&self) {
        self.channel
            .basic_publish(
                self.names.exchange.as_str().into(),
                "payment.succeeded".into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                b"{}",
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }

    /// Waits until the handler has seen `n` deliveries.
    async fn wait_for_deliveries(&self, n: u32) {
        wait_until(&format!("{n} deliveries"), || {
            self.handler.deliveries.load(Ordering::SeqCst) >= n
        })
        .await;
    }

    /// The value of `amqp_messages_consumed_total{queue, outcome}` (0 when absent).
    fn consumed(&self, outcome: &str) -> f64 {
        self.consumer.consumed(&self.names.queue, outcome)
    }

    /// The value of `amqp_consumer_errors_total{queue, reason}` (0 when absent).
    fn errors(&self, reason: &str) -> f64 {
        self.consumer.errors(&self.names.queue, reason)
    }

    /// Stops the consumer, then returns how many messages wait in the main queue.
    async fn stop_and_count_queue(self) -> u32 {
        let _ = self.consumer.stop().await;
        let depth = self
            .channel
            .queue_declare(
                self.names.queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("passive queue.declare")
            .message_count();
        let _ = self.connection.close(200, "done".into()).await;
        delete_topology(&self.names).await;
        depth
    }
}

/// Fails every attempt of one message while the queue of `copy_queue` (the retry queue, or the
/// one behind the dead-letter exchange) is missing, and checks that the consumer reports the
/// delivery as requeued, never as `lost_outcome`, and keeps the message.
async fn unroutable_copies_are_requeued(
    max_attempts: u32,
    copy_queue: fn(&Names) -> &String,
    lost_outcome: &str,
) {
    // Arrange
    let fixture = Fixture::start(max_attempts).await;
    let queue = copy_queue(&fixture.names).clone();
    fixture.delete_queue(&queue).await;

    // Act: the attempt fails; its copy comes back unroutable, so the delivery goes back on the
    // queue and is attempted again.
    fixture.publish().await;
    fixture.wait_for_deliveries(3).await;
    // A delivery's outcome is counted just after its nack, which may be after the broker
    // redelivered it: wait for the count rather than race it.
    wait_until("two requeues counted", || {
        fixture.consumed("requeued") >= 2.0
    })
    .await;

    // Assert: no copy reached `queue`, and the counters say so.
    assert_eq!(
        fixture.consumed(lost_outcome),
        0.0,
        "no copy reached {queue}"
    );
    assert!(fixture.consumed("requeued") >= 2.0);
    assert!(fixture.errors("republish_unconfirmed") >= 2.0);
    // The consumer goes on retrying meanwhile, and counts a failed attempt before its lost copy:
    // reading the copies first keeps a later attempt from landing between the two reads.
    let unconfirmed = fixture.errors("republish_unconfirmed");
    assert!(fixture.errors("handler_failed") >= unconfirmed);
    assert_eq!(
        fixture.stop_and_count_queue().await,
        1,
        "the message is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_that_cannot_be_republished_is_counted_as_requeued_not_retried() {
    // Three attempts allowed, and no retry queue to republish to.
    unroutable_copies_are_requeued(3, |names| &names.retry_queue, "retried").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_that_cannot_be_republished_is_counted_as_requeued_not_dead_lettered() {
    // One attempt allowed, and no queue behind the dead-letter exchange (EmailDeadLetters must
    // stay silent).
    unroutable_copies_are_requeued(1, |names| &names.dead_letter_queue, "dead_lettered").await;
}
