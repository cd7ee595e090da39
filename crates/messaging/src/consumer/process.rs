//! The fate of one delivery: decode, handle, then ack, retry through the retry queue, or
//! dead-letter, each republished copy confirmed before the original is acked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::options::{BasicAckOptions, BasicNackOptions, BasicPublishOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use telemetry::{OpenTelemetrySpanExt, TraceContextExt};
use tracing::Instrument;

use super::{ConsumerConfig, Delivery, HandleError, Handler};
use crate::carrier::HeaderExtractor;
use crate::metrics::{ConsumerMetrics, ErrorReason};
use crate::span::amqp_span;
use crate::{ATTEMPT_HEADER, DEAD_LETTER_REASON_HEADER};

/// What every delivery task of one consumer shares.
pub(super) struct Shared<H> {
    pub(super) config: ConsumerConfig,
    metrics: ConsumerMetrics,
    handler: Arc<H>,
}

/// What became of a delivery: the `outcome` label of `amqp_messages_consumed_total`.
enum Outcome {
    /// Handled and acked.
    Acked,
    /// A copy is confirmed in the retry queue and the original acked.
    Retried,
    /// A copy is confirmed in the dead-letter queue and the original acked.
    DeadLettered,
    /// The copy for the retry or dead-letter queue was not confirmed, so the original went
    /// back on the queue: it was neither retried nor dead-lettered, and comes back as is.
    Requeued,
}

impl<H: Handler> Shared<H> {
    pub(super) fn new(config: ConsumerConfig, metrics: ConsumerMetrics, handler: Arc<H>) -> Self {
        Self {
            config,
            metrics,
            handler,
        }
    }

    /// Counts one logged error of this consumer.
    pub(super) fn count_error(&self, reason: ErrorReason) {
        self.metrics.error(&self.config.names.queue, reason);
    }

    /// Runs one delivery inside its CONSUMER span and counts its outcome.
    pub(super) async fn process(&self, channel: &Channel, delivery: lapin::message::Delivery) {
        let start = Instant::now();
        let names = &self.config.names;
        let headers = delivery.properties.headers().as_ref();
        let parent = telemetry::propagation::extract(&HeaderExtractor(headers));
        let attempt = attempt_of(headers);
        let message_id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default();
        let span = amqp_span!(
            "AMQP process",
            kind: "consumer",
            "process",
            names.queue,
            messaging.destination.subscription.name = %names.queue,
            messaging.rabbitmq.destination.routing_key = %delivery.routing_key.as_str(),
            messaging.message.id = %message_id,
            messaging.message.body.size = delivery.data.len(),
            messaging.rabbitmq.message.delivery_tag = delivery.delivery_tag,
            messaging.delivery.attempt = attempt,
            messaging.delivery.redelivered = delivery.redelivered,
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
            Outcome::Requeued => "requeued",
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
        let message = match self.handler.decode(&delivery.data) {
            Ok(message) => message,
            Err(error) => {
                let reason = error.to_string();
                span.record("error.type", "decode_error");
                self.count_error(ErrorReason::Undecodable);
                tracing::error!(error = %reason, "undecodable message; dead-lettering it");
                return self
                    .republish(
                        channel,
                        delivery,
                        self.dead_letter(delivery, &reason, attempt),
                    )
                    .await;
            }
        };
        let handled = self
            .handler
            .handle(Delivery {
                message,
                attempt,
                redelivered: delivery.redelivered,
                context,
            })
            .await;
        match handled {
            Ok(()) => {
                if let Err(error) = delivery.acker.ack(BasicAckOptions::default()).await {
                    // The broker redelivers it; the handler's idempotency absorbs the repeat.
                    self.count_error(ErrorReason::AckFailed);
                    tracing::warn!(error = %error, "ack failed");
                }
                Outcome::Acked
            }
            Err(HandleError::Transient(reason)) => {
                span.record("error.type", "handler_error");
                self.count_error(ErrorReason::HandlerFailed);
                if attempt >= self.config.max_attempts {
                    tracing::error!(attempt, reason = %reason, "giving up; dead-lettering the message");
                    self.republish(
                        channel,
                        delivery,
                        self.dead_letter(delivery, &reason, attempt),
                    )
                    .await
                } else {
                    let delay = self.config.retry_backoff * 2u32.saturating_pow(attempt - 1);
                    tracing::warn!(attempt, retry_in_ms = delay.as_millis() as u64, reason = %reason, "delivery failed; retrying");
                    self.republish(channel, delivery, self.retry(delivery, attempt + 1, delay))
                        .await
                }
            }
        }
    }

    /// The copy that retries a delivery: to the retry queue, with the next attempt number,
    /// expiring back onto the work queue after `delay`.
    fn retry(
        &self,
        delivery: &lapin::message::Delivery,
        next_attempt: u32,
        delay: Duration,
    ) -> FailedCopy<'_> {
        FailedCopy {
            exchange: "",
            routing_key: &self.config.names.retry_queue,
            properties: delivery
                .properties
                .clone()
                .with_headers(headers_with_attempt(delivery, next_attempt))
                .with_expiration(delay.as_millis().max(1).to_string().into()),
            outcome: Outcome::Retried,
        }
    }

