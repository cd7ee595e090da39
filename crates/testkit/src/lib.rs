//! Test support for tracehop: [`OtlpReceiver`], a real OTLP/gRPC endpoint that keeps what it
//! receives, and [`spawn_stack`], which starts order-gateway, payment-service and email-service
//! in this process on port 0, each in its own `tracing` dispatcher (so each has its own
//! `service.name`, log file and exporters, as separate processes would), against the real
//! RabbitMQ with a unique `AMQP_PREFIX`.

mod proxy;

pub use proxy::TcpProxy;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ExchangeDeleteOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::instrument::WithSubscriber;

/// The AMQP URL of the broker the tests use (`AMQP_URL`, else the local default).
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A span as the tests look at it.
#[derive(Debug, Clone)]
pub struct Span {
    /// Resource `service.name`.
    pub service: String,
    /// Hex trace id.
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// Hex parent span id, empty for a root.
    pub parent_span_id: String,
    /// Span name.
    pub name: String,
    /// SERVER, CLIENT, PRODUCER, CONSUMER or INTERNAL.
    pub kind: &'static str,
    /// UNSET, OK or ERROR.
    pub status: &'static str,
    /// Attributes rendered as strings.
    pub attributes: HashMap<String, String>,
    /// Links as (trace id, span id).
    pub links: Vec<(String, String)>,
}

/// A log record as the tests look at it.
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// Resource `service.name`.
    pub service: String,
    /// Hex trace id (empty outside spans).
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// The message.
    pub body: String,
    /// Severity text.
    pub severity: String,
}

#[derive(Default)]
struct Store {
    spans: Mutex<Vec<Span>>,
    logs: Mutex<Vec<LogRecord>>,
}

/// An OTLP/gRPC receiver on a loopback port, keeping every span and log record.
pub struct OtlpReceiver {
    addr: SocketAddr,
    store: Arc<Store>,
    stop: CancellationToken,
}

struct TraceSink(Arc<Store>);
struct LogSink(Arc<Store>);

fn any_value_text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn service_of(attributes: &[KeyValue]) -> String {
    attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .map(|kv| any_value_text(&kv.value))
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tonic::async_trait]
impl TraceService for TraceSink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut out = Vec::new();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .as_ref()
                .map(|r| service_of(&r.attributes))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    out.push(Span {
                        service: service.clone(),
                        trace_id: hex(&s.trace_id),
                        span_id: hex(&s.span_id),
                        parent_span_id: hex(&s.parent_span_id),
                        kind: match s.kind {
                            1 => "INTERNAL",
                            2 => "SERVER",
                            3 => "CLIENT",
                            4 => "PRODUCER",
                            5 => "CONSUMER",
                            _ => "UNSPECIFIED",
                        },
                        status: match s.status.as_ref().map(|st| st.code) {
                            Some(1) => "OK",
                            Some(2) => "ERROR",
                            _ => "UNSET",
                        },
                        attributes: s
                            .attributes
                            .iter()
                            .map(|kv| (kv.key.clone(), any_value_text(&kv.value)))
                            .collect(),
                        links: s
                            .links
                            .iter()
                            .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
                            .collect(),
                        name: s.name,
                    });
                }
            }
        }
        self.0.spans.lock().unwrap().extend(out);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl LogsService for LogSink {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let mut out = Vec::new();
        for rl in request.into_inner().resource_logs {
            let service = rl
                .resource
                .as_ref()
                .map(|r| service_of(&r.attributes))
                .unwrap_or_default();
            for sl in rl.scope_logs {
                for l in sl.log_records {
                    out.push(LogRecord {
                        service: service.clone(),
                        trace_id: hex(&l.trace_id),
                        span_id: hex(&l.span_id),
                        body: any_value_text(&l.body),
                        severity: l.severity_text,
                    });
                }
            }
        }
        self.0.logs.lock().unwrap().extend(out);
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

impl OtlpReceiver {
    /// Starts the receiver on a free loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        let store = Arc::new(Store::default());
        let stop = CancellationToken::new();
        let incoming = tokio_stream_listener(listener);
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(TraceSink(store.clone())))
            .add_service(LogsServiceServer::new(LogSink(store.clone())))
            .serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned());
        tokio::spawn(server);
        Self { addr, store, stop }
    }

    /// The endpoint to give `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.store.spans.lock().unwrap().clone()
    }

    /// Every log record received so far.
    pub fn logs(&self) -> Vec<LogRecord> {
        self.store.logs.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the spans of `trace_id`, returning them; panics after `timeout`.
    pub async fn wait_for_trace(
        &self,
        trace_id: &str,
        timeout: Duration,
        pred: impl Fn(&[Span]) -> bool,
    ) -> Vec<Span> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans: Vec<Span> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == trace_id)
                .collect();
            if pred(&spans) {
                return spans;
            }
            if Instant::now() > deadline {
                panic!("trace {trace_id} never satisfied the condition; got {spans:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn tokio_stream_listener(
    listener: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(s, _)| s);
        Some((accepted, listener))
    })
}

