//! Settings from the environment, validated before anything connects.

use std::time::Duration;

use server::admin::Simulation;
use server::{ConfigError, Env, HttpConfig};

/// Everything payment-service reads at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDR` (default `127.0.0.1:3001`) and the `HTTP_*_TIMEOUT_MS` limits.
    pub listen: server::Listen,
    /// `AMQP_URL` and `AMQP_PREFIX`.
    pub amqp: server::Amqp,
    /// `PAYMENT_FAILURE_RATE` (0..1): share of payments declined; `PAYMENT_LATENCY_MS`:
    /// simulated processing time.
    pub simulation: Simulation,
    /// `PUBLISH_CONFIRM_TIMEOUT_MS`: how long to wait for the broker's confirm (default 5000).
    pub confirm_timeout: Duration,
    /// `ADMIN_TOKEN`: when set, required as a bearer token by `/admin/faults`.
    pub admin_token: Option<String>,
    /// `OTEL_SERVICE_NAME`: the publisher's `app_id`.
    pub service_name: String,
}

impl HttpConfig for Config {
    /// Reads `env`.
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            listen: server::Listen::from_env(env, 3001)?,
            amqp: server::Amqp::from_env(env),
            simulation: Simulation::from_env(env, "PAYMENT_FAILURE_RATE", "PAYMENT_LATENCY_MS")?,
            confirm_timeout: env.millis("PUBLISH_CONFIRM_TIMEOUT_MS", 5000)?,
            admin_token: env.get("ADMIN_TOKEN").map(str::to_owned),
            service_name: env.string("OTEL_SERVICE_NAME", "payment-service"),
        })
    }

    fn listen(&self) -> server::Listen {
        self.listen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = Config::from_env(&Env::default()).unwrap();
        assert_eq!(c.simulation.failure_rate, 0.0);
        assert_eq!(c.listen.addr.port(), 3001);
        for (name, value) in [("PAYMENT_FAILURE_RATE", "2"), ("BIND_ADDR", "nope")] {
            let e = Config::from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(e.variable, name);
        }
    }
}
