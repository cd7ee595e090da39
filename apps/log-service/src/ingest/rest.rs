//! The minisource REST API's log entry (`POST /api/v1/logs`, one element of `/logs/batch`).

use serde_json::Value;

use super::fields::{
    as_object, check_id, check_name, level_field, metadata_field, opt_string, req_string,
    timestamp_field,
};
use crate::error::AppError;
use crate::model::{
    LogContext, MAX_MESSAGE_BYTES, MAX_SHORT_FIELD, NewLog, object_text, refuse_unknown_fields,
};

/// The fields of a minisource REST API log entry (`attributes` is accepted for `metadata`).
const FIELDS: [&str; 14] = [
    "service_name",
    "level",
    "message",
    "timestamp",
    "trace_id",
    "span_id",
    "parent_span_id",
    "user_id",
    "request_id",
    "source",
    "host",
    "environment",
    "metadata",
    "attributes",
];

/// Validates one minisource REST API log entry.
pub fn rest_log(value: &Value) -> Result<NewLog, AppError> {
    let obj = as_object(value)?;
    refuse_unknown_fields(obj, &FIELDS, "a log entry")?;
    let service = req_string(obj, "service_name", MAX_SHORT_FIELD)?;
    Ok(NewLog {
        service: check_name("service_name", Some(service))?.unwrap_or_default(),
        level: level_field(obj, "level")?,
        message: req_string(obj, "message", MAX_MESSAGE_BYTES)?,
        timestamp_ns: timestamp_field(obj, "timestamp")?,
        context: LogContext {
            trace_id: check_id("trace_id", opt_string(obj, "trace_id", 128)?)?,
            span_id: check_id("span_id", opt_string(obj, "span_id", 128)?)?,
            parent_span_id: check_id("parent_span_id", opt_string(obj, "parent_span_id", 128)?)?,
            user_id: check_id("user_id", opt_string(obj, "user_id", 128)?)?,
            request_id: check_id("request_id", opt_string(obj, "request_id", 128)?)?,
            source: check_name("source", opt_string(obj, "source", MAX_SHORT_FIELD)?)?,
            host: check_name("host", opt_string(obj, "host", MAX_SHORT_FIELD)?)?,
            environment: check_name(
                "environment",
                opt_string(obj, "environment", MAX_SHORT_FIELD)?,
            )?,
        },
        metadata: metadata_field(obj)?.as_ref().and_then(object_text),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rest_entries_name_the_bad_field() {
        let err = |v: Value| match rest_log(&v) {
            Err(AppError::InvalidArgument { field, .. }) => field,
            other => panic!("expected invalid argument, got {other:?}"),
        };
        let ok = json!({"service_name": "a", "level": "INFO", "message": "m"});
        assert!(rest_log(&ok).is_ok());
        assert_eq!(
            err(json!({"service_name": "a", "level": "LOUD", "message": "m"})).as_deref(),
            Some("level")
        );
        assert_eq!(
            err(json!({"service_name": "a", "level": "INFO", "message": "m", "timestamp": "noon"}))
                .as_deref(),
            Some("timestamp")
        );
        assert_eq!(
            err(json!({"level": "INFO", "message": "m"})).as_deref(),
            Some("service_name")
        );
        assert_eq!(
            err(json!({"service_name": "a", "level": "INFO", "message": "m", "metadata": [1]}))
                .as_deref(),
            Some("metadata")
        );
        assert_eq!(
            err(json!({"service_name": "a", "level": "INFO", "message": "x".repeat(MAX_MESSAGE_BYTES + 1)}))
                .as_deref(),
            Some("message")
        );
        assert_eq!(
            err(json!({"service_name": "a", "level": "INFO", "message": "m", "trace_id": "a b"}))
                .as_deref(),
            Some("trace_id")
        );
    }

    #[test]
    fn hostile_entries_are_refused_naming_the_field() {
        let err = |v: Value| match rest_log(&v) {
            Err(AppError::InvalidArgument { field, message }) => (field.unwrap(), message),
            other => panic!("expected invalid argument, got {other:?}"),
        };
        let (field, _) =
            err(json!({"service_name": "a\u{0}b\u{1b}[31m", "level": "INFO", "message": "m"}));
        assert_eq!(field, "service_name");
        let (field, _) =
            err(json!({"servce_name": "a", "service_name": "a", "level": "INFO", "message": "m"}));
        assert_eq!(field, "servce_name");
        let (field, message) = err(
            json!({"service_name": "a", "level": "INFO", "message": "m", "timestamp": "2300-01-01T00:00:00Z"}),
        );
        assert_eq!(field, "timestamp");
        assert!(message.contains("out of range"), "{message}");
        let (_, message) = err(
            json!({"service_name": "a", "level": "INFO", "message": "m", "timestamp": "2200-01-01T00:00:00Z"}),
        );
        assert!(message.contains("ahead"), "{message}");
        // A message may hold anything: it is escaped where it is shown.
        assert!(
            rest_log(&json!({"service_name": "a", "level": "INFO", "message": "a\u{0}\u{1b}"}))
                .is_ok()
        );
    }

    #[test]
    fn attributes_are_accepted_as_metadata() {
        let log = rest_log(&json!({
            "service_name": "a", "level": "INFO", "message": "m", "attributes": {"k": 1}
        }))
        .unwrap();
        assert_eq!(log.metadata.as_deref(), Some(r#"{"k":1}"#));
    }
}
