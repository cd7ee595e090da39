//! A publisher that never drops an event silently: publisher confirms, the mandatory flag (an
//! unroutable event is an error), a deadline on the broker's confirm, and a supervisor task that
//! reconnects with backoff after the connection or channel is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::BasicPublishOptions;
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use telemetry::OpenTelemetrySpanExt;
use tokio::sync::{Notify, RwLock};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing::instrument::WithSubscriber;

use crate::carrier::HeaderInjector;
use crate::connection::{Backoff, OpenError, open_confirmed, open_with_backoff};
use crate::metrics::{ErrorReason, PublisherMetrics};
use crate::span::amqp_span;
use crate::topology::Names;

/// Settings of a [`Publisher`].
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// AMQP URL, or several nodes' URLs separated by commas: a connection goes to the first
    /// that answers, and after a loss the next connection tries them again in order.
    pub url: String,
    /// Exchange and queue names.
    pub names: Names,
    /// Declare the queues as quorum queues (replicated on the cluster's nodes) instead of
    /// classic ones. Every client of one topology must agree, or the broker refuses the second
    /// declaration.
    pub quorum: bool,
    /// The AMQP `app_id` and connection name (the service name).
    pub app_id: String,
    /// How long to wait for the broker's confirm before reporting failure.
    pub confirm_timeout: Duration,
}

/// One message to publish: the body and what the broker and the consumer see of it.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingMessage<'a> {
    /// Routing key on the exchange (and the AMQP `type`).
    pub routing_key: &'a str,
    /// The AMQP `message_id`: unique per message, what a consumer dedupes on.
    pub message_id: &'a str,
    /// The AMQP `correlation_id`: the conversation the message belongs to (the order id), so
    /// the broker's tools (management UI, tracing, shovels) can group messages without
    /// decoding bodies.
    pub correlation_id: &'a str,
    /// MIME type of the body (`application/json`).
    pub content_type: &'a str,
    /// The encoded body.
    pub body: &'a [u8],
}

