//! Serving a router: the probe routes every server answers, and the accept loop that keeps each
//! connection in the service's own `tracing` dispatcher, bounds how long a peer may hold it, and
//! drains at the stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus::Registry;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tracing::instrument::WithSubscriber;

use crate::idle::{IdleTimeout, Requests};

use crate::stop::Stop;

/// What `/ready` reports: ready or not, with the state of each dependency
/// (`{"broker": "connected"}`), so an operator sees which one is missing.
#[derive(Debug, Clone)]
pub struct Readiness {
    /// Whether the server can do its work now.
    pub ready: bool,
    /// Each dependency's state, merged into the JSON answer.
    pub dependencies: Vec<(&'static str, &'static str)>,
}

type ReadinessCheck =
    Arc<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = Readiness> + Send>> + Send + Sync>;

#[derive(Clone)]
struct Probes {
    registry: Registry,
    readiness: ReadinessCheck,
}

/// The probe routes: `GET /health` (the process answers), `GET /ready` (200 or 503 from
/// `readiness`, which may ask a dependency) and `GET /metrics` (the Prometheus text format of
/// `registry`).
pub fn probes<F>(registry: Registry, readiness: impl Fn() -> F + Send + Sync + 'static) -> Router
where
    F: Future<Output = Readiness> + Send + 'static,
{
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(Probes {
            registry,
            readiness: Arc::new(move || Box::pin(readiness())),
        })
}

async fn health() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

async fn ready(State(probes): State<Probes>) -> Response {
    let readiness = (probes.readiness)().await;
    let mut body = Map::new();
    let (status, word) = if readiness.ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    };
    body.insert("status".into(), word.into());
    for (name, state) in readiness.dependencies {
        body.insert(name.into(), state.into());
    }
    (status, axum::Json(Value::Object(body))).into_response()
}

async fn metrics(State(probes): State<Probes>) -> Response {
    telemetry::metrics::response(&probes.registry)
}

/// Finishes a server's `routes`: JSON answers for unknown paths (404) and methods (405), and the
/// HTTP telemetry of [`telemetry::http::instrument`] around all of it, so every answer, a
/// rejection included, is timed, traced and, when rejected, logged once and counted.
pub fn router(routes: Router, metrics: telemetry::http::HttpMetrics) -> Router {
    let routes = routes
        .fallback(crate::error::not_found)
        .method_not_allowed_fallback(crate::error::method_not_allowed);
    telemetry::http::instrument(routes, metrics)
}

/// How long a peer may take, on every listener of a server. A peer that trickles a request
/// (slowloris) or holds a connection without using it costs a task and a descriptor; these
/// bound both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `HTTP_HEADER_TIMEOUT_MS` (default 30 s): a request's head must arrive within it, from
    /// the connection's start or, on a kept-alive HTTP/1 connection, from the previous answer.
    pub header_timeout: Duration,
    /// `HTTP_BODY_TIMEOUT_MS` (default 30 s): a request's body must arrive within it.
    pub body_timeout: Duration,
    /// `HTTP_IDLE_TIMEOUT_MS` (default 120 s): a connection that moves no byte either way for
    /// this long is closed (HTTP/2 and gRPC connections, readers that stopped reading).
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
        }
    }
}

impl Limits {
    /// Reads the three timeouts from `env` (each at least 1 ms).
    pub fn from_env(env: &crate::Env) -> Result<Self, crate::ConfigError> {
        let defaults = Self::default();
        let millis = |name: &'static str, default: Duration| {
            env.at_least(name, default.as_millis() as u64, 1)
                .map(Duration::from_millis)
        };
        Ok(Self {
            header_timeout: millis("HTTP_HEADER_TIMEOUT_MS", defaults.header_timeout)?,
            body_timeout: millis("HTTP_BODY_TIMEOUT_MS", defaults.body_timeout)?,
            idle_timeout: millis("HTTP_IDLE_TIMEOUT_MS", defaults.idle_timeout)?,
        })
    }
}

/// Where and how a server listens: `BIND_ADDR` and the [`Limits`] on its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    /// `BIND_ADDR` (default `127.0.0.1:<the server's port>`; port 0 lets the system choose).
    pub addr: SocketAddr,
    /// How long a peer may take.
    pub limits: Limits,
}

impl Listen {
    /// Reads `BIND_ADDR` (default `127.0.0.1:default_port`) and the limits from `env`.
    pub fn from_env(env: &crate::Env, default_port: u16) -> Result<Self, crate::ConfigError> {
        Ok(Self {
            addr: env.addr(
                "BIND_ADDR",
                SocketAddr::from(([127, 0, 0, 1], default_port)),
            )?,
            limits: Limits::from_env(env)?,
        })
    }

    /// Binds `BIND_ADDR`; the listener serves until `stop`.
    pub async fn bind(self, stop: &Stop) -> anyhow::Result<Listener> {
        Listener::bind("BIND_ADDR", self.addr, self.limits, stop).await
    }
}

