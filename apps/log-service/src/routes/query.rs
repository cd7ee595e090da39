//! REST queries (seed 001 routes under `/api/v1`), traces, DAGs, probes and metrics.
//! Every read is scoped to the caller's tenant; another tenant's id reads as "not found".

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

use super::{AppState, JsonBody, Tenant};
use crate::dag;
use crate::error::AppError;
use crate::model::{Interval, Level, LogFilter, LogPage, parse_ts};

/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: u32 = 1000;
const DEFAULT_PAGE_SIZE: u32 = 100;

fn string_of(obj: &Map<String, Value>, keys: &[&str]) -> Result<Option<String>, AppError> {
    for key in keys {
        match obj.get(*key) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) if s.trim().is_empty() => continue,
            Some(Value::String(s)) => return Ok(Some(s.trim().to_owned())),
            Some(_) => return Err(AppError::field(*key, "must be a string")),
        }
    }
    Ok(None)
}

fn number_of(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>, AppError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| AppError::field(key, "must be a non-negative integer")),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| AppError::field(key, format!("{s:?} is not a non-negative integer"))),
        Some(_) => Err(AppError::field(key, "must be a non-negative integer")),
    }
}

fn level_of(obj: &Map<String, Value>, key: &str) -> Result<Option<Level>, AppError> {
    string_of(obj, &[key])?
        .map(|text| {
            Level::parse(&text).ok_or_else(|| {
                AppError::field(
                    key,
                    format!(
                        "unknown level {text:?}; expected TRACE, DEBUG, INFO, WARN, ERROR or FATAL"
                    ),
                )
            })
        })
        .transpose()
}

fn time_of(obj: &Map<String, Value>, keys: &[&str]) -> Result<Option<i64>, AppError> {
    for key in keys {
        if let Some(text) = string_of(obj, &[key])? {
            return parse_ts(&text).map(Some).ok_or_else(|| {
                AppError::field(*key, format!("{text:?} is not an RFC 3339 timestamp"))
            });
        }
    }
    Ok(None)
}

/// Reads seed 001's filter fields (and seed 002's `service`/`from`/`to` spellings).
pub fn parse_filter(obj: &Map<String, Value>) -> Result<LogFilter, AppError> {
    let filter = LogFilter {
        service: string_of(obj, &["service_name", "service"])?,
        level: level_of(obj, "level")?,
        min_level: level_of(obj, "min_level")?,
        start_ns: time_of(obj, &["start_time", "from"])?,
        end_ns: time_of(obj, &["end_time", "to"])?,
        trace_id: string_of(obj, &["trace_id"])?,
        request_id: string_of(obj, &["request_id"])?,
        user_id: string_of(obj, &["user_id"])?,
        search: string_of(obj, &["search"])?,
        environment: string_of(obj, &["environment"])?,
    };
    if let (Some(start), Some(end)) = (filter.start_ns, filter.end_ns)
        && start > end
    {
        return Err(AppError::field("end_time", "is before start_time"));
    }
    if let Some(search) = &filter.search
        && crate::storage::search_terms(search).is_empty()
    {
        return Err(AppError::field(
            "search",
            "must contain at least one letter or digit",
        ));
    }
    Ok(filter)
}

