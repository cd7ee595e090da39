//! The distributed-logging gRPC API's `logs.LogEntry` (`SendLog`).

use serde_json::{Map, Value};

use super::fields::{check_id, check_name, level_field, opt_string, req_string, timestamp_field};
use crate::error::AppError;
use crate::model::{LogContext, MAX_MESSAGE_BYTES, MAX_SHORT_FIELD, NewLog};
use crate::proto::logs::LogEntry;

/// Validates a `LogEntry`. Errors name the fields in the API's camelCase spelling.
pub fn grpc_log(entry: LogEntry) -> Result<NewLog, AppError> {
    // The entry goes through the same field readers as the JSON entries, so the rules and the
    // messages are the same whichever API a record came in by.
    let mut obj = Map::new();
    let mut put = |k: &str, v: String| {
        obj.insert(k.to_owned(), Value::String(v));
    };
    put("service", entry.service);
    put("level", entry.level);
    put("message", entry.message);
    put("timestamp", entry.timestamp);
    put("traceId", entry.trace_id);
    put("spanId", entry.span_id);
    put("parentId", entry.parent_id);
    Ok(NewLog {
        service: check_name(
            "service",
            Some(req_string(&obj, "service", MAX_SHORT_FIELD)?),
        )?
        .unwrap_or_default(),
        level: level_field(&obj, "level")?,
        message: req_string(&obj, "message", MAX_MESSAGE_BYTES)?,
        timestamp_ns: timestamp_field(&obj, "timestamp")?,
        context: LogContext {
            trace_id: check_id("traceId", opt_string(&obj, "traceId", 128)?)?,
            span_id: check_id("spanId", opt_string(&obj, "spanId", 128)?)?,
            parent_span_id: check_id("parentId", opt_string(&obj, "parentId", 128)?)?,
            ..LogContext::default()
        },
        metadata: None,
    })
}
