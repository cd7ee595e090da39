//! Jaeger's query API on the REST port, at Jaeger's own paths (`/api/services`,
//! `/api/traces`, ...) and in Jaeger's JSON model, so the Jaeger UI and Grafana's Jaeger
//! datasource read log-service as they read Jaeger. Every answer, errors included, is
//! Jaeger's envelope `{"data", "total", "limit", "offset", "errors"}`; the tenant is the
//! caller's, decided by the same access check as every other query route.

mod model;
mod params;
mod routes;

use axum::Json;
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use crate::error::AppError;
use crate::storage::StoreError;
use model::{Envelope, EnvelopeError};

/// The routes of Jaeger's query API.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/services", get(routes::services))
        .route(
            "/api/services/{service}/operations",
            get(routes::service_operations),
        )
        .route("/api/operations", get(routes::operations))
        .route("/api/traces", get(routes::search))
        .route("/api/traces/{trace_id}", get(routes::trace))
        .route("/api/dependencies", get(routes::dependencies))
}

/// A failed Jaeger API request: the project's error, answered with its status in Jaeger's
/// envelope (`errors: [{"code", "msg"}]`) instead of the project's error body.
#[derive(Debug)]
pub struct JaegerError(AppError);

impl From<AppError> for JaegerError {
    fn from(err: AppError) -> JaegerError {
        JaegerError(err)
    }
}

impl From<StoreError> for JaegerError {
    fn from(err: StoreError) -> JaegerError {
        JaegerError(err.into())
    }
}

impl IntoResponse for JaegerError {
    fn into_response(self) -> Response {
        self.0.log();
        let status = self.0.status();
        let body = Envelope {
            data: serde_json::Value::Null,
            total: 0,
            limit: 0,
            offset: 0,
            errors: Some(vec![EnvelopeError {
                code: Some(status.as_u16()),
                msg: self.0.to_string(),
                trace_id: None,
            }]),
        };
        (status, Json(body)).into_response()
    }
}
