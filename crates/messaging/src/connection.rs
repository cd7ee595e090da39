//! Connecting to RabbitMQ with exponential backoff.

use std::future::Future;
use std::time::Duration;

use lapin::{Connection, ConnectionProperties};
use tokio_util::sync::CancellationToken;

use crate::metrics::ErrorReason;

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

/// How long one node may take to accept a connection before the next is tried: a node that
/// is gone from the network (not refusing, just silent) must not hold up the failover.
const NODE_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a connected node may take to open the channel and declare the topology. A node
/// that is shutting down can accept a connection and then never answer a declaration, and lapin
/// leaves such a call waiting forever: without this deadline the supervisor would wait with it,
/// and every publish would be refused as unavailable while the other nodes are up.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens one connection named `name` (shown in the management UI) to the first node of `urls`
/// (one AMQP URL, or several separated by commas) that accepts it; the error is the last
/// node's.
pub async fn connect(urls: &str, name: &str) -> lapin::Result<Connection> {
    let mut last_error = None;
    for url in node_urls(urls) {
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        match tokio::time::timeout(NODE_CONNECT_TIMEOUT, Connection::connect(url, properties)).await
        {
            Ok(Ok(connection)) => return Ok(connection),
            Ok(Err(error)) => last_error = Some(error),
            Err(_) => {
                last_error = Some(timed_out(format!(
                    "no answer within {NODE_CONNECT_TIMEOUT:?}"
                )))
            }
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no AMQP URL given").into()
    }))
}

/// A broker step that did not answer in time, as the I/O error lapin would give.
fn timed_out(what: String) -> lapin::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, what).into()
}

/// The node URLs of a comma-separated list, blanks skipped.
fn node_urls(urls: &str) -> impl Iterator<Item = &str> {
    urls.split(',').map(str::trim).filter(|url| !url.is_empty())
}

/// Why a connection could not be opened and set up: the step that failed, and its error.
#[derive(Debug)]
pub(crate) struct OpenError {
    reason: ErrorReason,
    source: lapin::Error,
}

impl OpenError {
    /// The broker did not accept the connection.
    pub(crate) fn connect(source: lapin::Error) -> Self {
        Self {
            reason: ErrorReason::ConnectFailed,
            source,
        }
    }

    /// Connected, but setting up the channel, topology, confirms, prefetch or consumer failed;
    /// closes `connection`, so a half-set-up connection is not left open until the next try.
    pub(crate) async fn declare(source: lapin::Error, connection: Connection) -> Self {
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            connection.close(200, "setup failed".into()),
        )
        .await;
        Self {
            reason: ErrorReason::DeclareFailed,
            source,
        }
    }
}

/// Connects as `name`, opens a channel with the topology declared and publisher confirms on, and
/// finishes it with `setup` (a consumer's prefetch and subscription). Confirms serve both sides:
/// the publisher's events, and the consumer's retry and dead-letter republishing, which must be
/// safe before the ack. A failure after connecting closes the connection.
pub(crate) async fn open_confirmed<T, F, Fut>(
    url: &str,
    name: &str,
    names: &crate::Names,
    quorum: bool,
    setup: F,
) -> Result<(Connection, lapin::Channel, T), OpenError>
where
    F: FnOnce(lapin::Channel) -> Fut,
    Fut: Future<Output = lapin::Result<T>>,
{
    let connection = connect(url, name).await.map_err(OpenError::connect)?;
    let prepared = async {
        let channel = connection.create_channel().await?;
        crate::topology::declare_topology(&channel, names, quorum).await?;
        channel
            .confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await?;
        let finished = setup(channel.clone()).await?;
        Ok::<_, lapin::Error>((channel, finished))
    };
    let prepared = tokio::time::timeout(SETUP_TIMEOUT, prepared)
        .await
        .unwrap_or_else(|_| {
            Err(timed_out(format!(
                "channel setup not answered within {SETUP_TIMEOUT:?}"
            )))
        });
    match prepared {
        Ok((channel, finished)) => Ok((connection, channel, finished)),
        Err(error) => Err(OpenError::declare(error, connection).await),
    }
}

/// Calls `open` until it succeeds, waiting `backoff` between failures, each logged once and
/// counted once through `count`; `None` when `shutdown` fires first. A broker that is away is
/// waited for, never fatal.
pub(crate) async fn open_with_backoff<T, F, Fut>(
    backoff: &mut Backoff,
    shutdown: &CancellationToken,
    count: impl Fn(ErrorReason),
    mut open: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, OpenError>>,
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
            Err(OpenError { reason, source }) => {
                let delay = backoff.next_delay();
                count(reason);
                let retry_in_ms = delay.as_millis() as u64;
                if reason == ErrorReason::ConnectFailed {
                    tracing::warn!(error = %source, reason = reason.as_str(), retry_in_ms, "broker not reachable");
                } else {
                    tracing::warn!(error = %source, reason = reason.as_str(), retry_in_ms, "broker refused the channel setup");
                }
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
