//! The OTLP/gRPC receiver of the tests and benchmarks: the collector the services export to when
//! no log-service is wanted. One receiver plays each collector a test or a benchmark needs: one
//! that keeps what it receives for the assertions ([`Mode::Keep`]), one that only counts, so that a
//! benchmark measures what exporting costs the services and not what storing costs a backend
//! ([`Mode::Count`], run by the `otlp-sink` binary), and one that accepts connections and never
//! answers, as a hung collector would ([`Mode::Silent`]).

mod records;

pub use records::{LogRecord, Span};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What an [`OtlpReceiver`] does with an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Decodes every span and log record, keeps it for [`OtlpReceiver::spans`] and
    /// [`OtlpReceiver::logs`], and counts it.
    Keep,
    /// Counts spans and log records and keeps nothing, so memory stays flat however long a
    /// benchmark runs.
    Count,
    /// Accepts connections and never answers: the exporters' requests wait until they time out.
    Silent,
}

/// How many spans and log records a receiver has taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Spans received.
    pub spans: u64,
    /// Log records received.
    pub logs: u64,
}

struct Store {
    spans: Received<Span>,
    logs: Received<LogRecord>,
}

/// What arrived of one signal: how many, and the records themselves when the mode keeps them.
struct Received<T> {
    keep: bool,
    count: AtomicU64,
    records: Mutex<Vec<T>>,
}

impl<T: Clone> Received<T> {
    fn new(keep: bool) -> Self {
        Self {
            keep,
            count: AtomicU64::new(0),
            records: Mutex::new(Vec::new()),
        }
    }

    /// Counts `count` records, and keeps them (decoded only then) when the mode keeps them.
    fn add(&self, count: usize, decode: impl FnOnce() -> Vec<T>) {
        if self.keep {
            let records = decode();
            self.records.lock().unwrap().extend(records);
        }
        self.count.fetch_add(count as u64, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn records(&self) -> Vec<T> {
        self.records.lock().unwrap().clone()
    }
}

/// An OTLP/gRPC receiver (traces and logs) on a loopback port. Dropping it stops it.
pub struct OtlpReceiver {
    addr: SocketAddr,
    store: Arc<Store>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

/// The trace and logs services of the receiver; one value serves both.
struct Sink(Arc<Store>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let request = request.into_inner();
        self.0
            .spans
            .add(records::span_count(&request), || records::spans(request));
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let request = request.into_inner();
        self.0
            .logs
            .add(records::log_count(&request), || records::logs(request));
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

impl OtlpReceiver {
    /// Starts a receiver that keeps everything, on a free loopback port.
    pub async fn start() -> Self {
        Self::bind(([127, 0, 0, 1], 0).into(), Mode::Keep)
            .await
            .expect("bind the OTLP receiver")
    }

    /// Starts a receiver that never answers, on a free loopback port.
    pub async fn silent() -> Self {
        Self::bind(([127, 0, 0, 1], 0).into(), Mode::Silent)
            .await
            .expect("bind the silent OTLP receiver")
    }

    /// Starts a receiver in `mode` on `addr` (port 0: a free port).
    pub async fn bind(addr: SocketAddr, mode: Mode) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let keep = mode == Mode::Keep;
        let store = Arc::new(Store {
            spans: Received::new(keep),
            logs: Received::new(keep),
        });
        let stop = CancellationToken::new();
        let task = match mode {
            Mode::Keep | Mode::Count => {
                let server = tonic::transport::Server::builder()
                    .add_service(TraceServiceServer::new(Sink(store.clone())))
                    .add_service(LogsServiceServer::new(Sink(store.clone())))
                    .serve_with_incoming_shutdown(
                        incoming(listener),
                        stop.clone().cancelled_owned(),
                    );
                tokio::spawn(async move {
                    let _ = server.await;
                })
            }
            Mode::Silent => tokio::spawn(hold_connections(listener, stop.clone())),
        };
        Ok(Self {
            addr,
            store,
            stop,
            task: Some(task),
        })
    }

    /// Returns the address the receiver listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns the endpoint to give `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Returns how many spans and log records arrived so far.
    pub fn counts(&self) -> Counts {
        Counts {
            spans: self.store.spans.count(),
            logs: self.store.logs.count(),
        }
    }

    /// Returns every span received so far (none unless the mode is [`Mode::Keep`]).
    pub fn spans(&self) -> Vec<Span> {
        self.store.spans.records()
    }

    /// Returns every log record received so far (none unless the mode is [`Mode::Keep`]).
    pub fn logs(&self) -> Vec<LogRecord> {
        self.store.logs.records()
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

    /// Stops accepting, lets the exports in progress finish, and returns the final counts.
    pub async fn shutdown(mut self) -> Counts {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.counts()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn incoming(listener: TcpListener) -> impl futures_util::Stream<Item = std::io::Result<TcpStream>> {
    futures_util::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(s, _)| s);
        Some((accepted, listener))
    })
}

/// Accepts connections and holds them open, unread, until `stop`.
async fn hold_connections(listener: TcpListener, stop: CancellationToken) {
    let mut held = Vec::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => held.push(socket),
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}
