//! Settings from the environment, validated before anything connects.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use telemetry::env::{parse, rate, string};
use telemetry::{ConfigError, TelemetryConfig};

/// Everything email-service reads at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDR` of the admin server (default `127.0.0.1:3002`).
    pub bind_addr: SocketAddr,
    /// `AMQP_URL`.
    pub amqp_url: String,
    /// `AMQP_PREFIX`.
    pub amqp_prefix: String,
    /// `EMAIL_LATENCY_MS`: simulated sending time.
    pub latency: Duration,
    /// `EMAIL_FAILURE_RATE` (0..1): share of send attempts that fail.
    pub failure_rate: f64,
    /// `EMAIL_MAX_ATTEMPTS` (default 3): attempts before dead-lettering.
    pub max_attempts: u32,
    /// `EMAIL_PREFETCH` (default 32): deliveries in flight.
    pub prefetch: u16,
    /// `EMAIL_RETRY_BACKOFF_MS` (default 500): delay before the second attempt, doubling after.
    pub retry_backoff: Duration,
    /// `EMAIL_OUTBOX` (default `$LOG_DIR/outbox.jsonl`).
    pub outbox: PathBuf,
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
        let telemetry = TelemetryConfig::from_lookup("email-service", &get)?;
        let max_attempts: u32 = parse(&get, "EMAIL_MAX_ATTEMPTS", 3)?;
        if max_attempts == 0 {
            return Err(ConfigError::new(
                "EMAIL_MAX_ATTEMPTS",
                "0",
                "must be at least 1",
            ));
        }
        let prefetch: u16 = parse(&get, "EMAIL_PREFETCH", 32)?;
        if prefetch == 0 {
            return Err(ConfigError::new(
                "EMAIL_PREFETCH",
                "0",
                "must be at least 1",
            ));
        }
        let log_dir = string(&get, "LOG_DIR", "./logs");
        Ok(Self {
            bind_addr: parse(&get, "BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 3002)))?,
            amqp_url: string(&get, "AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
            amqp_prefix: string(&get, "AMQP_PREFIX", ""),
            latency: Duration::from_millis(parse(&get, "EMAIL_LATENCY_MS", 0)?),
            failure_rate: rate(&get, "EMAIL_FAILURE_RATE", 0.0)?,
            max_attempts,
            prefetch,
            retry_backoff: Duration::from_millis(parse(&get, "EMAIL_RETRY_BACKOFF_MS", 500)?),
            outbox: PathBuf::from(string(
                &get,
                "EMAIL_OUTBOX",
                &format!("{log_dir}/outbox.jsonl"),
            )),
            admin_token: get("ADMIN_TOKEN").filter(|t| !t.is_empty()),
            telemetry,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!(c.bind_addr.port(), 3002);
        assert_eq!(c.outbox, PathBuf::from("./logs/outbox.jsonl"));
        assert_eq!(c.max_attempts, 3);
        let e = Config::from_lookup(|k| (k == "EMAIL_PREFETCH").then(|| "0".into())).unwrap_err();
        assert_eq!(e.variable, "EMAIL_PREFETCH");
        let c = Config::from_lookup(|k| (k == "LOG_DIR").then(|| "/tmp/x".into())).unwrap();
        assert_eq!(c.outbox, PathBuf::from("/tmp/x/outbox.jsonl"));
    }
}
