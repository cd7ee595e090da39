//! Test support for tracehop: everything the whole-system tests, the tracehop command's tests and
//! the benchmark scripts need around the services, seen from the outside only (binary names,
//! HTTP routes, environment variables, log and outbox files), so that this crate depends on no
//! app and every app's tests may depend on it.
//!
//! - [`broker`]: the tests' shared RabbitMQ, and [`RabbitNode`], a private node a test may stop,
//!   kill and restart without disturbing the others.
//! - [`process`]: the service binaries as child processes, one [`process::Service`] each, and
//!   [`process::Stack`], the three of them on one broker.
//! - [`otlp`]: [`OtlpReceiver`], the one OTLP/gRPC endpoint the services export to in tests and
//!   benchmarks (keeping what arrives, counting it, or never answering).
//! - [`TcpProxy`]: a port in front of the broker that a test cuts and restores.
//! - [`Alertmanager`]: a real Alertmanager that log-service's alerts are delivered to.
//! - [`load`]: concurrent orders keeping every answer; [`http`]: the single requests.
//! - [`LogDir`] and [`Outbox`]: what the services wrote, and waiting for it.
//!
//! Every child process is killed when its guard is dropped, so a failing assertion never leaves a
//! broker or a service behind.

pub mod alertmanager;
pub mod broker;
pub mod http;
pub mod load;
mod log_dir;
pub mod otlp;
mod outbox;
pub mod process;
mod proxy;

pub use alertmanager::Alertmanager;
pub use broker::{RabbitCluster, RabbitNode};
pub use load::{Load, Sample};
pub use log_dir::LogDir;
pub use otlp::{LogRecord, OtlpReceiver, Span};
pub use outbox::Outbox;
pub use proxy::TcpProxy;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

/// Returns a fresh `AMQP_PREFIX`, so that a test's exchanges and queues are its own on a shared
/// broker.
pub fn unique_prefix() -> String {
    format!("test-{}.", uuid::Uuid::new_v4().simple())
}

/// Returns the environment every test service starts with, whichever way it runs: the broker and
/// prefix, the log directory (which also holds the outbox), and a 50 ms retry backoff so that
/// retry tests take milliseconds, not seconds. A stack adds its own keys and the test's on top.
pub fn service_env(amqp_url: &str, prefix: &str, log_dir: &Path) -> BTreeMap<String, String> {
    [
        ("AMQP_URL", amqp_url.to_owned()),
        ("AMQP_PREFIX", prefix.to_owned()),
        ("LOG_DIR", log_dir.display().to_string()),
        ("EMAIL_RETRY_BACKOFF_MS", "50".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

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
