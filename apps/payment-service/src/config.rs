//! Settings from the environment, validated before anything connects.

use std::net::SocketAddr;
use std::time::Duration;

use telemetry::env::{parse, rate, string};
use telemetry::{ConfigError, TelemetryConfig};

/// Everything payment-service reads at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDR` (default `127.0.0.1:3001`).
    pub bind_addr: SocketAddr,
    /// `AMQP_URL`.
    pub amqp_url: String,
    /// `AMQP_PREFIX`, in front of every exchange and queue name.
    pub amqp_prefix: String,
    /// `PAYMENT_LATENCY_MS`: simulated processing time.
    pub latency: Duration,
    /// `PAYMENT_FAILURE_RATE` (0..1): share of payments declined.
    pub failure_rate: f64,
    /// `PUBLISH_CONFIRM_TIMEOUT_MS`: how long to wait for the broker's confirm (default 5000).
    pub confirm_timeout: Duration,
    /// `ADMIN_TOKEN`: when set, required as a bearer token by `/admin/faults`.
    pub admin_token: Option<String>,
    /// Telemetry settings (`OTEL_*`, `RUST_LOG`, `LOG_DIR`).
    pub telemetry: TelemetryConfig,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads any key lookup (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            bind_addr: parse(&get, "BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 3001)))?,
            amqp_url: string(&get, "AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
            amqp_prefix: string(&get, "AMQP_PREFIX", ""),
            latency: Duration::from_millis(parse(&get, "PAYMENT_LATENCY_MS", 0)?),
            failure_rate: rate(&get, "PAYMENT_FAILURE_RATE", 0.0)?,
            confirm_timeout: Duration::from_millis(parse(
                &get,
                "PUBLISH_CONFIRM_TIMEOUT_MS",
                5000,
            )?),
            admin_token: get("ADMIN_TOKEN").filter(|t| !t.is_empty()),
            telemetry: TelemetryConfig::from_lookup("payment-service", &get)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!(c.bind_addr.port(), 3001);
        assert_eq!(c.failure_rate, 0.0);
        let e =
            Config::from_lookup(|k| (k == "PAYMENT_FAILURE_RATE").then(|| "2".into())).unwrap_err();
        assert_eq!(e.variable, "PAYMENT_FAILURE_RATE");
        let e = Config::from_lookup(|k| (k == "BIND_ADDR").then(|| "nope".into())).unwrap_err();
        assert_eq!(e.variable, "BIND_ADDR");
    }
}
