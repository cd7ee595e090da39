//! The handlers of Jaeger's query API. Searches and lists come from the backend's
//! [`SpanReads`]; a trace is its stored spans, whole, in Jaeger's model.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use futures_util::future::try_join_all;

use super::JaegerError;
use super::model::{
    DependencyLink, Envelope, EnvelopeError, OperationView, Trace, kind_name, trace as to_trace,
};
use super::params::{self, DEFAULT_DEPENDENCY_LOOKBACK_MS, Params};
use crate::api::AppState;
use crate::api::extract::ReadTenant;
use crate::error::AppError;
use crate::model::{SpanKind, now_ns};
use crate::storage::Store;

/// What the handlers answer.
type Answer<T> = Result<Json<Envelope<T>>, JaegerError>;

/// The caller's tenant (role `read`), or the access check's refusal in Jaeger's envelope.
pub struct Tenant(String);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = JaegerError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, JaegerError> {
        Ok(Tenant(
            ReadTenant::from_request_parts(parts, state).await?.0,
        ))
    }
}

/// The query parameters, or a 400 in Jaeger's envelope when they cannot be read.
pub struct QueryParams(Params);

impl FromRequestParts<AppState> for QueryParams {
    type Rejection = JaegerError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, JaegerError> {
        let Query(pairs) = Query::from_request_parts(parts, state)
            .await
            .map_err(|e: QueryRejection| AppError::malformed("query", e.body_text()))?;
        Ok(QueryParams(Params(pairs)))
    }
}

fn path(path: Result<Path<String>, PathRejection>, what: &str) -> Result<String, AppError> {
    path.map(|Path(p)| p)
        .map_err(|e| AppError::malformed(what, e.body_text()))
}

/// The trace `id` (32 hex digits), `None` when it has no spans for `tenant`.
async fn find(store: &Store, tenant: &str, id: &str) -> Result<Option<Trace>, JaegerError> {
    let spans = store.spans_by_trace(tenant, id).await?;
    Ok((!spans.is_empty()).then(|| to_trace(id, &spans)))
}

/// `GET /api/services`: the services that have spans.
pub async fn services(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
) -> Answer<Vec<String>> {
    let services = state.store.span_services(&tenant).await?;
    Ok(Json(Envelope::counted(services)))
}

/// `GET /api/services/{service}/operations`: the service's span names.
pub async fn service_operations(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    service: Result<Path<String>, PathRejection>,
) -> Answer<Vec<String>> {
    let service = path(service, "service")?;
    let operations = state.store.operations(&tenant, &service, None).await?;
    let mut names: Vec<String> = operations.into_iter().map(|op| op.name).collect();
    names.dedup();
    Ok(Json(Envelope::counted(names)))
}

/// `GET /api/operations?service=&spanKind=`: the service's span names with their kind.
pub async fn operations(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    QueryParams(params): QueryParams,
) -> Answer<Vec<OperationView>> {
    let service = params
        .get("service")
        .ok_or_else(|| AppError::malformed("service", "is required"))?;
    let kind = params
        .get("spanKind")
        .map(|k| params::span_kind("spanKind", k))
        .transpose()?;
    let operations = state.store.operations(&tenant, service, kind).await?;
    let views: Vec<OperationView> = operations
        .into_iter()
        .map(|op| OperationView {
            name: op.name,
            span_kind: kind_name(SpanKind::from_i64(op.kind).as_str()),
        })
        .collect();
    Ok(Json(Envelope::counted(views)))
}

/// `GET /api/traces`: the traces matching `service`, `operation`, `tags`, the durations and
/// the window, newest first; or, given `traceID` (repeatable), those traces, with an error
/// naming each id that has none.
pub async fn search(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    QueryParams(params): QueryParams,
) -> Answer<Vec<Trace>> {
    let asked = params.all("traceID");
    if !asked.is_empty() {
        let ids = asked
            .iter()
            .map(|id| params::trace_id("traceID", id))
            .collect::<Result<Vec<_>, _>>()?;
        let found = try_join_all(ids.iter().map(|id| find(&state.store, &tenant, id))).await?;
        let mut traces = Vec::new();
        let mut errors = Vec::new();
        for (id, trace) in ids.into_iter().zip(found) {
            match trace {
                Some(trace) => traces.push(trace),
                None => errors.push(EnvelopeError {
                    code: None,
                    msg: "trace not found".into(),
                    trace_id: Some(id),
                }),
            }
        }
        let mut answer = Envelope::new(traces);
        answer.errors = (!errors.is_empty()).then_some(errors);
        return Ok(Json(answer));
    }
    let search = params::search(&params)?;
    let ids = state.store.find_trace_ids(&tenant, &search).await?;
    let found = try_join_all(ids.iter().map(|id| find(&state.store, &tenant, id))).await?;
    Ok(Json(Envelope::new(found.into_iter().flatten().collect())))
}

/// `GET /api/traces/{traceID}`: one trace; 404 when it has no spans, 400 for a malformed id.
pub async fn trace(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    id: Result<Path<String>, PathRejection>,
) -> Answer<Vec<Trace>> {
    let id = params::trace_id("traceID", &path(id, "traceID")?)?;
    match find(&state.store, &tenant, &id).await? {
        Some(trace) => Ok(Json(Envelope::new(vec![trace]))),
        None => Err(AppError::NotFound("trace not found".into()).into()),
    }
}

/// `GET /api/dependencies?endTs=&lookback=` (milliseconds; now and a day by default), with
/// Jaeger's optional `service`: the calls between services in that window.
pub async fn dependencies(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    QueryParams(params): QueryParams,
) -> Answer<Vec<DependencyLink>> {
    let end_ns = params.instant("endTs", 1_000_000)?.unwrap_or_else(now_ns);
    let lookback_ms = match params.get("lookback") {
        None => DEFAULT_DEPENDENCY_LOOKBACK_MS,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|ms| *ms >= 0)
            .ok_or_else(|| {
                AppError::malformed(
                    "lookback",
                    format!("{text:?} is not a number of milliseconds"),
                )
            })?,
    };
    let start_ns = end_ns.saturating_sub(lookback_ms.saturating_mul(1_000_000));
    let service = params.get("service");
    let edges = state.store.dependencies(&tenant, start_ns, end_ns).await?;
    let links = edges
        .into_iter()
        .filter(|e| service.is_none_or(|s| e.parent == s || e.child == s))
        .map(|e| DependencyLink {
            parent: e.parent,
            child: e.child,
            call_count: e.call_count,
        })
        .collect();
    Ok(Json(Envelope::new(links)))
}
