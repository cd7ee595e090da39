//! REST ingest: the minisource REST API's single and batch routes and the Traceflow ingest
//! API's `POST /ingest`. Every answer comes after the commit, so a 2xx means the record is stored.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::api::AppState;
use crate::api::extract::{JsonBody, JsonBytes, WriteTenant};
use crate::error::AppError;
use crate::ingest;
use crate::model::WriteBatch;

/// `POST /api/v1/logs`: one minisource REST API entry; 201 `{"id", "status"}`.
pub async fn create(
    State(state): State<AppState>,
    WriteTenant(tenant): WriteTenant,
    JsonBody(body): JsonBody,
) -> Result<impl IntoResponse, AppError> {
    let log = ingest::rest_log(&body);
    let stored = ingest::commit_one(&state.store, &state.metrics, "rest", tenant, log).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": stored.id, "status": "stored", "trace_id": stored.trace_id })),
    ))
}

/// Most entries in one batch: with the body limit, this bounds what one request can hold in
/// memory while it is converted and committed.
pub const MAX_BATCH_ENTRIES: usize = 10_000;

/// Rejected entries listed in an answer; the rest are only counted, so a batch of invalid
/// entries cannot make an answer larger than its request.
const MAX_LISTED_REJECTIONS: usize = 100;

/// The two shapes of a batch body, each entry left unparsed (a slice of the body) until its turn.
#[derive(serde::Deserialize)]
struct Wrapped<'a> {
    #[serde(borrow)]
    logs: Option<Vec<&'a RawValue>>,
}

fn batch_entries(bytes: &[u8]) -> Result<Vec<&RawValue>, AppError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let entries = match first {
        Some(b'[') => serde_json::from_slice::<Vec<&RawValue>>(bytes)
            .map_err(|e| AppError::malformed("body", format!("invalid JSON: {e}")))?,
        Some(b'{') => serde_json::from_slice::<Wrapped>(bytes)
            .map_err(|e| AppError::malformed("body", format!("invalid JSON: {e}")))?
            .logs
            .ok_or_else(|| AppError::malformed("logs", "must be an array of log entries"))?,
        Some(_) => {
            return Err(AppError::malformed(
                "body",
                "must be an array of log entries",
            ));
        }
        None => return Err(AppError::malformed("body", "is empty; expected JSON")),
    };
    if entries.is_empty() {
        return Err(AppError::field("logs", "is empty"));
    }
    if entries.len() > MAX_BATCH_ENTRIES {
        return Err(AppError::field(
            "logs",
            format!(
                "holds {} entries, at most {MAX_BATCH_ENTRIES} allowed: split the batch",
                entries.len()
            ),
        ));
    }
    Ok(entries)
}

/// `POST /api/v1/logs/batch`: an array of entries (or `{"logs": [...]}`), at most
/// [`MAX_BATCH_ENTRIES`]. Valid entries are stored, invalid ones are listed by index and field
/// (the first [`MAX_LISTED_REJECTIONS`]); 422 only when none is valid. Each entry is parsed on its
/// own, from its slice of the body, so the request's memory is about twice its body, not the
/// dozens of times a whole parsed document would take.
pub async fn batch(
    State(state): State<AppState>,
    WriteTenant(tenant): WriteTenant,
    JsonBytes(bytes): JsonBytes,
) -> Result<impl IntoResponse, AppError> {
    let entries = batch_entries(&bytes)?;
    let mut batch = WriteBatch::new(tenant);
    let mut rejected = Vec::new();
    let mut rejected_count = 0usize;
    let mut indexes = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let parsed = serde_json::from_str::<Value>(entry.get())
            .map_err(|e| AppError::malformed("body", format!("invalid JSON: {e}")))
            .and_then(|value| ingest::rest_log(&value));
        match parsed {
            Ok(log) => {
                indexes.push(index);
                batch.logs.push(log);
            }
            Err(err) => {
                rejected_count += 1;
                if rejected.len() < MAX_LISTED_REJECTIONS {
                    let field = match &err {
                        AppError::InvalidArgument { field, .. } => field.clone(),
                        _ => None,
                    };
                    rejected
                        .push(json!({ "index": index, "field": field, "error": err.to_string() }));
                }
            }
        }
    }
    drop(entries);
    drop(bytes);
    state
        .metrics
        .count("rest", "logs", "rejected", rejected_count);
    if batch.logs.is_empty() {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "error": {
                    "code": "invalid_argument",
                    "message": format!("all {rejected_count} entries were rejected"),
                },
                "accepted": 0,
                "rejected": rejected,
                "rejected_count": rejected_count,
                "ids": [],
            })),
        ));
    }
    let ids = ingest::commit(&state.store, &state.metrics, batch, "rest", "logs").await?;
    let stored: Vec<Value> = indexes
        .iter()
        .zip(&ids)
        .map(|(index, id)| json!({ "index": index, "id": id }))
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "accepted": ids.len(),
            "rejected": rejected,
            "rejected_count": rejected_count,
            "ids": ids,
            "stored": stored,
        })),
    ))
}

/// `POST /ingest` (the Traceflow ingest API): 202 `{"status": "accepted", "trace_id"}`, the
/// trace id generated when the event has none. Unlike that API, the answer comes after the commit.
pub async fn ingest(
    State(state): State<AppState>,
    WriteTenant(tenant): WriteTenant,
    JsonBody(body): JsonBody,
) -> Result<impl IntoResponse, AppError> {
    let log = ingest::ingest_event(&body);
    let stored = ingest::commit_one(&state.store, &state.metrics, "rest", tenant, log).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "status": "accepted", "trace_id": stored.trace_id, "id": stored.id })),
    ))
}
