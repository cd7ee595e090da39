//! Building the service: a consumer behind a small admin HTTP server.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use messaging::{ConsumerConfig, ConsumerHandle};
use server::HttpContext;

use crate::config::Config;
use crate::faults::Faults;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::routes::{AppState, router};
use crate::sender::Sender;

/// email-service as a [`server::HttpApp`]: its admin server is its one listener.
pub struct EmailService;

impl server::HttpApp for EmailService {
    const NAME: &'static str = "email-service";
    type Config = Config;

    /// Opens the outbox and starts consuming (retrying with backoff until the broker answers;
    /// the service is not ready until then). The consumer stops with intake and is joined at
    /// the stop, after its in-flight deliveries are acked.
    async fn routes(config: Config, context: &HttpContext) -> anyhow::Result<Router> {
        let faults = Arc::new(RwLock::new(Faults {
            simulation: config.faults.simulation,
            paused: false,
            fail_next: 0,
        }));
        let metrics = Metrics::new(&context.registry);
        let outbox = Outbox::open(&config.outbox)?;
        let consumer_metrics = metrics.consumer.clone();
        let sender = Arc::new(Sender {
            outbox,
            faults: faults.clone(),
            metrics,
        });
        let handle = ConsumerHandle::new();
        context.stop.spawn(messaging::run_consumer(
            ConsumerConfig {
                url: config.amqp.url,
                names: messaging::Names::new(&config.amqp.prefix),
                quorum: config.amqp.quorum,
                app_id: config.amqp.app_id,
                prefetch: config.prefetch,
                max_attempts: config.max_attempts,
                retry_backoff: config.retry_backoff,
                // Leaves a second of the stop deadline for closing the channel cleanly.
                drain_timeout: server::stop::STOP_DEADLINE - Duration::from_secs(1),
            },
            sender,
            consumer_metrics,
            handle.clone(),
            context.stop.intake_token(),
        ));
        let state = AppState {
            consumer: handle,
            faults,
            admin_token: config.faults.token,
        };
        Ok(router(state, &context.registry))
    }
}

/// A bound, running email-service: the consumer starts in `build` and connects in the background.
pub type Application = server::HttpServer<EmailService>;
