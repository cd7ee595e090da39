//! What the broker tests of this crate share: a private topology per test, a consumer they can
//! stop, the series they read, and the clean-up that leaves the shared broker as it was.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection};
use messaging::{ConsumerConfig, ConsumerHandle, ConsumerMetrics, Handler, Names, run_consumer};
use tokio_util::sync::CancellationToken;

/// How long a test waits for the broker or the consumer before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// The shared broker: `AMQP_URL`, else the local one.
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Names under a prefix of their own, so tests never share a queue.
pub fn fresh_names() -> Names {
    Names::new(&format!("mtest-{}.", uuid::Uuid::new_v4().simple()))
}

/// A consumer of `names` on `url` that retries quickly and drains briefly.
pub fn consumer_config(url: String, names: &Names) -> ConsumerConfig {
    ConsumerConfig {
        url,
        names: names.clone(),
        quorum: false,
        app_id: "messaging-test".into(),
        prefetch: 4,
        max_attempts: 3,
        retry_backoff: Duration::from_millis(10),
        drain_timeout: Duration::from_secs(2),
    }
}

/// A consumer running in the background, counting into its own registry.
pub struct Consumer {
    pub handle: ConsumerHandle,
    pub registry: prometheus::Registry,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Consumer {
    /// Starts consuming with `config`, handing deliveries to `handler`.
    pub fn spawn<H: Handler>(config: ConsumerConfig, handler: Arc<H>) -> Self {
        let registry = prometheus::Registry::new();
        let handle = ConsumerHandle::new();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_consumer(
            config,
            handler,
            ConsumerMetrics::new(&registry),
            handle.clone(),
            shutdown.clone(),
        ));
        Self {
            handle,
            registry,
            shutdown,
            task,
        }
    }

    /// Cancels the consumer and waits up to [`WAIT`] for it to end.
    pub async fn stop(
        self,
    ) -> Result<Result<(), tokio::task::JoinError>, tokio::time::error::Elapsed> {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task).await
    }

    /// `amqp_messages_consumed_total{queue, outcome}`.
    pub fn consumed(&self, queue: &str, outcome: &str) -> f64 {
        value(
            &self.registry,
            &format!("amqp_messages_consumed_total{{outcome=\"{outcome}\",queue=\"{queue}\"}}"),
        )
    }

    /// `amqp_consumer_errors_total{queue, reason}`.
    pub fn errors(&self, queue: &str, reason: &str) -> f64 {
        value(
            &self.registry,
            &format!("amqp_consumer_errors_total{{queue=\"{queue}\",reason=\"{reason}\"}}"),
        )
    }
}

/// The value of one series of `registry` (0 when absent).
pub fn value(registry: &prometheus::Registry, series: &str) -> f64 {
    telemetry::metrics::render(registry)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
        .unwrap_or(0.0)
}

/// Waits until `done` holds, failing the test after [`WAIT`].
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A connection of the test's own, beside the code under test, with a channel in confirm mode.
pub async fn side_channel() -> (Connection, Channel) {
    let connection = messaging::connect(&amqp_url(), "messaging test")
        .await
        .expect("RabbitMQ on AMQP_URL (scripts/ensure-broker.sh starts it)");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    (connection, channel)
}

/// Deletes the queues and exchanges of `names`.
pub async fn delete_topology(names: &Names) {
    let connection = messaging::connect(&amqp_url(), "messaging test cleanup")
        .await
        .expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    messaging::delete_topology(&channel, names).await;
    let _ = connection.close(200, "done".into()).await;
}
