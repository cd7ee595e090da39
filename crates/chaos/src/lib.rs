//! Chaos test support for tracehop: the promise "every order that got a 201 produces exactly one
//! e-mail, and every order that cannot be honoured gets a fast, clear error" is checked against
//! the real service binaries while their broker, their peers or their collector misbehave.
//!
//! - [`RabbitNode`] is a private RabbitMQ node (own node name, ports and data directory) that a
//!   test may stop, kill and restart without disturbing the shared broker on 127.0.0.1:5672.
//! - [`Service`] is one service binary running as a child process, and [`Stack`] the three of
//!   them on one broker with a fresh `AMQP_PREFIX` and `LOG_DIR`.
//! - [`Load`] drives concurrent orders and keeps every answer ([`Sample`]); [`Outbox`] counts the
//!   e-mails per order.
//!
//! Every child process is killed when its guard is dropped, so a failing assertion never leaves a
//! broker or a service behind.

mod load;
mod node;
mod outbox;
mod service;

pub use load::{Load, Sample, order_once, percentile};
pub use node::RabbitNode;
pub use outbox::Outbox;
pub use service::{Service, Stack, binary, free_port};

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it returns `Some`, and returns that; panics with `what` once
/// `timeout` has passed. Tests wait with this rather than with fixed sleeps.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
