//! Building and running the service.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use messaging::{ConsumerConfig, ConsumerHandle};
use server::{Env, Stop};

use crate::config::Config;
use crate::faults::Faults;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::routes::{AppState, router};
use crate::sender::Sender;

/// A bound, running email-service: the consumer starts in `build` and connects in the background.
pub struct Application {
    listener: server::Listener,
    state: AppState,
}

impl server::Service for Application {
    const NAME: &'static str = "email-service";
    type Config = Config;

    fn config(env: &Env) -> Result<Config, server::ConfigError> {
        Config::from_env(env)
    }

    /// Binds the admin listener, opens the outbox and starts consuming (retrying with backoff
    /// until the broker answers; the service is not ready until then). The consumer stops with
    /// intake and is joined at the stop, after its in-flight deliveries are acked.
    async fn build(config: Config, stop: &Stop) -> anyhow::Result<Self> {
        let listener = config.listen.bind(stop).await?;
        let metrics = Metrics::new();
        let faults = Arc::new(RwLock::new(Faults {
            failure_rate: config.failure_rate,
            latency_ms: config.latency.as_millis() as u64,
            paused: false,
            fail_next: 0,
        }));
        let outbox = Outbox::open(&config.outbox)?;
        let sender = Arc::new(Sender {
            outbox,
            faults: faults.clone(),
            metrics: metrics.clone(),
        });
        let handle = ConsumerHandle::new();
        stop.spawn(messaging::run_consumer(
            ConsumerConfig {
                url: config.amqp_url.clone(),
                names: messaging::Names::new(&config.amqp_prefix),
                app_id: config.service_name.clone(),
                prefetch: config.prefetch,
                max_attempts: config.max_attempts,
                retry_backoff: config.retry_backoff,
                // Leaves a second of the stop deadline for closing the channel cleanly.
                drain_timeout: server::stop::STOP_DEADLINE - Duration::from_secs(1),
            },
            sender,
            metrics.consumer.clone(),
            handle.clone(),
            stop.intake_token(),
        ));
        let state = AppState {
            consumer: handle,
            faults,
            metrics,
            admin_token: config.admin_token.clone().map(Arc::from),
        };
        Ok(Self { listener, state })
    }

    /// Serves the admin routes until the stop.
    async fn run(self) -> anyhow::Result<()> {
        self.listener.serve(router(self.state)).await;
        Ok(())
    }
}

impl Application {
    /// Returns the bound admin address (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }
}
