//! One place for the telemetry of every tracehop service.
//!
//! [`init`] builds a [`Telemetry`]: a `tracing` dispatcher with three layers (JSON lines on stdout
//! and in `$LOG_DIR/<service>.log`, spans to OpenTelemetry, events to the OpenTelemetry log bridge),
//! with its own tracer and logger providers and its own `service.name`. The dispatcher is *not*
//! installed globally by `init`: `main` calls [`Telemetry::install_global`], while tests run
//! several services in one process, each inside its own dispatcher
//! ([`tracing::instrument::WithSubscriber`]), exactly as if they were separate processes.
//!
//! Only this crate depends on the OpenTelemetry SDK and exporters; services use the re-exports and
//! helpers here: [`http`] (the SERVER span middleware and client propagation), [`propagation`]
//! (carriers for message headers), [`metrics`] (registries and `/metrics`).

mod config;
mod file;
pub mod http;
mod ids;
mod json;
pub mod metrics;
pub mod propagation;

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::logs::{BatchLogProcessor, SdkLoggerProvider};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing::Dispatch;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::{EnvFilter, FilterExt, FilterFn, LevelFilter, Targets, filter_fn};
use tracing_subscriber::prelude::*;

pub use config::{OtlpProtocol, TelemetryConfig};
pub use opentelemetry::baggage::BaggageExt;
pub use opentelemetry::trace::{SpanContext, Status, TraceContextExt};
pub use opentelemetry::{Context, KeyValue};
pub use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Targets whose own telemetry must never become telemetry (it would feed back on every export).
const NOISY_TARGETS: [&str; 9] = [
    "hyper",
    "hyper_util",
    "h2",
    "tonic",
    "tower",
    "reqwest",
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
];

/// Lines buffered for stdout before new ones are dropped (a stalled reader never stalls a service).
/// The channel is preallocated, so the default of 128k lines would cost megabytes per writer.
const BUFFERED_LINES: usize = 8192;

/// Spans (and, apart, log records) waiting for export at most; beyond it they are dropped, so
/// a slow or absent collector costs neither memory nor latency. The SDK's queue is a channel
/// preallocated to this many records (about 2 KiB each: 2048 cost 4 MiB of RSS per signal);
/// an export starts as soon as [`EXPORT_BATCH`] records wait, so the rest of the queue is
/// headroom for the time an export takes (at 6,000 spans/s, 512 slots last 85 ms).
const EXPORT_QUEUE: usize = 1024;

/// Records per export at most.
const EXPORT_BATCH: usize = 512;

/// How often batches of spans and logs leave, at the latest.
const EXPORT_INTERVAL: Duration = Duration::from_millis(200);

/// Upper bound of one OTLP export attempt, so an absent collector never holds a batch for long.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);

/// Errors while building the telemetry pipeline.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The log filter (`RUST_LOG`) is not valid.
    #[error("invalid RUST_LOG filter {0:?}: {1}")]
    Filter(String, String),
    /// The log directory or file could not be opened.
    #[error("cannot open log file in {dir}: {source}")]
    LogFile {
        /// The directory.
        dir: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An OTLP exporter could not be built.
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
}

/// The running telemetry of one service; keep it alive for the life of the service.
pub struct Telemetry {
    dispatch: Dispatch,
    tracer_provider: SdkTracerProvider,
    logger_provider: Option<SdkLoggerProvider>,
    guards: Vec<WorkerGuard>,
    service_name: String,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("service_name", &self.service_name)
            .finish_non_exhaustive()
    }
}

/// Builds the OTLP exporter of one signal from its SDK builder. A macro, not a function: the
/// span and log builders are distinct types that share no trait for `with_tonic`, `with_http`
/// and `build`, yet must be configured alike.
macro_rules! otlp_exporter {
    ($builder:expr, $config:expr, $http_path:literal) => {
        match $config.otlp_protocol {
            OtlpProtocol::Grpc => $builder
                .with_tonic()
                .with_endpoint($config.otlp_endpoint.clone())
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
            OtlpProtocol::HttpProtobuf => $builder
                .with_http()
                .with_endpoint(format!("{}{}", $config.otlp_endpoint, $http_path))
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
        }
        .map_err(|e| InitError::Exporter(e.to_string()))
    };
}

/// What the span layer sees: every span, and of the events only warnings and errors. An event
/// is a log record already (the bridge exports it with the span's context); as a span event as
/// well, each log line travelled and was stored twice. A warning or error also stays on its
/// span, so a failing span carries its reason where only traces are shown (Jaeger).
fn spans_and_warnings() -> FilterFn<impl Fn(&tracing::Metadata<'_>) -> bool> {
    filter_fn(|meta| meta.is_span() || *meta.level() <= tracing::Level::WARN)
}

