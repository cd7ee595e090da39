//! The metrics of order-gateway, in its own registry.

use prometheus::{IntCounterVec, Opts, Registry};
use telemetry::http::HttpMetrics;
use telemetry::metrics::register;

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
        let orders = IntCounterVec::new(
            Opts::new(
                "orders_created_total",
                "Orders placed, by outcome (confirmed, payment_declined, failed).",
            ),
            &["status"],
        )
        .expect("valid counter options");
        let orders = register(&registry, orders);
        // Every series exists from the start, so rates and ratios are defined before the first failure.
        for status in ["confirmed", "payment_declined", "failed"] {
            orders.with_label_values(&[status]);
        }
        Self {
            http: HttpMetrics::new(&registry),
            orders,
            registry,
        }
    }
}
