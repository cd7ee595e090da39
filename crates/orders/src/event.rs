//! The payment event payment-service publishes on the `payments` exchange and email-service
//! consumes.

use serde::{Deserialize, Serialize};

use crate::rules::{self, Invalid};

/// The two routing keys (and `event_type` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentEventType {
    /// The payment went through.
    #[serde(rename = "payment.succeeded")]
    Succeeded,
    /// The payment was declined.
    #[serde(rename = "payment.failed")]
    Failed,
}

impl PaymentEventType {
    /// Returns the routing key.
    pub fn routing_key(self) -> &'static str {
        match self {
            Self::Succeeded => "payment.succeeded",
            Self::Failed => "payment.failed",
        }
    }
}

/// The body of every payment event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentEvent {
    /// Unique per event; the AMQP `message_id` and the idempotency key of the consumer.
    pub event_id: String,
    /// `payment.succeeded` or `payment.failed`.
    pub event_type: PaymentEventType,
    /// RFC 3339 UTC.
    pub occurred_at: String,
    /// The order paid for; the AMQP `correlation_id` carries it too, for the broker's tools.
    pub order_id: String,
    /// The payment's id.
    pub payment_id: String,
    /// Amount in minor units.
    pub amount_cents: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Where the confirmation goes.
    pub customer_email: String,
}

/// Why a message body is not a usable payment event.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Not JSON, or a field missing or of the wrong type.
    #[error("invalid event body: {0}")]
    Json(String),
    /// JSON of the right shape with a value that breaks a rule.
    #[error("invalid event field {0}")]
    Field(Invalid),
}

impl PaymentEvent {
    /// Decodes a message body and checks it with the shared [`rules`] (the rules
    /// payment-service checked before publishing); never panics, whatever the bytes.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let event: Self =
            serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
        event.validate().map_err(DecodeError::Field)?;
        Ok(event)
    }

    /// Checks every field; the error names the first field at fault.
    pub fn validate(&self) -> Result<(), Invalid> {
        let ids = [
            ("event_id", &self.event_id),
            ("order_id", &self.order_id),
            ("payment_id", &self.payment_id),
        ];
        for (field, value) in ids {
            rules::id(value).map_err(|p| p.at(field))?;
        }
        rules::email(&self.customer_email).map_err(|p| p.at("customer_email"))?;
        rules::amount_cents(self.amount_cents).map_err(|p| p.at("amount_cents"))?;
        rules::currency(&self.currency).map_err(|p| p.at("currency"))?;
        Ok(())
    }

    /// Encodes the body (JSON).
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Problem;
    use proptest::prelude::*;

    fn sample() -> PaymentEvent {
        PaymentEvent {
            event_id: "e1".into(),
            event_type: PaymentEventType::Succeeded,
            occurred_at: "2026-01-01T00:00:00Z".into(),
            order_id: "o1".into(),
            payment_id: "p1".into(),
            amount_cents: 1999,
            currency: "USD".into(),
            customer_email: "a@example.com".into(),
        }
    }

    /// Decodes the sample event encoded with `change` made to it.
    fn decode_changed(change: impl FnOnce(&mut PaymentEvent)) -> Result<PaymentEvent, DecodeError> {
        let mut event = sample();
        change(&mut event);
        PaymentEvent::decode(&event.encode())
    }

    #[test]
    fn round_trips() {
        let e = sample();
        assert_eq!(PaymentEvent::decode(&e.encode()).unwrap(), e);
        let json: serde_json::Value = serde_json::from_slice(&e.encode()).unwrap();
        assert_eq!(json["event_type"], "payment.succeeded");
    }

    #[test]
    fn rejects_missing_and_empty_fields() {
        assert!(matches!(
            PaymentEvent::decode(b"not json"),
            Err(DecodeError::Json(_))
        ));
        assert!(matches!(
            PaymentEvent::decode(br#"{"event_id":"x"}"#),
            Err(DecodeError::Json(_))
        ));
        let error = decode_changed(|e| e.order_id = " ".into()).unwrap_err();
        assert_eq!(error, DecodeError::Field(Problem::Empty.at("order_id")));
        assert_eq!(
            error.to_string(),
            "invalid event field order_id: must not be empty"
        );
    }

    #[test]
    fn applies_the_same_rules_as_the_payment_request() {
        assert_eq!(
            decode_changed(|e| e.customer_email = "a\u{0}@b.co".into()),
            Err(DecodeError::Field(Problem::Email.at("customer_email")))
        );
        assert!(decode_changed(|e| e.customer_email = "a@b".into()).is_err());
        assert_eq!(
            decode_changed(|e| e.currency = "usd".into()),
            Err(DecodeError::Field(Problem::Currency.at("currency")))
        );
        assert_eq!(
            decode_changed(|e| e.amount_cents = -5),
            Err(DecodeError::Field(Problem::Negative.at("amount_cents")))
        );
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = PaymentEvent::decode(&bytes);
        }

        #[test]
        fn decoding_arbitrary_json_objects_never_panics(
            id in ".{0,8}", amount in any::<i64>(), email in ".{0,12}", kind in "payment\\.[a-z]{0,9}"
        ) {
            let body = serde_json::json!({
                "event_id": id, "event_type": kind, "occurred_at": "x", "order_id": "o",
                "payment_id": "p", "amount_cents": amount, "currency": "USD", "customer_email": email,
            });
            let _ = PaymentEvent::decode(body.to_string().as_bytes());
        }
    }
}
