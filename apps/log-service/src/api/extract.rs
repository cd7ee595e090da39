//! Axum extractors shared by the REST API and the OTLP/HTTP receiver: the tenant, a trace id
//! from the path, the query string as the query module reads it, and request bodies read within
//! the size limit with errors in the API's JSON shape.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value};

use super::AppState;
use crate::auth::Role;
use crate::error::AppError;
use crate::query::{check_path_id, params_object};

/// Declares an extractor of the caller's tenant for routes that need `$role`: the access check
/// of `crate::auth` (`X-Tenant-ID`, or the API key's tenant when keys are configured).
macro_rules! tenant_extractor {
    ($name:ident, $role:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $name(pub String);

        impl FromRequestParts<AppState> for $name {
            type Rejection = AppError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, Self::Rejection> {
                super::http_tenant(state, &parts.headers, $role).map($name)
            }
        }
    };
}

tenant_extractor!(
    ReadTenant,
    Role::Read,
    "The tenant of a query route or the live tail (role `read`)."
);
tenant_extractor!(
    WriteTenant,
    Role::Write,
    "The tenant of an ingest route (role `write`)."
);
tenant_extractor!(
    AdminTenant,
    Role::Admin,
    "The tenant of an alert rule route (role `admin`)."
);
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
            Err(rejection) => Err(AppError::malformed("body", rejection.body_text())),
        }
    }
}

/// A body declared as JSON (or not declared), not yet parsed: for handlers that parse it in
/// pieces to bound their memory.
pub struct JsonBytes(pub Bytes);

impl FromRequest<AppState> for JsonBytes {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        check_json_type(req.headers())?;
        let LimitedBody(bytes) = LimitedBody::from_request(req, state).await?;
        Ok(JsonBytes(bytes))
    }
}

/// 415 unless the body is declared as JSON or not declared.
fn check_json_type(headers: &http::HeaderMap) -> Result<(), AppError> {
    server::error::require_json(headers).map_err(|e| {
        AppError::UnsupportedMediaType(
            headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map_or_else(|| e.message.clone(), str::to_owned),
        )
    })
}

/// A JSON body: 415 when declared as anything but JSON, 400 naming the position of the error
/// when it is not JSON.
pub struct JsonBody(pub Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        if bytes.is_empty() {
            return Err(AppError::malformed("body", "is empty; expected JSON"));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| AppError::malformed("body", format!("invalid JSON: {e}")))
    }
}

/// A JSON body that must be an object, as the query and aggregate bodies are.
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match JsonBody::from_request(req, state).await? {
            JsonBody(Value::Object(obj)) => Ok(JsonObject(obj)),
            JsonBody(_) => Err(AppError::malformed("body", "must be a JSON object")),
        }
    }
}

/// The query string's parameters as a JSON object of strings, which the query module reads as it
/// reads a filter body; a query string that does not parse is axum's own 400.
pub struct QueryObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequestParts<S> for QueryObject {
    type Rejection = QueryRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(params) =
            Query::<Vec<(String, String)>>::from_request_parts(parts, state).await?;
        Ok(QueryObject(params_object(params)))
    }
}

/// The `{trace_id}` of a trace route, checked as every id from a path is.
pub struct TraceId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for TraceId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(trace_id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        check_path_id("trace_id", &trace_id).map_err(IntoResponse::into_response)?;
        Ok(TraceId(trace_id))
    }
}