/// Why a message was not published; each maps to a 503 for the caller.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No channel to the broker right now (down, or reconnecting).
    #[error("broker unavailable")]
    Unavailable,
    /// The broker did not confirm within the deadline.
    #[error("broker did not confirm within {0:?}")]
    ConfirmTimeout(Duration),
    /// The broker refused the message (nack).
    #[error("broker rejected the message")]
    Nacked,
    /// No queue is bound for the routing key (returned by the mandatory flag).
    #[error("message unroutable: {0}")]
    Unroutable(String),
    /// The channel failed while publishing.
    #[error("publish failed: {0}")]
    Channel(#[from] lapin::Error),
    /// A property does not fit AMQP: ids, keys and types are short strings of at most 255 bytes.
    #[error("message {0} is longer than 255 bytes")]
    Invalid(&'static str),
}

impl PublishError {
    /// The reason counted (and recorded as the span's `error.type`) for this error.
    fn reason(&self) -> ErrorReason {
        match self {
            Self::Unavailable => ErrorReason::Unavailable,
            Self::ConfirmTimeout(_) => ErrorReason::ConfirmTimeout,
            Self::Nacked => ErrorReason::Nacked,
            Self::Unroutable(_) => ErrorReason::Unroutable,
            Self::Channel(_) => ErrorReason::ChannelError,
            Self::Invalid(_) => ErrorReason::InvalidMessage,
        }
    }
}

/// How many publishes in a row the broker may refuse or leave unconfirmed on one channel before
/// the publisher opens a new one. A channel's view of a quorum queue's leader can go stale after
/// a node fails; a fresh channel asks the cluster again, while a queue that is really without a
/// majority refuses the new channel's publishes too, at the backoff's pace.
const REFUSALS_BEFORE_REOPEN: u32 = 20;

struct Inner {
    config: PublisherConfig,
    channel: RwLock<Option<Channel>>,
    ready: AtomicBool,
    broken: Notify,
    /// Publishes refused or unconfirmed in a row on the current channel.
    refusals: AtomicU32,
    metrics: PublisherMetrics,
}

/// A cheaply clonable handle to the confirmed publisher.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

impl Publisher {
    /// Starts the publisher: a supervisor task connects (retrying with backoff until the broker
    /// answers), declares the topology and enables confirms; it stops when `shutdown` fires,
    /// after closing the channel, and the returned handle completes then, so the owner can
    /// wait for the last confirms before the process exits.
    pub fn start(
        config: PublisherConfig,
        metrics: PublisherMetrics,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        metrics.init_series(&config.names.exchange);
        let inner = Arc::new(Inner {
            config,
            channel: RwLock::new(None),
            ready: AtomicBool::new(false),
            broken: Notify::new(),
            refusals: AtomicU32::new(0),
            metrics,
        });
        let supervisor = tokio::spawn(supervise(inner.clone(), shutdown).with_current_subscriber());
        (Self { inner }, supervisor)
    }

    /// Whether a confirmed channel is open right now.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    /// Publishes `message` persistently under its routing key inside a PRODUCER span
    /// (`publish <exchange>`) whose context goes into the message headers, and returns once the
    /// broker confirmed it.
    pub async fn publish(&self, message: &OutgoingMessage<'_>) -> Result<(), PublishError> {
        let names = &self.inner.config.names;
        let routing_key = message.routing_key;
        let span = amqp_span!(
            "AMQP publish",
            kind: "producer",
            "publish",
            names.exchange,
            messaging.rabbitmq.destination.routing_key = routing_key,
            messaging.message.id = %message.message_id,
            messaging.message.conversation_id = %message.correlation_id,
            messaging.message.body.size = message.body.len(),
        );
        let result = self
            .publish_in_span(message, &span)
            .instrument(span.clone())
            .await;
        let outcome = match &result {
            Ok(()) => "confirmed",
            Err(PublishError::Nacked) => "nacked",
            Err(_) => "error",
        };
        match &result {
            Ok(()) => self.inner.refusals.store(0, Ordering::Relaxed),
            Err(PublishError::Nacked | PublishError::ConfirmTimeout(_)) => {
                let refusals = self.inner.refusals.fetch_add(1, Ordering::Relaxed) + 1;
                if refusals == REFUSALS_BEFORE_REOPEN {
                    self.inner.broken.notify_one();
                }
            }
            Err(_) => {}
        }
        self.inner
            .metrics
            .count_published(&names.exchange, routing_key, outcome);
        if let Err(error) = &result {
            let reason = error.reason();
            span.record("otel.status_code", "ERROR");
            span.record("error.type", reason.as_str());
            self.inner.metrics.error(&names.exchange, reason);
            span.in_scope(|| {
                tracing::error!(error = %error, message_id = %message.message_id, "message not published");
            });
        }
        result
    }

    async fn publish_in_span(
        &self,
        message: &OutgoingMessage<'_>,
        span: &tracing::Span,
    ) -> Result<(), PublishError> {
        let channel = self
            .inner
            .channel
            .read()
            .await
            .clone()
            .ok_or(PublishError::Unavailable)?;

        // Checked, not converted with `into()`, which panics past 255 bytes.
        let short = |field, value: &str| {
            ShortString::try_new(value).map_err(|_| PublishError::Invalid(field))
        };
        let routing_key = short("routing key", message.routing_key)?;
        let mut headers = FieldTable::default();
        telemetry::propagation::inject(&span.context(), &mut HeaderInjector(&mut headers));
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(short("content type", message.content_type)?)
            .with_message_id(short("message id", message.message_id)?)
            .with_correlation_id(short("correlation id", message.correlation_id)?)
            .with_type(routing_key.clone())
            .with_app_id(short("app id", &self.inner.config.app_id)?)
            .with_timestamp(chrono::Utc::now().timestamp().max(0) as u64)
            .with_headers(headers);

        let confirm = channel
            .basic_publish(
                self.inner.config.names.exchange.as_str().into(),
                routing_key,
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                message.body,
                properties,
            )
            .await
            .inspect_err(|_| self.inner.broken.notify_one())?;
        let timeout = self.inner.config.confirm_timeout;
        let confirmation = match tokio::time::timeout(timeout, confirm).await {
            Ok(Ok(confirmation)) => confirmation,
            Ok(Err(error)) => {
                self.inner.broken.notify_one();
                return Err(PublishError::Channel(error));
            }
            Err(_) => return Err(PublishError::ConfirmTimeout(timeout)),
        };
        match confirmation {
            Confirmation::Ack(Some(returned)) => Err(PublishError::Unroutable(
                returned.reply_text.as_str().to_owned(),
            )),
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Nack(_) => Err(PublishError::Nacked),
            Confirmation::NotRequested => Ok(()),
        }
    }
}

async fn supervise(inner: Arc<Inner>, shutdown: CancellationToken) {
    let mut backoff = Backoff::default();
    loop {
        let count = |reason| inner.metrics.error(&inner.config.names.exchange, reason);
        let Some((connection, channel)) =
            open_with_backoff(&mut backoff, &shutdown, count, || open(&inner.config)).await
        else {
            break;
        };
        *inner.channel.write().await = Some(channel.clone());
        inner.ready.store(true, Ordering::Release);
        tracing::info!(exchange = %inner.config.names.exchange, "publisher connected");

        let mut events = connection.events_listener();
        let mut poll = tokio::time::interval(Duration::from_millis(500));
        let closed = || !channel.status().connected() || !connection.status().connected();
        // `None` at shutdown, else why the connection is gone.
        let lost = loop {
            tokio::select! {
                () = shutdown.cancelled() => break None,
                () = inner.broken.notified() => {
                    if closed() { break Some("channel closed".to_owned()); }
                    if inner.refusals.load(Ordering::Relaxed) >= REFUSALS_BEFORE_REOPEN {
                        break Some(format!(
                            "{REFUSALS_BEFORE_REOPEN} publishes in a row refused or unconfirmed"
                        ));
                    }
                }
                event = events.next() => match event {
                    Some(lapin::Event::Error(error)) => break Some(error.to_string()),
                    None => break Some("connection events ended".to_owned()),
                    Some(_) => {}
                },
                _ = poll.tick() => {
                    if closed() { break Some("channel closed".to_owned()); }
                }
            }
        };
        inner.ready.store(false, Ordering::Release);
        *inner.channel.write().await = None;
        inner.refusals.store(0, Ordering::Relaxed);
        let Some(error) = lost else {
            // In-flight publishes hold their own channel clone and finish before this close.
            let _ = tokio::time::timeout(Duration::from_secs(2), channel.wait_for_confirms()).await;
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                connection.close(200, "shutdown".into()),
            )
            .await;
            break;
        };
        // A connection that is still up (a channel given up on) is closed, not left behind.
        if connection.status().connected() {
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                connection.close(200, "reopening".into()),
            )
            .await;
        }
        count(ErrorReason::ConnectionLost);
        tracing::warn!(error = %error, "broker connection lost; publisher reconnecting");
    }
}

async fn open(config: &PublisherConfig) -> Result<(Connection, Channel), OpenError> {
    let name = format!("{} publisher", config.app_id);
    let (connection, channel, ()) = open_confirmed(
        &config.url,
        &name,
        &config.names,
        config.quorum,
        |_| async { Ok(()) },
    )
    .await?;
    Ok((connection, channel))
}
