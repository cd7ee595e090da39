//! Settings from the environment, validated before anything connects.

use std::path::PathBuf;
use std::time::Duration;

use server::admin::Simulation;
use server::{ConfigError, Env, HttpConfig};

/// Everything email-service reads at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDR` (default `127.0.0.1:3002`) and the `HTTP_*_TIMEOUT_MS` limits.
    pub listen: server::Listen,
    /// `AMQP_URL` and `AMQP_PREFIX`.
    pub amqp: server::Amqp,
    /// `EMAIL_FAILURE_RATE` (0..1): share of send attempts that fail; `EMAIL_LATENCY_MS`:
    /// simulated sending time.
    pub simulation: Simulation,
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
    /// `OTEL_SERVICE_NAME`: the consumer's `app_id`.
    pub service_name: String,
}

impl HttpConfig for Config {
    /// Reads `env`.
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let log_dir = env.string("LOG_DIR", "./logs");
        Ok(Self {
            listen: server::Listen::from_env(env, 3002)?,
            amqp: server::Amqp::from_env(env),
            simulation: Simulation::from_env(env, "EMAIL_FAILURE_RATE", "EMAIL_LATENCY_MS")?,
            max_attempts: env.at_least("EMAIL_MAX_ATTEMPTS", 3, 1)?,
            prefetch: env.at_least("EMAIL_PREFETCH", 32, 1)?,
            retry_backoff: env.millis("EMAIL_RETRY_BACKOFF_MS", 500)?,
            outbox: PathBuf::from(env.string("EMAIL_OUTBOX", &format!("{log_dir}/outbox.jsonl"))),
            admin_token: env.get("ADMIN_TOKEN").map(str::to_owned),
            service_name: env.string("OTEL_SERVICE_NAME", "email-service"),
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
        assert_eq!(c.outbox, PathBuf::from("./logs/outbox.jsonl"));
        assert_eq!(c.listen.addr.port(), 3002);
        assert_eq!(c.max_attempts, 3);
        let e = Config::from_env(&Env::from_pairs([("EMAIL_PREFETCH", "0")])).unwrap_err();
        assert_eq!(e.variable, "EMAIL_PREFETCH");
        let c = Config::from_env(&Env::from_pairs([("LOG_DIR", "/tmp/x")])).unwrap();
        assert_eq!(c.outbox, PathBuf::from("/tmp/x/outbox.jsonl"));
    }
}
