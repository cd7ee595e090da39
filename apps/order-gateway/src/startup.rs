//! Building and running the service.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::routes::{AppState, router};

/// Time in-flight requests get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(2);

/// A bound, ready-to-run order-gateway.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Binds the listener and builds the payment client.
    pub async fn build(config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.bind_addr).await?;
        let client = reqwest::Client::builder()
            .timeout(config.payment_timeout)
            .connect_timeout(config.payment_timeout.min(Duration::from_secs(2)))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .map_err(std::io::Error::other)?;
        let state = AppState {
            client,
            payment_url: Arc::from(config.payment_url.as_str()),
            metrics: Metrics::new(),
        };
        Ok(Self { listener, state })
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

    /// Serves until `signal` completes, then lets in-flight orders finish.
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let result = telemetry::http::serve(self.listener, router(self.state), signal, DRAIN).await;
        tracing::info!("order-gateway stopped");
        result
    }
}
