//! email-service: consumes `email.payments` with manual acks and a bounded prefetch, "sends" the
//! confirmation of each `payment.succeeded` event (one JSON line in the outbox) exactly once,
//! and serves `/health`, `/ready`, `/metrics` and `/admin/faults` on a small admin HTTP server.
//!
//! Each delivery attempt is a CONSUMER span continuing the trace found in the message headers;
//! sending is an INTERNAL span beneath it.

mod config;
mod faults;
mod metrics;
mod outbox;
mod routes;
mod sender;
mod startup;

pub use config::Config;
pub use faults::{Faults, FaultsUpdate};
pub use startup::{Application, EmailService};
