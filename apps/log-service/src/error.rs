//! The one error type of the request handlers, with its HTTP and gRPC mappings.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::storage::StoreError;

/// A failed request. 4xx variants describe the caller's mistake; 5xx bodies never leak internals.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input; `field` names the offending field when there is one.
    #[error("{}", describe_invalid(.field.as_deref(), .message))]
    InvalidArgument {
        field: Option<String>,
        message: String,
    },
    /// The body is larger than the configured limit.
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The thing asked for does not exist for this tenant.
    #[error("{0}")]
    NotFound(String),
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

fn describe_invalid(field: Option<&str>, message: &str) -> String {
    match field {
        Some(field) => format!("{field}: {message}"),
        None => message.to_owned(),
    }
}

impl AppError {
    /// Bad input in `field`.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::InvalidArgument {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// Bad input not tied to one field.
    pub fn invalid(message: impl Into<String>) -> AppError {
        AppError::InvalidArgument {
            field: None,
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            AppError::InvalidArgument { .. } => StatusCode::BAD_REQUEST,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::QueueFull => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            AppError::InvalidArgument { .. } => "invalid_argument",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::NotFound(_) => "not_found",
            AppError::QueueFull => "resource_exhausted",
            AppError::Unavailable => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }

    fn log(&self) {
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
        let mut body = json!({ "code": self.code(), "message": self.to_string() });
        if let AppError::InvalidArgument {
            field: Some(field), ..
        } = &self
        {
            body["field"] = json!(field);
        }
        let mut response = (self.status(), Json(json!({ "error": body }))).into_response();
        if matches!(self, AppError::QueueFull) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<AppError> for tonic::Status {
    fn from(err: AppError) -> tonic::Status {
        err.log();
        let message = err.to_string();
        match err {
            AppError::InvalidArgument { .. } => tonic::Status::invalid_argument(message),
            AppError::PayloadTooLarge { .. } => tonic::Status::invalid_argument(message),
            AppError::NotFound(_) => tonic::Status::not_found(message),
            AppError::QueueFull => tonic::Status::resource_exhausted(message),
            AppError::Unavailable => tonic::Status::unavailable(message),
            AppError::Internal(_) => tonic::Status::internal(message),
        }
    }
}
