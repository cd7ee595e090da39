//! The metrics of order-gateway, in the registry its server serves (beside the HTTP metrics).

use prometheus::{IntCounterVec, Registry};

/// Every metric of order-gateway's own.
#[derive(Clone)]
pub(crate) struct Metrics {
    /// `orders_created_total{status}`.
    pub(crate) orders: IntCounterVec,
}

impl Metrics {
    pub(crate) fn new(registry: &Registry) -> Self {
        Self {
            orders: telemetry::metrics::counter_vec(
                registry,
                "orders_created_total",
                "Orders placed, by outcome (confirmed, payment_declined, failed).",
                "status",
                &["confirmed", "payment_declined", "failed"],
            ),
        }
    }
}