/// Builds the telemetry pipeline of one service. Must run inside a Tokio runtime (the gRPC
/// exporter binds its channel to it); connecting to the collector is lazy and never blocks.
pub fn init(config: &TelemetryConfig) -> Result<Telemetry, InitError> {
    let resource = {
        let mut builder =
            opentelemetry_sdk::Resource::builder().with_service_name(config.service_name.clone());
        for (k, v) in &config.resource_attributes {
            builder = builder.with_attribute(KeyValue::new(k.clone(), v.clone()));
        }
        builder.build()
    };

    let mut tracer_builder = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_id_generator(ids::TimeOrderedIds::default());
    let mut logger_provider = None;
    if !config.sdk_disabled {
        let span_exporter = otlp_exporter!(
            opentelemetry_otlp::SpanExporter::builder(),
            config,
            "/v1/traces"
        )?;
        // Bounded queues drained often, so a queue rarely holds more than one batch.
        let processor = BatchSpanProcessor::builder(span_exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(EXPORT_QUEUE)
                    .with_max_export_batch_size(EXPORT_BATCH)
                    .with_scheduled_delay(EXPORT_INTERVAL)
                    .build(),
            )
            .build();
        tracer_builder = tracer_builder.with_span_processor(processor);
        let log_exporter = otlp_exporter!(
            opentelemetry_otlp::LogExporter::builder(),
            config,
            "/v1/logs"
        )?;
        logger_provider = Some(
            SdkLoggerProvider::builder()
                .with_resource(resource)
                .with_log_processor(
                    BatchLogProcessor::builder(log_exporter)
                        .with_batch_config(
                            opentelemetry_sdk::logs::BatchConfigBuilder::default()
                                .with_max_queue_size(EXPORT_QUEUE)
                                .with_max_export_batch_size(EXPORT_BATCH)
                                .with_scheduled_delay(EXPORT_INTERVAL)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        );
    }
    // Without exporters the provider still hands out sampled span contexts, so trace ids keep
    // flowing through headers, responses and log lines when export is off.
    let tracer_provider = tracer_builder.build();
    let tracer = tracer_provider.tracer(config.service_name.clone());

    let mut guards = Vec::new();
    let mut writers = Vec::new();
    if config.log_stdout {
        let (nb, guard) = NonBlockingBuilder::default()
            .buffered_lines_limit(BUFFERED_LINES)
            .lossy(true)
            .thread_name("log-stdout")
            .finish(std::io::stdout());
        writers.push(json::Writer::Stdout(nb));
        guards.push(guard);
    }
    if let Some(dir) = &config.log_dir {
        let file = file::DailyFile::open(dir, &config.service_name).map_err(|source| {
            InitError::LogFile {
                dir: dir.display().to_string(),
                source,
            }
        })?;
        // A line into the page cache costs one write(2), less than handing it to another thread
        // (measured: the hand-off's wake-ups and yields took 9% of order-gateway's CPU), and a
        // line written is a line kept if the process is killed.
        writers.push(json::Writer::File(std::sync::Mutex::new(file)));
    }

    let log_filter = || -> Result<EnvFilter, InitError> {
        let mut directives = config.log_filter.clone();
        for target in NOISY_TARGETS {
            if !config.log_filter.contains(target) {
                let level = if target.starts_with("opentelemetry") {
                    "off"
                } else {
                    "warn"
                };
                directives.push_str(&format!(",{target}={level}"));
            }
        }
        EnvFilter::builder()
            .with_default_directive(LevelFilter::INFO.into())
            .parse(&directives)
            .map_err(|e| InitError::Filter(config.log_filter.clone(), e.to_string()))
    };
    let quiet = |default: LevelFilter| {
        NOISY_TARGETS
            .iter()
            .fold(Targets::new().with_default(default), |t, target| {
                t.with_target(*target, LevelFilter::OFF)
            })
            .with_target("lapin", LevelFilter::WARN)
            .with_target("amq_protocol", LevelFilter::WARN)
    };

    let json_layer = json::JsonLayer::new(config.service_name.clone(), writers);
    // Location, thread and busy/idle timing attributes cost a clock read and allocations on
    // every poll of every instrumented future; the semantic-convention attributes suffice.
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_level(false)
        .with_target(false)
        .with_error_records_to_exceptions(true)
        .with_filter(quiet(LevelFilter::DEBUG).and(spans_and_warnings()));
    let bridge = logger_provider.as_ref().map(|provider| {
        opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(provider)
            .with_filter(quiet(LevelFilter::TRACE))
    });
    let subscriber = tracing_subscriber::registry()
        .with(otel_layer)
        .with(json_layer.with_filter(log_filter()?))
        .with(bridge.map(|b| b.with_filter(log_filter().ok())));
    Ok(Telemetry {
        dispatch: Dispatch::new(subscriber),
        tracer_provider,
        logger_provider,
        guards,
        service_name: config.service_name.clone(),
    })
}

impl Telemetry {
    /// Returns the dispatcher to run this service's futures in (`fut.with_subscriber(dispatch)`).
    pub fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }

    /// Makes this service's dispatcher the process-wide default (for `main`).
    pub fn install_global(&self) {
        // A second install in the same process is a programming error in tests only; ignore it.
        let _ = tracing::dispatcher::set_global_default(self.dispatch.clone());
    }

    /// Flushes spans and logs within `timeout`, then stops the exporters and the log writers.
    ///
    /// The SDK's flush blocks its caller, so it runs on the blocking pool; an unreachable
    /// collector costs at most `timeout`.
    pub async fn shutdown(self, timeout: Duration) {
        let tracer_provider = self.tracer_provider;
        let traces = tokio::task::spawn_blocking(move || {
            let _ = tracer_provider.shutdown_with_timeout(timeout);
        });
        // Both signals flush side by side, so the whole shutdown stays within `timeout`.
        let logs = self.logger_provider.map(|provider| {
            tokio::task::spawn_blocking(move || {
                let _ = provider.shutdown_with_timeout(timeout);
            })
        });
        let _ = tokio::time::timeout(timeout + Duration::from_millis(200), async {
            let _ = traces.await;
            if let Some(logs) = logs {
                let _ = logs.await;
            }
        })
        .await;
        drop(self.guards);
    }
}

/// Hides most of an e-mail address for logs: `alice@example.com` becomes `a***@example.com`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().map(String::from).unwrap_or_default();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// Returns the hex trace id of `span`, when it has a valid OpenTelemetry context.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_email_addresses() {
        assert_eq!(mask_email("alice@example.com"), "a***@example.com");
        assert_eq!(mask_email("nope"), "***");
        assert_eq!(mask_email("@x.org"), "***@x.org");
    }
}