/// Options of [`spawn_stack`].
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Extra environment for every service (`PAYMENT_FAILURE_RATE`, `EMAIL_MAX_ATTEMPTS`, ...).
    pub env: Vec<(String, String)>,
    /// When set, overrides the OTLP endpoint (otherwise the stack's own receiver).
    pub otlp_endpoint: Option<String>,
    /// Starts no email-service (to inspect the queue).
    pub without_email: bool,
    /// Returns without waiting for `/ready` (for tests that start with the broker away).
    pub no_ready_wait: bool,
}

struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// The three services running in this process.
pub struct Stack {
    /// Base URL of order-gateway.
    pub gateway_url: String,
    /// Base URL of payment-service.
    pub payment_url: String,
    /// Base URL of email-service's admin server (when started).
    pub email_url: Option<String>,
    /// The `AMQP_PREFIX` of this stack.
    pub prefix: String,
    /// The OTLP receiver every service exports to.
    pub receiver: OtlpReceiver,
    /// An HTTP client for the tests.
    pub client: reqwest::Client,
    log_dir: tempfile::TempDir,
    running: Vec<Running>,
}

/// Starts the three services with a fresh prefix, log directory and OTLP receiver, and waits
/// until each is ready.
pub async fn spawn_stack(options: StackOptions) -> Stack {
    let receiver = OtlpReceiver::start().await;
    let log_dir = tempfile::tempdir().expect("temp dir");
    let prefix = format!("test-{}.", uuid::Uuid::new_v4().simple());
    let mut env: HashMap<String, String> = HashMap::from([
        ("AMQP_URL".into(), amqp_url()),
        ("AMQP_PREFIX".into(), prefix.clone()),
        ("LOG_DIR".into(), log_dir.path().display().to_string()),
        ("BIND_ADDR".into(), "127.0.0.1:0".into()),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
            options
                .otlp_endpoint
                .clone()
                .unwrap_or_else(|| receiver.endpoint()),
        ),
        ("EMAIL_RETRY_BACKOFF_MS".into(), "50".into()),
        ("RUST_LOG".into(), "info".into()),
    ]);
    env.extend(options.env.iter().cloned());
    let mut running = Vec::new();

    let payment_env = env.clone();
    let config = payment_service::Config::from_lookup(|k| payment_env.get(k).cloned())
        .expect("payment config");
    let (dispatch, telemetry) = telemetry_for(&config.telemetry);
    let app = payment_service::Application::build(config)
        .with_subscriber(dispatch.clone())
        .await
        .expect("payment-service starts");
    let payment_url = format!("http://{}", app.local_addr());
    running.push(run(dispatch, telemetry, |signal| {
        app.run_until_stopped(signal)
    }));

    let mut gateway_env = env.clone();
    gateway_env.insert("PAYMENT_URL".into(), payment_url.clone());
    let config = order_gateway::Config::from_lookup(|k| gateway_env.get(k).cloned())
        .expect("gateway config");
    let (dispatch, telemetry) = telemetry_for(&config.telemetry);
    let app = order_gateway::Application::build(config)
        .with_subscriber(dispatch.clone())
        .await
        .expect("order-gateway starts");
    let gateway_addr = app.local_addr();
    running.push(run(dispatch, telemetry, |signal| {
        app.run_until_stopped(signal)
    }));

    let mut email_url = None;
    if !options.without_email {
        let email_env = env.clone();
        let config = email_service::Config::from_lookup(|k| email_env.get(k).cloned())
            .expect("email config");
        let (dispatch, telemetry) = telemetry_for(&config.telemetry);
        let app = email_service::Application::build(config)
            .with_subscriber(dispatch.clone())
            .await
            .expect("email-service starts");
        email_url = Some(format!("http://{}", app.local_addr()));
        running.push(run(dispatch, telemetry, |signal| {
            app.run_until_stopped(signal)
        }));
    }

    let stack = Stack {
        gateway_url: format!("http://{gateway_addr}"),
        payment_url,
        email_url,
        prefix,
        receiver,
        client: reqwest::Client::new(),
        log_dir,
        running,
    };
    if !options.no_ready_wait {
        stack.wait_ready().await;
    }
    stack
}

type Signal = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Builds the telemetry of one service, with no stdout output.
fn telemetry_for(config: &telemetry::TelemetryConfig) -> (tracing::Dispatch, telemetry::Telemetry) {
    let mut config = config.clone();
    config.log_stdout = false;
    let telemetry = telemetry::init(&config).expect("telemetry starts");
    (telemetry.dispatch().clone(), telemetry)
}

