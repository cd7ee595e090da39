//! `GET /api/v1/logs/stream`: the live tail as Server-Sent Events.
//!
//! Each log is `event: log`, `id: <log id>`, `data: <the log as GET /api/v1/logs/{id} returns
//! it>`; a client that fell behind gets `event: lagged` with `{"skipped": N}`. The query API's
//! filters are query parameters; `Last-Event-ID` (or `last_event_id` / `since_id` for clients
//! that cannot set headers) first replays the matching logs stored after that id. Every stream
//! ends when the server stops, so none holds up the drain.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde_json::{Map, Value, json};

use crate::api::AppState;
use crate::api::extract::{QueryObject, ReadTenant};
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::model::refuse_unknown_fields;
use crate::query::{FILTER_FIELDS, parse_filter};
use crate::tail::{Follow, Item};

/// What the stream takes beside the query API's filters: the resume point.
const RESUME_FIELDS: [&str; 2] = ["last_event_id", "since_id"];

/// `GET /api/v1/logs/stream`.
pub async fn stream(
    State(state): State<AppState>,
    ReadTenant(tenant): ReadTenant,
    headers: HeaderMap,
    QueryObject(obj): QueryObject,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let known = [FILTER_FIELDS.as_slice(), &RESUME_FIELDS].concat();
    refuse_unknown_fields(&obj, &known, "a log stream")?;
    let after_id = resume_point(&headers, &obj)?;
    let filter = parse_filter(&obj)?;
    let tail = &state.tail;
    let follow = Follow::open(&tail.hub, state.store.clone(), tenant, filter, after_id).await?;
    let metrics = state.metrics.clone();
    let events =
        futures_util::stream::unfold((follow, metrics), |(mut follow, metrics)| async move {
            let event = event_of(follow.next().await?, &metrics)?;
            Some((Ok(event), (follow, metrics)))
        })
        .take_until(tail.stop.intake_token().cancelled_owned());
    let keep_alive = KeepAlive::new().interval(tail.heartbeat).text("keep-alive");
    Ok(Sse::new(events).keep_alive(keep_alive))
}

/// The SSE event of one item; `None` (the stream ends) when a replay read failed.
fn event_of(item: Result<Item, crate::storage::StoreError>, metrics: &Metrics) -> Option<Event> {
    match item {
        Ok(Item::Log(log)) => {
            let data = serde_json::to_string(&*log).ok()?;
            Some(
                Event::default()
                    .event("log")
                    .id(log.id.to_string())
                    .data(data),
            )
        }
        Ok(Item::Lagged(skipped)) => Some(
            Event::default()
                .event("lagged")
                .data(json!({ "skipped": skipped }).to_string()),
        ),
        Err(err) => {
            metrics.stream_failures.inc();
            tracing::error!(error = %err, "live tail replay failed");
            None
        }
    }
}

/// The id to resume after: the `Last-Event-ID` header, else `last_event_id` or `since_id`.
fn resume_point(headers: &HeaderMap, obj: &Map<String, Value>) -> Result<Option<i64>, AppError> {
    if let Some(value) = headers.get("last-event-id") {
        let text = value.to_str().unwrap_or("").trim();
        // An empty Last-Event-ID is what EventSource sends before it has seen an id.
        if text.is_empty() {
            return Ok(None);
        }
        return text
            .parse::<i64>()
            .ok()
            .filter(|id| *id >= 0)
            .map(Some)
            .ok_or_else(|| {
                AppError::malformed("Last-Event-ID", format!("{text:?} is not a log id"))
            });
    }
    for key in ["last_event_id", "since_id"] {
        if let Some(Value::String(text)) = obj.get(key) {
            let text = text.trim();
            return text
                .parse::<i64>()
                .ok()
                .filter(|id| *id >= 0)
                .map(Some)
                .ok_or_else(|| AppError::field(key, format!("{text:?} is not a log id")));
        }
    }
    Ok(None)
}
