//! Settings from the environment, validated before anything connects.

use std::net::SocketAddr;
use std::time::Duration;

use telemetry::env::{parse, string};
use telemetry::{ConfigError, TelemetryConfig};

/// Everything order-gateway reads at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDR` (default `127.0.0.1:3000`).
    pub bind_addr: SocketAddr,
    /// `PAYMENT_URL` (default `http://127.0.0.1:3001`).
    pub payment_url: String,
    /// `PAYMENT_TIMEOUT_MS` (default 5000): the whole payment call, connect included.
    pub payment_timeout: Duration,
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
        let payment_url = string(&get, "PAYMENT_URL", "http://127.0.0.1:3001")
            .trim_end_matches('/')
            .to_owned();
        if !(payment_url.starts_with("http://") || payment_url.starts_with("https://")) {
            return Err(ConfigError::new(
                "PAYMENT_URL",
                payment_url,
                "expected an http:// URL",
            ));
        }
        let timeout_ms: u64 = parse(&get, "PAYMENT_TIMEOUT_MS", 5000)?;
        if timeout_ms == 0 {
            return Err(ConfigError::new(
                "PAYMENT_TIMEOUT_MS",
                "0",
                "must be positive",
            ));
        }
        Ok(Self {
            bind_addr: parse(&get, "BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 3000)))?,
            payment_url,
            payment_timeout: Duration::from_millis(timeout_ms),
            telemetry: TelemetryConfig::from_lookup("order-gateway", &get)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!(c.bind_addr.port(), 3000);
        assert_eq!(c.payment_url, "http://127.0.0.1:3001");
        let e = Config::from_lookup(|k| (k == "PAYMENT_URL").then(|| "localhost:1".into()))
            .unwrap_err();
        assert_eq!(e.variable, "PAYMENT_URL");
        let e =
            Config::from_lookup(|k| (k == "PAYMENT_TIMEOUT_MS").then(|| "x".into())).unwrap_err();
        assert_eq!(e.variable, "PAYMENT_TIMEOUT_MS");
    }
}
