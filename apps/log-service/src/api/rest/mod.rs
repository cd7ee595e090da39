//! The REST API on `BIND_ADDR`: the minisource REST API's routes under `/api/v1/logs`, the
//! Traceflow ingest API's `POST /ingest`, traces and DAGs, retention policies (admin), log alert
//! rules under `/api/v1/alerts`, the services summary, Jaeger's query API under `/api` (see
//! `api::jaeger`), the web view (`web`), probes and metrics.

mod alerts;
mod ingest;
mod probes;
mod query;
mod retention;
mod stream;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

use super::AppState;

/// The REST API's router.
pub fn rest_router(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    let readiness = {
        let store = state.store.clone();
        move || probes::storage_readiness(store.clone())
    };
    let routes = Router::new()
        .route("/live", get(probes::live))
        .route("/ingest", post(ingest::ingest))
        .route("/api/v1/logs", post(ingest::create).get(query::list))
        .route("/api/v1/logs/batch", post(ingest::batch))
        .route("/api/v1/logs/query", post(query::query))
        .route("/api/v1/logs/stream", get(stream::stream))
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
        .route("/api/v1/services/summary", get(query::services_summary))
        .route("/api/v1/tenants", get(query::tenants))
        .route("/api/v1/alerts", get(alerts::list).post(alerts::create))
        .route(
            "/api/v1/alerts/{id}",
            get(alerts::get).put(alerts::replace).delete(alerts::delete),
        )
        .route(
            "/api/v1/alerts/{id}/enable",
            post(alerts::set_enabled::<true>),
        )
        .route(
            "/api/v1/alerts/{id}/disable",
            post(alerts::set_enabled::<false>),
        )
        .route(
            "/api/v1/retention",
            get(retention::list).post(retention::create),
        )
        .route("/api/v1/retention/run", post(retention::run))
        .route(
            "/api/v1/retention/tenant/{tenant_id}",
            get(retention::for_tenant),
        )
        .route(
            "/api/v1/retention/{id}",
            put(retention::update).delete(retention::delete),
        )
        .merge(super::jaeger::routes())
        .merge(crate::web::router())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state.clone())
        .merge(server::probes(state.metrics.registry().clone(), readiness));
    server::router(routes, state.metrics.http.clone())
}
