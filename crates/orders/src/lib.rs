//! The contracts of tracehop's order path, typed once and shared by every hop.
//!
//! order-gateway sends a [`PaymentRequest`] to payment-service and reads its [`PaymentAnswer`];
//! payment-service publishes a [`PaymentEvent`] that email-service decodes. Every field of
//! these contracts is checked by the rules of [`rules`] (e-mail, currency, amount, id), so a value
//! the gateway accepts is one payment-service and the event decoder accept too, and the other
//! way round.
//!
//! The crate holds data and rules only: no HTTP, no AMQP, no telemetry. Each service maps an
//! [`Invalid`] to its own error (a 422, a dead-lettered message).

mod event;
mod payment;
pub mod rules;

pub use event::{DecodeError, PaymentEvent, PaymentEventType};
pub use payment::{PaymentAnswer, PaymentRequest, PaymentStatus};
pub use rules::{Invalid, Problem};
