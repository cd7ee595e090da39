//! Benchmark of log-service: durable ingest through OTLP gRPC (batches of 512) and the REST batch
//! route, trace lookup latency with N stored logs, the web view's requests (a six-span trace
//! through the Jaeger API and its page, the search page's log queries) at that size, bytes on disk
//! per record, retention and alert evaluation running during ingest (`operations`), for SQLite and
//! for PostgreSQL (the minisource REST API's schema) with the same harness.
//!
//! Run with `scripts/bench-log-service.sh` or
//! `cargo run --release -p log-service --example bench -- --rows 1000000 --backend both`.
//! Every request is answered only after its rows are committed, so the rates are durable rates.

mod operations;

use server::Service as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use log_service::{Application, Config, DatabaseConfig};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind};
use serde_json::{Value, json};

const BATCH: usize = 512;
/// When generated records happen: record `n` on its trace's day (traces spread over `days` day
/// partitions, one trace within one day), then `step_ns` per record from `base_ns`.
#[derive(Clone, Copy)]
struct Timeline {
    base_ns: u64,
    days: u64,
    step_ns: u64,
}

const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// A millisecond per record: the stored data, spread over more time than it took to write.
const STORED_STEP_NS: u64 = 1_000_000;

impl Timeline {
    fn record_ns(self, n: u64) -> u64 {
        self.base_ns + (n / LOGS_PER_TRACE % self.days) * DAY_NS + n * self.step_ns
    }
}
/// Logs per trace in the generated data.
const LOGS_PER_TRACE: u64 = 20;

struct Args {
    concurrency: usize,
    rows: u64,
    ingest_rows: u64,
    lookups: usize,
    days: u64,
    ops_rows: u64,
    ops_day_rows: u64,
    ops_rounds: usize,
    ops_eval_ms: u64,
    backend: String,
    postgres_url: String,
    dir: PathBuf,
}

