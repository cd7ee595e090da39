//! `tracehop load`: sends `POST /create-order` (empty body, the sample order) from a pool of
//! workers, closed loop (`--concurrency`) or on a fixed schedule (`--rate`), and reports status
//! counts, throughput and latency percentiles from HDR histograms.
//!
//! The generator must not be the bottleneck: one shared connection pool, no body to build, each
//! worker records into its own histogram and counters (merged once at the end), and the only
//! shared writes are two relaxed atomic counters for the progress bar.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cli::{FaultTarget, LoadArgs, Urls};
use crate::client::Service;
use crate::faults;

/// Workers used with `--rate` when `--concurrency` is not given: the most requests in flight.
const RATE_WORKERS: u32 = 128;
/// Highest latency the histograms hold; longer ones are clamped to it (the timeout is below it).
const MAX_LATENCY_US: u64 = 10 * 60 * 1_000_000;

/// How requests are paced.
#[derive(Debug, Clone, Copy)]
enum Pace {
    /// Each worker sends its next request when the previous one is answered.
    Closed,
    /// Requests are due at `start + k / rate`; latency counts from the due time.
    Rate(f64),
}

/// What one worker saw.
struct Tally {
    histogram: Histogram<u64>,
    statuses: Vec<u64>,
    sent: u64,
    transport_errors: u64,
}

impl Tally {
    fn new() -> anyhow::Result<Tally> {
        Ok(Tally {
            histogram: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .context("failed to create the latency histogram")?,
            statuses: vec![0; 600],
            sent: 0,
            transport_errors: 0,
        })
    }

    fn record(&mut self, elapsed: Duration) {
        let us = (elapsed.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        // In range by construction, so saturating never loses a sample.
        self.histogram.saturating_record(us);
    }

    fn merge(&mut self, other: Tally) -> anyhow::Result<()> {
        self.histogram
            .add(&other.histogram)
            .context("failed to merge latency histograms")?;
        for (a, b) in self.statuses.iter_mut().zip(other.statuses) {
            *a += b;
        }
        self.sent += other.sent;
        self.transport_errors += other.transport_errors;
        Ok(())
    }
}

/// Counters the progress bar reads while the workers run.
#[derive(Default)]
struct Live {
    sent: AtomicU64,
    errors: AtomicU64,
}

/// The report, as printed with `--json`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `concurrency` or `rate`.
    pub mode: &'static str,
    /// Workers (connections).
    pub concurrency: u32,
    /// Scheduled orders per second, for `rate`.
    pub rate: Option<f64>,
    /// The payment decline ratio set for the run.
    pub decline_ratio: Option<f64>,
    /// Wall time from the first send to the last answer, in seconds.
    pub duration_s: f64,
    /// Requests sent.
    pub sent: u64,
    /// Requests answered with any HTTP status.
    pub answered: u64,
    /// Answers by status code.
    pub status: BTreeMap<String, u64>,
    /// Requests that got no HTTP answer (connect error, reset, timeout).
    pub transport_errors: u64,
    /// Transport errors plus answers other than 2xx and 402 (a decline is a valid outcome).
    pub errors: u64,
    /// Answers per second.
    pub throughput_rps: f64,
    /// Latency of answered requests in milliseconds.
    pub latency_ms: Latency,
    /// CPU time (user + system) this load generator spent during the run, so a benchmark on the
    /// same cores can tell the load's share from the services'.
    pub cpu_seconds: f64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Slowest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

fn is_error(status: u16) -> bool {
    !((200..300).contains(&status) || status == 402)
}

/// Runs the load, restoring payment's decline knob afterwards when `--decline-ratio` set it.
pub async fn run(urls: &Urls, args: LoadArgs) -> anyhow::Result<()> {
    let gateway = Service::new("order-gateway", &urls.gateway);
    gateway
        .call_ok(Method::GET, "/health", None)
        .await
        .context("cannot start the load")?;

    let payment = faults::service(urls, FaultTarget::Payment).with_token(args.token.clone());
    let restore = match args.decline_ratio {
        Some(ratio) => {
            let before = payment.call_ok(Method::GET, "/admin/faults", None).await?;
            let previous = before["failure_rate"].as_f64().unwrap_or(0.0);
            payment
                .call_ok(
                    Method::PUT,
                    "/admin/faults",
                    Some(&json!({"failure_rate": ratio})),
                )
                .await?;
            Some(previous)
        }
        None => None,
    };

    let outcome = generate(&urls.gateway, &args).await;

    if let Some(previous) = restore
        && let Err(err) = payment
            .call_ok(
                Method::PUT,
                "/admin/faults",
                Some(&json!({"failure_rate": previous})),
            )
            .await
    {
        eprintln!("tracehop: warning: could not restore payment failure_rate={previous}: {err:#}");
    }
    let report = outcome?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, &urls.gateway));
    }
    if report.answered == 0 {
        bail!(
            "order-gateway at {} answered none of {} requests ({} transport errors)",
            urls.gateway,
            report.sent,
            report.transport_errors
        );
    }
    Ok(())
}

