//! Building and running the service.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use server::{Env, Stop};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::routes::{AppState, router};

/// A bound, ready-to-run order-gateway.
pub struct Application {
    listener: server::Listener,
    state: AppState,
}

impl server::Service for Application {
    const NAME: &'static str = "order-gateway";
    type Config = Config;

    fn config(env: &Env) -> Result<Config, server::ConfigError> {
        Config::from_env(env)
    }

    /// Binds the listener and builds the payment client.
    async fn build(config: Config, stop: &Stop) -> anyhow::Result<Self> {
        let listener = config.listen.bind(stop).await?;
        let client = reqwest::Client::builder()
            .timeout(config.payment_timeout)
            .connect_timeout(config.payment_timeout.min(Duration::from_secs(2)))
            .pool_max_idle_per_host(256)
            // Dropped well before payment-service's header timeout (the same setting on every
            // service) could close an idle connection under a new request.
            .pool_idle_timeout(config.listen.limits.header_timeout / 2)
            .tcp_nodelay(true)
            .build()?;
        let state = AppState {
            client,
            payment_url: Arc::from(config.payment_url.as_str()),
            metrics: Metrics::new(),
        };
        Ok(Self { listener, state })
    }

    /// Serves until the stop, then lets in-flight orders finish.
    async fn run(self) -> anyhow::Result<()> {
        self.listener.serve(router(self.state)).await;
        Ok(())
    }
}

impl Application {
    /// Returns the bound address (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }
}
