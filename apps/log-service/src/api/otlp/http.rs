//! OTLP/HTTP receiver: `POST /v1/logs` and `POST /v1/traces`, binary protobuf or JSON, optionally
//! gzip-compressed. The response uses the request's encoding; errors carry a `google.rpc.Status`,
//! as the OTLP specification asks.

use std::io::Read;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;

use crate::api::AppState;
use crate::api::extract::LimitedBody;
use crate::auth::Role;
use crate::error::AppError;
use crate::ingest::{self, OtlpExport};

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

/// `google.rpc.Status`, the body of OTLP/HTTP error responses.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// An OTLP/HTTP failure, answered with a `google.rpc.Status` in the request's encoding.
pub struct OtlpError {
    status: StatusCode,
    code: tonic::Code,
    message: String,
    encoding: Encoding,
}

impl IntoResponse for OtlpError {
    fn into_response(self) -> Response {
        // Logged once and counted by the HTTP telemetry, as every rejection of every server is.
        let rejection = self
            .status
            .is_client_error()
            .then(|| telemetry::http::Rejection {
                code: match self.status {
                    StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                    StatusCode::TOO_MANY_REQUESTS => "resource_exhausted",
                    StatusCode::NOT_FOUND => "not_found",
                    _ => "invalid_argument",
                },
                message: self.message.clone(),
            });
        let mut response = match self.encoding {
            Encoding::Protobuf => (
                self.status,
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                RpcStatus {
                    code: self.code as i32,
                    message: self.message,
                }
                .encode_to_vec(),
            )
                .into_response(),
            Encoding::Json => (
                self.status,
                axum::Json(
                    serde_json::json!({ "code": self.code as i32, "message": self.message }),
                ),
            )
                .into_response(),
        };
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Some(rejection) = rejection {
            response.extensions_mut().insert(rejection);
        }
        response
    }
}

fn bad(encoding: Encoding, message: impl Into<String>) -> OtlpError {
    OtlpError {
        status: StatusCode::BAD_REQUEST,
        code: tonic::Code::InvalidArgument,
        message: message.into(),
        encoding,
    }
}

fn from_app(encoding: Encoding, err: AppError) -> OtlpError {
    let (status, code) = match &err {
        AppError::Malformed { .. } | AppError::InvalidArgument { .. } => {
            (StatusCode::BAD_REQUEST, tonic::Code::InvalidArgument)
        }
        AppError::UnsupportedMediaType(_) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            tonic::Code::InvalidArgument,
        ),
        AppError::PayloadTooLarge { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, tonic::Code::InvalidArgument)
        }
        AppError::NotFound(_) => (StatusCode::NOT_FOUND, tonic::Code::NotFound),
        AppError::Conflict(_) => (StatusCode::CONFLICT, tonic::Code::AlreadyExists),
        AppError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, tonic::Code::Unauthenticated),
        AppError::Forbidden(_) => (StatusCode::FORBIDDEN, tonic::Code::PermissionDenied),
        AppError::QueueFull => (
            StatusCode::TOO_MANY_REQUESTS,
            tonic::Code::ResourceExhausted,
        ),
        AppError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, tonic::Code::Unavailable),
        AppError::Internal(cause) => {
            tracing::error!(error = ?cause, "otlp export failed");
            (StatusCode::INTERNAL_SERVER_ERROR, tonic::Code::Internal)
        }
    };
    OtlpError {
        status,
        code,
        message: err.to_string(),
        encoding,
    }
}

/// The encoding `Content-Type` declares.
fn encoding_of(headers: &HeaderMap) -> Result<Encoding, OtlpError> {
    let content_type = server::error::media_type(headers);
    match content_type.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        other => Err(OtlpError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: tonic::Code::InvalidArgument,
            message: format!(
                "Content-Type: {other:?} is not supported; use application/x-protobuf or application/json"
            ),
            encoding: Encoding::Json,
        }),
    }
}

/// Picks the encoding from `Content-Type` and undoes `Content-Encoding: gzip`.
fn decode_body(
    headers: &HeaderMap,
    body: bytes::Bytes,
    limit: usize,
) -> Result<(Encoding, Vec<u8>), OtlpError> {
    let encoding = encoding_of(headers)?;
    let compression = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let bytes = match compression.as_str() {
        "" | "identity" => body.to_vec(),
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    bad(
                        encoding,
                        format!("Content-Encoding: invalid gzip body: {e}"),
                    )
                })?;
            if out.len() > limit {
                return Err(from_app(encoding, AppError::PayloadTooLarge { limit }));
            }
            out
        }
        other => {
            return Err(OtlpError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: tonic::Code::InvalidArgument,
                message: format!("Content-Encoding: {other:?} is not supported; use gzip or none"),
                encoding,
            });
        }
    };
    Ok((encoding, bytes))
}

fn parse<T: Message + Default + serde::de::DeserializeOwned>(
    encoding: Encoding,
    bytes: &[u8],
) -> Result<T, OtlpError> {
    match encoding {
        Encoding::Protobuf => {
            T::decode(bytes).map_err(|e| bad(encoding, format!("body: malformed protobuf: {e}")))
        }
        Encoding::Json => {
            // serde reads a struct from an array too, so `[]` would pass as an empty export.
            if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                return Err(bad(encoding, "body: OTLP JSON must be an object"));
            }
            serde_json::from_slice(bytes)
                .map_err(|e| bad(encoding, format!("body: malformed OTLP JSON: {e}")))
        }
    }
}

fn respond<T: Message + serde::Serialize>(encoding: Encoding, message: T) -> Response {
    match encoding {
        Encoding::Protobuf => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            message.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => (StatusCode::OK, axum::Json(message)).into_response(),
    }
}

/// The tenant of an export, which needs the write role when API keys are configured.
fn tenant_of(
    state: &AppState,
    headers: &HeaderMap,
    encoding: Encoding,
) -> Result<String, OtlpError> {
    crate::api::http_tenant(state, headers, Role::Write).map_err(|e| from_app(encoding, e))
}

/// `POST /v1/logs` and `POST /v1/traces`: `E` is the signal's export request.
pub async fn export<E>(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<LimitedBody, AppError>,
) -> Result<Response, OtlpError>
where
    E: OtlpExport + Message + Default + serde::de::DeserializeOwned,
    E::Response: Message + serde::Serialize,
{
    let body = body.map_err(|e| from_app(Encoding::Json, e))?;
    // Who may write is decided before the body is decompressed or parsed; a refusal answers in
    // the declared encoding (JSON when it is not one OTLP knows).
    let shape = encoding_of(&headers).unwrap_or(Encoding::Json);
    let tenant = tenant_of(&state, &headers, shape)?;
    let (encoding, bytes) = decode_body(&headers, body.0, state.max_body_bytes)?;
    let request: E = parse(encoding, &bytes)?;
    let response = ingest::otlp_export(&state.store, &state.metrics, "otlp_http", tenant, request)
        .await
        .map_err(|err| from_app(encoding, err.into()))?;
    Ok(respond(encoding, response))
}
