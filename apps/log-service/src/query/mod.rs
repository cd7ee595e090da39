//! Reading, shared by the REST API and the distributed-logging gRPC API: page limits, filters,
//! trace lookups and DAGs. Every read is scoped to a tenant, so another tenant's trace reads as
//! absent. The handlers only translate between their protocol and these functions.

mod dag;
mod params;

pub use dag::{Dag, DagEdge, DagNode};
use params::parse_window;
pub use params::{
    FILTER_FIELDS, check_path_id, check_query_fields, limit_offset, params_object, parse_dag_page,
    parse_filter, parse_interval, required_trace_id, time_of,
};

use serde_json::{Map, Value};

use crate::error::AppError;
use crate::model::{LogPage, LogView, SpanView};
use crate::storage::{LogKey, Store};

/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Logs per page when the caller names no size.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// DAGs per page of `/api/v1/dags` when the caller names no size.
pub const DEFAULT_DAG_PAGE_SIZE: u32 = 20;
/// Matches a page of logs counts at most (Elasticsearch's default for its hit count): past it
/// the total reads "at least" (`total_relation: "gte"`), and a page of ten million stored logs
/// costs no full count. At 10M rows an exact count took 190 ms unfiltered and 0.9 s by service.
pub const COUNT_UP_TO: u64 = 10_000;

/// The page of logs that the filter and page fields of `obj` (a query body, or the list route's
/// parameters) ask for, newest first, with the total number of matches.
pub async fn log_page(
    store: &Store,
    tenant: &str,
    obj: &Map<String, Value>,
) -> Result<LogPage, AppError> {
    let filter = parse_filter(obj)?;
    let window = parse_window(obj)?;
    let (logs, total) = store
        .query_logs(
            tenant,
            &filter,
            window.page_size,
            window.offset,
            Some(COUNT_UP_TO),
        )
        .await?;
    Ok(LogPage {
        logs,
        total,
        count: total,
        total_relation: if total as u64 >= COUNT_UP_TO {
            "gte"
        } else {
            "eq"
        },
        page: window.page,
        page_size: window.page_size,
        offset: window.offset,
    })
}

/// The logs of one trace, oldest first; `None` when it has none, which each API answers as not
/// found (as a trace read does) rather than as an empty success.
pub async fn trace_logs(
    store: &Store,
    tenant: &str,
    trace_id: &str,
) -> Result<Option<Vec<LogView>>, AppError> {
    let logs = store.logs_by(tenant, LogKey::Trace(trace_id)).await?;
    Ok((!logs.is_empty()).then_some(logs))
}

/// Spans (by start time) and logs (oldest first) of one trace; `None` when it has neither.
async fn find_trace(
    store: &Store,
    tenant: &str,
    trace_id: &str,
) -> Result<Option<(Vec<SpanView>, Vec<LogView>)>, AppError> {
    let (spans, logs) = tokio::try_join!(
        store.spans_by_trace(tenant, trace_id),
        store.logs_by(tenant, LogKey::Trace(trace_id))
    )?;
    if spans.is_empty() && logs.is_empty() {
        return Ok(None);
    }
    Ok(Some((spans, logs)))
}

/// Spans (by start time) and logs (oldest first) of one trace; not found when it has neither.
pub async fn trace(
    store: &Store,
    tenant: &str,
    trace_id: &str,
) -> Result<(Vec<SpanView>, Vec<LogView>), AppError> {
    find_trace(store, tenant, trace_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("trace {trace_id} not found")))
}

/// The DAG of one trace; not found when the trace has neither spans nor logs.
pub async fn dag(store: &Store, tenant: &str, trace_id: &str) -> Result<Dag, AppError> {
    let (spans, logs) = trace(store, tenant, trace_id).await?;
    Ok(dag::build(trace_id, &spans, &logs))
}

/// DAGs of up to `limit` traces with an error after skipping `offset`, newest first.
pub async fn error_dags(
    store: &Store,
    tenant: &str,
    limit: u32,
    offset: u32,
) -> Result<Vec<Dag>, AppError> {
    let ids = store.error_traces(tenant, limit, offset).await?;
    let mut dags = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some((spans, logs)) = find_trace(store, tenant, &id).await? {
            dags.push(dag::build(&id, &spans, &logs));
        }
    }
    Ok(dags)
}
