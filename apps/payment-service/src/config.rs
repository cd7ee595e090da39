//! Settings from the environment, validated before anything connects.

use std::time::Duration;

use server::admin::FaultsConfig;
use server::{ConfigError, Env, FromEnv};

/// Everything payment-service reads at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    /// `AMQP_URL`, `AMQP_PREFIX` and the publisher's `app_id`.
    pub amqp: server::Amqp,
    /// `PAYMENT_FAILURE_RATE` (0..1) and `PAYMENT_LATENCY_MS`: the starting faults; `ADMIN_TOKEN`.
    pub faults: FaultsConfig,
    /// `PUBLISH_CONFIRM_TIMEOUT_MS`: how long to wait for the broker's confirm (default 5000).
    pub confirm_timeout: Duration,
}

impl FromEnv for Config {
    const PORT: u16 = 3001;

    /// Reads `env`.
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            amqp: server::Amqp::from_env(env, "payment-service")?,
            faults: FaultsConfig::from_env(env, "PAYMENT_FAILURE_RATE", "PAYMENT_LATENCY_MS")?,
            confirm_timeout: env.millis("PUBLISH_CONFIRM_TIMEOUT_MS", 5000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = Config::from_env(&Env::default()).unwrap();
        assert_eq!(c.faults.simulation.failure_rate, 0.0);
        for (name, value) in [("PAYMENT_FAILURE_RATE", "2"), ("PAYMENT_LATENCY_MS", "x")] {
            let e = Config::from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(e.variable, name);
        }
    }
}
