//! `tracehop trace`: fetches one trace from log-service, waits until its spans stop arriving, and
//! draws it as a waterfall with each span's log lines beneath it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::DateTime;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::cli::{TraceArgs, Urls};
use crate::client::Service;
use crate::state;
use crate::style::Palette;
use crate::util::format_ms;

/// The trace counts as complete once nothing new arrived for this long: three export intervals.
const SETTLED: Duration = Duration::from_millis(1500);
/// Width of the duration bar.
const BAR_WIDTH: usize = 40;

/// Resolves the trace id, waits for the trace and prints it.
pub async fn run(urls: &Urls, args: TraceArgs, palette: Palette) -> anyhow::Result<()> {
    let log_service = Service::new("log-service", &urls.log_service);
    let trace_id = match (&args.trace_id, args.last) {
        (Some(id), _) => id.trim().to_owned(),
        (None, _) => match state::load() {
            Some(last) => last.trace_id,
            None => newest_trace(&log_service).await?,
        },
    };
    if trace_id.is_empty() || trace_id.len() > 128 {
        bail!("{trace_id:?} is not a trace id (32 hex digits, as `tracehop order` prints)");
    }
    let trace = wait_for_trace(&log_service, &trace_id, args.wait).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&trace)?);
    } else {
        print!("{}", render(&trace, palette));
    }
    Ok(())
}

/// The trace id of the newest log line log-service holds.
async fn newest_trace(log_service: &Service) -> anyhow::Result<String> {
    let page = log_service
        .call_ok(
            Method::POST,
            "/api/v1/logs/query",
            Some(&json!({"page_size": 200})),
        )
        .await?;
    page["logs"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|l| l["trace_id"].as_str().filter(|t| !t.is_empty()))
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "no order placed yet and log-service at {} holds no trace; place one with `tracehop order`",
                log_service.base
            )
        })
}