/// Sends the load and merges the workers' tallies into a report.
async fn generate(gateway: &str, args: &LoadArgs) -> anyhow::Result<Report> {
    let (pace, workers) = match args.rate {
        Some(rate) => (Pace::Rate(rate), args.concurrency.unwrap_or(RATE_WORKERS)),
        None => (Pace::Closed, args.concurrency.unwrap_or(32)),
    };
    let url: reqwest::Url = format!("{gateway}/create-order")
        .parse()
        .with_context(|| format!("{gateway}/create-order is not a URL"))?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(workers as usize)
        .tcp_nodelay(true)
        .timeout(args.timeout)
        .build()
        .context("failed to build the HTTP client")?;

    let live = Arc::new(Live::default());
    let next_slot = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let duration = args.duration;
    let start = tokio::time::Instant::now();
    let end = start + duration;

    let cpu_before = crate::cpu::own_seconds();
    let mut tasks = Vec::with_capacity(workers as usize);
    for _ in 0..workers {
        let mut tally = Tally::new()?;
        let (client, url, live, next_slot, stop) = (
            client.clone(),
            url.clone(),
            live.clone(),
            next_slot.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                if stop.is_cancelled() {
                    break;
                }
                let due = match pace {
                    Pace::Closed => {
                        let now = tokio::time::Instant::now();
                        if now >= end {
                            break;
                        }
                        now
                    }
                    Pace::Rate(rate) => {
                        let k = next_slot.fetch_add(1, Ordering::Relaxed);
                        let due = start + Duration::from_secs_f64(k as f64 / rate);
                        if due >= end {
                            break;
                        }
                        tokio::select! {
                            () = tokio::time::sleep_until(due) => {}
                            () = stop.cancelled() => break,
                        }
                        due
                    }
                };
                tally.sent += 1;
                live.sent.fetch_add(1, Ordering::Relaxed);
                let answered = match client.post(url.clone()).send().await {
                    // Reading the body to the end lets the connection go back to the pool.
                    Ok(response) => {
                        let status = response.status().as_u16();
                        response.bytes().await.ok().map(|_| status)
                    }
                    Err(_) => None,
                };
                match answered {
                    Some(status) => {
                        tally.record(due.elapsed());
                        tally.statuses[usize::from(status).min(599)] += 1;
                        if is_error(status) {
                            live.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    None => {
                        tally.transport_errors += 1;
                        live.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            tally
        }));
    }

    let progress = progress_bar(duration);
    let reporter = {
        let (live, progress, stop) = (live.clone(), progress.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop.cancelled() => break,
                }
                let elapsed = start.elapsed();
                let sent = live.sent.load(Ordering::Relaxed);
                progress.set_position(elapsed.as_millis().min(duration.as_millis()) as u64);
                progress.set_message(format!(
                    "{:>7.0} req/s  {sent} sent  {} errors",
                    sent as f64 / elapsed.as_secs_f64().max(0.001),
                    live.errors.load(Ordering::Relaxed)
                ));
            }
        })
    };
    let interrupt = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.cancel();
            }
        })
    };

    let mut total = Tally::new()?;
    for task in tasks {
        total.merge(task.await.context("a load worker failed")?)?;
    }
    let elapsed = start.elapsed();
    let cpu_seconds = crate::cpu::own_seconds() - cpu_before;
    let interrupted = stop.is_cancelled();
    stop.cancel();
    interrupt.abort();
    let _ = reporter.await;
    progress.finish_and_clear();
    if interrupted {
        eprintln!("tracehop: interrupted; reporting what was sent so far");
    }
    let mut report = report(total, pace, workers, args.decline_ratio, elapsed);
    report.cpu_seconds = cpu_seconds;
    Ok(report)
}

fn progress_bar(duration: Duration) -> ProgressBar {
    let progress = ProgressBar::new(duration.as_millis() as u64);
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
    {
        progress.set_style(style);
    }
    progress
}

