//! REST ingest: the minisource REST API's single and batch routes and the Traceflow ingest
//! API's `POST /ingest`. Every answer comes after the commit, so a 2xx means the record is stored.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::api::AppState;
use crate::api::extract::{JsonBody, Tenant};
use crate::error::AppError;
use crate::ingest;
use crate::model::WriteBatch;

/// Commits a batch of REST logs, counted under `rest` / `logs`.
async fn store(state: &AppState, batch: WriteBatch) -> Result<Vec<i64>, AppError> {
    Ok(ingest::commit(&state.store, &state.metrics, batch, "rest", "logs").await?)
}

/// `POST /api/v1/logs`: one minisource REST API entry; 201 `{"id", "status"}`.
pub async fn create(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    JsonBody(body): JsonBody,
) -> Result<impl IntoResponse, AppError> {
    let log = ingest::rest_log(&body).inspect_err(|_| {
        state.metrics.count("rest", "logs", "rejected", 1);
    })?;
    let trace_id = log.trace_id.clone();
    let mut batch = WriteBatch::new(tenant);
    batch.logs.push(log);
    let ids = store(&state, batch).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": ids.first(), "status": "stored", "trace_id": trace_id })),
    ))
}

/// `POST /api/v1/logs/batch`: an array of entries (or `{"logs": [...]}`). Valid entries are stored,
/// invalid ones are listed by index and field; 422 only when none is valid.
pub async fn batch(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    JsonBody(body): JsonBody,
) -> Result<impl IntoResponse, AppError> {
    let entries = match &body {
        Value::Array(items) => items,
        Value::Object(map) => match map.get("logs") {
            Some(Value::Array(items)) => items,
            _ => {
                return Err(AppError::malformed(
                    "logs",
                    "must be an array of log entries",
                ));
            }
        },
        _ => {
            return Err(AppError::malformed(
                "body",
                "must be an array of log entries",
            ));
        }
    };
    if entries.is_empty() {
        return Err(AppError::field("logs", "is empty"));
    }
    let mut batch = WriteBatch::new(tenant);
    let mut rejected = Vec::new();
    let mut indexes = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        match ingest::rest_log(entry) {
            Ok(log) => {
                indexes.push(index);
                batch.logs.push(log);
            }
            Err(err) => {
                let field = match &err {
                    AppError::InvalidArgument { field, .. } => field.clone(),
                    _ => None,
                };
                rejected.push(json!({ "index": index, "field": field, "error": err.to_string() }));
            }
        }
    }
    state
        .metrics
        .count("rest", "logs", "rejected", rejected.len());
    if batch.logs.is_empty() {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "error": {
                    "code": "invalid_argument",
                    "message": format!("all {} entries were rejected", rejected.len()),
                },
                "accepted": 0,
                "rejected": rejected,
                "ids": [],
            })),
        ));
    }
    let ids = store(&state, batch).await?;
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
            "ids": ids,
            "stored": stored,
        })),
    ))
}

/// `POST /ingest` (the Traceflow ingest API): 202 `{"status": "accepted", "trace_id"}`, the
/// trace id generated when the event has none. Unlike that API, the answer comes after the commit.
pub async fn ingest(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    JsonBody(body): JsonBody,
) -> Result<impl IntoResponse, AppError> {
    let log = ingest::ingest_event(&body).inspect_err(|_| {
        state.metrics.count("rest", "logs", "rejected", 1);
    })?;
    let trace_id = log.trace_id.clone();
    let mut batch = WriteBatch::new(tenant);
    batch.logs.push(log);
    let ids = store(&state, batch).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "status": "accepted", "trace_id": trace_id, "id": ids.first() })),
    ))
}
