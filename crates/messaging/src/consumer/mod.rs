//! The consumer: manual acks after the work is done, a bounded prefetch, one CONSUMER span per
//! delivery attempt (child of, and linked to, the PRODUCER span found in the headers), retries
//! with backoff through the retry queue, dead-lettering with the reason in a header, and
//! reconnection after the broker goes away.
//!
//! This module runs the connection and the intake; [`process`] decides the fate of each
//! delivery. The consumer knows nothing of what a message says: the [`Handler`] decodes it.

mod process;

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::instrument::WithSubscriber;

use crate::connection::{Backoff, OpenError, open_confirmed, open_with_backoff};
use crate::metrics::{ConsumerMetrics, ErrorReason};
use crate::topology::Names;
use process::Shared;

/// Settings of the consumer.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// AMQP URL, or several nodes' URLs separated by commas: a connection goes to the first
    /// that answers, and after a loss the next connection tries them again in order.
    pub url: String,
    /// Exchange and queue names.
    pub names: Names,
    /// Declare the queues as quorum queues (replicated on the cluster's nodes) instead of
    /// classic ones. Every client of one topology must agree, or the broker refuses the second
    /// declaration.
    pub quorum: bool,
    /// Connection name (the service name).
    pub app_id: String,
    /// Deliveries in flight at most (basic.qos prefetch).
    pub prefetch: u16,
    /// Attempts per event before it is dead-lettered (at least 1).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles for each further attempt.
    pub retry_backoff: Duration,
    /// How long in-flight deliveries may take to finish at shutdown.
    pub drain_timeout: Duration,
}

/// One decoded delivery, as the handler sees it.
#[derive(Debug, Clone)]
pub struct Delivery<M> {
    /// The message, as [`Handler::decode`] made it.
    pub message: M,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Whether the broker flagged it as redelivered (after a consumer crash, say).
    pub redelivered: bool,
    /// The propagated context (remote parent and baggage).
    pub context: telemetry::Context,
}

/// What went wrong in a handler.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// A failure worth retrying (the mail server said no).
    #[error("{0}")]
    Transient(String),
}

/// The work done for each message; it runs inside the CONSUMER span.
///
/// The handler owns the message format: the consumer hands it the body to decode, and
/// dead-letters at once (never retries) a body that does not decode, since no attempt can
/// change the bytes.
pub trait Handler: Send + Sync + 'static {
    /// The decoded message.
    type Message: Send;
    /// Why a body is not a message; its text becomes the dead-letter reason.
    type DecodeError: Display + Send;

    /// Decodes and checks a message body; must never panic, whatever the bytes.
    fn decode(&self, body: &[u8]) -> Result<Self::Message, Self::DecodeError>;

    /// Handles one delivery; `Ok` acks it, an error retries or dead-letters it.
    fn handle(
        &self,
        delivery: Delivery<Self::Message>,
    ) -> impl Future<Output = Result<(), HandleError>> + Send;
}

/// Observes and steers a running consumer.
#[derive(Clone)]
pub struct ConsumerHandle {
    consuming: Arc<AtomicBool>,
    paused: tokio::sync::watch::Sender<bool>,
}

impl ConsumerHandle {
    /// Creates a handle; pass it to [`run_consumer`].
    pub fn new() -> Self {
        Self {
            consuming: Arc::new(AtomicBool::new(false)),
            paused: tokio::sync::watch::channel(false).0,
        }
    }

    /// Whether a consumer is registered on the queue right now (readiness).
    pub fn is_consuming(&self) -> bool {
        self.consuming.load(Ordering::Acquire)
    }

    /// Pauses (cancels the broker consumer; messages wait in the queue) or resumes consuming.
    pub fn set_paused(&self, paused: bool) {
        self.paused.send_replace(paused);
    }

    /// Whether consuming is paused.
    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }
}

impl Default for ConsumerHandle {
    fn default() -> Self {
        Self::new()
    }
}

/// Consumes the queue until `shutdown` fires, reconnecting with backoff whenever the broker goes
/// away; at shutdown it stops intake, lets in-flight deliveries finish (and be acked) within
/// the drain timeout, then closes.
pub async fn run_consumer<H: Handler>(
    config: ConsumerConfig,
    handler: Arc<H>,
    metrics: ConsumerMetrics,
    handle: ConsumerHandle,
    shutdown: CancellationToken,
) {
    metrics.init_series(&config.names.queue);
    let ctx = Arc::new(Shared::new(config, metrics, handler));
    let mut backoff = Backoff::default();
    let mut paused_rx = handle.paused.subscribe();
    while !shutdown.is_cancelled() {
        if *paused_rx.borrow_and_update() {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = paused_rx.changed() => continue,
            }
        }
        let Some((connection, channel, mut consumer)) = open_with_backoff(
            &mut backoff,
            &shutdown,
            |reason| ctx.count_error(reason),
            || open(&ctx.config),
        )
        .await
        else {
            break;
        };
        handle.consuming.store(true, Ordering::Release);
        tracing::info!(queue = %ctx.config.names.queue, prefetch = ctx.config.prefetch, "consuming");

        let mut in_flight = JoinSet::new();
        let reason = loop {
            tokio::select! {
                () = shutdown.cancelled() => break "shutdown",
                changed = paused_rx.changed() => {
                    if changed.is_ok() && *paused_rx.borrow() { break "paused"; }
                }
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        let ctx = ctx.clone();
                        let channel = channel.clone();
                        in_flight.spawn(
                            async move { ctx.process(&channel, delivery).await }
                                .with_current_subscriber(),
                        );
                    }
                    Some(Err(error)) => {
                        ctx.count_error(ErrorReason::ConnectionLost);
                        tracing::warn!(error = %error, "consumer stream failed");
                        break "broker lost";
                    }
                    None => break "consumer cancelled",
                },
            }
        };
        handle.consuming.store(false, Ordering::Release);
        if reason != "broker lost" {
            // Stop intake first: the broker sends nothing more, unacked messages stay ours.
            let _ = channel
                .basic_cancel(consumer.tag(), BasicCancelOptions::default())
                .await;
        }
        let drained = tokio::time::timeout(ctx.config.drain_timeout, async {
            while in_flight.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            ctx.count_error(ErrorReason::DrainTimeout);
            tracing::warn!(
                remaining = in_flight.len(),
                "in-flight deliveries did not finish in time; the broker redelivers them"
            );
            in_flight.abort_all();
        }
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            connection.close(200, "consumer stopped".into()),
        )
        .await;
        tracing::info!(reason, "consumer stopped");
        if reason == "broker lost" {
            let delay = backoff.next_delay();
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }
}

async fn open(
    config: &ConsumerConfig,
) -> Result<(Connection, Channel, lapin::Consumer), OpenError> {
    let name = format!("{} consumer", config.app_id);
    open_confirmed(
        &config.url,
        &name,
        &config.names,
        config.quorum,
        |channel| async move {
            channel
                .basic_qos(config.prefetch, BasicQosOptions::default())
                .await?;
            channel
                .basic_consume(
                    config.names.queue.as_str().into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
        },
    )
    .await
}
