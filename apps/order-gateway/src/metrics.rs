//! The metrics of order-gateway, in its own registry.

use prometheus::{IntCounterVec, Registry};
use telemetry::http::HttpMetrics;

/// Every metric order-gateway serves on `/metrics`.
#[derive(Clone)]
pub(crate) struct Metrics {
    pub(crate) registry: Registry,
    pub(crate) http: HttpMetrics,
    /// `orders_created_total{status}`.
    pub(crate) orders: IntCounterVec,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let registry = telemetry::metrics::registry();
        let orders = telemetry::metrics::counter_vec(
            &registry,
            "orders_created_total",
            "Orders placed, by outcome (confirmed, payment_declined, failed).",
            "status",
            &["confirmed", "payment_declined", "failed"],
        );
        Self {
            http: HttpMetrics::new(&registry),
            orders,
            registry,
        }
    }
}
