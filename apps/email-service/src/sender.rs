//! The handler of each payment event: send the confirmation once, under a `send email` span.

use std::sync::{Arc, RwLock};

use messaging::{Delivery, HandleError, Handler};
use orders::{DecodeError, PaymentEvent, PaymentEventType};
use telemetry::BaggageExt;
use tracing::Instrument;

use crate::faults::Faults;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, SentEmail};

pub(crate) struct Sender {
    pub(crate) outbox: Outbox,
    pub(crate) faults: Arc<RwLock<Faults>>,
    pub(crate) metrics: Metrics,
}

impl Handler for Sender {
    type Message = PaymentEvent;
    type DecodeError = DecodeError;

    /// Decodes with the rules payment-service checked before publishing.
    fn decode(&self, body: &[u8]) -> Result<PaymentEvent, DecodeError> {
        PaymentEvent::decode(body)
    }

    async fn handle(&self, delivery: Delivery<PaymentEvent>) -> Result<(), HandleError> {
        let event = &delivery.message;
        // Baggage is shown, never trusted: the event's own order id is the one acted on.
        let baggage_order_id = delivery
            .context
            .baggage()
            .get("order.id")
            .map(|v| v.to_string())
            .unwrap_or_default();
        tracing::info!(
            order_id = %event.order_id,
            event_id = %event.event_id,
            event_type = event.event_type.routing_key(),
            attempt = delivery.attempt,
            baggage.order_id = %baggage_order_id,
            "payment event received"
        );
        if event.event_type == PaymentEventType::Failed {
            tracing::info!(order_id = %event.order_id, "payment declined; no confirmation e-mail");
            return Ok(());
        }
        if self.outbox.contains(&event.event_id) {
            tracing::info!(order_id = %event.order_id, event_id = %event.event_id, "e-mail already sent; redelivery ignored");
            return Ok(());
        }
        let span = tracing::info_span!(
            "send email",
            otel.name = "send email",
            otel.kind = "internal",
            order.id = %event.order_id,
            messaging.delivery.attempt = delivery.attempt,
            otel.status_code = tracing::field::Empty,
        );
        self.send(&delivery).instrument(span).await
    }
}

impl Sender {
    async fn send(&self, delivery: &Delivery<PaymentEvent>) -> Result<(), HandleError> {
        let event = &delivery.message;
        let (faults, forced_failure) = {
            let mut faults = self.faults.write().unwrap_or_else(|p| p.into_inner());
            let forced = faults.fail_next > 0;
            faults.fail_next = faults.fail_next.saturating_sub(1);
            (*faults, forced)
        };
        faults.simulation.delay().await;
        let failure_rate = faults.simulation.failure_rate;
        if forced_failure || (failure_rate > 0.0 && rand::random::<f64>() < failure_rate) {
            tracing::Span::current().record("otel.status_code", "ERROR");
            self.metrics.emails.with_label_values(&["failed"]).inc();
            tracing::error!(order_id = %event.order_id, attempt = delivery.attempt, "mail server refused the message (simulated)");
            return Err(HandleError::Transient(
                "mail server refused the message".into(),
            ));
        }
        let subject = format!("Your order {} is confirmed", event.order_id);
        let email = SentEmail {
            order_id: &event.order_id,
            event_id: &event.event_id,
            to: &event.customer_email,
            subject: &subject,
            sent_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            trace_id: telemetry::trace_id(&tracing::Span::current()),
        };
        match self.outbox.record_once(&email) {
            Ok(true) => {
                self.metrics.emails.with_label_values(&["sent"]).inc();
                tracing::info!(
                    order_id = %event.order_id,
                    event_id = %event.event_id,
                    to = %telemetry::mask_email(&event.customer_email),
                    "confirmation e-mail sent"
                );
                Ok(())
            }
            Ok(false) => {
                tracing::info!(order_id = %event.order_id, "e-mail already sent; redelivery ignored");
                Ok(())
            }
            Err(error) => {
                tracing::Span::current().record("otel.status_code", "ERROR");
                self.metrics.emails.with_label_values(&["failed"]).inc();
                tracing::error!(error = %error, "outbox write failed");
                Err(HandleError::Transient(format!(
                    "outbox write failed: {error}"
                )))
            }
        }
    }
}
