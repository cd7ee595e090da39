//! Builds the application (storage, alert rules, four listeners) and runs it until shutdown.

use std::net::SocketAddr;

use anyhow::Context;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsServiceServer;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
use server::{Env, Listener, Stop};
use tonic::codec::CompressionEncoding;
use tower::util::MapResponseLayer;

use crate::alerts::{Alerts, read_rules_file};
use crate::api::{AppState, GrpcState, TailState, otlp_http_router, rest_router};
use crate::auth::Access;
use crate::config::{Config, DatabaseConfig};
use crate::leader::Leader;
use crate::metrics::Metrics;
use crate::proto::logs::log_ingestion_service_server::LogIngestionServiceServer;
use crate::proto::query::query_service_server::QueryServiceServer;
use crate::retention::Retention;
use crate::storage::{Store, WriterHandle};
use crate::tail::Hub;

/// A built, bound, not yet running log-service.
#[derive(Debug)]
pub struct Application {
    rest: Listener,
    otlp_grpc: Listener,
    otlp_http: Listener,
    grpc: Listener,
    store: Store,
    metrics: Metrics,
    writer: WriterHandle,
    max_body_bytes: usize,
    tail: TailState,
    alerts: Alerts,
    retention: Retention,
    admin_token: Option<std::sync::Arc<str>>,
    access: Access,
    database: DatabaseConfig,
    /// This process's id among the replicas on one database: random at every start.
    replica: String,
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
        // A bad rules file stops the start before anything connects.
        let file_rules = match &config.alerts.rules_file {
            Some(path) => read_rules_file(path)?,
            None => Vec::new(),
        };
        let metrics = Metrics::new().context("failed to register metrics")?;
        let access = Access::new(config.api_keys.clone(), metrics.clone());
        let hub = Hub::new(config.stream_buffer, metrics.clone());
        let replica = uuid::Uuid::new_v4().simple().to_string();
        let (store, writer) = Store::open(
            &config.database,
            config.queue_capacity,
            config.max_batch_rows,
            metrics.clone(),
            hub.clone(),
            &replica,
            stop,
        )
        .await
        .context("failed to open storage")?;
        let retention = Retention::new(store.clone(), config.retention, metrics.clone());
        // One set of timeouts and one stop apply to every listener.
        let bind = |variable, addr| Listener::bind(variable, addr, config.limits, stop);
        let rest = bind("BIND_ADDR", config.rest_addr).await?;
        let public_url = config
            .alerts
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", rest.local_addr()));
        let alerts = Alerts::open(
            &config.alerts,
            &config.database,
            public_url,
            file_rules,
            metrics.clone(),
            stop,
        )
        .await?;
        Ok(Application {
            rest,
            otlp_grpc: bind("OTLP_GRPC_ADDR", config.otlp_grpc_addr).await?,
            otlp_http: bind("OTLP_HTTP_ADDR", config.otlp_http_addr).await?,
            grpc: bind("GRPC_ADDR", config.grpc_addr).await?,
            store,
            metrics,
            writer,
            max_body_bytes: config.max_body_bytes,
            tail: TailState {
                hub,
                heartbeat: config.stream_heartbeat,
                stop: stop.clone(),
            },
            alerts,
            retention,
            admin_token: config.admin_token.as_deref().map(Into::into),
            access,
            database: config.database.clone(),
            replica,
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
            replica = %self.replica,
            "log-service listening"
        );
        self.serve().await
    }
}

impl Application {
    /// Bound address of the REST API.
    pub fn rest_addr(&self) -> SocketAddr {
        self.rest.local_addr()
    }

    /// Bound address of the OTLP gRPC receiver.
    pub fn otlp_grpc_addr(&self) -> SocketAddr {
        self.otlp_grpc.local_addr()
    }

    /// Bound address of the OTLP HTTP receiver.
    pub fn otlp_http_addr(&self) -> SocketAddr {
        self.otlp_http.local_addr()
    }

    /// Bound address of the distributed-logging gRPC API.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.local_addr()
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
            tail: self.tail,
            retention: self.retention,
            admin_token: self.admin_token,
            access: self.access.clone(),
            alerts: self.alerts.clone(),
        };
        // Replicas on one database elect one of them to evaluate rules and run retention.
        let leader = Leader::start(&self.database, &self.replica, self.metrics.clone(), &stop);
        // The periodic task holds a `Store` until intake stops, so the writer's drain below
        // does not wait for it.
        state.retention.spawn(&stop, leader.clone());
        // The evaluator holds a `Store`, so it must end (at the stop) before the writer can.
        let alerts = self.alerts.clone();
        let evaluator = tokio::spawn(self.alerts.run_evaluator(
            self.store.clone(),
            stop.clone(),
            leader,
        ));
        let grpc_state = GrpcState {
            store: self.store,
            metrics: self.metrics,
            access: self.access,
        };
        let max = self.max_body_bytes;
        // The gRPC services are served as routers by the same loop as the REST API, so the
        // listeners' timeouts and stop apply to them too.
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
        // Timed and traced like every route, and a refused call (INVALID_ARGUMENT, NOT_FOUND,
        // ...) logged once and counted like any rejected request.
        let otlp_grpc = telemetry::http::instrument(otlp_grpc, state.metrics.http.clone());
        // Server reflection, so that `grpcurl` and other generic clients list and call both
        // services without a .proto file; v1alpha for clients that predate v1.
        let (reflection_v1, reflection_v1alpha) = reflection()?;
        let grpc = tonic::service::Routes::new(
            LogIngestionServiceServer::new(grpc_state.clone()).max_decoding_message_size(max),
        )
        .add_service(QueryServiceServer::new(grpc_state).max_decoding_message_size(max))
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .into_axum_router()
        .layer(relabel);
        let grpc = telemetry::http::instrument(grpc, state.metrics.http.clone());
        tokio::join!(
            self.rest.serve(rest_router(state.clone())),
            self.otlp_http.serve(otlp_http_router(state)),
            self.otlp_grpc.serve(otlp_grpc),
            self.grpc.serve(grpc),
        );
        if let Err(error) = evaluator.await {
            tracing::warn!(%error, "alert evaluator failed");
            alerts.count_evaluation_failure();
        }
        // Every `Store` handle is gone with the servers, so the writer commits its queue and stops.
        if stop.drain(self.writer.join()).await.is_none() {
            tracing::warn!("the writer had not committed its queue at the stop deadline");
        }
        Ok(())
    }
}

/// The gRPC server reflection services, v1 and v1alpha, describing the distributed-logging gRPC
/// API from the descriptors compiled with it (`proto::FILE_DESCRIPTOR_SET`).
fn reflection() -> anyhow::Result<(
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
)> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
    };
    let context = "failed to build the gRPC reflection service";
    Ok((
        builder().build_v1().context(context)?,
        builder().build_v1alpha().context(context)?,
    ))
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
