//! Building the service.

use std::sync::{Arc, RwLock};

use axum::Router;
use server::HttpContext;

use crate::config::Config;
use crate::faults::Faults;
use crate::metrics::Metrics;
use crate::routes::{AppState, Idempotency, router};

/// payment-service as a [`server::HttpApp`].
pub struct PaymentService;

impl server::HttpApp for PaymentService {
    const NAME: &'static str = "payment-service";
    type Config = Config;

    /// Starts the publisher, which connects in the background (so the service starts, not
    /// ready, while the broker is down) and closes only after the last requests have drained,
    /// so their events are still confirmed.
    async fn routes(config: Config, context: &HttpContext) -> anyhow::Result<Router> {
        let metrics = Metrics::new(&context.registry);
        let (publisher, supervisor) = messaging::Publisher::start(
            messaging::PublisherConfig {
                url: config.amqp.url,
                names: messaging::Names::new(&config.amqp.prefix),
                quorum: config.amqp.quorum,
                app_id: config.amqp.app_id,
                confirm_timeout: config.confirm_timeout,
            },
            metrics.publisher.clone(),
            context.stop.background_token(),
        );
        context.stop.spawn(async move {
            let _ = supervisor.await;
        });
        let state = AppState {
            publisher,
            metrics,
            faults: Arc::new(RwLock::new(Faults {
                simulation: config.faults.simulation,
                unavailable: false,
            })),
            idempotency: Arc::new(Idempotency::default()),
            admin_token: config.faults.token,
        };
        Ok(router(state, &context.registry))
    }
}

/// A bound, ready-to-run payment-service.
pub type Application = server::HttpServer<PaymentService>;
