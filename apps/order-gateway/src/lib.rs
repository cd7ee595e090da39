//! order-gateway: `POST /create-order` validates an order (or makes a sample one from an empty
//! body), pays it through payment-service over HTTP inside a CLIENT span whose context and the
//! `order.id` baggage travel in the request headers, and answers 201 with the order id and the
//! trace id, 402 when the payment is declined, 503 when payment cannot be completed.

mod config;
mod metrics;
mod order;
mod routes;
mod startup;

pub use config::Config;
pub use order::{OrderItem, OrderRequest};
pub use startup::{Application, OrderGateway};
