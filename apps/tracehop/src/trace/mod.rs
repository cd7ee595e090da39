//! `tracehop trace`: fetches one trace from log-service, waits until its spans stop arriving, and
//! draws it as a waterfall with each span's log lines beneath it.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::cli::{TraceArgs, Urls};
use crate::client::Service;
use crate::state::{self, LastOrder};
use crate::style::Palette;
use crate::terminal;
use crate::util::format_age;

mod waterfall;

use waterfall::render;

/// The trace counts as complete once nothing new arrived for this long: three export intervals.
const SETTLED: Duration = Duration::from_millis(1500);

/// How long after an order its spans may still be on their way to log-service: exporters send
/// every 500 ms, so a trace missing for longer than this is not coming.
const ARRIVAL_WINDOW: Duration = Duration::from_secs(120);

/// Resolves the trace id, waits for the trace and prints it.
pub async fn run(urls: &Urls, args: TraceArgs, palette: Palette) -> anyhow::Result<()> {
    let log_service = urls.log_service();
    let (trace_id, last) = match &args.trace_id {
        Some(id) => (id.trim().to_owned(), None),
        None => match state::load() {
            Some(last) => (last.trace_id.clone(), Some(last)),
            None => (newest_trace(&log_service).await?, None),
        },
    };
    if trace_id.is_empty() || trace_id.len() > 128 {
        bail!("{trace_id:?} is not a trace id (32 hex digits, as `tracehop order` prints)");
    }
    // A trace exported to another log-service will not turn up here however long we wait: one
    // look decides.
    let elsewhere = last
        .as_ref()
        .is_some_and(|l| l.placed_elsewhere(&log_service.base).is_some());
    let trace = if elsewhere && fetch_trace(&log_service, &trace_id).await?.is_none() {
        None
    } else {
        wait_for_trace(&log_service, &trace_id, args.wait).await?
    };
    let Some(trace) = trace else {
        bail!(
            "{}",
            missing(
                &log_service.base,
                &trace_id,
                last.as_ref(),
                args.wait,
                Utc::now()
            )
        );
    };
    if args.json {
        println!("{}", terminal::json(&trace, true)?);
    } else {
        print!("{}", render(&trace, palette));
    }
    Ok(())
}

