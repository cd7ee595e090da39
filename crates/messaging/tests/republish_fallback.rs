//! When the consumer cannot republish a failed delivery (to the retry queue or to the
//! dead-letter exchange), it puts the delivery back on its queue. The outcome it reports, and
//! the `amqp_messages_consumed_total` series it counts (which the EmailDeadLetters alert reads),
//! must say that, never "retried" or "dead_lettered".
//!
//! Each test has its own `AMQP_PREFIX`-style prefix, so the tests run in parallel on one broker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use messaging::{
    ConsumerConfig, ConsumerHandle, ConsumerMetrics, Delivery, HandleError, Handler, Names,
    run_consumer,
};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

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
    registry: prometheus::Registry,
    handler: Arc<AlwaysFails>,
    shutdown: CancellationToken,
    consumer: tokio::task::JoinHandle<()>,
    connection: Connection,
    channel: Channel,
}

impl Fixture {
    /// Starts consuming a fresh prefixed topology and waits until the consumer is registered.
    async fn start(max_attempts: u32) -> Self {
        let names = Names::new(&format!("mtest-{}.", uuid::Uuid::new_v4().simple()));
        let registry = prometheus::Registry::new();
        let metrics = ConsumerMetrics::new(&registry);
        let handler = Arc::new(AlwaysFails::default());
        let handle = ConsumerHandle::new();
        let shutdown = CancellationToken::new();
        let consumer = tokio::spawn(run_consumer(
            ConsumerConfig {
                url: amqp_url(),
                names: names.clone(),
                app_id: "messaging-test".into(),
                prefetch: 1,
                max_attempts,
                retry_backoff: Duration::from_millis(10),
                drain_timeout: Duration::from_secs(2),
            },
            handler.clone(),
            metrics,
            handle.clone(),
            shutdown.clone(),
        ));
        let deadline = Instant::now() + WAIT;
        while !handle.is_consuming() {
            assert!(Instant::now() < deadline, "the consumer never registered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let connection = messaging::connect(&amqp_url(), "messaging test")
            .await
            .expect("RabbitMQ on AMQP_URL (scripts/ensure-broker.sh starts it)");
        let channel = connection.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        Self {
            names,
            registry,
            handler,
            shutdown,
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
        let deadline = Instant::now() + WAIT;
        while self.handler.deliveries.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "only {} deliveries",
                self.handler.deliveries.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The value of `amqp_messages_consumed_total{queue, outcome}` (0 when absent).
    fn consumed(&self, outcome: &str) -> f64 {
        self.value(&format!(
            "amqp_messages_consumed_total{{outcome=\"{outcome}\",queue=\"{}\"}}",
            self.names.queue
        ))
    }

    /// The value of `amqp_consumer_errors_total{queue, reason}` (0 when absent).
    fn errors(&self, reason: &str) -> f64 {
        self.value(&format!(
            "amqp_consumer_errors_total{{queue=\"{}\",reason=\"{reason}\"}}",
            self.names.queue
        ))
    }

    fn value(&self, series: &str) -> f64 {
        telemetry::metrics::render(&self.registry)
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.trim().parse().expect("a number"))
            .unwrap_or(0.0)
    }

    /// Stops the consumer, then returns how many messages wait in the main queue.
    async fn stop_and_count_queue(self) -> u32 {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(WAIT, self.consumer).await;
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
        let names = &self.names;
        for q in [&names.queue, &names.retry_queue, &names.dead_letter_queue] {
            let _ = self
                .channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for e in [&names.exchange, &names.dead_letter_exchange] {
            let _ = self
                .channel
                .exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
        let _ = self.connection.close(200, "done".into()).await;
        depth
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_that_cannot_be_republished_is_counted_as_requeued_not_retried() {
    // Arrange: three attempts allowed, and no retry queue to republish to.
    let fixture = Fixture::start(3).await;
    let retry_queue = fixture.names.retry_queue.clone();
    fixture.delete_queue(&retry_queue).await;

    // Act: the first attempt fails; its retry copy comes back unroutable, so the delivery
    // goes back on the queue and is attempted again.
    fixture.publish().await;
    fixture.wait_for_deliveries(3).await;

    // Assert: nothing was retried, and the counters say so.
    assert_eq!(
        fixture.consumed("retried"),
        0.0,
        "no copy reached the retry queue"
    );
    assert!(fixture.consumed("requeued") >= 2.0);
    assert!(fixture.errors("republish_unconfirmed") >= 2.0);
    assert!(fixture.errors("handler_failed") >= fixture.errors("republish_unconfirmed"));
    assert_eq!(
        fixture.stop_and_count_queue().await,
        1,
        "the message is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_that_cannot_be_republished_is_counted_as_requeued_not_dead_lettered() {
    // Arrange: one attempt allowed, and no queue behind the dead-letter exchange.
    let fixture = Fixture::start(1).await;
    let dead_letter_queue = fixture.names.dead_letter_queue.clone();
    fixture.delete_queue(&dead_letter_queue).await;

    // Act: the only attempt fails; its dead-letter copy comes back unroutable, so the delivery
    // goes back on the queue and is attempted again.
    fixture.publish().await;
    fixture.wait_for_deliveries(3).await;

    // Assert: nothing was dead-lettered (EmailDeadLetters must stay silent), and the counters
    // say so.
    assert_eq!(
        fixture.consumed("dead_lettered"),
        0.0,
        "no copy reached the dead-letter queue"
    );
    assert!(fixture.consumed("requeued") >= 2.0);
    assert!(fixture.errors("republish_unconfirmed") >= 2.0);
    assert!(fixture.errors("handler_failed") >= fixture.errors("republish_unconfirmed"));
    assert_eq!(
        fixture.stop_and_count_queue().await,
        1,
        "the message is kept"
    );
}
