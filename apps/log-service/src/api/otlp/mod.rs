//! The OTLP receivers: OTLP/HTTP on `OTLP_HTTP_ADDR` (`http`) and the OTLP gRPC services on
//! `OTLP_GRPC_ADDR` (`grpc`). Both hand a whole export to `ingest::otlp_export`, which answers
//! rejected records with a partial success.

mod grpc;
mod http;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::AppState;

/// The OTLP/HTTP receiver's router.
pub fn otlp_http_router(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    let routes = Router::new()
        .route("/v1/logs", post(http::export::<ExportLogsServiceRequest>))
        .route(
            "/v1/traces",
            post(http::export::<ExportTraceServiceRequest>),
        )
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state.clone());
    server::router(routes, state.metrics.http.clone())
}
