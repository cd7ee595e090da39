//! Serving a router: the probe routes every server answers, and the accept loop that keeps each
//! connection in the service's own `tracing` dispatcher and drains at the stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus::Registry;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tracing::instrument::WithSubscriber;

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

/// Binds `addr`, naming the variable that set it in the error, so a port clash says which
/// setting to change.
pub async fn bind(variable: &'static str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("failed to bind {variable} {addr}"))
}

/// Serves `router` on `listener` until `stop` stops intake, then lets in-flight requests finish
/// until the stop deadline.
///
/// Every connection task runs inside the caller's `tracing` dispatcher, which is what lets
/// several services share one test process while keeping their telemetry apart.
pub async fn serve(listener: TcpListener, router: Router, stop: &Stop) {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
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
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(
            async move {
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
            async move { serve(listener, router, &stop).await }
        });
        stop.stop();
        tokio::time::timeout(Duration::from_secs(2), served)
            .await
            .expect("serve returns at the stop")
            .unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