/// Runs a built service in its own dispatcher until its stop token fires, then flushes telemetry.
fn run<F>(
    dispatch: tracing::Dispatch,
    telemetry: telemetry::Telemetry,
    serve: impl FnOnce(Signal) -> F,
) -> Running
where
    F: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let stop = CancellationToken::new();
    let signal = stop.clone();
    let served = serve(Box::pin(async move { signal.cancelled().await }));
    let task = tokio::spawn(
        async move {
            let _ = served.await;
            telemetry.shutdown(Duration::from_secs(2)).await;
        }
        .with_subscriber(dispatch),
    );
    Running { stop, task }
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// JSON body (`Null` when not JSON).
    pub json: Value,
}

impl Stack {
    /// Waits until every service answers `/ready` with 200.
    pub async fn wait_ready(&self) {
        let mut urls = vec![&self.gateway_url, &self.payment_url];
        if let Some(u) = &self.email_url {
            urls.push(u);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for url in urls {
            loop {
                let ok = self
                    .client
                    .get(format!("{url}/ready"))
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                if ok {
                    break;
                }
                assert!(Instant::now() < deadline, "{url} never became ready");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// `POST /create-order` with an optional raw body.
    pub async fn create_order(&self, body: Option<&str>) -> Response {
        let mut request = self
            .client
            .post(format!("{}/create-order", self.gateway_url));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let json = response.json().await.unwrap_or(Value::Null);
        Response {
            status,
            headers,
            json,
        }
    }

    /// The JSON lines of `$LOG_DIR/<service>.log`.
    pub fn log_lines(&self, service: &str) -> Vec<Value> {
        read_json_lines(self.log_dir.path().join(format!("{service}.log")))
    }

    /// The outbox lines (`$LOG_DIR/outbox.jsonl`).
    pub fn outbox(&self) -> Vec<Value> {
        read_json_lines(self.log_dir.path().join("outbox.jsonl"))
    }

    /// Path of the log directory.
    pub fn log_dir(&self) -> PathBuf {
        self.log_dir.path().to_owned()
    }

    /// Waits until `pred` holds for the outbox lines; panics after `timeout`.
    pub async fn wait_for_outbox(
        &self,
        timeout: Duration,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.outbox();
            if pred(&lines) {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "outbox never satisfied the condition; got {lines:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `/metrics` text of a service base URL.
    pub async fn metrics(&self, base_url: &str) -> String {
        self.client
            .get(format!("{base_url}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// The names of this stack's topology.
    pub fn names(&self) -> messaging::Names {
        messaging::Names::new(&self.prefix)
    }

    /// Publishes a raw message to the payments exchange (bypassing payment-service).
    pub async fn publish_raw(&self, routing_key: &str, body: &[u8], headers: &[(&str, &str)]) {
        let connection = messaging::connect(&amqp_url(), "testkit")
            .await
            .expect("broker");
        let channel = connection.create_channel().await.expect("channel");
        let mut table = FieldTable::default();
        for (k, v) in headers {
            table.insert((*k).into(), AMQPValue::LongString((*v).into()));
        }
        channel
            .basic_publish(
                self.names().exchange.as_str().into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                lapin::BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_headers(table),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        let _ = connection.close(200, "done".into()).await;
    }

    /// Takes every message currently in `queue` (body and string headers).
    pub async fn drain_queue(&self, queue: &str) -> Vec<(Vec<u8>, HashMap<String, String>)> {
        let connection = messaging::connect(&amqp_url(), "testkit")
            .await
            .expect("broker");
        let channel = connection.create_channel().await.expect("channel");
        let mut out = Vec::new();
        while let Some(message) = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get")
        {
            let headers = message
                .delivery
                .properties
                .headers()
                .as_ref()
                .map(|t| {
                    t.inner()
                        .iter()
                        .filter_map(|(k, v)| match v {
                            AMQPValue::LongString(s) => Some((
                                k.as_str().to_owned(),
                                String::from_utf8_lossy(s.as_bytes()).into_owned(),
                            )),
                            AMQPValue::LongUInt(n) => Some((k.as_str().to_owned(), n.to_string())),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push((message.delivery.data.clone(), headers));
        }
        let _ = connection.close(200, "done".into()).await;
        out
    }

    /// Stops every service gracefully and deletes this stack's queues and exchanges.
    pub async fn stop(self) {
        for r in &self.running {
            r.stop.cancel();
        }
        for r in self.running {
            let _ = tokio::time::timeout(Duration::from_secs(10), r.task).await;
        }
        if let Ok(connection) = messaging::connect(&amqp_url(), "testkit cleanup").await
            && let Ok(channel) = connection.create_channel().await
        {
            let names = messaging::Names::new(&self.prefix);
            for q in [&names.queue, &names.retry_queue, &names.dead_letter_queue] {
                let _ = channel
                    .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
            for e in [&names.exchange, &names.dead_letter_exchange] {
                let _ = channel
                    .exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
                    .await;
            }
            let _ = connection.close(200, "done".into()).await;
        }
    }
}

fn read_json_lines(path: PathBuf) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
