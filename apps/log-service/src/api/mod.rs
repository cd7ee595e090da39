//! The handlers behind log-service's listeners: the REST API (`rest`), the OTLP receivers over
//! HTTP and gRPC (`otlp`) and the distributed-logging gRPC API (`grpc`). They translate between
//! a protocol and `ingest` or `query`; the tenant of every request is read here, the same way
//! for all of them.

mod extract;
mod grpc;
mod otlp;
mod rest;

pub use otlp::otlp_http_router;
pub use rest::rest_router;

use crate::error::AppError;
use crate::metrics::Metrics;
use crate::model::{DEFAULT_TENANT, MAX_SHORT_FIELD};
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
}

/// Reads the tenant from an `X-Tenant-ID` header or `x-tenant-id` metadata value; absent or
/// blank means the default tenant.
pub fn tenant(raw: Option<&[u8]>) -> Result<String, AppError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_TENANT.to_owned());
    };
    let text = std::str::from_utf8(raw)
        .map_err(|_| AppError::malformed("X-Tenant-ID", "must be UTF-8"))?
        .trim();
    if text.is_empty() {
        return Ok(DEFAULT_TENANT.to_owned());
    }
    if text.len() > MAX_SHORT_FIELD || text.chars().any(char::is_control) {
        return Err(AppError::malformed(
            "X-Tenant-ID",
            format!("must be 1..={MAX_SHORT_FIELD} printable characters"),
        ));
    }
    Ok(text.to_owned())
}

/// The tenant of a gRPC request, from its `x-tenant-id` metadata.
fn grpc_tenant<T>(request: &tonic::Request<T>) -> Result<String, tonic::Status> {
    tenant(request.metadata().get("x-tenant-id").map(|v| v.as_bytes())).map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_default_and_reject_control_characters() {
        assert_eq!(tenant(None).unwrap(), "default");
        assert_eq!(tenant(Some(b"  acme ")).unwrap(), "acme");
        assert!(tenant(Some(b"a\nb")).is_err());
        assert!(tenant(Some(&[0xff, 0xfe])).is_err());
    }
}
