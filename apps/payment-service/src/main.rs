use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use payment_service::{Application, Config};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, whole cause chain, no backtrace: what failed and why.
            eprintln!("payment-service: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let config = Config::from_env().context("invalid configuration")?;
    let telemetry = telemetry::init(&config.telemetry).context("failed to start telemetry")?;
    telemetry.install_global();
    let app = Application::build(config)
        .await
        .context("failed to start payment-service")?;
    let served = app
        .run_until_stopped(telemetry::env::shutdown_signal())
        .await;
    telemetry.shutdown(Duration::from_millis(1500)).await;
    served.context("payment-service failed")
}
