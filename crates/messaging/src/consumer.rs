//! The consumer: manual acks after the work is done, a bounded prefetch, one CONSUMER span per
//! delivery attempt (child of, and linked to, the PRODUCER span found in the headers), retries
//! with backoff through the retry queue, dead-lettering with the reason in a header, and
//! reconnection after the broker goes away.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use telemetry::{OpenTelemetrySpanExt, TraceContextExt};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::instrument::WithSubscriber;
use tracing::{Instrument, field};

use crate::connection::{Backoff, connect, open_with_backoff};
use crate::event::PaymentEvent;
use crate::metrics::ConsumerMetrics;
use crate::topology::{Names, declare_topology};
use crate::{ATTEMPT_HEADER, DEAD_LETTER_REASON_HEADER};

/// Settings of the consumer.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// AMQP URL.
    pub url: String,
    /// Exchange and queue names.
    pub names: Names,
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
pub struct Delivery {
    /// The event.
    pub event: PaymentEvent,
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

/// The work done for each event; it runs inside the CONSUMER span.
pub trait Handler: Send + Sync + 'static {
    /// Handles one delivery; `Ok` acks it, an error retries or dead-letters it.
    fn handle(&self, delivery: Delivery) -> impl Future<Output = Result<(), HandleError>> + Send;
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
    let ctx = Arc::new(Shared {
        config,
        metrics,
        handler,
    });
    let mut backoff = Backoff::default();
    let mut paused_rx = handle.paused.subscribe();
    while !shutdown.is_cancelled() {
        if *paused_rx.borrow_and_update() {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = paused_rx.changed() => continue,
            }
        }
        let Some((connection, channel, mut consumer)) =
            open_with_backoff(&mut backoff, &shutdown, || open(&ctx.config)).await
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

async fn open(config: &ConsumerConfig) -> lapin::Result<(Connection, Channel, lapin::Consumer)> {
    let connection = connect(&config.url, &format!("{} consumer", config.app_id)).await?;
    let channel = connection.create_channel().await?;
    declare_topology(&channel, &config.names).await?;
    // Confirms on this channel make retry and dead-letter republishing safe before the ack.
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            config.names.queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((connection, channel, consumer))
}

struct Shared<H> {
    config: ConsumerConfig,
    metrics: ConsumerMetrics,
    handler: Arc<H>,
}

enum Outcome {
    Acked,
    Retried,
    DeadLettered,
}

impl<H: Handler> Shared<H> {
    async fn process(&self, channel: &Channel, delivery: lapin::message::Delivery) {
        let start = Instant::now();
        let names = &self.config.names;
        let headers = header_strings(delivery.properties.headers().as_ref());
        let parent = telemetry::propagation::extract_map(&headers);
        let attempt = attempt_of(delivery.properties.headers().as_ref());
        let message_id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default();
        let span = tracing::info_span!(
            "AMQP process",
            otel.name = %format!("process {}", names.queue),
            otel.kind = "consumer",
            messaging.system = "rabbitmq",
            messaging.operation.type = "process",
            messaging.operation.name = "process",
            messaging.destination.name = %names.queue,
            messaging.destination.subscription.name = %names.queue,
            messaging.rabbitmq.destination.routing_key = %delivery.routing_key.as_str(),
            messaging.message.id = %message_id,
            messaging.message.body.size = delivery.data.len(),
            messaging.rabbitmq.message.delivery_tag = delivery.delivery_tag,
            messaging.delivery.attempt = attempt,
            messaging.delivery.redelivered = delivery.redelivered,
            otel.status_code = field::Empty,
            error.type = field::Empty,
        );
        // Parent and link are set before the span is first entered.
        let producer = parent.span().span_context().clone();
        let _ = span.set_parent(parent.clone());
        span.add_link(producer);

        let outcome = self
            .decide(channel, &delivery, parent, attempt)
            .instrument(span.clone())
            .await;
        let outcome_label = match &outcome {
            Outcome::Acked => "acked",
            Outcome::Retried => "retried",
            Outcome::DeadLettered => "dead_lettered",
        };
        if !matches!(outcome, Outcome::Acked) {
            span.record("otel.status_code", "ERROR");
        }
        self.metrics
            .consumed
            .with_label_values(&[&names.queue, outcome_label])
            .inc();
        self.metrics
            .duration
            .with_label_values(&[&names.queue])
            .observe(start.elapsed().as_secs_f64());
    }

