//! Builds the application (storage, four listeners) and runs it until shutdown.

use std::net::SocketAddr;

use anyhow::Context;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsServiceServer;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
use server::{Env, Stop};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tower::util::MapResponseLayer;

use crate::api::{AppState, GrpcState, otlp_http_router, rest_router};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::proto::logs::log_ingestion_service_server::LogIngestionServiceServer;
use crate::proto::query::query_service_server::QueryServiceServer;
use crate::storage::{Store, WriterHandle};

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
    limits: server::Limits,
    stop: Stop,
}

impl server::Service for Application {
    const NAME: &'static str = "log-service";
    type Config = Config;

    fn config(env: &Env) -> Result<Config, server::ConfigError> {
        Config::from_env(env)
    }

    /// log-service never exports its own telemetry to itself: JSON lines only.
    fn telemetry(env: &Env) -> Result<telemetry::TelemetryConfig, server::ConfigError> {
        let mut config = env.telemetry(Self::NAME)?;
        config.sdk_disabled = true;
        Ok(config)
    }

    /// Opens storage and binds every listener; port 0 picks a free port (see the `*_addr` getters).
    async fn build(config: Config, stop: &Stop) -> anyhow::Result<Application> {
        let metrics = Metrics::new().context("failed to register metrics")?;
        let (store, writer) = Store::open(
            &config.database,
            config.queue_capacity,
            config.max_batch_rows,
            metrics.clone(),
        )
        .await
        .context("failed to open storage")?;
        let rest = server::bind("BIND_ADDR", config.rest_addr).await?;
        let otlp_grpc = server::bind("OTLP_GRPC_ADDR", config.otlp_grpc_addr).await?;
        let otlp_http = server::bind("OTLP_HTTP_ADDR", config.otlp_http_addr).await?;
        let grpc = server::bind("GRPC_ADDR", config.grpc_addr).await?;
        let addrs = [
            rest.local_addr()?,
            otlp_grpc.local_addr()?,
            otlp_http.local_addr()?,
            grpc.local_addr()?,
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
            limits: config.limits,
            stop: stop.clone(),
        })
    }

    /// Serves until the stop, then lets in-flight requests finish (each waits for its commit)
    /// and waits for the writer to commit what is queued.
    async fn run(self) -> anyhow::Result<()> {
        tracing::info!(
            rest_addr = %self.rest_addr(),
            otlp_grpc_addr = %self.otlp_grpc_addr(),
            otlp_http_addr = %self.otlp_http_addr(),
            grpc_addr = %self.grpc_addr(),
            backend = self.backend(),
            "log-service listening"
        );
        self.serve().await
    }
}

impl Application {
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

    /// Bound address of the distributed-logging gRPC API.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.addrs[3]
    }

    /// Storage backend in use (`sqlite` or `postgres`).
    pub fn backend(&self) -> &'static str {
        self.store.backend_name()
    }

    async fn serve(self) -> anyhow::Result<()> {
        let stop = self.stop;
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

        let limits = self.limits;
        // The gRPC services are served as routers by the same loop as the REST API, so one set
        // of timeouts and one stop apply to every listener.
        let relabel =
            MapResponseLayer::new(invalid_protobuf_is_invalid_argument::<axum::body::Body>);
        let otlp_grpc = tonic::service::Routes::new(
            TraceServiceServer::new(grpc_state.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max),
        )
        .add_service(
            LogsServiceServer::new(grpc_state.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max),
        )
        .into_axum_router()
        .layer(relabel.clone());
        let grpc = tonic::service::Routes::new(
            LogIngestionServiceServer::new(grpc_state.clone()).max_decoding_message_size(max),
        )
        .add_service(QueryServiceServer::new(grpc_state).max_decoding_message_size(max))
        .into_axum_router()
        .layer(relabel);
        tokio::join!(
            server::serve(self.rest, rest_router(state.clone()), &stop, limits),
            server::serve(self.otlp_http, otlp_http_router(state), &stop, limits),
            server::serve(self.otlp_grpc, otlp_grpc, &stop, limits),
            server::serve(self.grpc, grpc, &stop, limits),
        );
        // Every `Store` handle is gone with the servers, so the writer commits its queue and stops.
        if stop.drain(self.writer.join()).await.is_none() {
            tracing::warn!("the writer had not committed its queue at the stop deadline");
        }
        Ok(())
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