/// A bound listener with the limits and the stop it will be served under.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    limits: Limits,
    stop: Stop,
}

impl Listener {
    /// Binds `addr`, naming `variable` (the setting that chose it) in the error, so a port
    /// clash says which setting to change.
    pub async fn bind(
        variable: &'static str,
        addr: SocketAddr,
        limits: Limits,
        stop: &Stop,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("failed to bind {variable} {addr}"))?;
        Ok(Self {
            listener,
            limits,
            stop: stop.clone(),
        })
    }

    /// Returns the bound address (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves `router` until the stop; see [`serve`].
    pub async fn serve(self, router: Router) {
        serve(self.listener, router, &self.stop, self.limits).await;
    }
}

/// Serves `router` (HTTP/1 and HTTP/2, so gRPC too) on `listener` within `limits` until `stop`
/// stops intake, then lets in-flight requests finish until the stop deadline.
///
/// Every connection task runs inside the caller's `tracing` dispatcher, which is what lets
/// several services share one test process while keeping their telemetry apart.
async fn serve(listener: TcpListener, router: Router, stop: &Stop, limits: Limits) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let router = router.layer(RequestBodyTimeoutLayer::new(limits.body_timeout));
    let intake_stopped = stop.intake_stopped();
    tokio::pin!(intake_stopped);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of descriptors or a reset during accept: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut intake_stopped => break,
        };
        let _ = stream.set_nodelay(true);
        let requests = Arc::new(Requests::default());
        let service = {
            let (router, requests) = (router.clone(), requests.clone());
            hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let in_flight = requests.start();
                let answer = router.clone().oneshot(request.map(axum::body::Body::new));
                async move {
                    let response = answer.await;
                    drop(in_flight);
                    response
                }
            })
        };
        let io = TokioIo::new(IdleTimeout::new(
            stream,
            limits.idle_timeout,
            requests.clone(),
        ));
        let conn = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        let conn = graceful.watch(conn);
        let header_timeout = limits.header_timeout;
        tokio::spawn(
            async move {
                tokio::pin!(conn);
                // Telling HTTP/1 from HTTP/2 reads the first bytes before hyper's header timer
                // starts, so a peer that sends nothing (or a trickle of the HTTP/2 preface) is
                // held to the header timeout here, until its first request starts.
                let first = tokio::time::timeout(header_timeout, requests.first_started());
                tokio::select! {
                    _ = &mut conn => return,
                    started = first => if started.is_err() { return },
                }
                let _ = conn.await;
            }
            .with_current_subscriber(),
        );
    }
    drop(listener);
    if stop.drain(graceful.shutdown()).await.is_none() {
        tracing::warn!("requests still in flight at the stop deadline");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get_json(router: Router, path: &str) -> (StatusCode, Value) {
        let response = router
            .oneshot(
                http::Request::get(path)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn ready_names_the_missing_dependency() {
        let probes = probes(Registry::new(), || async {
            Readiness {
                ready: false,
                dependencies: vec![("broker", "disconnected")],
            }
        });
        let (status, body) = get_json(probes.clone(), "/ready").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            json!({"status": "not_ready", "broker": "disconnected"})
        );
        let (status, body) = get_json(probes, "/health").await;
        assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    }

    #[tokio::test]
    async fn unknown_paths_and_methods_get_json_errors_counted_with_bounded_labels() {
        let registry = Registry::new();
        let metrics = telemetry::http::HttpMetrics::new(&registry);
        let app = router(
            Router::new().route("/x", axum::routing::post(|| async { "ok" })),
            metrics,
        );
        let (status, body) = get_json(app.clone(), "/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found");
        let (status, body) = get_json(app.clone(), "/x").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"]["code"], "method_not_allowed");
        for i in 0..50 {
            let method = http::Method::from_bytes(format!("M{i}").as_bytes()).unwrap();
            let request = http::Request::builder()
                .method(method)
                .uri("/x")
                .body(axum::body::Body::empty())
                .unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
        let text = telemetry::metrics::render(&registry);
        assert!(
            text.contains(r#"http_requests_rejected_total{code="not_found",route="unmatched"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"http_request_duration_seconds_count{method="_OTHER",route="/x",status_code="405"} 50"#),
            "{text}"
        );
        assert!(!text.contains("M49"), "a raw method became a label");
    }

    #[tokio::test]
    async fn serve_stops_accepting_at_the_stop() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Stop::new();
        let router = probes(Registry::new(), || async {
            Readiness {
                ready: true,
                dependencies: vec![],
            }
        });
        let served = tokio::spawn({
            let stop = stop.clone();
            async move { serve(listener, router, &stop, Limits::default()).await }
        });
        stop.stop();
        tokio::time::timeout(Duration::from_secs(2), served)
            .await
            .expect("serve returns at the stop")
            .unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
