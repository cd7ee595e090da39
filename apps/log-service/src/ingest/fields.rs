//! Field readers shared by the JSON-shaped entries (REST, Traceflow, gRPC `logs.Log`): each
//! checks one field and, when it is wrong, says which field and why.

use serde_json::{Map, Value};

use chrono::{DateTime, Utc};

use crate::error::AppError;
use crate::model::{Level, MAX_MESSAGE_BYTES, now_ns};

/// How far ahead of this server's clock a timestamp may be. A clock a little fast is common; a
/// record dated years ahead would stay at the top of every newest-first list.
const MAX_FUTURE_NS: i64 = 24 * 3600 * 1_000_000_000;

/// Whether `timestamp_ns` is more than a day ahead of this server's clock (a timestamp past
/// 2262, saturated to the largest one, is).
pub(super) fn too_far_ahead(timestamp_ns: i64) -> bool {
    timestamp_ns > now_ns().saturating_add(MAX_FUTURE_NS) || timestamp_ns == i64::MAX
}

/// A string field that may be absent (missing, null or empty); longer than `max` is an error.
pub(super) fn opt_string(
    obj: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<String>, AppError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() > max => Err(AppError::field(
            field,
            format!("is {} bytes, at most {max} allowed", s.len()),
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(AppError::field(field, "must be a string")),
    }
}

/// A string field that must be present and non-empty.
pub(super) fn req_string(
    obj: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<String, AppError> {
    opt_string(obj, field, max)?.ok_or_else(|| AppError::field(field, "is required"))
}

/// Checks an id-like string (trace, span, request, user id): short, without whitespace or
/// control characters.
pub(super) fn check_id(field: &str, value: Option<String>) -> Result<Option<String>, AppError> {
    match value {
        Some(v) if v.len() > 128 || v.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            Err(AppError::field(
                field,
                "must be at most 128 characters without whitespace or control characters",
            ))
        }
        other => Ok(other),
    }
}

/// Checks a name (service, source, host, environment): no control characters, which would let
/// a stored record rewrite the terminal or log line that shows it.
pub(super) fn check_name(field: &str, value: Option<String>) -> Result<Option<String>, AppError> {
    match value {
        Some(v) if v.chars().any(char::is_control) => Err(AppError::field(
            field,
            "must not contain control characters",
        )),
        other => Ok(other),
    }
}

/// Reads an RFC 3339 timestamp in unix nanoseconds, telling a malformed one from one out of
/// range (nanoseconds since 1970 fit in 64 bits from 1677-09-21 to 2262-04-11) or too far ahead.
pub(crate) fn parse_timestamp(field: &str, text: &str) -> Result<i64, AppError> {
    let time = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|_| AppError::field(field, format!("{text:?} is not an RFC 3339 timestamp")))?;
    let ns = time.with_timezone(&Utc).timestamp_nanos_opt().ok_or_else(|| {
        AppError::field(
            field,
            format!("{text:?} is out of range: timestamps must fall between 1677-09-21 and 2262-04-11"),
        )
    })?;
    if too_far_ahead(ns) {
        return Err(AppError::field(
            field,
            format!("{text:?} is more than 24 hours ahead of this server's clock"),
        ));
    }
    Ok(ns)
}

/// A required level name.
pub(super) fn level_field(obj: &Map<String, Value>, field: &str) -> Result<Level, AppError> {
    let text = req_string(obj, field, 32)?;
    Level::parse(&text).ok_or_else(|| {
        AppError::field(
            field,
            format!("unknown level {text:?}; expected TRACE, DEBUG, INFO, WARN, ERROR or FATAL"),
        )
    })
}

/// An RFC 3339 timestamp in unix nanoseconds; absent means now.
pub(super) fn timestamp_field(obj: &Map<String, Value>, field: &str) -> Result<i64, AppError> {
    match opt_string(obj, field, 64) {
        Ok(None) => Ok(now_ns()),
        Ok(Some(text)) => parse_timestamp(field, &text),
        Err(_) => Err(AppError::field(field, "must be an RFC 3339 string")),
    }
}

/// The structured fields: `metadata`, or `attributes` from clients that send that name instead.
pub(super) fn metadata_field(obj: &Map<String, Value>) -> Result<Option<Value>, AppError> {
    for field in ["metadata", "attributes"] {
        match obj.get(field) {
            None | Some(Value::Null) => continue,
            Some(Value::Object(map)) if map.is_empty() => return Ok(None),
            Some(v @ Value::Object(_)) => {
                if v.to_string().len() > MAX_MESSAGE_BYTES {
                    return Err(AppError::field(
                        field,
                        format!("is larger than {MAX_MESSAGE_BYTES} bytes"),
                    ));
                }
                return Ok(Some(v.clone()));
            }
            Some(_) => return Err(AppError::field(field, "must be a JSON object")),
        }
    }
    Ok(None)
}

/// The entry itself, which must be a JSON object.
pub(super) fn as_object(value: &Value) -> Result<&Map<String, Value>, AppError> {
    value
        .as_object()
        .ok_or_else(|| AppError::invalid("log entry must be a JSON object"))
}