    async fn decide(
        &self,
        channel: &Channel,
        delivery: &lapin::message::Delivery,
        context: telemetry::Context,
        attempt: u32,
    ) -> Outcome {
        let span = tracing::Span::current();
        let event = match PaymentEvent::decode(&delivery.data) {
            Ok(event) => event,
            Err(error) => {
                span.record("error.type", "decode_error");
                tracing::error!(error = %error, "undecodable message sent to the dead-letter queue");
                return self
                    .dead_letter(channel, delivery, &error.to_string(), attempt)
                    .await;
            }
        };
        let handled = self
            .handler
            .handle(Delivery {
                event,
                attempt,
                redelivered: delivery.redelivered,
                context,
            })
            .await;
        match handled {
            Ok(()) => {
                if let Err(error) = delivery.acker.ack(BasicAckOptions::default()).await {
                    // The broker redelivers it; the handler's idempotency absorbs the repeat.
                    tracing::warn!(error = %error, "ack failed");
                }
                Outcome::Acked
            }
            Err(HandleError::Transient(reason)) => {
                span.record("error.type", "handler_error");
                if attempt >= self.config.max_attempts {
                    tracing::error!(attempt, reason = %reason, "giving up; message sent to the dead-letter queue");
                    self.dead_letter(channel, delivery, &reason, attempt).await
                } else {
                    let delay = self.config.retry_backoff * 2u32.saturating_pow(attempt - 1);
                    tracing::warn!(attempt, retry_in_ms = delay.as_millis() as u64, reason = %reason, "delivery failed; retrying");
                    self.retry(channel, delivery, attempt + 1, delay).await
                }
            }
        }
    }

    /// Republishes to the retry queue with the next attempt number, then acks the original.
    async fn retry(
        &self,
        channel: &Channel,
        delivery: &lapin::message::Delivery,
        next_attempt: u32,
        delay: Duration,
    ) -> Outcome {
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongUInt(next_attempt));
        let properties = delivery
            .properties
            .clone()
            .with_headers(headers)
            .with_expiration(delay.as_millis().max(1).to_string().into());
        self.republish(
            channel,
            delivery,
            "",
            &self.config.names.retry_queue,
            properties,
        )
        .await;
        Outcome::Retried
    }

    /// Publishes to the dead-letter exchange with the reason, then acks the original.
    async fn dead_letter(
        &self,
        channel: &Channel,
        delivery: &lapin::message::Delivery,
        reason: &str,
        attempts: u32,
    ) -> Outcome {
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        headers.insert(
            DEAD_LETTER_REASON_HEADER.into(),
            AMQPValue::LongString(reason.into()),
        );
        headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongUInt(attempts));
        let properties = delivery.properties.clone().with_headers(headers);
        self.republish(
            channel,
            delivery,
            &self.config.names.dead_letter_exchange,
            &self.config.names.queue,
            properties,
        )
        .await;
        Outcome::DeadLettered
    }

    /// Publishes a copy and acks the original only once the copy is confirmed; if the copy
    /// cannot be confirmed the original goes back to the queue (nack with requeue), never lost.
    async fn republish(
        &self,
        channel: &Channel,
        delivery: &lapin::message::Delivery,
        exchange: &str,
        routing_key: &str,
        properties: BasicProperties,
    ) {
        let confirmed = async {
            let confirm = channel
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &delivery.data,
                    properties,
                )
                .await?;
            let confirmation = confirm.await?;
            Ok::<bool, lapin::Error>(confirmation.is_ack() && confirmation.take_message().is_none())
        };
        let ok = matches!(
            tokio::time::timeout(Duration::from_secs(5), confirmed).await,
            Ok(Ok(true))
        );
        let result = if ok {
            delivery.acker.ack(BasicAckOptions::default()).await
        } else {
            tracing::error!("republish not confirmed; requeueing the delivery");
            delivery
                .acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await
        };
        if let Err(error) = result {
            tracing::warn!(error = %error, "ack after republish failed");
        }
    }
}

/// The string-valued headers (where the propagation headers live).
fn header_strings(headers: Option<&FieldTable>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Some(table) = headers {
        for (key, value) in table.inner() {
            let text = match value {
                AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                AMQPValue::ShortString(s) => s.as_str().to_owned(),
                _ => continue,
            };
            out.insert(key.as_str().to_owned(), text);
        }
    }
    out
}

/// The attempt number carried by a retried delivery; 1 when absent or garbled.
fn attempt_of(headers: Option<&FieldTable>) -> u32 {
    let Some(value) = headers.and_then(|t| t.inner().get(ATTEMPT_HEADER)) else {
        return 1;
    };
    let n = match value {
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::LongLongInt(n) => *n,
        AMQPValue::ShortUInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        _ => 1,
    };
    u32::try_from(n.max(1)).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_defaults_to_one() {
        assert_eq!(attempt_of(None), 1);
        let mut t = FieldTable::default();
        t.insert(ATTEMPT_HEADER.into(), AMQPValue::LongUInt(3));
        assert_eq!(attempt_of(Some(&t)), 3);
        t.insert(ATTEMPT_HEADER.into(), AMQPValue::LongInt(-4));
        assert_eq!(attempt_of(Some(&t)), 1);
    }

    #[test]
    fn string_headers_are_extracted() {
        let mut t = FieldTable::default();
        t.insert(
            "traceparent".into(),
            AMQPValue::LongString("00-a-b-01".into()),
        );
        t.insert("x-attempt".into(), AMQPValue::LongUInt(2));
        let map = header_strings(Some(&t));
        assert_eq!(
            map.get("traceparent").map(String::as_str),
            Some("00-a-b-01")
        );
        assert!(!map.contains_key("x-attempt"));
    }
}
