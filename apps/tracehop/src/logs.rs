//! `tracehop logs`: searches log-service (`POST /api/v1/logs/query`) and prints the lines oldest first.

use anyhow::bail;
use chrono::{SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::cli::{LogsArgs, Urls};
use crate::client::Service;
use crate::style::Palette;

const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// The query body for the flags.
fn query(args: &LogsArgs) -> anyhow::Result<Value> {
    let mut body = Map::new();
    body.insert("page_size".into(), json!(args.limit));
    if let Some(service) = &args.service {
        body.insert("service_name".into(), json!(service));
    }
    if let Some(level) = &args.level {
        let upper = level.trim().to_ascii_uppercase();
        let upper = if upper == "WARNING" {
            "WARN".to_owned()
        } else {
            upper
        };
        if !LEVELS.contains(&upper.as_str()) {
            bail!("--level {level:?} is not one of trace, debug, info, warn, error, fatal");
        }
        body.insert("min_level".into(), json!(upper));
    }
    if let Some(since) = args.since {
        let start = Utc::now() - chrono::Duration::from_std(since)?;
        body.insert(
            "start_time".into(),
            json!(start.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
    }
    if let Some(trace) = &args.trace {
        body.insert("trace_id".into(), json!(trace.trim()));
    }
    if let Some(search) = &args.search {
        body.insert("search".into(), json!(search));
    }
    Ok(Value::Object(body))
}

/// Runs the search and prints the page.
pub async fn run(urls: &Urls, args: LogsArgs, palette: Palette) -> anyhow::Result<()> {
    let log_service = Service::new("log-service", &urls.log_service);
    let page = log_service
        .call_ok(Method::POST, "/api/v1/logs/query", Some(&query(&args)?))
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(());
    }
    let empty = Vec::new();
    let logs = page["logs"].as_array().unwrap_or(&empty);
    // log-service answers newest first; a terminal reads best oldest first, like a tail.
    for log in logs.iter().rev() {
        let s = |k: &str| log[k].as_str().unwrap_or("");
        println!(
            "{} {} {:<15} {} {}",
            palette.dim(s("timestamp")),
            palette.level(&format!("{:<5}", s("level"))),
            s("service_name"),
            palette.dim(if s("trace_id").is_empty() {
                "-"
            } else {
                s("trace_id")
            }),
            s("message")
        );
    }
    let total = page["total"].as_i64().unwrap_or(logs.len() as i64);
    if total > logs.len() as i64 {
        eprintln!(
            "{}",
            palette.dim(&format!(
                "({} of {total} matching lines; raise --limit or narrow the search)",
                logs.len()
            ))
        );
    } else if logs.is_empty() {
        eprintln!("{}", palette.dim("(no matching lines)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> LogsArgs {
        LogsArgs {
            service: Some("order-gateway".into()),
            level: Some("warning".into()),
            since: Some(std::time::Duration::from_secs(60)),
            trace: Some("abc".into()),
            search: Some("confirmed".into()),
            limit: 10,
            json: false,
        }
    }

    #[test]
    fn flags_map_onto_the_query_body() {
        let body = query(&args()).unwrap();
        assert_eq!(body["service_name"], "order-gateway");
        assert_eq!(body["min_level"], "WARN");
        assert_eq!(body["trace_id"], "abc");
        assert_eq!(body["search"], "confirmed");
        assert_eq!(body["page_size"], 10);
        assert!(body["start_time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn an_unknown_level_is_refused() {
        let mut a = args();
        a.level = Some("loud".into());
        assert!(query(&a).unwrap_err().to_string().contains("--level"));
    }
}
