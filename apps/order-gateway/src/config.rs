//! Settings from the environment, validated before anything connects.

use std::time::Duration;

use server::{ConfigError, Env, FromEnv};

/// Everything order-gateway reads at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PAYMENT_URL` (default `http://127.0.0.1:3001`).
    pub payment_url: String,
    /// `PAYMENT_TIMEOUT_MS` (default 5000): the whole payment call, connect included.
    pub payment_timeout: Duration,
}

impl FromEnv for Config {
    const PORT: u16 = 3000;

    /// Reads `env`.
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            payment_url: env.http_url("PAYMENT_URL", "http://127.0.0.1:3001")?,
            payment_timeout: Duration::from_millis(env.at_least("PAYMENT_TIMEOUT_MS", 5000, 1)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = Config::from_env(&Env::default()).unwrap();
        assert_eq!(c.payment_url, "http://127.0.0.1:3001");
        for (name, value) in [
            ("PAYMENT_URL", "localhost:1"),
            ("PAYMENT_TIMEOUT_MS", "x"),
            ("PAYMENT_TIMEOUT_MS", "0"),
        ] {
            let e = Config::from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(e.variable, name);
        }
    }
}
