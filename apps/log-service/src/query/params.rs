//! Reading what a caller asks for: filters, pages, ids and intervals, from a JSON body or query
//! parameters (REST) or from protobuf fields (gRPC). Every error names the field.

use serde_json::{Map, Value};

use super::{DEFAULT_DAG_PAGE_SIZE, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::error::AppError;
use crate::model::{Interval, Level, LogFilter, parse_ts, refuse_unknown_fields};
use crate::storage::search_terms;

/// The fields a query body may hold (`POST /api/v1/logs/query` and `/aggregate`).
const QUERY_FIELDS: [&str; 17] = [
    "service",
    "service_name",
    "level",
    "min_level",
    "search",
    "trace_id",
    "request_id",
    "user_id",
    "environment",
    "start_time",
    "end_time",
    "from",
    "to",
    "page",
    "page_size",
    "limit",
    "interval",
];

/// Refuses a field a query body does not define: a misspelt filter would otherwise widen the
/// query to everything without a word.
pub fn check_query_fields(obj: &Map<String, Value>) -> Result<(), AppError> {
    refuse_unknown_fields(obj, &QUERY_FIELDS, "a query")
}

/// Query parameters as a JSON object, so they are read by the same code as a JSON body.
pub fn params_object(params: Vec<(String, String)>) -> Map<String, Value> {
    params
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

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

/// The first of `keys` that is set, as an RFC 3339 timestamp in unix nanoseconds.
pub fn time_of(obj: &Map<String, Value>, keys: &[&str]) -> Result<Option<i64>, AppError> {
    for key in keys {
        if let Some(text) = string_of(obj, &[key])? {
            return parse_ts(&text).map(Some).ok_or_else(|| {
                AppError::field(*key, format!("{text:?} is not an RFC 3339 timestamp"))
            });
        }
    }
    Ok(None)
}

/// Reads the minisource REST API's filter fields (and the Traceflow ingest API's
/// `service`/`from`/`to` spellings).
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
        && search_terms(search).is_empty()
    {
        return Err(AppError::field(
            "search",
            "must contain at least one letter or digit",
        ));
    }
    Ok(filter)
}

/// Reads `page` (from 1) and `page_size` (1..=1000; the Traceflow ingest API's `limit` is an
/// alias), with `default_size` when neither size is given.
fn page_with_default(obj: &Map<String, Value>, default_size: u32) -> Result<(u32, u32), AppError> {
    let page = number_of(obj, "page")?.unwrap_or(1);
    if page == 0 || page > 1_000_000 {
        return Err(AppError::field("page", "must be between 1 and 1000000"));
    }
    let (key, size) = match number_of(obj, "page_size")? {
        Some(size) => ("page_size", size),
        None => (
            "limit",
            number_of(obj, "limit")?.unwrap_or(default_size as u64),
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

/// Reads a page of logs: `page` and `page_size`, 100 logs by default.
pub fn parse_page(obj: &Map<String, Value>) -> Result<(u32, u32), AppError> {
    page_with_default(obj, DEFAULT_PAGE_SIZE)
}

/// Reads a page of DAGs: `page` and `page_size`, 20 DAGs by default (a DAG is much larger than
/// a log line).
pub fn parse_dag_page(obj: &Map<String, Value>) -> Result<(u32, u32), AppError> {
    page_with_default(obj, DEFAULT_DAG_PAGE_SIZE)
}

/// Reads the aggregation `interval`, `hour` when absent.
pub fn parse_interval(obj: &Map<String, Value>) -> Result<Interval, AppError> {
    match string_of(obj, &["interval"])? {
        None => Ok(Interval::Hour),
        Some(text) => Interval::parse(&text).ok_or_else(|| {
            AppError::field(
                "interval",
                format!("{text:?} is not one of minute, hour, day"),
            )
        }),
    }
}

/// Reads the gRPC API's `limit` (0 means 100) and `offset`.
pub fn limit_offset(limit: i32, offset: i32) -> Result<(u32, u64), AppError> {
    let limit = match limit {
        0 => DEFAULT_PAGE_SIZE,
        n if n < 0 || n as u32 > MAX_PAGE_SIZE => {
            return Err(AppError::field(
                "limit",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        n => n as u32,
    };
    if offset < 0 {
        return Err(AppError::field("offset", "must not be negative"));
    }
    Ok((limit, offset as u64))
}

/// Checks an id taken from a URL path.
pub fn check_path_id(field: &str, value: &str) -> Result<(), AppError> {
    if value.trim().is_empty() || value.len() > 128 {
        return Err(AppError::malformed(field, "must be 1..=128 characters"));
    }
    Ok(())
}

/// Reads the gRPC API's required `traceId`.
pub fn required_trace_id(value: &str) -> Result<String, AppError> {
    let id = value.trim();
    if id.is_empty() {
        return Err(AppError::field("traceId", "is required"));
    }
    if id.len() > 128 {
        return Err(AppError::field("traceId", "at most 128 characters"));
    }
    Ok(id.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn pages_default_per_kind_and_name_the_bad_size() {
        assert_eq!(parse_page(&Map::new()).unwrap(), (1, 100));
        assert_eq!(parse_dag_page(&Map::new()).unwrap(), (1, 20));
        assert_eq!(parse_page(&obj(json!({"limit": "5"}))).unwrap(), (1, 5));
        let err = parse_page(&obj(json!({"page_size": 1001}))).unwrap_err();
        assert_eq!(err.to_string(), "page_size: must be between 1 and 1000");
    }

    #[test]
    fn grpc_limits_and_trace_ids_are_checked() {
        assert_eq!(limit_offset(0, 0).unwrap(), (100, 0));
        assert_eq!(
            limit_offset(1001, 0).unwrap_err().to_string(),
            "limit: must be between 1 and 1000"
        );
        assert_eq!(
            limit_offset(10, -1).unwrap_err().to_string(),
            "offset: must not be negative"
        );
        assert_eq!(required_trace_id(" abc ").unwrap(), "abc");
        assert_eq!(
            required_trace_id("").unwrap_err().to_string(),
            "traceId: is required"
        );
    }
}
