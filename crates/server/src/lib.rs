//! What every tracehop server shares, so the four of them start, serve, answer errors and stop
//! in one way:
//!
//! - [`env`]: configuration from the environment, one reader and one error naming the variable;
//! - [`serve`](mod@serve): the probe routes (`/health`, `/ready`, `/metrics`) and the accept loop;
//! - [`error`]: the one JSON error body and its status rule, request body parsing, bearer tokens;
//! - [`stop`]: the stop contract: intake first, then in-flight work, then background tasks,
//!   all joined within one deadline;
//! - [`admin`]: the `/admin/faults` route of the services that take fault knobs;
//! - [`Service`] and [`main`]: the whole life of a server process, so each `main.rs` is one call;
//! - [`HttpApp`] and [`HttpServer`]: the [`Service`] of a server of one HTTP listener.
//!
//! Telemetry itself (tracing, OTLP, JSON lines, propagation, metrics registries) stays in the
//! `telemetry` crate; this crate only wires it into a process.

pub mod admin;
pub mod env;
pub mod error;
mod http_app;
mod idle;
pub mod serve;
pub mod stop;

use std::future::Future;
use std::process::ExitCode;

use anyhow::Context;

pub use env::{Amqp, ConfigError, Env, parse_duration};
pub use error::ApiError;
pub use http_app::{FromEnv, HttpApp, HttpConfig, HttpContext, HttpServer};
pub use serve::{Limits, Listen, Listener, Readiness, probes, router};
pub use stop::Stop;

/// A server process: how it reads its configuration, builds itself and runs.
pub trait Service: Sized + Send + 'static {
    /// The name in error lines and the default `service.name`.
    const NAME: &'static str;

    /// The typed configuration, validated before anything binds or connects.
    type Config: Send;

    /// Reads the configuration from `env`.
    fn config(env: &Env) -> Result<Self::Config, ConfigError>;

    /// Reads the telemetry settings from `env` (a server may override some, as log-service
    /// does to never export its own telemetry to itself).
    fn telemetry(env: &Env) -> Result<telemetry::TelemetryConfig, ConfigError> {
        env.telemetry(Self::NAME)
    }

    /// Binds listeners and starts background work, spawned on `stop` so it is joined at the end.
    fn build(
        config: Self::Config,
        stop: &Stop,
    ) -> impl Future<Output = anyhow::Result<Self>> + Send;

    /// Serves until `stop` stops intake, then drains in-flight work.
    fn run(self) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Runs `S` as the whole process: configuration, telemetry, build, run until SIGINT or SIGTERM,
/// then the stop contract of [`stop`] and the telemetry flush. A failure is one line on stderr
/// with its cause chain (never a backtrace) and exit code 1.
pub async fn main<S: Service>() -> ExitCode {
    match run::<S>().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}: {error:#}", S::NAME);
            ExitCode::FAILURE
        }
    }
}

async fn run<S: Service>() -> anyhow::Result<()> {
    let env = Env::process();
    let config = S::config(&env).context("invalid configuration")?;
    let telemetry_config = S::telemetry(&env).context("invalid configuration")?;
    let telemetry = telemetry::init(&telemetry_config).context("failed to start telemetry")?;
    telemetry.install_global();
    let stop = Stop::new();
    stop.stop_on_signal();
    let result = async {
        let service = S::build(config, &stop)
            .await
            .with_context(|| format!("failed to start {}", S::NAME))?;
        service
            .run()
            .await
            .with_context(|| format!("{} failed", S::NAME))
    }
    .await;
    stop.join().await;
    tracing::info!("{} stopped", S::NAME);
    telemetry.shutdown(stop::FLUSH_DEADLINE).await;
    result
}
