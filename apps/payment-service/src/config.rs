//! Settings from the environment, validated before anything connects.

use std::time::Duration;

use server::{ConfigError, Env};

/// Everything payment-service reads at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDR` (default `127.0.0.1:3001`) and the `HTTP_*_TIMEOUT_MS` limits.
    pub listen: server::Listen,
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
    /// `OTEL_SERVICE_NAME`: the publisher's `app_id`.
    pub service_name: String,
}

impl Config {
    /// Reads `env`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            listen: server::Listen::from_env(env, 3001)?,
            amqp_url: env.string("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
            amqp_prefix: env.string("AMQP_PREFIX", ""),
            latency: env.millis("PAYMENT_LATENCY_MS", 0)?,
            failure_rate: env.rate("PAYMENT_FAILURE_RATE", 0.0)?,
            confirm_timeout: env.millis("PUBLISH_CONFIRM_TIMEOUT_MS", 5000)?,
            admin_token: env.get("ADMIN_TOKEN").map(str::to_owned),
            service_name: env.string("OTEL_SERVICE_NAME", "payment-service"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = Config::from_env(&Env::default()).unwrap();
        assert_eq!(c.listen.addr.port(), 3001);
        assert_eq!(c.failure_rate, 0.0);
        for (name, value) in [("PAYMENT_FAILURE_RATE", "2"), ("BIND_ADDR", "nope")] {
            let e = Config::from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(e.variable, name);
        }
    }
}
