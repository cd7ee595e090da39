//! Every call into the apps' start-up code: order-gateway, payment-service, email-service and
//! log-service built and run inside the test process. The rest of the harness only sees
//! addresses and [`Running`] handles, so a change to an app's start-up API is followed here and
//! nowhere else.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use server::{Service, Stop};
use tokio::task::JoinHandle;
use tracing::instrument::WithSubscriber;

/// The environment a service reads its configuration from.
pub(crate) type Env = BTreeMap<String, String>;

/// A service running in this process; [`Running::stop`] plays SIGTERM.
pub(crate) struct Running {
    stop: Stop,
    task: JoinHandle<()>,
}

impl Running {
    /// Asks the service to stop taking work, as SIGTERM would.
    pub(crate) fn stop(&self) {
        self.stop.stop();
    }

    /// Waits up to `timeout` for the service to drain and flush its telemetry.
    pub(crate) async fn join(self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.task).await;
    }
}

/// Builds payment-service from `env` and runs it; returns its address.
pub(crate) async fn payment_service(env: &Env) -> (SocketAddr, Running) {
    start::<payment_service::Application>(env, payment_service::Application::local_addr).await
}

/// Builds order-gateway from `env` and runs it; returns its address.
pub(crate) async fn order_gateway(env: &Env) -> (SocketAddr, Running) {
    start::<order_gateway::Application>(env, order_gateway::Application::local_addr).await
}

/// Builds email-service from `env` and runs it; returns the address of its admin server.
pub(crate) async fn email_service(env: &Env) -> (SocketAddr, Running) {
    start::<email_service::Application>(env, email_service::Application::local_addr).await
}

/// Runs `S` the way `server::main` runs a process (configuration, telemetry, build, run, the
/// stop contract, the flush), but in its own `tracing` dispatcher instead of the global one, so
/// that each service in this process has its own `service.name`, log file and exporters; and
/// with no JSON lines on stdout, which would only crowd the test output.
async fn start<S: Service>(env: &Env, addr: fn(&S) -> SocketAddr) -> (SocketAddr, Running) {
    let env = server::Env::from_pairs(env.clone());
    let config = S::config(&env).unwrap_or_else(|e| panic!("{} config: {e}", S::NAME));
    let mut telemetry_config =
        S::telemetry(&env).unwrap_or_else(|e| panic!("{} telemetry config: {e}", S::NAME));
    telemetry_config.log_stdout = false;
    let telemetry = telemetry::init(&telemetry_config).expect("telemetry starts");
    let dispatch = telemetry.dispatch().clone();
    let stop = Stop::new();
    let app = S::build(config, &stop)
        .with_subscriber(dispatch.clone())
        .await
        .unwrap_or_else(|e| panic!("{} starts: {e:#}", S::NAME));
    let bound = addr(&app);
    let joined = stop.clone();
    let task = tokio::spawn(
        async move {
            let _ = app.run().await;
            joined.join().await;
            telemetry.shutdown(server::stop::FLUSH_DEADLINE).await;
        }
        .with_subscriber(dispatch),
    );
    (bound, Running { stop, task })
}

/// log-service running in this process on free loopback ports, storing into a SQLite file in a
/// temporary directory; dropping it stops it.
pub struct LogService {
    rest: SocketAddr,
    otlp_grpc: SocketAddr,
    otlp_http: SocketAddr,
    grpc: SocketAddr,
    stop: Stop,
    _dir: tempfile::TempDir,
}

impl LogService {
    /// Starts log-service and returns once it listens.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts log-service with its test config changed by `adjust` (API keys, say).
    pub async fn start_with(adjust: impl FnOnce(&mut log_service::Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = log_service::Config::for_tests(dir.path().join("logs.db"));
        adjust(&mut config);
        let stop = Stop::new();
        let app = log_service::Application::build(config, &stop)
            .await
            .expect("log-service starts");
        let service = Self {
            rest: app.rest_addr(),
            otlp_grpc: app.otlp_grpc_addr(),
            otlp_http: app.otlp_http_addr(),
            grpc: app.grpc_addr(),
            stop: stop.clone(),
            _dir: dir,
        };
        tokio::spawn(async move {
            let _ = app.run().await;
            stop.join().await;
        });
        service
    }

    /// Returns the base URL of the REST API.
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.rest)
    }

    /// Returns the OTLP/gRPC endpoint (for `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub fn otlp_grpc_endpoint(&self) -> String {
        format!("http://{}", self.otlp_grpc)
    }

    /// Returns the OTLP/HTTP endpoint (with `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`).
    pub fn otlp_http_endpoint(&self) -> String {
        format!("http://{}", self.otlp_http)
    }

    /// Returns the URL of the gRPC query service.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }
}

impl Drop for LogService {
    fn drop(&mut self) {
        self.stop.stop();
    }
}
