//! REST reads: the minisource REST API's query routes under `/api/v1/logs`, traces and DAGs.
//! Parsing and lookups are the `query` module's; these handlers only speak HTTP. Every read is
//! scoped to the caller's tenant; another tenant's id reads as "not found".

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde_json::json;

use crate::api::AppState;
use crate::api::extract::{JsonObject, QueryObject, ReadTenant, TraceId};
use crate::error::AppError;
use crate::model::{LogPage, now_ns};
use crate::query::{self, check_path_id};
use crate::storage::LogKey;

/// The window of the services summary when the request names no start: the last hour.
const SUMMARY_WINDOW_NS: i64 = 3_600 * 1_000_000_000;

/// `GET /api/v1/logs`: the filters and pagination as query parameters, `page` and `page_size`
/// (the minisource REST API's) or `offset` and `limit` (the Traceflow listing's); the answer
/// carries the number of matches as both `total` and `count`.
pub async fn list(
    State(state): State<AppState>,
    ReadTenant(tenant): ReadTenant,
    QueryObject(obj): QueryObject,
) -> Result<Json<LogPage>, AppError> {
    Ok(Json(query::log_page(&state.store, &tenant, &obj).await?))
}

/// `POST /api/v1/logs/query`: the minisource REST API's filter body.
pub async fn query(
    State(state): State<AppState>,
    ReadTenant(tenant): ReadTenant,
    JsonObject(obj): JsonObject,
) -> Result<Json<LogPage>, AppError> {
    query::check_query_fields(&obj)?;
    Ok(Json(query::log_page(&state.store, &tenant, &obj).await?))
}

/// `GET /api/v1/logs/{id}`.
pub async fn log_by_id(
    State(state): State<AppState>,
    ReadTenant(tenant): ReadTenant,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::malformed("id", format!("{id:?} is not a log id (an integer)")))?;
    match state.store.get_log(&tenant, id).await? {
        Some(log) => Ok(Json(log)),
        None => Err(AppError::NotFound(format!("log {id} not found"))),
    }
}

/// `GET /api/v1/logs/trace/{trace_id}`: the trace's logs, oldest first; 404 when it has none.
pub async fn logs_by_trace(
    State(state): State<AppState>,
    ReadTenant(tenant): ReadTenant,
    TraceId(trace_id): TraceId,
) -> Result<impl IntoResponse, AppError> {
    let Some(logs) = query::trace_logs(&state.store, &tenant, &trace_id).await? else {
        return Err(AppError::NotFound(format!("no logs of trace {trace_id}")));
    };
    Ok(Json(
        json!({ "trace_id": trace_id, "count": logs.len(), "logs": logs }),
    ))
}

/// `GET /api/v1/logs/request/{request_id}`: the request's logs, oldest first.
pub async fn logs_by_request(
    State(state): State<AppState>,
    ReadTenant(tenant): ReadTenant,
    Path(request_id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    check_path_id("request_id", &request_id)?;
    let logs = state
        .store
        .logs_by(&tenant, LogKey::Request(&request_id))
        .await?;
    Ok(Json(
        json!({ "request_id": request_id, "count": logs.len(), "logs": logs }),
    ))
}

/// `GET /api/v1/tenants`: the tenants that hold logs or spans, sorted, as far as the caller
/// may see them (see [`crate::auth::Access::visible_tenants`]): the web view's tenant picker.
pub async fn tenants(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Json<serde_json::Value>, AppError> {
    let scope = state
        .access
        .visible_tenants(crate::auth::authorization(&headers))?;
    let tenants = scope.filter(state.store.tenants().await?);
    Ok(Json(json!({ "tenants": tenants })))
}

/// `GET /api/v1/logs/services`.
pub async fn services(
    State(state): State<AppState>,
    ReadTenant(tenant): ReadTenant,
) -> Result<impl IntoResponse, AppError> {
    let services = state.store.services(&tenant).await?;
    Ok(Json(json!({ "services": services })))
}

/// `GET /api/v1/logs/stats?start_time=&end_time=`.
pub async fn stats(
    State(state): State<AppState>,
    ReadTenant(tenant): ReadTenant,
    QueryObject(obj): QueryObject,
) -> Result<impl IntoResponse, AppError> {
    let start = query::time_of(&obj, &["start_time", "from"])?;
    let end = query::time_of(&obj, &["end_time", "to"])?;
    Ok(Json(state.store.stats(&tenant, start, end).await?))
}

/// `POST /api/v1/logs/aggregate`: `{"interval": "minute"|"hour"|"day", ...filter}`.
pub async fn aggregate(
    State(state): State<AppState>,
    ReadTenant(tenant): ReadTenant,
    JsonObject(obj): JsonObject,
) -> Result<impl IntoResponse, AppError> {
    query::check_query_fields(&obj)?;
    let interval = query::parse_interval(&obj)?;
    let filter = query::parse_filter(&obj)?;
    let buckets = state.store.aggregate(&tenant, &filter, interval).await?;
    Ok(Json(
        json!({ "interval": interval.as_str(), "buckets": buckets }),
    ))
}

/// `GET /api/v1/logs/storage`: the tenant's row counts and estimated bytes.
pub async fn storage(
    State(state): State<AppState>,
    ReadTenant(tenant): ReadTenant,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.store.storage(&tenant).await?))
}

