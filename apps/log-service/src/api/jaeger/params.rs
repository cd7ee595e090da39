//! The query parameters of Jaeger's query API, read as its query service reads them: times as
//! integers since the epoch (microseconds for traces, milliseconds for dependencies),
//! durations as Go writes them (`1.5s`, `100ms`, `500us`), tags as a JSON object. A bad value
//! is a 400 naming the parameter.

use serde_json::Value;

use crate::error::AppError;
use crate::model::{SpanKind, SpanStatus, now_ns};
use crate::storage::{SpanSearch, TagMatch};

/// How far back a search looks when it names no `start`: Jaeger's one hour.
const DEFAULT_LOOKBACK_NS: i64 = 3_600 * 1_000_000_000;
/// How far back the dependencies look when the request names no `lookback`: Jaeger's day.
pub const DEFAULT_DEPENDENCY_LOOKBACK_MS: i64 = 86_400_000;
/// Traces a search returns when it names no `limit`: the Jaeger UI's 20.
const DEFAULT_LIMIT: u32 = 20;
/// Most traces one search returns: the largest the Jaeger UI offers.
const MAX_LIMIT: u32 = 1500;

/// The query parameters of one request, in order, repeated ones kept.
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The first non-blank value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .find(|v| !v.is_empty())
    }

    /// Every non-blank value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == key && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
            .collect()
    }

    /// `key` as an integer count of `unit_ns` nanoseconds since the epoch, in nanoseconds.
    pub fn instant(&self, key: &str, unit_ns: i64) -> Result<Option<i64>, AppError> {
        let Some(text) = self.get(key) else {
            return Ok(None);
        };
        text.parse::<i64>()
            .ok()
            .and_then(|n| n.checked_mul(unit_ns))
            .map(Some)
            .ok_or_else(|| bad(key, format!("{text:?} is not a time since the epoch")))
    }
}

fn bad(key: &str, message: impl Into<String>) -> AppError {
    AppError::malformed(key, message)
}

/// A duration as Go's `time.ParseDuration` reads it (`1h30m`, `1.2s`, `100ms`, `500us`,
/// `500µs`, `10ns`; a bare `0`), in nanoseconds; `None` when it is not one or is negative.
pub fn parse_duration(text: &str) -> Option<i64> {
    if text == "0" {
        return Some(0);
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ns = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * unit_ns;
    }
    (!text.is_empty() && total < i64::MAX as f64).then_some(total.round() as i64)
}

fn duration(params: &Params, key: &str) -> Result<Option<i64>, AppError> {
    params
        .get(key)
        .map(|text| {
            parse_duration(text).ok_or_else(|| {
                bad(
                    key,
                    format!("{text:?} is not a duration such as 1.2s, 100ms or 500us"),
                )
            })
        })
        .transpose()
}

/// A span kind by Jaeger's lower-case name.
pub fn span_kind(key: &str, text: &str) -> Result<SpanKind, AppError> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        "internal" => SpanKind::Internal,
        _ => {
            return Err(bad(
                key,
                format!("{text:?} is not one of server, client, producer, consumer, internal"),
            ));
        }
    })
}

/// One `key = value` condition: the tags Jaeger derives from a span's own fields match those
/// fields, any other key an attribute.
fn tag_match(key: &str, value: String) -> Result<TagMatch, AppError> {
    let field = format!("tags.{key}");
    Ok(match key {
        "error" => match value.as_str() {
            "true" => TagMatch::Error(true),
            "false" => TagMatch::Error(false),
            _ => return Err(bad(&field, "must be true or false")),
        },
        "span.kind" => TagMatch::Kind(span_kind(&field, &value)?),
        "otel.status_code" => TagMatch::Status(match value.to_ascii_uppercase().as_str() {
            "OK" => SpanStatus::Ok,
            "ERROR" => SpanStatus::Error,
            "UNSET" => SpanStatus::Unset,
            _ => return Err(bad(&field, "must be OK, ERROR or UNSET")),
        }),
        _ => TagMatch::Attribute {
            key: key.to_owned(),
            value,
        },
    })
}

/// `tags` (JSON objects of strings; numbers and booleans are taken as their text) and `tag`
/// (`key:value`, Jaeger's older form).
fn tags(params: &Params) -> Result<Vec<TagMatch>, AppError> {
    let mut out = Vec::new();
    for text in params.all("tags") {
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
            return Err(bad(
                "tags",
                r#"must be a JSON object such as {"key":"value"}"#,
            ));
        };
        for (key, value) in map {
            let value = match value {
                Value::String(s) => s,
                Value::Number(_) | Value::Bool(_) => value.to_string(),
                _ => return Err(bad("tags", format!("{key:?} must be a string"))),
            };
            out.push(tag_match(&key, value)?);
        }
    }
    for text in params.all("tag") {
        let Some((key, value)) = text.split_once(':') else {
            return Err(bad("tag", format!("{text:?} is not key:value")));
        };
        out.push(tag_match(key, value.to_owned())?);
    }
    Ok(out)
}

