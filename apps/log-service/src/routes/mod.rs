//! HTTP routers: the REST API (seed 001 / 002 routes, traces, DAGs, probes, metrics) and the OTLP
//! HTTP receiver.

mod otlp_http;
pub(crate) mod query;
mod rest_ingest;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::Value;

use crate::error::AppError;
use crate::metrics::Metrics;
use crate::storage::Store;

/// What every handler needs.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub metrics: Metrics,
    pub max_body_bytes: usize,
}

/// The caller's tenant, from `X-Tenant-ID` (`default` when absent).
#[derive(Debug, Clone)]
pub struct Tenant(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        crate::ingest::tenant(parts.headers.get("x-tenant-id").map(|v| v.as_bytes())).map(Tenant)
    }
}

/// A request body read within the size limit; an oversize body is 413 with a JSON error.
pub struct LimitedBody(pub Bytes);

impl FromRequest<AppState> for LimitedBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(LimitedBody(bytes)),
            Err(rejection) if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(AppError::PayloadTooLarge {
                    limit: state.max_body_bytes,
                })
            }
            Err(rejection) => Err(AppError::field("body", rejection.body_text())),
        }
    }
}

/// A JSON body; malformed JSON is 400 naming the position of the error.
pub struct JsonBody(pub Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let LimitedBody(bytes) = LimitedBody::from_request(req, state).await?;
        if bytes.is_empty() {
            return Err(AppError::field("body", "is empty; expected JSON"));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| AppError::field("body", format!("invalid JSON: {e}")))
    }
}

/// The REST API on `BIND_ADDR`.
pub fn rest_router(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/health", get(query::health))
        .route("/live", get(query::live))
        .route("/ready", get(query::ready))
        .route("/metrics", get(query::metrics))
        .route("/ingest", post(rest_ingest::ingest))
        .route("/api/v1/logs", post(rest_ingest::create).get(query::list))
        .route("/api/v1/logs/batch", post(rest_ingest::batch))
        .route("/api/v1/logs/query", post(query::query))
        .route("/api/v1/logs/services", get(query::services))
        .route("/api/v1/logs/stats", get(query::stats))
        .route("/api/v1/logs/storage", get(query::storage))
        .route("/api/v1/logs/aggregate", post(query::aggregate))
        .route("/api/v1/logs/trace/{trace_id}", get(query::logs_by_trace))
        .route(
            "/api/v1/logs/request/{request_id}",
            get(query::logs_by_request),
        )
        .route("/api/v1/logs/{id}", get(query::log_by_id))
        .route("/api/v1/traces/{trace_id}", get(query::trace))
        .route("/api/v1/traces/{trace_id}/dag", get(query::trace_dag))
        .route("/api/v1/dags", get(query::dags))
        .fallback(query::not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// The OTLP/HTTP receiver on `OTLP_HTTP_ADDR`.
pub fn otlp_http_router(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/v1/logs", post(otlp_http::logs))
        .route("/v1/traces", post(otlp_http::traces))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}
