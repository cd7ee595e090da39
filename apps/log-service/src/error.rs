//! The one error type of the request handlers, with its HTTP mapping (the JSON error body and
//! status rule every tracehop server shares, `server::ApiError`) and its gRPC mapping.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use server::ApiError;

use crate::storage::StoreError;

/// A failed request. 4xx variants describe the caller's mistake; 5xx bodies never leak internals.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request cannot be read (not JSON, not the shape the route takes, a malformed header or
    /// path id); `field` names the part at fault when there is one.
    #[error("{}", describe(.field.as_deref(), .message))]
    Malformed {
        field: Option<String>,
        message: String,
    },
    /// A field or parameter of a readable request is invalid.
    #[error("{}", describe(.field.as_deref(), .message))]
    InvalidArgument {
        field: Option<String>,
        message: String,
    },
    /// The body is larger than the configured limit.
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body is declared as something other than JSON.
    #[error("Content-Type {0:?} is not JSON; send application/json")]
    UnsupportedMediaType(String),
    /// The thing asked for does not exist for this tenant.
    #[error("{0}")]
    NotFound(String),
    /// The thing to create exists already (a second retention policy for a tenant).
    #[error("{0}")]
    Conflict(String),
    /// No credentials, or credentials that are not known (API key, `ADMIN_TOKEN`).
    #[error("{0}")]
    Unauthorized(String),
    /// Known credentials that may not do this, or not for this tenant.
    #[error("{0}")]
    Forbidden(String),
    /// The write queue is full: the caller should retry later.
    #[error("write queue is full, retry later")]
    QueueFull,
    /// Storage is not reachable or the writer stopped.
    #[error("storage unavailable")]
    Unavailable,
    /// A real fault; the cause is logged, never returned.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

fn describe(field: Option<&str>, message: &str) -> String {
    match field {
        Some(field) => format!("{field}: {message}"),
        None => message.to_owned(),
    }
}

impl AppError {
    /// 422: `field` was read but its value is invalid.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::InvalidArgument {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// 422: the request was read but is invalid as a whole.
    pub fn invalid(message: impl Into<String>) -> AppError {
        AppError::InvalidArgument {
            field: None,
            message: message.into(),
        }
    }

    /// 400: `part` (the body, a header, a path id) cannot be read.
    pub fn malformed(part: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::Malformed {
            field: Some(part.into()),
            message: message.into(),
        }
    }

    /// The HTTP status of this error, also what an API with its own error body (Jaeger's
    /// query API) answers with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            AppError::Malformed { .. } => StatusCode::BAD_REQUEST,
            AppError::InvalidArgument { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::QueueFull => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            AppError::Malformed { .. } => "invalid_request",
            AppError::InvalidArgument { .. } => "invalid_argument",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::QueueFull => "resource_exhausted",
            AppError::Unavailable => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }

    fn field_name(&self) -> Option<&str> {
        match self {
            AppError::Malformed { field, .. } | AppError::InvalidArgument { field, .. } => {
                field.as_deref()
            }
            _ => None,
        }
    }

    /// Logs a fault once, wherever the error is answered.
    pub(crate) fn log(&self) {
        match self {
            AppError::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            AppError::Unavailable => tracing::warn!("storage unavailable"),
            _ => {}
        }
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> AppError {
        match err {
            StoreError::QueueFull => AppError::QueueFull,
            StoreError::Closed => AppError::Unavailable,
            StoreError::Conflict(message) => AppError::Conflict(message),
            StoreError::TooLarge { rows, capacity } => AppError::invalid(format!(
                "batch of {rows} rows exceeds the write queue capacity of {capacity} rows"
            )),
            other => AppError::Internal(other.into()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let mut error = ApiError::new(self.status(), self.code(), self.to_string());
        error.field = self.field_name().map(str::to_owned);
        let mut response = error.into_response();
        if matches!(self, AppError::QueueFull) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// A storage failure answers a gRPC call as it answers an HTTP request.
impl From<StoreError> for tonic::Status {
    fn from(err: StoreError) -> tonic::Status {
        AppError::from(err).into()
    }
}

impl From<AppError> for tonic::Status {
    fn from(err: AppError) -> tonic::Status {
        err.log();
        let message = err.to_string();
        match err {
            AppError::Malformed { .. }
            | AppError::InvalidArgument { .. }
            | AppError::PayloadTooLarge { .. }
            | AppError::UnsupportedMediaType(_) => tonic::Status::invalid_argument(message),
            AppError::NotFound(_) => tonic::Status::not_found(message),
            AppError::Conflict(_) => tonic::Status::already_exists(message),
            AppError::Unauthorized(_) => tonic::Status::unauthenticated(message),
            AppError::Forbidden(_) => tonic::Status::permission_denied(message),
            AppError::QueueFull => tonic::Status::resource_exhausted(message),
            AppError::Unavailable => tonic::Status::unavailable(message),
            AppError::Internal(_) => tonic::Status::internal(message),
        }
    }
}
