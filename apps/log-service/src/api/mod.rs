//! The handlers behind log-service's listeners: the REST API (`rest`), the OTLP receivers over
//! HTTP and gRPC (`otlp`), the distributed-logging gRPC API (`grpc`) and Jaeger's query API on
//! the REST port (`jaeger`). They translate between
//! a protocol and `ingest` or `query`; the tenant of every request is decided here, by the one
//! access check of `crate::auth`, the same way for all of them.

mod extract;
mod grpc;
mod jaeger;
mod otlp;
mod rest;

pub use otlp::otlp_http_router;
pub use rest::rest_router;

use crate::auth::{Access, Role};
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::storage::Store;

/// What every HTTP handler needs.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub metrics: Metrics,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// What the live tail route needs.
    pub tail: TailState,
    /// Log alert rules, their evaluation and delivery.
    pub alerts: crate::alerts::Alerts,
    /// Retention, for its admin routes.
    pub retention: crate::retention::Retention,
    /// The bearer token the admin routes require, when set (`ADMIN_TOKEN`).
    pub admin_token: Option<std::sync::Arc<str>>,
    /// The access check (`API_KEYS_FILE`).
    pub access: Access,
}

/// The live tail's hub, its heartbeat, and the stop that ends every open stream.
#[derive(Clone, Debug)]
pub struct TailState {
    pub hub: crate::tail::Hub,
    pub heartbeat: std::time::Duration,
    pub stop: server::Stop,
}

/// Every gRPC service of log-service shares this state.
#[derive(Clone, Debug)]
pub struct GrpcState {
    pub store: Store,
    pub metrics: Metrics,
    /// The access check (`API_KEYS_FILE`).
    pub access: Access,
}

/// The tenant of an HTTP request that needs `need`: the access check on its `Authorization`
/// and `X-Tenant-ID` headers.
pub fn http_tenant(
    state: &AppState,
    headers: &http::HeaderMap,
    need: Role,
) -> Result<String, AppError> {
    state.access.tenant(
        crate::auth::authorization(headers),
        headers.get("x-tenant-id").map(|v| v.as_bytes()),
        need,
    )
}

impl GrpcState {
    /// The tenant of a gRPC request that needs `need`: the access check on its `authorization`
    /// and `x-tenant-id` metadata.
    fn tenant<T>(&self, request: &tonic::Request<T>, need: Role) -> Result<String, tonic::Status> {
        let metadata = request.metadata();
        let value = |name| metadata.get(name).map(|v| v.as_bytes());
        self.access
            .tenant(value("authorization"), value("x-tenant-id"), need)
            .map_err(Into::into)
    }
}