    /// The copy that dead-letters a delivery: to the dead-letter exchange, with the reason.
    fn dead_letter(
        &self,
        delivery: &lapin::message::Delivery,
        reason: &str,
        attempts: u32,
    ) -> FailedCopy<'_> {
        let mut headers = headers_with_attempt(delivery, attempts);
        headers.insert(
            DEAD_LETTER_REASON_HEADER.into(),
            AMQPValue::LongString(reason.into()),
        );
        let names = &self.config.names;
        FailedCopy {
            exchange: &names.dead_letter_exchange,
            routing_key: &names.queue,
            properties: delivery.properties.clone().with_headers(headers),
            outcome: Outcome::DeadLettered,
        }
    }

    /// Publishes `copy` and acks the original only once the copy is confirmed, which is the
    /// copy's outcome; if the copy cannot be confirmed (returned unroutable, nacked, timed out,
    /// channel gone) the original goes back to the queue (nack with requeue), never lost, and
    /// the outcome is `Requeued`.
    async fn republish(
        &self,
        channel: &Channel,
        delivery: &lapin::message::Delivery,
        copy: FailedCopy<'_>,
    ) -> Outcome {
        let FailedCopy {
            exchange,
            routing_key,
            properties,
            outcome: copied,
        } = copy;
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
        if ok {
            if let Err(error) = delivery.acker.ack(BasicAckOptions::default()).await {
                // The copy is out; the original comes back too, and is handled idempotently.
                self.count_error(ErrorReason::AckFailed);
                tracing::warn!(error = %error, "ack after republish failed");
            }
        } else {
            self.count_error(ErrorReason::RepublishUnconfirmed);
            tracing::error!("republish not confirmed; requeueing the delivery");
            let requeue = BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            };
            if let Err(error) = delivery.acker.nack(requeue).await {
                // The channel is gone: the broker requeues the delivery when it notices.
                self.count_error(ErrorReason::NackFailed);
                tracing::warn!(error = %error, "requeue after unconfirmed republish failed");
            }
        }
        if ok { copied } else { Outcome::Requeued }
    }
}

/// A copy of a failed delivery to publish before the original is acked.
struct FailedCopy<'a> {
    exchange: &'a str,
    routing_key: &'a str,
    properties: BasicProperties,
    /// The outcome once the copy is confirmed.
    outcome: Outcome,
}

/// The delivery's headers with the attempt number set to `attempt`, for a republished copy.
fn headers_with_attempt(delivery: &lapin::message::Delivery, attempt: u32) -> FieldTable {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongUInt(attempt));
    headers
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
}
