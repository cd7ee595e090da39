//! An OTLP/gRPC receiver that decodes every export, counts the spans and log records, and keeps
//! nothing. `scripts/bench.sh` exports to it to measure what telemetry costs the services
//! themselves, apart from what storing it costs a backend on the same cores.
//!
//!   cargo run --release -p testkit --example otlp-sink -- 127.0.0.1:4317
//!
//! On SIGTERM or SIGINT it prints `{"spans":N,"logs":M}` and exits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

#[derive(Default)]
struct Counts {
    spans: AtomicU64,
    logs: AtomicU64,
}

struct Sink(Arc<Counts>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .into_inner()
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum();
        self.0.spans.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let logs: usize = request
            .into_inner()
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .map(|sl| sl.log_records.len())
            .sum();
        self.0.logs.fetch_add(logs as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::main]
async fn main() {
    let arg = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4317".into());
    let addr: SocketAddr = match arg.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("otlp-sink: {arg:?} is not a socket address ({e})");
            std::process::exit(2);
        }
    };
    let counts = Arc::new(Counts::default());
    let served = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(Sink(counts.clone())))
        .add_service(LogsServiceServer::new(Sink(counts.clone())))
        .serve_with_shutdown(addr, telemetry::env::shutdown_signal())
        .await;
    if let Err(e) = served {
        eprintln!("otlp-sink: cannot serve on {addr}: {e}");
        std::process::exit(1);
    }
    println!(
        "{{\"spans\":{},\"logs\":{}}}",
        counts.spans.load(Ordering::Relaxed),
        counts.logs.load(Ordering::Relaxed)
    );
}
