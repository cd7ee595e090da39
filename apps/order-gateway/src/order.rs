//! The order a client sends, and its validation.

use orders::{Invalid, rules};
use serde::{Deserialize, Serialize};
use server::error::ApiError;

/// At most this many lines per order, and this many units per line.
const MAX_ITEMS: usize = 100;
const MAX_QUANTITY: u32 = 10_000;

/// The body of `POST /create-order`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// Where the confirmation goes.
    pub customer_email: String,
    /// ISO 4217 code (default `USD`).
    #[serde(default = "default_currency")]
    pub currency: String,
    /// The order lines.
    pub items: Vec<OrderItem>,
}

/// One order line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderItem {
    /// Stock keeping unit.
    pub sku: String,
    /// Units, at least 1.
    pub quantity: u32,
    /// Price per unit in minor units, not negative.
    pub unit_price_cents: i64,
}

fn default_currency() -> String {
    "USD".into()
}

impl OrderRequest {
    /// The order placed for an empty body.
    pub fn sample() -> Self {
        Self {
            customer_email: "customer@example.com".into(),
            currency: default_currency(),
            items: vec![OrderItem {
                sku: "SKU-TRACE-001".into(),
                quantity: 1,
                unit_price_cents: 1999,
            }],
        }
    }

    /// Checks every field and returns the total in minor units; the error names the field.
    /// E-mail, currency and amounts follow the shared [`orders::rules`], so an order accepted
    /// here is never refused by payment-service or the event decoder.
    pub fn validate(&self) -> Result<i64, ApiError> {
        let invalid =
            |field: &str, problem: &str| ApiError::invalid("invalid_order", field, problem);
        let broken = |error: Invalid| invalid(&error.field, &error.problem.to_string());
        rules::email(&self.customer_email).map_err(|p| broken(p.at("customer_email")))?;
        rules::currency(&self.currency).map_err(|p| broken(p.at("currency")))?;
        if self.items.is_empty() {
            return Err(invalid("items", "must contain at least one item"));
        }
        if self.items.len() > MAX_ITEMS {
            return Err(invalid("items", "at most 100 items per order"));
        }
        let mut total: i64 = 0;
        for (i, item) in self.items.iter().enumerate() {
            if item.sku.trim().is_empty() || item.sku.len() > 64 {
                return Err(invalid(
                    &format!("items[{i}].sku"),
                    "must be 1 to 64 characters",
                ));
            }
            if item.quantity == 0 || item.quantity > MAX_QUANTITY {
                return Err(invalid(
                    &format!("items[{i}].quantity"),
                    "must be between 1 and 10000",
                ));
            }
            rules::amount_cents(item.unit_price_cents)
                .map_err(|p| broken(p.at(format!("items[{i}].unit_price_cents"))))?;
            total = item
                .unit_price_cents
                .checked_mul(i64::from(item.quantity))
                .and_then(|line| total.checked_add(line))
                .ok_or_else(|| invalid(&format!("items[{i}]"), "order total is too large"))?;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(q: u32, p: i64) -> OrderItem {
        OrderItem {
            sku: "A".into(),
            quantity: q,
            unit_price_cents: p,
        }
    }

    #[test]
    fn sample_is_valid() {
        assert_eq!(OrderRequest::sample().validate().unwrap(), 1999);
    }

    /// The error of the sample order once `change` is made to it.
    fn rejection(change: impl FnOnce(&mut OrderRequest)) -> ApiError {
        let mut order = OrderRequest::sample();
        change(&mut order);
        order.validate().unwrap_err()
    }

    #[test]
    fn each_invalid_field_is_named() {
        let message = |change: fn(&mut OrderRequest)| rejection(change).message;
        assert!(message(|o| o.items.clear()).starts_with("items"));
        assert!(message(|o| o.items = vec![item(0, 1)]).starts_with("items[0].quantity"));
        assert!(
            message(|o| o.items = vec![item(1, 1), item(1, -5)])
                .starts_with("items[1].unit_price_cents")
        );
        assert!(message(|o| o.customer_email = "nope".into()).starts_with("customer_email"));
        assert_eq!(
            message(|o| o.customer_email = "a\u{0}@b.co".into()),
            "customer_email: not a valid e-mail address"
        );
        assert_eq!(
            message(|o| o.currency = "usd".into()),
            "currency: must be a 3-letter ISO 4217 code such as USD"
        );
        assert_eq!(
            rejection(|o| o.items = vec![item(10_000, i64::MAX)])
                .status
                .as_u16(),
            422
        );
    }

    proptest! {
        #[test]
        fn validation_never_panics(
            email in ".{0,20}", currency in ".{0,4}",
            items in proptest::collection::vec((".{0,8}", any::<u32>(), any::<i64>()), 0..5)
        ) {
            let order = OrderRequest {
                customer_email: email,
                currency,
                items: items.into_iter().map(|(sku, quantity, unit_price_cents)| OrderItem { sku, quantity, unit_price_cents }).collect(),
            };
            if let Ok(total) = order.validate() {
                prop_assert!(total >= 0);
            }
        }

        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = serde_json::from_slice::<OrderRequest>(&bytes);
        }
    }
}
