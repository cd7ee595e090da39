//! The metrics of email-service, in the registry its server serves (beside the HTTP metrics).

use prometheus::{IntCounterVec, Registry};

/// Every metric of email-service's own.
#[derive(Clone)]
pub(crate) struct Metrics {
    pub(crate) consumer: messaging::ConsumerMetrics,
    /// `emails_sent_total{status}`.
    pub(crate) emails: IntCounterVec,
}

impl Metrics {
    pub(crate) fn new(registry: &Registry) -> Self {
        Self {
            consumer: messaging::ConsumerMetrics::new(registry),
            emails: telemetry::metrics::counter_vec(
                registry,
                "emails_sent_total",
                "Confirmation e-mails, by status (sent, failed attempts).",
                "status",
                &["sent", "failed"],
            ),
        }
    }
}
