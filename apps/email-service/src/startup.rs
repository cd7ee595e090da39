//! Building and running the service.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use messaging::{ConsumerConfig, ConsumerHandle};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::instrument::WithSubscriber;

use crate::config::Config;
use crate::faults::Faults;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::routes::{AppState, router};
use crate::sender::Sender;

/// Time in-flight deliveries get to finish (and be acked) at shutdown.
const DRAIN: Duration = Duration::from_secs(2);

/// A bound, running email-service: the consumer starts in `build` and connects in the background.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    consumer_task: JoinHandle<()>,
    stop: CancellationToken,
}

impl Application {
    /// Binds the admin listener, opens the outbox and starts consuming (retrying with backoff
    /// until the broker answers; the service is not ready until then).
    pub async fn build(config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.bind_addr).await?;
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
        let stop = CancellationToken::new();
        let consumer_task = tokio::spawn(
            messaging::run_consumer(
                ConsumerConfig {
                    url: config.amqp_url.clone(),
                    names: messaging::Names::new(&config.amqp_prefix),
                    app_id: config.telemetry.service_name.clone(),
                    prefetch: config.prefetch,
                    max_attempts: config.max_attempts,
                    retry_backoff: config.retry_backoff,
                    drain_timeout: DRAIN,
                },
                sender,
                metrics.consumer.clone(),
                handle.clone(),
                stop.clone(),
            )
            .with_current_subscriber(),
        );
        let state = AppState {
            consumer: handle,
            faults,
            metrics,
            admin_token: config.admin_token.clone().map(Arc::from),
        };
        Ok(Self {
            listener,
            state,
            consumer_task,
            stop,
        })
    }

    /// Returns the bound admin address (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Returns the bound admin port.
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Runs until `signal` completes: then stops consuming, lets in-flight deliveries finish and
    /// be acked, and stops the admin server.
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let stop = self.stop.clone();
        tokio::spawn(async move {
            signal.await;
            stop.cancel();
        });
        let stop = self.stop.clone();
        let served = telemetry::http::serve(
            self.listener,
            router(self.state),
            async move { stop.cancelled().await },
            Duration::from_secs(1),
        )
        .await;
        let _ = self.consumer_task.await;
        tracing::info!("email-service stopped");
        served
    }
}
