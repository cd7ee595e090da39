//! Building and running the service.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use server::{Env, Stop};

use crate::config::Config;
use crate::faults::Faults;
use crate::metrics::Metrics;
use crate::routes::{AppState, Idempotency, router};

/// A bound, ready-to-run payment-service.
pub struct Application {
    listener: server::Listener,
    state: AppState,
}

impl server::Service for Application {
    const NAME: &'static str = "payment-service";
    type Config = Config;

    fn config(env: &Env) -> Result<Config, server::ConfigError> {
        Config::from_env(env)
    }

    /// Binds the listener and starts the publisher, which connects in the background (so the
    /// service starts, not ready, while the broker is down) and closes only after the last
    /// requests have drained, so their events are still confirmed.
    async fn build(config: Config, stop: &Stop) -> anyhow::Result<Self> {
        let listener = config.listen.bind(stop).await?;
        let metrics = Metrics::new();
        let (publisher, supervisor) = messaging::Publisher::start(
            messaging::PublisherConfig {
                url: config.amqp_url.clone(),
                names: messaging::Names::new(&config.amqp_prefix),
                app_id: config.service_name.clone(),
                confirm_timeout: config.confirm_timeout,
            },
            metrics.publisher.clone(),
            stop.background_token(),
        );
        stop.spawn(async move {
            let _ = supervisor.await;
        });
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
        Ok(Self { listener, state })
    }

    /// Serves until the stop, then lets in-flight requests finish with their events confirmed.
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