fn parse_args() -> Args {
    let mut args = Args {
        concurrency: 8,
        rows: 1_000_000,
        ingest_rows: 200_000,
        lookups: 2_000,
        days: 1,
        ops_rows: 3_000_000,
        ops_day_rows: 500_000,
        ops_rounds: 2,
        ops_eval_ms: 15_000,
        backend: "both".into(),
        postgres_url: "postgres://postgres@127.0.0.1:5432".into(),
        dir: std::env::temp_dir().join("log-service-bench"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--concurrency" => args.concurrency = value.parse().expect("--concurrency N"),
            "--rows" => args.rows = value.parse().expect("--rows N"),
            "--ingest-rows" => args.ingest_rows = value.parse().expect("--ingest-rows N"),
            "--lookups" => args.lookups = value.parse().expect("--lookups N"),
            "--days" => args.days = value.parse().expect("--days N (at least 1)"),
            "--ops-rows" => args.ops_rows = value.parse().expect("--ops-rows N"),
            "--ops-day-rows" => args.ops_day_rows = value.parse().expect("--ops-day-rows N"),
            "--ops-rounds" => args.ops_rounds = value.parse().expect("--ops-rounds N"),
            "--ops-eval-ms" => args.ops_eval_ms = value.parse().expect("--ops-eval-ms N"),
            "--backend" => args.backend = value,
            "--postgres-url" => args.postgres_url = value,
            "--dir" => args.dir = value.into(),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn trace_bytes(trace: u64) -> Vec<u8> {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&0x5eed_u64.to_be_bytes());
    id[8..].copy_from_slice(&trace.to_be_bytes());
    id.to_vec()
}

fn trace_hex(trace: u64) -> String {
    trace_bytes(trace)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const SERVICES: [&str; 3] = ["order-gateway", "payment-service", "email-service"];
const MESSAGES: [&str; 5] = [
    "order received",
    "payment authorised by provider",
    "published payment.succeeded to payments",
    "confirmation email sent to customer",
    "slow response from upstream, retrying",
];

/// One OTLP batch of `BATCH` records starting at record number `first`.
fn otlp_batch(first: u64, timeline: Timeline) -> ExportLogsServiceRequest {
    let records = (first..first + BATCH as u64)
        .map(|n| {
            let trace = n / LOGS_PER_TRACE;
            let mut span = [0u8; 8];
            span[..].copy_from_slice(&(n % LOGS_PER_TRACE / 4 + 1).to_be_bytes());
            LogRecord {
                time_unix_nano: timeline.record_ns(n),
                severity_number: if n % 97 == 0 { 17 } else { 9 },
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(format!(
                        "{} (order o-{trace})",
                        MESSAGES[(n % 5) as usize]
                    ))),
                }),
                attributes: vec![
                    kv(
                        "order_id",
                        any_value::Value::StringValue(format!("o-{trace}")),
                    ),
                    kv("attempt", any_value::Value::IntValue(1)),
                ],
                trace_id: trace_bytes(trace),
                span_id: span.to_vec(),
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv(
                    "service.name",
                    any_value::Value::StringValue(
                        SERVICES[(first / BATCH as u64 % 3) as usize].into(),
                    ),
                )],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The same records as minisource REST API JSON entries.
fn rest_batch(first: u64, timeline: Timeline) -> Value {
    let entries: Vec<Value> = (first..first + BATCH as u64)
        .map(|n| {
            let trace = n / LOGS_PER_TRACE;
            let ts = chrono::DateTime::from_timestamp_nanos(timeline.record_ns(n) as i64);
            json!({
                "service_name": SERVICES[(n % 3) as usize],
                "level": if n % 97 == 0 { "ERROR" } else { "INFO" },
                "message": format!("{} (order o-{trace})", MESSAGES[(n % 5) as usize]),
                "timestamp": ts.to_rfc3339(),
                "trace_id": trace_hex(trace),
                "span_id": format!("{:016x}", n % LOGS_PER_TRACE / 4 + 1),
                "request_id": format!("req-{trace}"),
                "metadata": {"order_id": format!("o-{trace}"), "attempt": 1},
            })
        })
        .collect();
    Value::Array(entries)
}

/// Sends `rows` records (from record number `start`) through OTLP gRPC, as `tenant` (the
/// default tenant when `None`); returns records/s.
async fn ingest_otlp(
    app_addr: std::net::SocketAddr,
    concurrency: usize,
    start: u64,
    rows: u64,
    timeline: Timeline,
    tenant: Option<&str>,
) -> f64 {
    let tenant: Option<tonic::metadata::AsciiMetadataValue> =
        tenant.map(|t| t.parse().expect("ASCII tenant"));
    let next = Arc::new(AtomicU64::new(start));
    let end = start + rows;
    let began = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, tenant) = (next.clone(), tenant.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = LogsServiceClient::connect(format!("http://{app_addr}"))
                .await
                .expect("otlp connects")
                .max_encoding_message_size(64 << 20);
            loop {
                let first = next.fetch_add(BATCH as u64, Ordering::Relaxed);
                if first >= end {
                    break;
                }
                let batch = otlp_batch(first, timeline);
                loop {
                    let mut request = tonic::Request::new(batch.clone());
                    if let Some(tenant) = &tenant {
                        request.metadata_mut().insert("x-tenant-id", tenant.clone());
                    }
                    match client.export(request).await {
                        Ok(_) => break,
                        Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                            tokio::time::sleep(Duration::from_millis(5)).await
                        }
                        Err(s) => panic!("export failed: {s}"),
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    rows as f64 / began.elapsed().as_secs_f64()
}

/// Sends `rows` records through `POST /api/v1/logs/batch`; returns records/s.
async fn ingest_rest(
    rest: String,
    concurrency: usize,
    start: u64,
    rows: u64,
    timeline: Timeline,
) -> f64 {
    let next = Arc::new(AtomicU64::new(start));
    let end = start + rows;
    let client = reqwest::Client::new();
    let began = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, client, rest) = (next.clone(), client.clone(), rest.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let first = next.fetch_add(BATCH as u64, Ordering::Relaxed);
                if first >= end {
                    break;
                }
                let body = serde_json::to_vec(&rest_batch(first, timeline)).unwrap();
                loop {
                    let response = client
                        .post(format!("{rest}/api/v1/logs/batch"))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("rest request");
                    match response.status().as_u16() {
                        201 => break,
                        429 => tokio::time::sleep(Duration::from_millis(5)).await,
                        other => panic!(
                            "batch failed: {other} {}",
                            response.text().await.unwrap_or_default()
                        ),
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    rows as f64 / began.elapsed().as_secs_f64()
}

/// Looks up random traces through `GET /api/v1/traces/{id}`; returns (p50, p99) in ms.
async fn lookups(rest: &str, traces: u64, n: usize) -> (f64, f64, usize) {
    let client = reqwest::Client::new();
    let mut samples = Vec::with_capacity(n);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut logs_seen = 0;
    for _ in 0..n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let trace = state % traces;
        let began = Instant::now();
        let response = client
            .get(format!("{rest}/api/v1/traces/{}", trace_hex(trace)))
            .send()
            .await
            .expect("lookup");
        let body: Value = response.json().await.expect("json");
        samples.push(began.elapsed().as_secs_f64() * 1000.0);
        logs_seen += body["logs"].as_array().map(|a| a.len()).unwrap_or(0);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (pick(0.5), pick(0.99), logs_seen)
}

/// Traces of six spans (the order path's shape: gateway SERVER and CLIENT, payment SERVER and
/// PRODUCER, email CONSUMER and INTERNAL), `count` of them, their ids apart from the logs'.
async fn ingest_six_span_traces(app_addr: std::net::SocketAddr, count: u64, base_ns: u64) {
    const SHAPE: [(&str, &str, SpanKind, u64); 6] = [
        ("order-gateway", "POST /create-order", SpanKind::Server, 0),
        ("order-gateway", "POST", SpanKind::Client, 1),
        (
            "payment-service",
            "POST /process-payment",
            SpanKind::Server,
            2,
        ),
        ("payment-service", "publish payments", SpanKind::Producer, 3),
        (
            "email-service",
            "process email.payments",
            SpanKind::Consumer,
            4,
        ),
        ("email-service", "send email", SpanKind::Internal, 5),
    ];
    let mut client = TraceServiceClient::connect(format!("http://{app_addr}"))
        .await
        .expect("otlp connects");
    for first in (0..count).step_by(100) {
        let resource_spans = SERVICES
            .iter()
            .map(|service| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv(
                        "service.name",
                        any_value::Value::StringValue((*service).into()),
                    )],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: (first..(first + 100).min(count))
                        .flat_map(|t| {
                            SHAPE.iter().filter(|(s, ..)| s == service).map(
                                move |(_, name, kind, n)| Span {
                                    trace_id: page_trace_bytes(t),
                                    span_id: (n + 1).to_be_bytes().to_vec(),
                                    parent_span_id: if *n == 0 {
                                        vec![]
                                    } else {
                                        n.to_be_bytes().to_vec()
                                    },
                                    name: (*name).into(),
                                    kind: *kind as i32,
                                    start_time_unix_nano: base_ns + t * 1_000_000 + n * 100_000,
                                    end_time_unix_nano: base_ns + t * 1_000_000 + 900_000,
                                    attributes: vec![kv(
                                        "order.id",
                                        any_value::Value::StringValue(format!("o-{t}")),
                                    )],
                                    ..Default::default()
                                },
                            )
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect();
        client
            .export(ExportTraceServiceRequest { resource_spans })
            .await
            .expect("span export");
    }
}

/// The trace ids of [`ingest_six_span_traces`]: another prefix than the logs' traces.
fn page_trace_bytes(trace: u64) -> Vec<u8> {
    let mut id = trace_bytes(trace);
    id[..8].copy_from_slice(&0x7ace_u64.to_be_bytes());
    id
}

/// p50 and p99 in ms of GET `paths` (each in turn, `rounds` times), after one warm-up round;
/// every answer must be 200.
async fn latency(rest: &str, paths: &[String], rounds: usize) -> (f64, f64) {
    let client = reqwest::Client::new();
    let mut samples = Vec::with_capacity(paths.len() * rounds);
    for round in 0..=rounds {
        for path in paths {
            let began = Instant::now();
            let response = client
                .get(format!("{rest}{path}"))
                .send()
                .await
                .expect("request");
            let status = response.status();
            let _ = response.bytes().await.expect("body");
            assert_eq!(status.as_u16(), 200, "GET {path}");
            if round > 0 {
                samples.push(began.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (pick(0.5), pick(0.99))
}

/// Prints how busy the writer was, from the service's own metrics.
/// The service's samples named `names`, in that order (0 for one it does not show).
async fn samples<const N: usize>(rest: &str, names: [&str; N]) -> [f64; N] {
    let text = reqwest::get(format!("{rest}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    names.map(|name| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    })
}

async fn writer_stats(rest: &str, backend: &str) {
    let [commits, busy, rows] = samples(
        rest,
        [
            "log_service_commit_duration_seconds_count",
            "log_service_commit_duration_seconds_sum",
            "log_service_commit_rows_sum",
        ],
    )
    .await;
    eprintln!(
        "[{backend}] writer: {commits:.0} commits, {:.0} rows per commit, {busy:.1} s in transactions, {:.0} rows/s while writing",
        rows / commits.max(1.0),
        rows / busy.max(1e-9)
    );
}

struct Report {
    backend: &'static str,
    otlp_rate: f64,
    rest_rate: f64,
    rows: u64,
    fill_secs: f64,
    p50: f64,
    p99: f64,
    /// The web view's requests: (p50, p99) of a six-span trace through the Jaeger API, of its
    /// page, and of the search page's log queries.
    trace_api: (f64, f64),
    trace_page: (f64, f64),
    search: (f64, f64),
    bytes_per_record: f64,
    ops: operations::Operations,
}

async fn run_backend(args: &Args, backend: &'static str) -> Report {
    let mut config = Config::for_tests(args.dir.join("bench.db"));
    // The generated records are dated November 2023: keep them past the default 30 days, so a
    // retention run during a long benchmark never drops what is being measured.
    config.retention.default_days = 3650;
    // The demo's rule set for `operations`, evaluated every `--ops-eval-ms` (by default every
    // 15 s, as log-service evaluates by default).
    config.alerts.rules_file = Some(
        [
            env!("CARGO_MANIFEST_DIR"),
            "../../observability/log-alert-rules.json",
        ]
        .iter()
        .collect(),
    );
    config.alerts.eval_interval = Duration::from_millis(args.ops_eval_ms);
    let _ = std::fs::remove_dir_all(&args.dir);
    let mut admin = None;
    let db_name = format!("log_service_bench_{}", std::process::id());
    if backend == "postgres" {
        let (client, connection) = tokio_postgres::connect(
            &format!("{}/postgres", args.postgres_url),
            tokio_postgres::NoTls,
        )
        .await
        .expect("postgres reachable");
        tokio::spawn(connection);
        // Two statements: DROP/CREATE DATABASE cannot share a (multi-statement) transaction.
        for sql in [
            format!("DROP DATABASE IF EXISTS {db_name}"),
            format!("CREATE DATABASE {db_name}"),
        ] {
            client
                .batch_execute(&sql)
                .await
                .expect("create bench database");
        }
        config.database = DatabaseConfig::Postgres {
            url: format!("{}/{db_name}", args.postgres_url),
        };
        admin = Some(client);
    }
    let app = Application::build(config, &server::Stop::new())
        .await
        .expect("app builds");
    let rest = format!("http://{}", app.rest_addr());
    let otlp = app.otlp_grpc_addr();
    tokio::spawn(app.run());
    let base_ns = 1_700_000_000_000_000_000u64;
    let timeline = Timeline {
        base_ns,
        days: args.days.max(1),
        step_ns: STORED_STEP_NS,
    };

    // 1. durable ingest through OTLP gRPC
    let otlp_rate = ingest_otlp(otlp, args.concurrency, 0, args.ingest_rows, timeline, None).await;
    eprintln!("[{backend}] otlp grpc ingest: {otlp_rate:.0} records/s");
    // 2. durable ingest through the REST batch route (its own record numbers, so its own traces)
    let rest_rate = ingest_rest(
        rest.clone(),
        args.concurrency,
        args.ingest_rows,
        args.ingest_rows,
        timeline,
    )
    .await;
    eprintln!("[{backend}] rest batch ingest: {rest_rate:.0} records/s");
    // 3. fill up to --rows through OTLP
    let stored = args.ingest_rows * 2;
    let fill_start = Instant::now();
    if args.rows > stored {
        let rate = ingest_otlp(
            otlp,
            args.concurrency,
            stored,
            args.rows - stored,
            timeline,
            None,
        )
        .await;
        eprintln!(
            "[{backend}] filled to {} rows at {rate:.0} records/s",
            args.rows
        );
    }
    let fill_secs = fill_start.elapsed().as_secs_f64();
    writer_stats(&rest, backend).await;
    let rows = args.rows.max(stored);
    // 4. trace lookups over every stored trace
    let _ = lookups(&rest, rows / LOGS_PER_TRACE, 200).await; // warm-up
    let (p50, p99, seen) = lookups(&rest, rows / LOGS_PER_TRACE, args.lookups).await;
    eprintln!("[{backend}] trace lookup p50 {p50:.2} ms, p99 {p99:.2} ms ({seen} logs returned)");
    // 5. the web view's requests at this size: a six-span trace (Jaeger API and page), and the
    //    search page's first page of logs, by service, by level and by text
    ingest_six_span_traces(otlp, 1000, base_ns).await;
    let trace_ids: Vec<String> = (0..1000)
        .step_by(10)
        .map(|t| {
            page_trace_bytes(t)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
        .collect();
    let api_paths: Vec<String> = trace_ids
        .iter()
        .map(|t| format!("/api/traces/{t}"))
        .collect();
    let page_paths: Vec<String> = trace_ids.iter().map(|t| format!("/trace/{t}")).collect();
    let search_paths: Vec<String> = [
        "/api/v1/logs?limit=50",
        "/api/v1/logs?limit=50&service=payment-service",
        "/api/v1/logs?limit=50&min_level=ERROR",
        "/api/v1/logs?limit=50&search=retrying",
        "/api/v1/logs?limit=50&page=3",
    ]
    .map(String::from)
    .to_vec();
    let trace_api = latency(&rest, &api_paths, 5).await;
    let trace_page = latency(&rest, &page_paths, 5).await;
    let search = latency(&rest, &search_paths, 10).await;
    eprintln!(
        "[{backend}] six-span trace: api p50 {:.2} / p99 {:.2} ms, page p99 {:.2} ms; search page queries p50 {:.2} / p99 {:.2} ms",
        trace_api.0, trace_api.1, trace_page.1, search.0, search.1
    );
    for path in &search_paths {
        let (p50, p99) = latency(&rest, std::slice::from_ref(path), 5).await;
        eprintln!("[{backend}]   {path}: p50 {p50:.2} / p99 {p99:.2} ms");
    }
    // 6. bytes on disk per record
    let bytes = match &admin {
        Some(client) => {
            let row = client
                .query_one(&format!("SELECT pg_database_size('{db_name}')"), &[])
                .await
                .unwrap();
            row.get::<_, i64>(0) as f64
        }
        None => std::fs::read_dir(&args.dir)
            .unwrap()
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len() as f64)
            .sum(),
    };
    // 7. retention and alert evaluation while ingesting
    let ops = operations::measure(
        &rest,
        otlp,
        args.concurrency,
        args.ops_rows,
        args.ops_day_rows,
        args.ops_rounds,
        rows,
    )
    .await;
    eprintln!(
        "[{backend}] ingest {}; rule evaluations, rounds, seconds in rounds by phase {:?} (a round {:.1} ms), {} rules firing; a day of {} logs dropped in {:?} s",
        operations::PHASES
            .map(|p| format!(
                "{} {:.0} rec/s (phases {:.0?})",
                p.name(),
                ops.rate(p),
                ops.rates[p as usize]
            ))
            .join(", "),
        ops.evaluations,
        ops.round_secs() * 1e3,
        ops.firing,
        args.ops_day_rows,
        ops.drop_secs()
    );
    if let Some(client) = &admin {
        let _ = client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
            .await;
    } else {
        let _ = std::fs::remove_dir_all(&args.dir);
    }
    Report {
        backend,
        otlp_rate,
        rest_rate,
        rows,
        fill_secs,
        p50,
        p99,
        trace_api,
        trace_page,
        search,
        bytes_per_record: bytes / rows as f64,
        ops,
    }
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let backends: Vec<&'static str> = match args.backend.as_str() {
        "sqlite" => vec!["sqlite"],
        "postgres" => vec!["postgres"],
        _ => vec!["sqlite", "postgres"],
    };
    let mut reports = Vec::new();
    for backend in backends {
        reports.push(run_backend(&args, backend).await);
    }
    println!(
        "\nlog-service benchmark: {} cores, batches of {BATCH}, {} concurrent clients, {} ingest rows per route, {} lookups",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        args.concurrency,
        args.ingest_rows,
        args.lookups
    );
    println!(
        "{:<10} {:>16} {:>16} {:>12} {:>10} {:>14} {:>14} {:>14}",
        "backend",
        "otlp rec/s",
        "rest rec/s",
        "rows",
        "fill s",
        "lookup p50 ms",
        "lookup p99 ms",
        "bytes/record"
    );
    for r in &reports {
        println!(
            "{:<10} {:>16.0} {:>16.0} {:>12} {:>10.1} {:>14.2} {:>14.2} {:>14.1}",
            r.backend,
            r.otlp_rate,
            r.rest_rate,
            r.rows,
            r.fill_secs,
            r.p50,
            r.p99,
            r.bytes_per_record
        );
    }
    println!("\nweb view requests, ms as the client saw them on loopback (server time is less):");
    println!(
        "{:<10} {:>20} {:>16} {:>20}",
        "backend", "trace api p50 / p99", "trace page p99", "search p50 / p99"
    );
    for r in &reports {
        println!(
            "{:<10} {:>20} {:>16.2} {:>20}",
            r.backend,
            format!("{:.2} / {:.2}", r.trace_api.0, r.trace_api.1),
            r.trace_page.1,
            format!("{:.2} / {:.2}", r.search.0, r.search.1)
        );
    }
    println!(
        "\nlog-service running itself: {} rows per phase, {} rounds of quiet, rules (evaluated every {} ms) and rules+retention (a retention run drops another tenant's day of {} logs) phases",
        args.ops_rows, args.ops_rounds, args.ops_eval_ms, args.ops_day_rows
    );
    println!(
        "{:<10} {:>14} {:>14} {:>8} {:>20} {:>8} {:>18} {:>12}",
        "backend",
        "quiet rec/s",
        "rules rec/s",
        "loss %",
        "rules+retention",
        "loss %",
        "drop a day s",
        "round ms"
    );
    for r in &reports {
        let (ops, drops) = (&r.ops, r.ops.drop_secs());
        println!(
            "{:<10} {:>14.0} {:>14.0} {:>8.1} {:>20.0} {:>8.1} {:>18} {:>12.1}",
            r.backend,
            ops.rate(operations::Phase::Quiet),
            ops.rate(operations::Phase::Evaluating),
            ops.loss(operations::Phase::Evaluating) * 100.0,
            ops.rate(operations::Phase::Retaining),
            ops.loss(operations::Phase::Retaining) * 100.0,
            format!(
                "{:.3} (max {:.3})",
                operations::median(&drops),
                drops.iter().copied().fold(0.0, f64::max)
            ),
            ops.round_secs() * 1e3
        );
    }
    if let [sqlite, postgres] = &reports[..] {
        println!(
            "sqlite / postgres ingest: otlp {:.1}x, rest {:.1}x",
            sqlite.otlp_rate / postgres.otlp_rate,
            sqlite.rest_rate / postgres.rest_rate
        );
    }
}