/// Polls until the trace has spans and nothing new arrived for [`SETTLED`], or `wait` is over.
async fn wait_for_trace(
    log_service: &Service,
    trace_id: &str,
    wait: Duration,
) -> anyhow::Result<Value> {
    let path = format!("/api/v1/traces/{trace_id}");
    let deadline = Instant::now() + wait;
    let mut seen: Option<(usize, Instant)> = None;
    let mut latest: Option<Value> = None;
    loop {
        let answer = log_service.call(Method::GET, &path, None).await?;
        match answer.status {
            StatusCode::OK => {
                let spans = count(&answer.json, "spans");
                let rows = spans + count(&answer.json, "logs");
                let now = Instant::now();
                match seen {
                    Some((n, _)) if n == rows => {}
                    _ => seen = Some((rows, now)),
                }
                let has_spans = spans > 0;
                latest = Some(answer.json);
                if let Some((_, since)) = seen
                    && has_spans
                    && now.duration_since(since) >= SETTLED
                {
                    break;
                }
            }
            StatusCode::NOT_FOUND => {}
            _ => return Err(log_service.status_error(&path, &answer)),
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    latest.with_context(|| {
        format!(
            "log-service at {} has no trace {trace_id} (waited {:.0?}); check the id, and that the services export to log-service (OTEL_EXPORTER_OTLP_ENDPOINT)",
            log_service.base, wait
        )
    })
}

fn count(trace: &Value, key: &str) -> usize {
    trace[key].as_array().map_or(0, Vec::len)
}

/// A span as the waterfall needs it.
#[derive(Debug)]
struct Row<'a> {
    span_id: &'a str,
    parent: Option<&'a str>,
    service: &'a str,
    name: &'a str,
    kind: &'a str,
    start_ns: i64,
    duration_ms: f64,
    status: &'a str,
    status_message: &'a str,
}

fn parse_ns(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()?
        .timestamp_nanos_opt()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// Renders the waterfall: one line per span in tree order, its log lines beneath it.
fn render(trace: &Value, palette: Palette) -> String {
    let empty = Vec::new();
    let spans = trace["spans"].as_array().unwrap_or(&empty);
    let logs = trace["logs"].as_array().unwrap_or(&empty);
    let rows: Vec<Row> = spans
        .iter()
        .map(|s| Row {
            span_id: str_of(s, "span_id"),
            parent: s["parent_span_id"].as_str().filter(|p| !p.is_empty()),
            service: str_of(s, "service"),
            name: str_of(s, "name"),
            kind: str_of(s, "kind"),
            start_ns: parse_ns(str_of(s, "start_time")).unwrap_or(0),
            duration_ms: s["duration_ms"].as_f64().unwrap_or(0.0),
            status: str_of(s, "status"),
            status_message: str_of(s, "status_message"),
        })
        .collect();
    let ordered = tree_order(&rows);

    let trace_start = rows.iter().map(|r| r.start_ns).min().unwrap_or(0);
    let trace_end = rows
        .iter()
        .map(|r| r.start_ns + (r.duration_ms * 1e6) as i64)
        .max()
        .unwrap_or(trace_start);
    let total_ms = ((trace_end - trace_start) as f64 / 1e6).max(0.001);

    let mut services: Vec<&str> = Vec::new();
    for (row, _) in &ordered {
        if !services.contains(&row.service) {
            services.push(row.service);
        }
    }
    let service_width = services.iter().map(|s| s.len()).max().unwrap_or(7).max(7);
    let name_width = ordered
        .iter()
        .map(|(r, depth)| depth * 2 + r.name.len() + r.kind.len() + 3)
        .max()
        .unwrap_or(4)
        .clamp(4, 60);

    let mut logs_by_span: HashMap<&str, Vec<&Value>> = HashMap::new();
    let mut loose_logs = Vec::new();
    for log in logs {
        match log["span_id"].as_str() {
            Some(id) if rows.iter().any(|r| r.span_id == id) => {
                logs_by_span.entry(id).or_default().push(log)
            }
            _ => loose_logs.push(log),
        }
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}  {} spans, {} services, {} log lines, {}",
        palette.bold("trace"),
        palette.bold(str_of(trace, "trace_id")),
        rows.len(),
        services.len(),
        logs.len(),
        format_ms(if rows.is_empty() { 0.0 } else { total_ms })
    );
    let _ = writeln!(
        out,
        "{}",
        palette.dim(&format!(
            "{:<service_width$}  {:<name_width$}  {:>9}  {:>9}  {:<BAR_WIDTH$}  STATUS",
            "SERVICE", "SPAN", "START", "DURATION", "TIMELINE"
        ))
    );
    for (row, depth) in &ordered {
        let index = services.iter().position(|s| *s == row.service).unwrap_or(0);
        let offset_ms = (row.start_ns - trace_start) as f64 / 1e6;
        let label = format!(
            "{}{} {}",
            "  ".repeat(*depth),
            row.name,
            palette.dim(&format!("({})", row.kind.to_lowercase()))
        );
        let label_len = depth * 2 + row.name.len() + row.kind.len() + 3;
        let status = match row.status {
            "ERROR" if row.status_message.is_empty() => palette.red("ERROR"),
            "ERROR" => palette.red(&format!("ERROR {}", row.status_message)),
            "OK" => palette.green("OK"),
            other => other.to_owned(),
        };
        let _ = writeln!(
            out,
            "{}  {}{}  {:>9}  {:>9}  {}  {}",
            palette.service(index, &format!("{:<service_width$}", row.service)),
            label,
            " ".repeat(name_width.saturating_sub(label_len)),
            format!("+{}", format_ms(offset_ms)),
            format_ms(row.duration_ms),
            bar(
                offset_ms,
                row.duration_ms,
                total_ms,
                index,
                row.status == "ERROR",
                palette
            ),
            status
        );
        for log in logs_by_span.get(row.span_id).into_iter().flatten() {
            let _ = writeln!(
                out,
                "{}",
                log_line(log, service_width + 2 + depth * 2 + 2, palette)
            );
        }
    }
    if !loose_logs.is_empty() {
        let _ = writeln!(out, "{}", palette.dim("log lines outside the spans above:"));
        for log in loose_logs {
            let _ = writeln!(out, "{}", log_line(log, 2, palette));
        }
    }
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            palette.yellow("no spans yet: only log lines arrived for this trace")
        );
    }
    out
}

