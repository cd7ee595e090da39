//! Builds the application (storage, four listeners) and runs it until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsServiceServer;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tower::util::MapResponseLayer;

use crate::config::Config;
use crate::grpc::GrpcState;
use crate::grpc::proto::logs::log_ingestion_service_server::LogIngestionServiceServer;
use crate::grpc::proto::query::query_service_server::QueryServiceServer;
use crate::metrics::Metrics;
use crate::routes::{AppState, otlp_http_router, rest_router};
use crate::storage::{Store, StoreError, WriterHandle};

/// Why the application could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("failed to open storage: {0}")]
    Storage(#[from] StoreError),
    #[error("failed to bind {name} on {addr}: {source}")]
    Bind {
        name: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("failed to register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("{name} server failed: {message}")]
    Serve { name: &'static str, message: String },
}

/// A built, bound, not yet running log-service.
#[derive(Debug)]
pub struct Application {
    rest: TcpListener,
    otlp_grpc: TcpListener,
    otlp_http: TcpListener,
    grpc: TcpListener,
    addrs: [SocketAddr; 4],
    store: Store,
    metrics: Metrics,
    writer: WriterHandle,
    max_body_bytes: usize,
}

async fn bind(name: &'static str, addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { name, addr, source })
}

impl Application {
    /// Opens storage and binds every listener; port 0 picks a free port (see the `*_addr` getters).
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let metrics = Metrics::new()?;
        let (store, writer) = Store::open(
            &config.database,
            config.queue_capacity,
            config.max_batch_rows,
            metrics.clone(),
        )
        .await?;
        let rest = bind("BIND_ADDR", config.rest_addr).await?;
        let otlp_grpc = bind("OTLP_GRPC_ADDR", config.otlp_grpc_addr).await?;
        let otlp_http = bind("OTLP_HTTP_ADDR", config.otlp_http_addr).await?;
        let grpc = bind("GRPC_ADDR", config.grpc_addr).await?;
        let local = |l: &TcpListener, name: &'static str, addr: SocketAddr| {
            l.local_addr()
                .map_err(|source| StartupError::Bind { name, addr, source })
        };
        let addrs = [
            local(&rest, "BIND_ADDR", config.rest_addr)?,
            local(&otlp_grpc, "OTLP_GRPC_ADDR", config.otlp_grpc_addr)?,
            local(&otlp_http, "OTLP_HTTP_ADDR", config.otlp_http_addr)?,
            local(&grpc, "GRPC_ADDR", config.grpc_addr)?,
        ];
        Ok(Application {
            rest,
            otlp_grpc,
            otlp_http,
            grpc,
            addrs,
            store,
            metrics,
            writer,
            max_body_bytes: config.max_body_bytes,
        })
    }

    /// Port of the REST API.
    pub fn port(&self) -> u16 {
        self.addrs[0].port()
    }

    /// Bound address of the REST API.
    pub fn rest_addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Bound address of the OTLP gRPC receiver.
    pub fn otlp_grpc_addr(&self) -> SocketAddr {
        self.addrs[1]
    }

    /// Bound address of the OTLP HTTP receiver.
    pub fn otlp_http_addr(&self) -> SocketAddr {
        self.addrs[2]
    }

    /// Bound address of the seed 000 gRPC API.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.addrs[3]
    }

    /// Storage backend in use (`sqlite` or `postgres`).
    pub fn backend(&self) -> &'static str {
        self.store.backend_name()
    }

    /// Runs until SIGINT or SIGTERM, then drains in-flight requests and the write queue.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        self.run_until(telemetry::env::shutdown_signal()).await
    }

    /// Runs until `shutdown` completes, then stops intake, lets in-flight requests finish (each
    /// waits for its commit) and waits for the writer to stop.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let token = CancellationToken::new();
        let trigger = token.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutdown requested");
            trigger.cancel();
        });

        let state = AppState {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            max_body_bytes: self.max_body_bytes,
        };
        let grpc_state = GrpcState {
            store: self.store,
            metrics: self.metrics,
        };
        let max = self.max_body_bytes;

        let rest = axum::serve(self.rest, rest_router(state.clone()))
            .with_graceful_shutdown(token.clone().cancelled_owned());
        let otlp_http = axum::serve(self.otlp_http, otlp_http_router(state))
            .with_graceful_shutdown(token.clone().cancelled_owned());

        let otlp_grpc = tonic::transport::Server::builder()
            .layer(MapResponseLayer::new(
                invalid_protobuf_is_invalid_argument::<tonic::body::Body>,
            ))
            .add_service(
                TraceServiceServer::new(grpc_state.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(max),
            )
            .add_service(
                LogsServiceServer::new(grpc_state.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(max),
            )
            .serve_with_incoming_shutdown(
                TcpIncoming::from(self.otlp_grpc),
                token.clone().cancelled_owned(),
            );
        let grpc = tonic::transport::Server::builder()
            .layer(MapResponseLayer::new(
                invalid_protobuf_is_invalid_argument::<tonic::body::Body>,
            ))
            .add_service(
                LogIngestionServiceServer::new(grpc_state.clone()).max_decoding_message_size(max),
            )
            .add_service(QueryServiceServer::new(grpc_state).max_decoding_message_size(max))
            .serve_with_incoming_shutdown(
                TcpIncoming::from(self.grpc),
                token.clone().cancelled_owned(),
            );

        let serve_error = |name: &'static str| {
            move |e: &dyn std::fmt::Display| StartupError::Serve {
                name,
                message: e.to_string(),
            }
        };
        let result = tokio::try_join!(
            async { rest.await.map_err(|e| serve_error("rest")(&e)) },
            async { otlp_http.await.map_err(|e| serve_error("otlp http")(&e)) },
            async { otlp_grpc.await.map_err(|e| serve_error("otlp grpc")(&e)) },
            async { grpc.await.map_err(|e| serve_error("grpc")(&e)) },
        );
        token.cancel();
        // Every `Store` handle is gone with the servers, so the writer drains its queue and stops.
        if tokio::time::timeout(Duration::from_secs(30), self.writer.join())
            .await
            .is_err()
        {
            tracing::warn!("writer did not stop within 30 s");
        }
        result.map(|_| ())
    }
}

/// tonic answers a request whose protobuf does not decode with INTERNAL (gRPC's own convention);
/// log-service promises INVALID_ARGUMENT for bad input and INTERNAL only for its own faults, so the
/// trailers-only answer of a failed decode is relabelled here, before the handler is ever reached.
fn invalid_protobuf_is_invalid_argument<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers();
    let is_decode_failure = headers.get("grpc-status").is_some_and(|v| v == "13")
        && headers
            .get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|m| m.contains("decode%20Protobuf") || m.contains("decode Protobuf"));
    if is_decode_failure {
        response
            .headers_mut()
            .insert("grpc-status", http::HeaderValue::from_static("3"));
    }
    response
}
