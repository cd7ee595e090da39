//! log-service binary: reads the configuration, sets up JSON logs, runs until SIGINT/SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use log_service::{Application, Config};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("log-service: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let mut telemetry_config =
        telemetry::TelemetryConfig::from_env("log-service").context("invalid configuration")?;
    // log-service never exports its own telemetry to itself: JSON lines only.
    telemetry_config.sdk_disabled = true;
    let telemetry = telemetry::init(&telemetry_config).context("failed to start telemetry")?;
    telemetry.install_global();
    let config = Config::from_env().context("invalid configuration")?;
    let app = Application::build(config)
        .await
        .context("failed to start log-service")?;
    tracing::info!(
        rest_addr = %app.rest_addr(),
        otlp_grpc_addr = %app.otlp_grpc_addr(),
        otlp_http_addr = %app.otlp_http_addr(),
        grpc_addr = %app.grpc_addr(),
        backend = app.backend(),
        "log-service listening"
    );
    let served = app.run_until_stopped().await;
    tracing::info!("log-service stopped");
    telemetry.shutdown(Duration::from_millis(500)).await;
    served.context("log-service failed")
}
