//! The metrics of email-service, in its own registry.

use prometheus::{IntCounterVec, Opts, Registry};
use telemetry::http::HttpMetrics;
use telemetry::metrics::register;

/// Every metric email-service serves on `/metrics`.
#[derive(Clone)]
pub(crate) struct Metrics {
    pub(crate) registry: Registry,
    pub(crate) http: HttpMetrics,
    pub(crate) consumer: messaging::ConsumerMetrics,
    /// `emails_sent_total{status}`.
    pub(crate) emails: IntCounterVec,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let registry = telemetry::metrics::registry();
        let emails = IntCounterVec::new(
            Opts::new(
                "emails_sent_total",
                "Confirmation e-mails, by status (sent, failed attempts).",
            ),
            &["status"],
        )
        .expect("valid counter options");
        let emails = register(&registry, emails);
        for status in ["sent", "failed"] {
            emails.with_label_values(&[status]);
        }
        Self {
            http: HttpMetrics::new(&registry),
            consumer: messaging::ConsumerMetrics::new(&registry),
            emails,
            registry,
        }
    }
}
