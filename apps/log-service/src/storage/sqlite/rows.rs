//! How a row of a log or span partition becomes the query API's log or span.

use serde_json::Value;

use crate::model::{
    Level, LogContext, LogView, NewSpan, SpanKind, SpanStatus, SpanView, format_ts, json_or,
};

/// The columns [`log_from_row`] reads, in its order.
pub(super) const LOG_COLUMNS: &str = "id, ts, level, service, message, trace_id, span_id, parent_span_id, \
     user_id, request_id, source, host, environment, attributes";

/// The columns [`span_from_row`] reads, in its order.
pub(super) const SPAN_COLUMNS: &str = "trace_id, span_id, parent_span_id, service, name, kind, start_ns, \
     end_ns, status, status_message, attributes, links, events";

/// A log of `tenant` from a row of [`LOG_COLUMNS`].
pub(super) fn log_from_row(row: &rusqlite::Row<'_>, tenant: &str) -> rusqlite::Result<LogView> {
    let ts: i64 = row.get(1)?;
    Ok(LogView {
        id: row.get(0)?,
        tenant_id: tenant.to_owned(),
        timestamp: format_ts(ts),
        timestamp_ns: ts,
        level: Level::from_i64(row.get(2)?),
        service_name: row.get(3)?,
        message: row.get(4)?,
        context: LogContext {
            trace_id: row.get(5)?,
            span_id: row.get(6)?,
            parent_span_id: row.get(7)?,
            user_id: row.get(8)?,
            request_id: row.get(9)?,
            source: row.get(10)?,
            host: row.get(11)?,
            environment: row.get(12)?,
        },
        metadata: json_or(
            row.get::<_, Option<String>>(13)?.as_deref(),
            Value::Object(Default::default()),
        ),
    })
}

/// A span from a row of [`SPAN_COLUMNS`].
pub(super) fn span_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SpanView> {
    let span = NewSpan {
        trace_id: row.get(0)?,
        span_id: row.get(1)?,
        parent_span_id: row.get(2)?,
        service: row.get(3)?,
        name: row.get(4)?,
        kind: SpanKind::from_i64(row.get(5)?),
        start_ns: row.get(6)?,
        end_ns: row.get(7)?,
        status: SpanStatus::from_i64(row.get(8)?),
        status_message: row.get(9)?,
        attributes: row.get::<_, Option<String>>(10)?.unwrap_or_default(),
        links: row.get::<_, Option<String>>(11)?.unwrap_or_default(),
        events: row.get::<_, Option<String>>(12)?.unwrap_or_default(),
    };
    Ok(span.into())
}