/// Says in one line why log-service at `base` has no trace `trace_id`; `last` is the remembered
/// order when the id came from `--last`.
fn missing(
    base: &str,
    trace_id: &str,
    last: Option<&LastOrder>,
    waited: Duration,
    now: DateTime<Utc>,
) -> String {
    let Some(last) = last else {
        return format!(
            "log-service at {base} has no trace {trace_id} (waited {waited:.0?}); check the id, and that the services export to log-service (OTEL_EXPORTER_OTLP_ENDPOINT)"
        );
    };
    let order = &last.order_id;
    if let Some(then) = last.placed_elsewhere(base) {
        return format!(
            "the last order {order} was placed while tracehop used log-service at {then}; log-service at {base} has no trace {trace_id}: add --log-service {then}, or give a trace id"
        );
    }
    let age = last.placed_at.and_then(|at| (now - at).to_std().ok());
    match age {
        Some(age) if age > ARRIVAL_WINDOW => format!(
            "log-service at {base} has no trace {trace_id} of the last order {order}, placed {} ago, and it is past arriving; that log-service may have been restarted on another database since",
            format_age(age)
        ),
        _ => {
            let unknown = if last.log_service.is_none() {
                ", or it went to another log-service (which one was not recorded for this order)"
            } else {
                ""
            };
            format!(
                "log-service at {base} has no trace {trace_id} of the last order {order} yet (waited {waited:.0?}); it may still be arriving{unknown}: try again, or wait longer with --wait 30s"
            )
        }
    }
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

/// One look at the trace: `None` while log-service has neither spans nor logs of it.
async fn fetch_trace(log_service: &Service, trace_id: &str) -> anyhow::Result<Option<Value>> {
    let path = format!("/api/v1/traces/{trace_id}");
    let answer = log_service.call(Method::GET, &path, None).await?;
    match answer.status {
        StatusCode::OK => Ok(Some(answer.json)),
        StatusCode::NOT_FOUND => Ok(None),
        _ => Err(log_service.status_error(&path, &answer)),
    }
}

/// Polls until the trace has spans and nothing new arrived for [`SETTLED`], or `wait` is over;
/// `None` when the trace never appeared.
async fn wait_for_trace(
    log_service: &Service,
    trace_id: &str,
    wait: Duration,
) -> anyhow::Result<Option<Value>> {
    let deadline = Instant::now() + wait;
    let mut seen: Option<(usize, Instant)> = None;
    let mut latest: Option<Value> = None;
    loop {
        if let Some(trace) = fetch_trace(log_service, trace_id).await? {
            let spans = count(&trace, "spans");
            let rows = spans + count(&trace, "logs");
            let now = Instant::now();
            match seen {
                Some((n, _)) if n == rows => {}
                _ => seen = Some((rows, now)),
            }
            let has_spans = spans > 0;
            latest = Some(trace);
            if let Some((_, since)) = seen
                && has_spans
                && now.duration_since(since) >= SETTLED
            {
                break;
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(latest)
}

fn count(trace: &Value, key: &str) -> usize {
    trace[key].as_array().map_or(0, Vec::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(
        log_service: Option<&str>,
        placed_secs_ago: Option<i64>,
        now: DateTime<Utc>,
    ) -> LastOrder {
        LastOrder {
            order_id: "o-1".into(),
            trace_id: "t-1".into(),
            log_service: log_service.map(str::to_owned),
            placed_at: placed_secs_ago.map(|s| now - chrono::Duration::seconds(s)),
        }
    }

    #[test]
    fn a_last_order_placed_with_another_log_service_names_both() {
        let now = Utc::now();
        let order = last(Some("http://127.0.0.1:5002"), Some(3), now);
        let text = missing(
            "http://10.0.0.7:5002",
            "t-1",
            Some(&order),
            Duration::ZERO,
            now,
        );
        assert_eq!(
            text,
            "the last order o-1 was placed while tracehop used log-service at http://127.0.0.1:5002; log-service at http://10.0.0.7:5002 has no trace t-1: add --log-service http://127.0.0.1:5002, or give a trace id"
        );
        assert!(!text.contains('\n') && !text.contains("arriving"));
    }

    #[test]
    fn a_last_trace_not_there_yet_may_still_be_arriving() {
        let now = Utc::now();
        let wait = Duration::from_secs(5);
        let base = "http://127.0.0.1:5002";
        let recent = missing(
            base,
            "t-1",
            Some(&last(Some(base), Some(3), now)),
            wait,
            now,
        );
        assert_eq!(
            recent,
            "log-service at http://127.0.0.1:5002 has no trace t-1 of the last order o-1 yet (waited 5s); it may still be arriving: try again, or wait longer with --wait 30s"
        );
        // A file written before the log-service was remembered: either could be the reason.
        let old_file = missing(base, "t-1", Some(&last(None, None, now)), wait, now);
        assert!(
            old_file.contains("may still be arriving, or it went to another log-service"),
            "{old_file}"
        );
        // Long after the order, the trace is not on its way any more.
        let stale = missing(
            base,
            "t-1",
            Some(&last(Some(base), Some(3 * 3600), now)),
            wait,
            now,
        );
        assert!(
            stale.contains("placed 3h ago") && !stale.contains("may still be arriving"),
            "{stale}"
        );
        // A trace id given on the command line keeps the plain answer.
        let given = missing(base, "t-1", None, wait, now);
        assert!(
            given.starts_with("log-service at http://127.0.0.1:5002 has no trace t-1 (waited 5s)"),
            "{given}"
        );
    }
}
