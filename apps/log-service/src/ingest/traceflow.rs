//! The Traceflow ingest API's event (`POST /ingest`).

use serde_json::Value;

use super::fields::{
    as_object, check_id, check_name, level_field, metadata_field, opt_string, req_string,
    timestamp_field,
};
use crate::error::AppError;
use crate::model::{
    LogContext, MAX_MESSAGE_BYTES, MAX_SHORT_FIELD, NewLog, object_text, refuse_unknown_fields,
};

/// Validates a Traceflow event; a missing `trace_id` gets a fresh one, so every event can be
/// followed by its trace.
pub fn ingest_event(value: &Value) -> Result<NewLog, AppError> {
    let obj = as_object(value)?;
    refuse_unknown_fields(
        obj,
        &[
            "service",
            "level",
            "message",
            "timestamp",
            "trace_id",
            "span_id",
            "metadata",
            "attributes",
        ],
        "a log entry",
    )?;
    let trace_id = check_id("trace_id", opt_string(obj, "trace_id", 128)?)?
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    Ok(NewLog {
        service: check_name(
            "service",
            Some(req_string(obj, "service", MAX_SHORT_FIELD)?),
        )?
        .unwrap_or_default(),
        level: level_field(obj, "level")?,
        message: req_string(obj, "message", MAX_MESSAGE_BYTES)?,
        timestamp_ns: timestamp_field(obj, "timestamp")?,
        context: LogContext {
            trace_id: Some(trace_id),
            span_id: check_id("span_id", opt_string(obj, "span_id", 128)?)?,
            ..LogContext::default()
        },
        metadata: metadata_field(obj)?.as_ref().and_then(object_text),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ingest_events_get_a_generated_trace_id() {
        let log = ingest_event(&json!({"service": "s", "level": "error", "message": "m"})).unwrap();
        let id = log.context.trace_id.unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
