//! Building the service.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use server::HttpContext;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::routes::{AppState, router};

/// order-gateway as a [`server::HttpApp`].
pub struct OrderGateway;

impl server::HttpApp for OrderGateway {
    const NAME: &'static str = "order-gateway";
    type Config = Config;

    /// Builds the payment client.
    async fn routes(config: Config, context: &HttpContext) -> anyhow::Result<Router> {
        let client = reqwest::Client::builder()
            .timeout(config.payment_timeout)
            .connect_timeout(config.payment_timeout.min(Duration::from_secs(2)))
            .pool_max_idle_per_host(256)
            // Dropped well before payment-service's header timeout (the same setting on every
            // service) could close an idle connection under a new request.
            .pool_idle_timeout(context.listen.limits.header_timeout / 2)
            .tcp_nodelay(true)
            .build()?;
        let state = AppState {
            client,
            payment_url: Arc::from(config.payment_url.as_str()),
            metrics: Metrics::new(&context.registry),
        };
        Ok(router(state, &context.registry))
    }
}

/// A bound, ready-to-run order-gateway.
pub type Application = server::HttpServer<OrderGateway>;
