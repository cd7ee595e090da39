//! The distributed-logging gRPC API's `logs.Log` (`SendLog`).

use serde_json::{Map, Value};

use super::fields::{check_id, check_name, opt_string, req_string, timestamp_field};
use crate::error::AppError;
use crate::model::{Level, LogContext, MAX_MESSAGE_BYTES, MAX_SHORT_FIELD, NewLog};
use crate::proto::logs::{Log, LogLevel};

/// Validates a `logs.Log`. Errors name the fields in the API's camelCase spelling.
pub fn grpc_log(entry: Log) -> Result<NewLog, AppError> {
    let level = level(entry.level)?;
    // The string fields go through the same readers as the JSON entries, so the rules and the
    // messages are the same whichever API a record came in by.
    let mut obj = Map::new();
    let mut put = |k: &str, v: String| {
        obj.insert(k.to_owned(), Value::String(v));
    };
    put("service", entry.service);
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
        level,
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

/// The level a `LogLevel` number stands for. proto3 enums are open, so a client built from a
/// newer or a foreign definition can send any number: one outside the enum is refused rather
/// than stored as a guess.
fn level(number: i32) -> Result<Level, AppError> {
    let level = LogLevel::try_from(number).map_err(|_| {
        AppError::field(
            "level",
            format!(
                "{number} is not a LogLevel; expected 0 (LOG_LEVEL_INFO), 1 (DEBUG), 2 (WARN), \
                 3 (ERROR), 4 (FATAL) or 5 (TRACE)"
            ),
        )
    })?;
    Ok(match level {
        LogLevel::Info => Level::Info,
        LogLevel::Debug => Level::Debug,
        LogLevel::Warn => Level::Warn,
        LogLevel::Error => Level::Error,
        LogLevel::Fatal => Level::Fatal,
        LogLevel::Trace => Level::Trace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_map_by_their_wire_numbers_and_unknown_ones_name_the_field() {
        // The original contract's numbers: INFO is the zero, so an unset level is INFO.
        assert_eq!(level(0).unwrap(), Level::Info);
        assert_eq!(level(1).unwrap(), Level::Debug);
        assert_eq!(level(2).unwrap(), Level::Warn);
        assert_eq!(level(3).unwrap(), Level::Error);
        assert_eq!(level(4).unwrap(), Level::Fatal);
        assert_eq!(level(5).unwrap(), Level::Trace);
        let err = level(9).unwrap_err().to_string();
        assert!(err.starts_with("level: 9 is not a LogLevel"), "{err}");
        assert!(level(-1).is_err());
    }
}
