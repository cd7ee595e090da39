//! The waterfall of one trace: spans on a shared time axis, nested under their parents, with
//! each span's log lines beneath it. Every string from the server is escaped for the terminal.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::DateTime;
use serde_json::Value;

use crate::style::Palette;
use crate::terminal::safe;
use crate::util::format_ms;

/// Width of the duration bar.
const BAR_WIDTH: usize = 40;

/// A span as the waterfall needs it; the text it prints is already escaped, the ids it only
/// matches on are kept as they came.
#[derive(Debug)]
struct Row<'a> {
    span_id: &'a str,
    parent: Option<&'a str>,
    service: Cow<'a, str>,
    name: Cow<'a, str>,
    kind: Cow<'a, str>,
    start_ns: i64,
    duration_ms: f64,
    status: Cow<'a, str>,
    status_message: Cow<'a, str>,
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
pub(super) fn render(trace: &Value, palette: Palette) -> String {
    let empty = Vec::new();
    let spans = trace["spans"].as_array().unwrap_or(&empty);
    let logs = trace["logs"].as_array().unwrap_or(&empty);
    let rows: Vec<Row> = spans
        .iter()
        .map(|s| Row {
            span_id: str_of(s, "span_id"),
            parent: s["parent_span_id"].as_str().filter(|p| !p.is_empty()),
            service: safe(str_of(s, "service")),
            name: safe(str_of(s, "name")),
            kind: safe(str_of(s, "kind")),
            start_ns: parse_ns(str_of(s, "start_time")).unwrap_or(0),
            duration_ms: s["duration_ms"].as_f64().unwrap_or(0.0),
            status: safe(str_of(s, "status")),
            status_message: safe(str_of(s, "status_message")),
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
        if !services.contains(&&*row.service) {
            services.push(&row.service);
        }
    }
    // Widths count characters, as the `{:<width$}` padding does.
    let service_width = services
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(7)
        .max(7);
    let label_len =
        |r: &Row, depth: usize| depth * 2 + r.name.chars().count() + r.kind.chars().count() + 3;
    let name_width = ordered
        .iter()
        .map(|(r, depth)| label_len(r, *depth))
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
        palette.bold(&safe(str_of(trace, "trace_id"))),
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
        let label_len = label_len(row, *depth);
        let status = match &*row.status {
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

/// One log line indented under its span: time, level, message and its fields, each escaped
/// before it is coloured.
fn log_line(log: &Value, indent: usize, palette: Palette) -> String {
    let time = str_of(log, "timestamp");
    let time = time.get(11..23).unwrap_or(time);
    let mut line = format!(
        "{}{} {} {}",
        " ".repeat(indent),
        palette.dim(&safe(time)),
        palette.level_padded(&safe(str_of(log, "level")), 5),
        safe(str_of(log, "message"))
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
            // Numbers, booleans and nested JSON print as JSON, whose strings can hold raw C1 and
            // bidi characters too; escaping the whole text covers both.
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let field = format!("{}={}", safe(key), safe(&value));
            let _ = write!(line, " {}", palette.dim(&field));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
    fn server_text_in_the_waterfall_and_its_log_lines_is_escaped() {
        let mut root = span(
            "a",
            None,
            "evil\u{1b}]0;title\u{7}",
            "GET /\u{1b}[2J",
            0,
            10.0,
            "ERROR",
        );
        root["status_message"] = json!("boom\u{9b}\u{202e}");
        let trace = json!({
            "trace_id": "t\u{0}",
            "spans": [root, span("b", Some("a"), "ok-service", "child", 5, 5.0, "OK")],
            "logs": [{
                "timestamp": "2024-01-01T00:00:00.001Z", "level": "INFO\u{1b}[5m", "span_id": "a",
                "message": "a\u{0}b\u{1b}[31mred\nnext\tcol",
                "metadata": {"k\u{1b}": "v\u{2066}", "n": {"x": "\u{85}"}},
            }],
        });
        for choice in [ColorChoice::Never, ColorChoice::Always] {
            let text = render(&trace, Palette::for_stdout(choice));
            // Only our own SGR colour codes may carry an ESC; nothing else a terminal acts on.
            let mut rest = text.as_str();
            while let Some(at) = rest.find('\u{1b}') {
                rest = &rest[at + 1..];
                let sgr = rest.strip_prefix('[').and_then(|r| r.split_once('m'));
                assert!(
                    sgr.is_some_and(|(code, _)| code.bytes().all(|b| b.is_ascii_digit())),
                    "{text:?}"
                );
            }
            assert!(
                !text
                    .chars()
                    .any(|c| (c.is_control() && c != '\n' && c != '\u{1b}')
                        || ('\u{202a}'..='\u{202e}').contains(&c)
                        || ('\u{2066}'..='\u{2069}').contains(&c)),
                "{text:?}"
            );
            // Header, column titles, two spans, one log line: the embedded newline did not split it.
            assert_eq!(text.lines().count(), 5, "{text}");
            for visible in [
                "t\\u{0}",
                "evil\\u{1b}]0;title\\u{7}",
                "GET /\\u{1b}[2J",
                "boom\\u{9b}\\u{202e}",
                "INFO\\u{1b}[5m",
                "a\\u{0}b\\u{1b}[31mred\\u{a}next\\u{9}col",
                "k\\u{1b}=v\\u{2066}",
                r#"n={"x":"\u{85}"}"#,
            ] {
                assert!(text.contains(visible), "{visible} missing from {text}");
            }
        }
        // Columns line up on the escaped text: both span rows (the log line sits between them)
        // start their START column together.
        let text = render(&trace, Palette::for_stdout(ColorChoice::Never));
        let lines: Vec<&str> = text.lines().collect();
        let column = |line: &str, cell: &str| line.find(cell).map(|i| line[..i].chars().count());
        assert!(column(lines[2], "+0.00ms").is_some(), "{text}");
        assert_eq!(
            column(lines[2], "+0.00ms"),
            column(lines[4], "+5.00ms"),
            "{text}"
        );
    }

    #[test]
    fn colour_is_used_when_asked() {
        let trace = json!({"trace_id": "x", "spans": [span("a", None, "s", "n", 0, 1.0, "OK")], "logs": []});
        assert!(render(&trace, Palette::for_stdout(ColorChoice::Always)).contains("\x1b["));
    }
}