/// `GET /api/v1/traces/{trace_id}`: spans (by start time) and logs of one trace; 404 when it has neither.
pub async fn trace(
    State(state): State<AppState>,
    ReadTenant(tenant): ReadTenant,
    TraceId(trace_id): TraceId,
) -> Result<impl IntoResponse, AppError> {
    let (spans, logs) = query::trace(&state.store, &tenant, &trace_id).await?;
    Ok(Json(
        json!({ "trace_id": trace_id, "spans": spans, "logs": logs }),
    ))
}

/// `GET /api/v1/traces/{trace_id}/dag`.
pub async fn trace_dag(
    State(state): State<AppState>,
    ReadTenant(tenant): ReadTenant,
    TraceId(trace_id): TraceId,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(query::dag(&state.store, &tenant, &trace_id).await?))
}

/// `GET /api/v1/dags?page=&page_size=`: DAGs of the traces with errors, newest first.
pub async fn dags(
    State(state): State<AppState>,
    ReadTenant(tenant): ReadTenant,
    QueryObject(obj): QueryObject,
) -> Result<impl IntoResponse, AppError> {
    let (page, page_size) = query::parse_dag_page(&obj)?;
    let offset = (page - 1) * page_size;
    let dags = query::error_dags(&state.store, &tenant, page_size, offset).await?;
    Ok(Json(
        json!({ "dags": dags, "page": page, "page_size": page_size }),
    ))
}

/// `GET /api/v1/services/summary?start=&end=` (RFC 3339; the last hour by default): per
/// service, the requests (its SERVER and CONSUMER spans) that started in the window, how many
/// failed, and their median and 99th percentile durations.
pub async fn services_summary(
    State(state): State<AppState>,
    ReadTenant(tenant): ReadTenant,
    QueryObject(obj): QueryObject,
) -> Result<impl IntoResponse, AppError> {
    let end = query::time_of(&obj, &["end", "end_time", "to"])?.unwrap_or_else(now_ns);
    let start = query::time_of(&obj, &["start", "start_time", "from"])?
        .unwrap_or(end.saturating_sub(SUMMARY_WINDOW_NS));
    if start > end {
        return Err(AppError::field("end", "is before start"));
    }
    let summary = state.store.service_summary(&tenant, start, end).await?;
    let ms = |ns: i64| ns as f64 / 1e6;
    let services: Vec<_> = summary
        .into_iter()
        .map(|s| {
            json!({
                "service": s.service,
                "requests": s.requests,
                "errors": s.errors,
                "p50_ms": ms(s.p50_ns),
                "p99_ms": ms(s.p99_ns),
            })
        })
        .collect();
    Ok(Json(json!({ "services": services })))
}
