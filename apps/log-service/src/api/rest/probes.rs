//! Probes and metrics: `/health`, `/live`, `/ready`, `/metrics`, and the 404 of unknown routes.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use crate::api::AppState;
use crate::error::AppError;

/// `GET /health`: the process answers.
pub async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /live`: the process answers.
pub async fn live() -> impl IntoResponse {
    Json(json!({ "status": "alive" }))
}

/// `GET /ready`: storage answers and the writer runs.
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let backend = state.store.backend_name();
    match state.store.ready().await {
        Ok(()) => (
            StatusCode::OK,
            Json(
                json!({ "status": "ready", "backend": backend, "queued_rows": state.store.queued_rows() }),
            ),
        ),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "backend": backend })),
            )
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state
        .metrics
        .queued_rows
        .set(state.store.queued_rows() as i64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Unknown route: 404 with the JSON error shape.
pub async fn not_found() -> AppError {
    AppError::NotFound("no such route".into())
}
