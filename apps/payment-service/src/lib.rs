//! payment-service: `POST /process-payment` charges an order (simulated, with fault knobs) and
//! answers only after RabbitMQ confirmed the `payment.succeeded` or `payment.failed` event, whose
//! headers carry the trace context to email-service.
//!
//! Repeated requests with the same order id (the gateway's idempotency key) get the first
//! result instead of a second charge and a second event.

mod config;
mod faults;
mod metrics;
mod routes;
mod startup;

pub use config::Config;
pub use faults::{Faults, FaultsUpdate};
pub use startup::{Application, PaymentService};
