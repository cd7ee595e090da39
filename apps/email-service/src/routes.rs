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

/// Ready while the consumer is registered with the broker and not paused. A pause counts from
/// the moment it is asked for, not from when the consumer task gets to cancel its subscription.
async fn consumer_readiness(consumer: ConsumerHandle) -> server::Readiness {
    let paused = consumer.is_paused();
    let consuming = consumer.is_consuming();
    let state = if paused {
        "paused"
    } else if consuming {
        "consuming"
    } else {
        "disconnected"
    };
    server::Readiness {
        ready: consuming && !paused,
        dependencies: vec![("consumer", state)],
    }
}
