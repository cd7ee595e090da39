//! The payment call: what order-gateway sends to `POST /process-payment` and what
//! payment-service answers.

use serde::{Deserialize, Serialize};

use crate::rules::{self, Invalid};

/// The body of `POST /process-payment`. The order id is what payment-service dedupes on: a
/// repeated order id is answered with the first result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequest {
    /// The order paid for; every id of the payment is derived from it.
    pub order_id: String,
    /// Amount in minor units.
    pub amount_cents: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Where the confirmation goes.
    pub customer_email: String,
}

impl PaymentRequest {
    /// Checks every field with the shared [`rules`]; the error names the first field at fault.
    pub fn validate(&self) -> Result<(), Invalid> {
        rules::id(&self.order_id).map_err(|p| p.at("order_id"))?;
        rules::amount_cents(self.amount_cents).map_err(|p| p.at("amount_cents"))?;
        rules::currency(&self.currency).map_err(|p| p.at("currency"))?;
        rules::email(&self.customer_email).map_err(|p| p.at("customer_email"))?;
        Ok(())
    }
}

/// How a payment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Charged (HTTP 201).
    Succeeded,
    /// Declined by the bank (HTTP 402).
    Declined,
}

impl PaymentStatus {
    /// Returns the wire name, also the `status` label of `payment_processed_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Declined => "declined",
        }
    }
}

/// The body of payment-service's answer (201 or 402).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAnswer {
    /// The payment's id, derived from the order id.
    pub payment_id: String,
    /// The order the answer is about (the caller checks it is the one it asked for).
    pub order_id: String,
    /// How it ended.
    pub status: PaymentStatus,
    /// Amount charged in minor units.
    pub amount_cents: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Problem;

    fn request() -> PaymentRequest {
        PaymentRequest {
            order_id: "o-1".into(),
            amount_cents: 500,
            currency: "EUR".into(),
            customer_email: "b@example.com".into(),
        }
    }

    #[test]
    fn validates_each_field_with_the_shared_rules() {
        assert_eq!(request().validate(), Ok(()));
        let mut r = request();
        r.order_id = "x".repeat(129);
        assert_eq!(r.validate(), Err(Problem::TooLong.at("order_id")));
        let mut r = request();
        r.amount_cents = -1;
        assert_eq!(r.validate(), Err(Problem::Negative.at("amount_cents")));
        let mut r = request();
        r.currency = "eur".into();
        assert_eq!(r.validate(), Err(Problem::Currency.at("currency")));
        let mut r = request();
        r.customer_email = "a\u{0}@b.co".into();
        assert_eq!(r.validate(), Err(Problem::Email.at("customer_email")));
    }

    #[test]
    fn wire_format_is_stable() {
        let json = serde_json::to_value(request()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"order_id": "o-1", "amount_cents": 500, "currency": "EUR", "customer_email": "b@example.com"})
        );
        let answer: PaymentAnswer = serde_json::from_str(
            r#"{"payment_id":"p","order_id":"o","status":"declined","amount_cents":1}"#,
        )
        .unwrap();
        assert_eq!(answer.status, PaymentStatus::Declined);
        assert_eq!(
            serde_json::to_value(&answer).unwrap()["status"],
            PaymentStatus::Declined.as_str()
        );
    }
}
