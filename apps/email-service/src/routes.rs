//! The admin HTTP server: probes, metrics and fault knobs.

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use messaging::ConsumerHandle;
use server::admin::faults_router;
use server::error::BODY_LIMIT;

use crate::faults::Faults;
use crate::metrics::Metrics;

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) consumer: ConsumerHandle,
    pub(crate) faults: Arc<RwLock<Faults>>,
    pub(crate) metrics: Metrics,
    pub(crate) admin_token: Option<Arc<str>>,
}

pub(crate) fn router(state: AppState) -> Router {
    let consumer = state.consumer.clone();
    let readiness = {
        let consumer = consumer.clone();
        move || consumer_readiness(consumer.clone())
    };
    let routes = server::probes(state.metrics.registry.clone(), readiness)
        .merge(faults_router(
            state.faults.clone(),
            state.admin_token.clone(),
            Some(Arc::new(move |faults: &Faults| {
                consumer.set_paused(faults.paused)
            })),
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    server::router(routes, state.metrics.http.clone())
}

/// Ready while the consumer is registered with the broker.
async fn consumer_readiness(consumer: ConsumerHandle) -> server::Readiness {
    let state = if consumer.is_consuming() {
        "consuming"
    } else if consumer.is_paused() {
        "paused"
    } else {
        "disconnected"
    };
    server::Readiness {
        ready: consumer.is_consuming(),
        dependencies: vec![("consumer", state)],
    }
}
