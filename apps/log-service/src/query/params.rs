//! Reading what a caller asks for: filters, pages, ids and intervals, from a JSON body or query
//! parameters (REST) or from protobuf fields (gRPC). Every error names the field.

use serde_json::{Map, Value};

use super::{DEFAULT_DAG_PAGE_SIZE, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::error::AppError;
use crate::model::{Interval, Level, LogFilter, parse_ts, refuse_unknown_fields};
use crate::storage::search_terms;

/// The filter fields, the same wherever logs are selected: a query body, the listing, the stream.
pub const FILTER_FIELDS: [&str; 13] = [
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
];

/// What a query body (`POST /api/v1/logs/query` and `/aggregate`) holds beside the filter.
const PAGING_FIELDS: [&str; 5] = ["page", "page_size", "limit", "offset", "interval"];

/// Refuses a field a query body does not define: a misspelt filter would otherwise widen the
/// query to everything without a word.
pub fn check_query_fields(obj: &Map<String, Value>) -> Result<(), AppError> {
    let known = [FILTER_FIELDS.as_slice(), &PAGING_FIELDS].concat();
    refuse_unknown_fields(obj, &known, "a query")
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

/// Largest `offset` a caller may ask for: far past any page a person reads, and well inside the
/// backends' 64-bit OFFSET.
pub const MAX_OFFSET: u64 = 1_000_000_000;

/// Which window of a newest-first list of logs a caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogWindow {
    /// The page the first entry falls on, from 1.
    pub page: u32,
    pub page_size: u32,
    /// Entries skipped before the first.
    pub offset: u64,
}

/// Reads a window of logs, 100 by default: `page` and `page_size` (the minisource REST API's),
/// or `offset` and `limit` (the Traceflow listing's). `offset` counts entries, so it cannot be
/// combined with `page`, which counts pages.
pub fn parse_window(obj: &Map<String, Value>) -> Result<LogWindow, AppError> {
    let (page, page_size) = page_with_default(obj, DEFAULT_PAGE_SIZE)?;
    let Some(offset) = number_of(obj, "offset")? else {
        return Ok(LogWindow {
            page,
            page_size,
            offset: (page as u64 - 1) * page_size as u64,
        });
    };
    if number_of(obj, "page")?.is_some() {
        return Err(AppError::field(
            "offset",
            "cannot be combined with page; send one of them",
        ));
    }
    if offset > MAX_OFFSET {
        return Err(AppError::field(
            "offset",
            format!("must be between 0 and {MAX_OFFSET}"),
        ));
    }
    Ok(LogWindow {
        page: (offset / page_size as u64 + 1).min(u32::MAX as u64) as u32,
        page_size,
        offset,
    })
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
        let window = |page, page_size, offset| LogWindow {
            page,
            page_size,
            offset,
        };
        assert_eq!(parse_window(&Map::new()).unwrap(), window(1, 100, 0));
        assert_eq!(parse_dag_page(&Map::new()).unwrap(), (1, 20));
        let limited = parse_window(&obj(json!({"limit": "5"}))).unwrap();
        assert_eq!(limited, window(1, 5, 0));
        let paged = parse_window(&obj(json!({"page": "3", "page_size": "10"}))).unwrap();
        assert_eq!(paged, window(3, 10, 20));
        let err = parse_window(&obj(json!({"page_size": 1001}))).unwrap_err();
        assert_eq!(err.to_string(), "page_size: must be between 1 and 1000");
    }

    #[test]
    fn offsets_count_entries_and_name_the_field_when_wrong() {
        let window = parse_window(&obj(json!({"limit": "50", "offset": "75"}))).unwrap();
        assert_eq!((window.offset, window.page, window.page_size), (75, 2, 50));
        for bad in [
            json!({"offset": "-1"}),
            json!({"offset": "ten"}),
            json!({"offset": 1_000_000_001u64}),
            json!({"offset": "10", "page": "2"}),
        ] {
            let err = parse_window(&obj(bad.clone())).unwrap_err().to_string();
            assert!(err.starts_with("offset: "), "{bad} -> {err}");
        }
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