/// Reads `page` (from 1) and `page_size` (1..=1000; seed 002's `limit` is an alias).
pub fn parse_page(obj: &Map<String, Value>) -> Result<(u32, u32), AppError> {
    let page = number_of(obj, "page")?.unwrap_or(1);
    if page == 0 || page > 1_000_000 {
        return Err(AppError::field("page", "must be between 1 and 1000000"));
    }
    let (key, size) = match number_of(obj, "page_size")? {
        Some(size) => ("page_size", size),
        None => (
            "limit",
            number_of(obj, "limit")?.unwrap_or(DEFAULT_PAGE_SIZE as u64),
        ),
    };
    if size == 0 || size > MAX_PAGE_SIZE as u64 {
        return Err(AppError::field(
            key,
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    Ok((page as u32, size as u32))
}

fn params_object(params: Vec<(String, String)>) -> Map<String, Value> {
    params
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

async fn page_of(
    state: &AppState,
    tenant: &str,
    obj: &Map<String, Value>,
) -> Result<LogPage, AppError> {
    let filter = parse_filter(obj)?;
    let (page, page_size) = parse_page(obj)?;
    let offset = (page as u64 - 1) * page_size as u64;
    let (logs, total) = state
        .store
        .query_logs(tenant, &filter, page_size, offset)
        .await?;
    Ok(LogPage {
        logs,
        total,
        page,
        page_size,
    })
}

/// `GET /api/v1/logs`: the filters and pagination as query parameters.
pub async fn list(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<LogPage>, AppError> {
    Ok(Json(
        page_of(&state, &tenant, &params_object(params)).await?,
    ))
}

/// `POST /api/v1/logs/query`: seed 001's filter body.
pub async fn query(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    JsonBody(body): JsonBody,
) -> Result<Json<LogPage>, AppError> {
    let obj = body
        .as_object()
        .ok_or_else(|| AppError::field("body", "must be a JSON object"))?;
    Ok(Json(page_of(&state, &tenant, obj).await?))
}

/// `GET /api/v1/logs/{id}`.
pub async fn log_by_id(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::field("id", format!("{id:?} is not a log id (an integer)")))?;
    match state.store.get_log(&tenant, id).await? {
        Some(log) => Ok(Json(log)),
        None => Err(AppError::NotFound(format!("log {id} not found"))),
    }
}

fn check_path_id(field: &str, value: &str) -> Result<(), AppError> {
    if value.trim().is_empty() || value.len() > 128 {
        return Err(AppError::field(field, "must be 1..=128 characters"));
    }
    Ok(())
}

/// `GET /api/v1/logs/trace/{trace_id}`: the trace's logs, oldest first.
pub async fn logs_by_trace(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(trace_id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    check_path_id("trace_id", &trace_id)?;
    let logs = state.store.logs_by_trace(&tenant, &trace_id).await?;
    Ok(Json(
        json!({ "trace_id": trace_id, "count": logs.len(), "logs": logs }),
    ))
}

/// `GET /api/v1/logs/request/{request_id}`: the request's logs, oldest first.
pub async fn logs_by_request(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(request_id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    check_path_id("request_id", &request_id)?;
    let logs = state.store.logs_by_request(&tenant, &request_id).await?;
    Ok(Json(
        json!({ "request_id": request_id, "count": logs.len(), "logs": logs }),
    ))
}

/// `GET /api/v1/logs/services`.
pub async fn services(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<impl IntoResponse, AppError> {
    let services = state.store.services(&tenant).await?;
    Ok(Json(json!({ "services": services })))
}

/// `GET /api/v1/logs/stats?start_time=&end_time=`.
pub async fn stats(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<impl IntoResponse, AppError> {
    let obj = params_object(params);
    let start = time_of(&obj, &["start_time", "from"])?;
    let end = time_of(&obj, &["end_time", "to"])?;
    Ok(Json(state.store.stats(&tenant, start, end).await?))
}

/// `POST /api/v1/logs/aggregate`: `{"interval": "minute"|"hour"|"day", ...filter}`.
pub async fn aggregate(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    JsonBody(body): JsonBody,
) -> Result<impl IntoResponse, AppError> {
    let obj = body
        .as_object()
        .ok_or_else(|| AppError::field("body", "must be a JSON object"))?;
    let interval = match string_of(obj, &["interval"])? {
        None => Interval::Hour,
        Some(text) => Interval::parse(&text).ok_or_else(|| {
            AppError::field(
                "interval",
                format!("{text:?} is not one of minute, hour, day"),
            )
        })?,
    };
    let filter = parse_filter(obj)?;
    let buckets = state.store.aggregate(&tenant, &filter, interval).await?;
    Ok(Json(
        json!({ "interval": interval.as_str(), "buckets": buckets }),
    ))
}

/// `GET /api/v1/logs/storage`: the tenant's row counts and estimated bytes.
pub async fn storage(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.store.storage(&tenant).await?))
}

/// `GET /api/v1/traces/{trace_id}`: spans (by start time) and logs of one trace; 404 when it has neither.
pub async fn trace(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(trace_id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    check_path_id("trace_id", &trace_id)?;
    let (spans, logs) = tokio::try_join!(
        state.store.spans_by_trace(&tenant, &trace_id),
        state.store.logs_by_trace(&tenant, &trace_id)
    )?;
    if spans.is_empty() && logs.is_empty() {
        return Err(AppError::NotFound(format!("trace {trace_id} not found")));
    }
    Ok(Json(
        json!({ "trace_id": trace_id, "spans": spans, "logs": logs }),
    ))
}

/// Builds one trace's DAG, or `None` when the tenant has nothing for it.
pub async fn dag_of(
    state: &crate::storage::Store,
    tenant: &str,
    trace_id: &str,
) -> Result<Option<dag::Dag>, AppError> {
    let (spans, logs) = tokio::try_join!(
        state.spans_by_trace(tenant, trace_id),
        state.logs_by_trace(tenant, trace_id)
    )?;
    if spans.is_empty() && logs.is_empty() {
        return Ok(None);
    }
    Ok(Some(dag::build(trace_id, &spans, &logs)))
}

/// `GET /api/v1/traces/{trace_id}/dag`.
pub async fn trace_dag(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(trace_id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    check_path_id("trace_id", &trace_id)?;
    match dag_of(&state.store, &tenant, &trace_id).await? {
        Some(dag) => Ok(Json(dag)),
        None => Err(AppError::NotFound(format!("trace {trace_id} not found"))),
    }
}

/// `GET /api/v1/dags?page=&page_size=`: DAGs of the traces with errors, newest first.
pub async fn dags(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<impl IntoResponse, AppError> {
    let obj = params_object(params);
    let (page, page_size) = parse_page(&obj)?;
    let page_size = if obj.contains_key("page_size") || obj.contains_key("limit") {
        page_size
    } else {
        20
    };
    let ids = state
        .store
        .error_traces(&tenant, page_size, (page - 1) * page_size)
        .await?;
    let mut dags = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(dag) = dag_of(&state.store, &tenant, &id).await? {
            dags.push(dag);
        }
    }
    Ok(Json(
        json!({ "dags": dags, "page": page, "page_size": page_size }),
    ))
}

/// `GET /health`: the process answers.
pub async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /live`: the process answers.
pub async fn live() -> impl IntoResponse {
    Json(json!({ "status": "alive" }))
}

/// `GET /ready`: storage answers and the writer runs.
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let backend = state.store.backend_name();
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(
                json!({ "status": "ready", "backend": backend, "queued_rows": state.store.queued_rows() }),
            ),
        ),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "backend": backend })),
            )
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state
        .metrics
        .queued_rows
        .set(state.store.queued_rows() as i64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Unknown route: 404 with the JSON error shape.
pub async fn not_found() -> AppError {
    AppError::NotFound("no such route".into())
}
