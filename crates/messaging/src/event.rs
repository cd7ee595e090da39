//! The payment events on the `payments` exchange.

use serde::{Deserialize, Serialize};

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
    /// The order paid for; the AMQP `correlation_id`.
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
    /// JSON of the right shape with a value that makes no sense.
    #[error("invalid event field {field}: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl PaymentEvent {
    /// Decodes and checks a message body; never panics, whatever the bytes.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let event: Self =
            serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
        let required = [
            ("event_id", &event.event_id),
            ("order_id", &event.order_id),
            ("payment_id", &event.payment_id),
            ("customer_email", &event.customer_email),
        ];
        for (field, value) in required {
            if value.trim().is_empty() {
                return Err(DecodeError::Field {
                    field,
                    reason: "must not be empty",
                });
            }
        }
        if !event.customer_email.contains('@') {
            return Err(DecodeError::Field {
                field: "customer_email",
                reason: "not an e-mail address",
            });
        }
        if event.amount_cents < 0 {
            return Err(DecodeError::Field {
                field: "amount_cents",
                reason: "must not be negative",
            });
        }
        Ok(event)
    }

    /// Encodes the body.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let mut e = sample();
        e.order_id = " ".into();
        assert_eq!(
            PaymentEvent::decode(&e.encode()),
            Err(DecodeError::Field {
                field: "order_id",
                reason: "must not be empty"
            })
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
