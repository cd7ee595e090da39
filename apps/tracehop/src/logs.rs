//! `tracehop logs`: searches log-service (`POST /api/v1/logs/query`) and prints the lines oldest first.

use anyhow::bail;
use chrono::{SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::cli::{LogsArgs, Urls};
use crate::style::Palette;
use crate::terminal::{self, safe};

const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// The query body for the flags.
pub(crate) fn query(args: &LogsArgs) -> anyhow::Result<Value> {
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

/// One log line as printed: time, level, service, trace id and message, each escaped before it is
/// coloured.
pub(crate) fn line(log: &Value, palette: Palette) -> String {
    let s = |k: &str| safe(log[k].as_str().unwrap_or(""));
    let trace_id = s("trace_id");
    format!(
        "{} {} {:<15} {} {}",
        palette.dim(&s("timestamp")),
        palette.level_padded(&s("level"), 5),
        s("service_name"),
        palette.dim(if trace_id.is_empty() { "-" } else { &trace_id }),
        s("message")
    )
}

/// Runs the search and prints the page.
pub async fn run(urls: &Urls, args: LogsArgs, palette: Palette) -> anyhow::Result<()> {
    if args.follow {
        return crate::follow::run(urls, &args, palette).await;
    }
    let log_service = urls.log_service();
    let page = log_service
        .call_ok(Method::POST, "/api/v1/logs/query", Some(&query(&args)?))
        .await?;
    if args.json {
        println!("{}", terminal::json(&page, true)?);
        return Ok(());
    }
    let empty = Vec::new();
    let logs = page["logs"].as_array().unwrap_or(&empty);
    // log-service answers newest first; a terminal reads best oldest first, like a tail.
    for log in logs.iter().rev() {
        println!("{}", line(log, palette));
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
    use crate::cli::ColorChoice;

    fn args() -> LogsArgs {
        LogsArgs {
            service: Some("order-gateway".into()),
            level: Some("warning".into()),
            since: Some(std::time::Duration::from_secs(60)),
            trace: Some("abc".into()),
            search: Some("confirmed".into()),
            limit: 10,
            json: false,
            follow: false,
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
    fn server_text_is_escaped_and_only_our_colours_reach_the_terminal() {
        let log = json!({
            "timestamp": "2024-01-01T00:00:00.000Z\u{1b}]0;pwned\u{7}",
            "level": "WARN",
            "service_name": "evil\u{1b}[2J",
            "trace_id": "t\u{0}",
            "message": "a\u{0}b\u{1b}[31mred\nsecond line\u{9b}\u{202e}",
        });
        let plain = line(&log, Palette::for_stdout(ColorChoice::Never));
        assert_eq!(
            plain,
            "2024-01-01T00:00:00.000Z\\u{1b}]0;pwned\\u{7} WARN  evil\\u{1b}[2J   t\\u{0} a\\u{0}b\\u{1b}[31mred\\u{a}second line\\u{9b}\\u{202e}"
        );
        let coloured = line(&log, Palette::for_stdout(ColorChoice::Always));
        assert!(coloured.contains("a\\u{0}b\\u{1b}[31mred"), "{coloured}");
        assert!(
            coloured.contains("\u{1b}[33mWARN\u{1b}[0m "),
            "{coloured:?}"
        );
        // Every other ESC left is one of the palette's SGR sequences (dim, reset).
        let without_level = coloured.replace("\u{1b}[33mWARN", "WARN");
        let escapes: Vec<&str> = without_level.split('\u{1b}').skip(1).collect();
        assert!(!escapes.is_empty());
        for rest in escapes {
            assert!(
                ["[2m", "[0m"].iter().any(|sgr| rest.starts_with(sgr)),
                "{coloured:?}"
            );
        }
        assert!(
            !coloured
                .chars()
                .any(|c| c != '\u{1b}' && (c.is_control() || c == '\u{202e}')),
            "{coloured:?}"
        );
    }

    #[test]
    fn an_unknown_level_is_refused() {
        let mut a = args();
        a.level = Some("loud".into());
        assert!(query(&a).unwrap_err().to_string().contains("--level"));
    }
}