fn report(
    total: Tally,
    pace: Pace,
    workers: u32,
    decline_ratio: Option<f64>,
    elapsed: Duration,
) -> Report {
    let status: BTreeMap<String, u64> = total
        .statuses
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(code, n)| (code.to_string(), *n))
        .collect();
    let answered: u64 = status.values().sum();
    let error_answers: u64 = total
        .statuses
        .iter()
        .enumerate()
        .filter(|(code, _)| is_error(*code as u16))
        .map(|(_, n)| n)
        .sum();
    let h = &total.histogram;
    let ms = |us: u64| us as f64 / 1000.0;
    let latency = if h.is_empty() {
        Latency {
            p50: 0.0,
            p90: 0.0,
            p99: 0.0,
            p99_9: 0.0,
            max: 0.0,
            mean: 0.0,
        }
    } else {
        Latency {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p99_9: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    };
    let (mode, rate) = match pace {
        Pace::Closed => ("concurrency", None),
        Pace::Rate(r) => ("rate", Some(r)),
    };
    Report {
        mode,
        concurrency: workers,
        rate,
        decline_ratio,
        duration_s: elapsed.as_secs_f64(),
        sent: total.sent,
        answered,
        status,
        transport_errors: total.transport_errors,
        errors: total.transport_errors + error_answers,
        throughput_rps: answered as f64 / elapsed.as_secs_f64().max(1e-9),
        latency_ms: latency,
        cpu_seconds: 0.0,
    }
}

fn render(r: &Report, gateway: &str) -> String {
    let how = match r.rate {
        Some(rate) => format!(
            "{rate} orders/s scheduled, up to {} in flight",
            r.concurrency
        ),
        None => format!("{} connections", r.concurrency),
    };
    let statuses: Vec<String> = r.status.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let l = &r.latency_ms;
    let mut out = format!(
        "load: {how} for {:.1} s against {gateway}/create-order\n",
        r.duration_s
    );
    if let Some(ratio) = r.decline_ratio {
        out.push_str(&format!("  payment decline ratio  {ratio}\n"));
    }
    out.push_str(&format!(
        "  requests     {} sent = {} answered + {} transport errors\n",
        r.sent, r.answered, r.transport_errors
    ));
    out.push_str(&format!(
        "  status       {}\n",
        if statuses.is_empty() {
            "-".to_owned()
        } else {
            statuses.join("  ")
        }
    ));
    out.push_str(&format!("  errors       {}\n", r.errors));
    out.push_str(&format!(
        "  throughput   {:.1} requests/s\n",
        r.throughput_rps
    ));
    out.push_str(&format!(
        "  latency      p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms  (mean {:.2} ms)\n",
        l.p50, l.p90, l.p99, l.p99_9, l.max, l.mean
    ));
    out
}

/// The report as JSON, for tests of the shape.
#[cfg(test)]
fn to_json(r: &Report) -> serde_json::Value {
    serde_json::to_value(r).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_tallies_add_up_and_percentiles_come_from_the_histogram() {
        let mut a = Tally::new().unwrap();
        let mut b = Tally::new().unwrap();
        for ms in 1..=100u64 {
            a.sent += 1;
            a.record(Duration::from_millis(ms));
            a.statuses[201] += 1;
        }
        b.sent += 3;
        b.statuses[503] += 1;
        b.record(Duration::from_millis(500));
        b.transport_errors += 2;
        a.merge(b).unwrap();
        let r = report(a, Pace::Closed, 2, None, Duration::from_secs(2));
        assert_eq!(r.sent, 103);
        assert_eq!(r.answered, 101);
        assert_eq!(r.sent, r.answered + r.transport_errors);
        assert_eq!(r.errors, 3);
        assert_eq!(r.status["201"], 100);
        // 101 samples: the 51st smallest is the median.
        assert!((r.latency_ms.p50 - 51.0).abs() < 0.1, "{:?}", r.latency_ms);
        assert!((r.latency_ms.max - 500.0).abs() < 1.0, "{:?}", r.latency_ms);
        assert!((r.throughput_rps - 50.5).abs() < 1e-9);
        let json = to_json(&r);
        assert_eq!(
            json["latency_ms"]["p99_9"].as_f64().unwrap(),
            r.latency_ms.p99_9
        );
        let text = render(&r, "http://g");
        assert!(
            text.contains("103 sent = 101 answered + 2 transport errors"),
            "{text}"
        );
    }

    #[test]
    fn declines_are_outcomes_not_errors() {
        assert!(!is_error(201));
        assert!(!is_error(402));
        assert!(is_error(503));
        assert!(is_error(422));
    }
}