/// Spans depth first from the roots, siblings by start time; spans whose parent never arrived
/// count as roots so nothing is hidden.
fn tree_order<'a, 'r>(rows: &'r [Row<'a>]) -> Vec<(&'r Row<'a>, usize)> {
    let mut children: HashMap<&str, Vec<&Row>> = HashMap::new();
    let mut roots = Vec::new();
    for row in rows {
        match row.parent {
            Some(p) if rows.iter().any(|r| r.span_id == p) => {
                children.entry(p).or_default().push(row)
            }
            _ => roots.push(row),
        }
    }
    roots.sort_by_key(|r| r.start_ns);
    for list in children.values_mut() {
        list.sort_by_key(|r| r.start_ns);
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut stack: Vec<(&Row, usize)> = roots.into_iter().rev().map(|r| (r, 0)).collect();
    while let Some((row, depth)) = stack.pop() {
        out.push((row, depth));
        if out.len() > rows.len() {
            break; // a cycle in malformed data
        }
        if let Some(kids) = children.get(row.span_id) {
            stack.extend(kids.iter().rev().map(|k| (*k, depth + 1)));
        }
    }
    out
}

/// The span's place on the trace's time line: `BAR_WIDTH` cells, at least one filled.
fn bar(
    offset_ms: f64,
    duration_ms: f64,
    total_ms: f64,
    index: usize,
    error: bool,
    palette: Palette,
) -> String {
    let cells = BAR_WIDTH as f64;
    let start = ((offset_ms / total_ms) * cells)
        .floor()
        .clamp(0.0, cells - 1.0) as usize;
    let len = ((duration_ms / total_ms) * cells)
        .ceil()
        .clamp(1.0, (BAR_WIDTH - start) as f64) as usize;
    let (fill, pad) = if palette.enabled() {
        ("█", " ")
    } else {
        ("#", ".")
    };
    let filled = fill.repeat(len);
    let filled = if error {
        palette.red(&filled)
    } else {
        palette.service(index, &filled)
    };
    format!(
        "{}{}{}",
        pad.repeat(start),
        filled,
        pad.repeat(BAR_WIDTH - start - len)
    )
}

/// One log line indented under its span: time, level, message and its fields.
fn log_line(log: &Value, indent: usize, palette: Palette) -> String {
    let time = str_of(log, "timestamp");
    let time = time.get(11..23).unwrap_or(time);
    let level = str_of(log, "level");
    let mut line = format!(
        "{}{} {:<5} {}",
        " ".repeat(indent),
        palette.dim(time),
        palette.level(level),
        str_of(log, "message")
    );
    if let Some(fields) = log["metadata"].as_object() {
        for (key, value) in fields {
            if key.starts_with("code.")
                || key.starts_with("log.")
                || key.starts_with("thread.")
                || key == "target"
            {
                continue;
            }
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = write!(line, " {}", palette.dim(&format!("{key}={value}")));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ColorChoice;

    fn span(
        id: &str,
        parent: Option<&str>,
        service: &str,
        name: &str,
        start_ms: u32,
        dur: f64,
        status: &str,
    ) -> Value {
        json!({
            "trace_id": "t", "span_id": id, "parent_span_id": parent, "service": service, "name": name,
            "kind": "SERVER", "start_time": format!("2024-01-01T00:00:00.{start_ms:03}Z"),
            "duration_ms": dur, "status": status, "status_message": null,
        })
    }

    #[test]
    fn the_waterfall_nests_children_and_puts_logs_under_their_span() {
        let trace = json!({
            "trace_id": "abc",
            "spans": [
                span("c", Some("b"), "payment-service", "POST /process-payment", 10, 20.0, "UNSET"),
                span("a", None, "order-gateway", "POST /create-order", 0, 40.0, "UNSET"),
                span("b", Some("a"), "order-gateway", "POST", 5, 30.0, "ERROR"),
            ],
            "logs": [
                {"timestamp": "2024-01-01T00:00:00.012Z", "level": "INFO", "message": "payment accepted", "span_id": "c", "metadata": {"order_id": "o-1"}},
                {"timestamp": "2024-01-01T00:00:00.050Z", "level": "WARN", "message": "stray", "span_id": null, "metadata": {}},
            ],
        });
        let text = render(&trace, Palette::for_stdout(ColorChoice::Never));
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("trace abc  3 spans, 2 services, 2 log lines"),
            "{text}"
        );
        assert!(
            lines[2].contains("order-gateway") && lines[2].contains("POST /create-order"),
            "{text}"
        );
        assert!(
            lines[3].contains("  POST (server)") && lines[3].ends_with("ERROR"),
            "{text}"
        );
        assert!(
            lines[4].contains("    POST /process-payment") && lines[4].contains("+10.0ms"),
            "{text}"
        );
        assert!(lines[5].contains("payment accepted order_id=o-1"), "{text}");
        assert!(
            text.contains("log lines outside the spans above:") && text.contains("stray"),
            "{text}"
        );
        assert!(!text.contains('\x1b'), "plain text has no escapes");
        // The root spans the whole bar; the child starting at 1/4 of the trace starts at cell 10.
        assert!(lines[2].contains(&"#".repeat(BAR_WIDTH)), "{text}");
        assert!(lines[4].contains(&format!("{}#", ".".repeat(10))), "{text}");
    }

    #[test]
    fn colour_is_used_when_asked() {
        let trace = json!({"trace_id": "x", "spans": [span("a", None, "s", "n", 0, 1.0, "OK")], "logs": []});
        assert!(render(&trace, Palette::for_stdout(ColorChoice::Always)).contains("\x1b["));
    }
}
