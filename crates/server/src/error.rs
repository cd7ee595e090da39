//! The one JSON error body of every server and its status rule.
//!
//! Body: `{"error": {"code", "message", "field"?}, "trace_id"}`; `field` names the input at fault
//! when there is one, `trace_id` the request's trace so a user can find its spans and logs.
//! Status: 400 when the request cannot be read (not JSON, a malformed parameter or id), 422 when
//! it is read but a field is invalid, 401 without a valid token, 404 for what does not exist,
//! 413 for a body over the limit, 429 when the server is full (retry later), 503 when a
//! dependency is unavailable, 500 for the server's own faults (whose cause is logged, never sent).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::de::DeserializeOwned;

/// Largest request body accepted (64 KiB).
pub const BODY_LIMIT: usize = 64 * 1024;

/// An error answered to the client; 5xx causes are logged by the caller, never sent.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`invalid_json`, `invalid_order`, ...).
    pub code: &'static str,
    /// Human-readable explanation naming the field at fault.
    pub message: String,
    /// The input at fault, when there is one (`items[0].quantity`, `limit`).
    pub field: Option<String>,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// 422: `field` was read but its value is invalid.
    pub fn invalid(code: &'static str, field: &str, problem: &str) -> Self {
        Self {
            field: Some(field.to_owned()),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code,
                format!("{field}: {problem}"),
            )
        }
    }

    /// 400: the request cannot be read (`field` names the parameter, when there is one).
    pub fn bad_request(
        code: &'static str,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.map(str::to_owned),
            ..Self::new(StatusCode::BAD_REQUEST, code, message)
        }
    }

    /// 500: the cause is logged here, once, and the client is told nothing of it.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %ErrorChain(cause), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

/// Displays an error with its whole cause chain on one line.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let trace_id = telemetry::trace_id(&tracing::Span::current());
        let mut error = serde_json::json!({"code": self.code, "message": &self.message});
        if let Some(field) = self.field {
            error["field"] = field.into();
        }
        let body = serde_json::json!({"error": error, "trace_id": trace_id});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status.is_client_error() {
            response
                .extensions_mut()
                .insert(telemetry::http::Rejection {
                    code: self.code,
                    message: self.message,
                });
        }
        response
    }
}

/// Parses an optional JSON body: `Ok(None)` when empty, 413 over [`BODY_LIMIT`], 415 when it
/// is declared as anything but JSON, 400 when not JSON, 422 when JSON of the wrong shape
/// (`invalid_code` names the error code to use).
pub fn parse_json<T: DeserializeOwned>(
    headers: &http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
    invalid_code: &'static str,
) -> Result<Option<T>, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body is larger than {BODY_LIMIT} bytes"),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                rejection.body_text(),
            )
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    require_json(headers)?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        json_error(&path, e.into_inner(), invalid_code)
    })?;
    de.end().map_err(|e| json_error("", e, invalid_code))?;
    Ok(Some(value))
}

/// The media type a request declares, without parameters, in lowercase (`""` when undeclared).
pub fn media_type(headers: &http::HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// 415 unless the body is declared as JSON (`application/json` or any `+json` type) or not
/// declared at all. A browser sends a cross-site form or `text/plain` body without asking the
/// server first (no CORS preflight); refusing those types is what keeps a page on another site
/// from placing orders or writing logs.
pub fn require_json(headers: &http::HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = media_type(headers);
    let is_json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type {:?} is not JSON; send application/json",
                value.to_str().unwrap_or("?")
            ),
        ))
    }
}

/// 422 naming the path for a JSON value of the wrong shape, 400 for text that is not JSON.
fn json_error(path: &str, error: serde_json::Error, invalid_code: &'static str) -> ApiError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Data => {
            let message = if path.is_empty() || path == "." {
                error.to_string()
            } else {
                format!("{path}: {error}")
            };
            let field = (!path.is_empty() && path != ".").then(|| path.to_owned());
            ApiError {
                field,
                ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, invalid_code, message)
            }
        }
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("request body is not valid JSON: {error}"),
        ),
    }
}

/// Checks `Authorization: Bearer <token>` when a token is configured; 401 otherwise.
pub fn check_bearer(headers: &http::HeaderMap, token: Option<&str>) -> Result<(), ApiError> {
    let Some(expected) = token else {
        return Ok(());
    };
    // The scheme is case-insensitive (RFC 9110, section 11.1); the token is not.
    let given = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim_start());
    // Constant-time comparison: the length leaks, the content does not.
    let matches = given.is_some_and(|g| {
        g.len() == expected.len()
            && g.bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if !matches {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required (ADMIN_TOKEN)",
        ));
    }
    Ok(())
}

/// The answer to a path no route matches: 404 in the JSON error shape.
pub async fn not_found(uri: http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {}", uri.path()),
    )
}

/// The answer to a known path with a method it does not take: 405 in the JSON error shape.
pub async fn method_not_allowed(method: http::Method, uri: http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct T {
        a: u32,
    }

    /// Parses `body` sent without a `Content-Type`, under the error code `x`.
    fn parse(body: &'static [u8]) -> Result<Option<T>, ApiError> {
        parse_json::<T>(&http::HeaderMap::new(), Ok(Bytes::from_static(body)), "x")
    }

    #[test]
    fn classifies_body_errors() {
        assert!(parse(b"  ").unwrap().is_none());
        let e = parse(b"{").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = parse(b"{\"a\":-1}").unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.message.starts_with("a: "), "{}", e.message);
        assert_eq!(e.code, "x");
        let e = parse(b"{\"a\":1} trailing").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(parse(b"{\"a\":1}").unwrap().unwrap().a, 1);
    }

    #[test]
    fn json_bodies_must_not_be_declared_as_anything_else() {
        let with = |ct: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
            parse_json::<T>(&h, Ok(Bytes::from_static(b"{\"a\":1}")), "x")
        };
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "application/cloudevents+json",
        ] {
            assert!(with(ok).is_ok(), "{ok}");
        }
        for refused in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ] {
            let e = with(refused).unwrap_err();
            assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{refused}");
        }
        // An empty body places a sample order whatever it is declared as.
        let mut h = http::HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(
            parse_json::<T>(&h, Ok(Bytes::new()), "x")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn bearer_is_checked_only_when_configured() {
        let mut h = http::HeaderMap::new();
        assert!(check_bearer(&h, None).is_ok());
        assert!(check_bearer(&h, Some("s3cret")).is_err());
        h.insert(
            http::header::AUTHORIZATION,
            "Bearer s3cret".parse().unwrap(),
        );
        assert!(check_bearer(&h, Some("s3cret")).is_ok());
        assert!(check_bearer(&h, Some("other!")).is_err());
        h.insert(
            http::header::AUTHORIZATION,
            "bearer s3cret".parse().unwrap(),
        );
        assert!(check_bearer(&h, Some("s3cret")).is_ok());
        h.insert(http::header::AUTHORIZATION, "Basic s3cret".parse().unwrap());
        assert!(check_bearer(&h, Some("s3cret")).is_err());
    }
}
