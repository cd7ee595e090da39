//! Connecting to RabbitMQ with exponential backoff.

use std::future::Future;
use std::time::Duration;

use lapin::{Connection, ConnectionProperties};
use tokio_util::sync::CancellationToken;

/// Exponential backoff between reconnection attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    current: Duration,
    max: Duration,
    initial: Duration,
}

impl Backoff {
    /// Starts at `initial`, doubles up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            current: initial,
            max,
            initial,
        }
    }

    /// Returns the next delay and doubles the following one.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.current;
        self.current = (self.current * 2).min(self.max);
        delay
    }

    /// Goes back to the initial delay after a success.
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

/// Opens one connection named `name` (shown in the management UI).
pub async fn connect(url: &str, name: &str) -> lapin::Result<Connection> {
    Connection::connect(
        url,
        ConnectionProperties::default().with_connection_name(name.into()),
    )
    .await
}

/// Calls `open` until it succeeds, waiting `backoff` between failures (each logged once);
/// `None` when `shutdown` fires first. A broker that is away is waited for, never fatal.
pub(crate) async fn open_with_backoff<T, F, Fut>(
    backoff: &mut Backoff,
    shutdown: &CancellationToken,
    mut open: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = lapin::Result<T>>,
{
    loop {
        let opened = tokio::select! {
            () = shutdown.cancelled() => return None,
            opened = open() => opened,
        };
        match opened {
            Ok(value) => {
                backoff.reset();
                return Some(value);
            }
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %error, retry_in_ms = delay.as_millis() as u64, "broker not reachable");
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        assert_eq!(b.next_delay(), Duration::from_millis(100));
        assert_eq!(b.next_delay(), Duration::from_millis(200));
        assert_eq!(b.next_delay(), Duration::from_millis(350));
        assert_eq!(b.next_delay(), Duration::from_millis(350));
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }
}