/// A trace id as Jaeger takes it (1 to 32 hex digits), as stored: 32 lower-case digits.
pub fn trace_id(key: &str, text: &str) -> Result<String, AppError> {
    if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(
            key,
            format!("{text:?} is not a trace id (1 to 32 hex digits)"),
        ));
    }
    Ok(format!("{:0>32}", text.to_ascii_lowercase()))
}

/// The filters of `GET /api/traces`.
pub fn search(params: &Params) -> Result<SpanSearch, AppError> {
    let service = params
        .get("service")
        .ok_or_else(|| bad("service", "is required"))?;
    let end_ns = params.instant("end", 1000)?.unwrap_or_else(now_ns);
    let start_ns = params
        .instant("start", 1000)?
        .unwrap_or(end_ns.saturating_sub(DEFAULT_LOOKBACK_NS));
    if start_ns > end_ns {
        return Err(bad("end", "is before start"));
    }
    let min_duration_ns = duration(params, "minDuration")?;
    let max_duration_ns = duration(params, "maxDuration")?;
    if let (Some(min), Some(max)) = (min_duration_ns, max_duration_ns)
        && max < min
    {
        return Err(bad("maxDuration", "is shorter than minDuration"));
    }
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<u32>() {
            Ok(0) => DEFAULT_LIMIT,
            Ok(n) if n <= MAX_LIMIT => n,
            _ => return Err(bad("limit", format!("must be between 0 and {MAX_LIMIT}"))),
        },
    };
    Ok(SpanSearch {
        service: service.to_owned(),
        operation: params.get("operation").map(str::to_owned),
        tags: tags(params)?,
        start_ns,
        end_ns,
        min_duration_ns,
        max_duration_ns,
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn durations_read_as_go_writes_them() {
        assert_eq!(parse_duration("1.2s"), Some(1_200_000_000));
        assert_eq!(parse_duration("100ms"), Some(100_000_000));
        assert_eq!(parse_duration("500us"), Some(500_000));
        assert_eq!(parse_duration("500µs"), Some(500_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("0"), Some(0));
        for bad in ["", "10", "ms", "1.2.3s", "-1s", "5 ms", "1d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_search_defaults_to_the_last_hour_and_twenty_traces() {
        let search = search(&params(&[("service", "api"), ("end", "7200000000")])).unwrap();
        assert_eq!(
            (search.start_ns, search.end_ns),
            (3_600 * 1_000_000_000, 7_200 * 1_000_000_000)
        );
        assert_eq!(search.limit, 20);
        assert_eq!(search.operation, None);
    }

    #[test]
    fn tags_match_attributes_and_the_derived_tags() {
        let search = search(&params(&[
            ("service", "api"),
            (
                "tags",
                r#"{"http.status_code":"500","error":"true","span.kind":"server"}"#,
            ),
            ("tag", "region:eu:1"),
        ]))
        .unwrap();
        assert_eq!(
            search.tags,
            vec![
                TagMatch::Error(true),
                TagMatch::Attribute {
                    key: "http.status_code".into(),
                    value: "500".into()
                },
                TagMatch::Kind(SpanKind::Server),
                TagMatch::Attribute {
                    key: "region".into(),
                    value: "eu:1".into()
                },
            ]
        );
    }

    #[test]
    fn bad_parameters_name_themselves() {
        let field = |pairs: &[(&str, &str)]| search(&params(pairs)).unwrap_err().to_string();
        assert!(field(&[]).starts_with("service: "));
        let cases = [
            ("start", "yesterday"),
            ("minDuration", "fast"),
            ("limit", "5000"),
            ("tags", "[1]"),
            ("tag", "novalue"),
        ];
        for (key, value) in cases {
            let err = field(&[("service", "api"), (key, value)]);
            assert!(
                err.starts_with(&format!("{key}: ")),
                "{key}={value} -> {err}"
            );
        }
        let err = field(&[
            ("service", "api"),
            ("minDuration", "2s"),
            ("maxDuration", "1s"),
        ]);
        assert!(err.starts_with("maxDuration: "), "{err}");
        assert!(trace_id("traceID", "xyz").is_err());
        assert_eq!(
            trace_id("traceID", "ABC").unwrap(),
            format!("{:0>32}", "abc")
        );
    }
}
