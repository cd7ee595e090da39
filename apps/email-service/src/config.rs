//! Settings from the environment, validated before anything connects.

use std::path::PathBuf;
use std::time::Duration;

use server::admin::FaultsConfig;
use server::{ConfigError, Env, FromEnv};

/// Everything email-service reads at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    /// `AMQP_URL`, `AMQP_PREFIX` and the consumer's `app_id`.
    pub amqp: server::Amqp,
    /// `EMAIL_FAILURE_RATE` (0..1) and `EMAIL_LATENCY_MS`: the starting faults; `ADMIN_TOKEN`.
    pub faults: FaultsConfig,
    /// `EMAIL_MAX_ATTEMPTS` (default 3): attempts before dead-lettering.
    pub max_attempts: u32,
    /// `EMAIL_PREFETCH` (default 32): deliveries in flight.
    pub prefetch: u16,
    /// `EMAIL_RETRY_BACKOFF_MS` (default 500): delay before the second attempt, doubling after.
    pub retry_backoff: Duration,
    /// `EMAIL_OUTBOX` (default `$LOG_DIR/outbox.jsonl`).
    pub outbox: PathBuf,
}

impl FromEnv for Config {
    const PORT: u16 = 3002;

    /// Reads `env`.
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let log_dir = env.string("LOG_DIR", "./logs");
        Ok(Self {
            amqp: server::Amqp::from_env(env, "email-service")?,
            faults: FaultsConfig::from_env(env, "EMAIL_FAILURE_RATE", "EMAIL_LATENCY_MS")?,
            max_attempts: env.at_least("EMAIL_MAX_ATTEMPTS", 3, 1)?,
            prefetch: env.at_least("EMAIL_PREFETCH", 32, 1)?,
            retry_backoff: env.millis("EMAIL_RETRY_BACKOFF_MS", 500)?,
            outbox: PathBuf::from(env.string("EMAIL_OUTBOX", &format!("{log_dir}/outbox.jsonl"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = Config::from_env(&Env::default()).unwrap();
        assert_eq!(c.outbox, PathBuf::from("./logs/outbox.jsonl"));
        assert_eq!(c.max_attempts, 3);
        let e = Config::from_env(&Env::from_pairs([("EMAIL_PREFETCH", "0")])).unwrap_err();
        assert_eq!(e.variable, "EMAIL_PREFETCH");
        let c = Config::from_env(&Env::from_pairs([("LOG_DIR", "/tmp/x")])).unwrap();
        assert_eq!(c.outbox, PathBuf::from("/tmp/x/outbox.jsonl"));
    }
}
