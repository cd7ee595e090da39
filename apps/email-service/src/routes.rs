//! The admin HTTP server: probes, metrics and fault knobs.

use std::sync::{Arc, RwLock};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use messaging::ConsumerHandle;
use serde_json::json;
use telemetry::admin::faults_router;
use telemetry::api::BODY_LIMIT;

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
    let routes = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state.clone())
        .merge(faults_router(
            state.faults.clone(),
            state.admin_token.clone(),
            Some(Arc::new(move |faults: &Faults| {
                consumer.set_paused(faults.paused)
            })),
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    telemetry::http::instrument(routes, state.metrics.http.clone())
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn ready(State(state): State<AppState>) -> Response {
    if state.consumer.is_consuming() {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "consumer": "consuming"})),
        )
            .into_response()
    } else {
        let consumer = if state.consumer.is_paused() {
            "paused"
        } else {
            "disconnected"
        };
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "consumer": consumer})),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    telemetry::metrics::response(&state.metrics.registry)
}
