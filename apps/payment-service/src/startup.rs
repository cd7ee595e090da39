//! Building and running the service.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::faults::Faults;
use crate::metrics::Metrics;
use crate::routes::{AppState, Idempotency, router};

/// Time in-flight requests get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(2);

/// A bound, ready-to-run payment-service.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
}

impl Application {
    /// Binds the listener and starts the publisher (which connects in the background, so the
    /// service starts, not ready, while the broker is down).
    pub async fn build(config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.bind_addr).await?;
        let metrics = Metrics::new();
        let shutdown = CancellationToken::new();
        let publisher = messaging::Publisher::start(
            messaging::PublisherConfig {
                url: config.amqp_url.clone(),
                names: messaging::Names::new(&config.amqp_prefix),
                app_id: config.telemetry.service_name.clone(),
                confirm_timeout: config.confirm_timeout,
            },
            metrics.publisher.clone(),
            shutdown.clone(),
        );
        let state = AppState {
            publisher,
            metrics,
            faults: Arc::new(RwLock::new(Faults {
                failure_rate: config.failure_rate,
                latency_ms: config.latency.as_millis() as u64,
                unavailable: false,
            })),
            idempotency: Arc::new(Idempotency::default()),
            admin_token: config.admin_token.clone().map(Arc::from),
        };
        Ok(Self {
            listener,
            state,
            shutdown,
        })
    }

    /// Returns the bound address (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Returns the bound port.
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Serves until `signal` completes: then stops accepting, lets in-flight requests finish
    /// (their events confirmed), and closes the broker connection.
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let router = router(self.state);
        let result = telemetry::http::serve(self.listener, router, signal, DRAIN).await;
        self.shutdown.cancel();
        // Give the publisher its moment to wait for outstanding confirms and close cleanly.
        tokio::time::sleep(Duration::from_millis(50)).await;
        tracing::info!("payment-service stopped");
        result
    }
}
