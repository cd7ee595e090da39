//! The admin HTTP server: probes, metrics and fault knobs.

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use messaging::ConsumerHandle;
use prometheus::Registry;
use server::admin::faults_router;
use server::error::BODY_LIMIT;

use crate::faults::Faults;

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) consumer: ConsumerHandle,
    pub(crate) faults: Arc<RwLock<Faults>>,
    pub(crate) admin_token: Option<Arc<str>>,
}

/// The admin routes; `registry` is what `/metrics` serves.
pub(crate) fn router(state: AppState, registry: &Registry) -> Router {
    let consumer = state.consumer.clone();
    let readiness = {
        let consumer = consumer.clone();
        move || consumer_readiness(consumer.clone())
    };
    server::probes(registry.clone(), readiness)
        .merge(faults_router(
            state.faults,
            state.admin_token,
            Some(Arc::new(move |faults: &Faults| {
                consumer.set_paused(faults.paused)
            })),
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
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
