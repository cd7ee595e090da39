//! Typed configuration, read once from the environment and validated before anything binds or connects.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use server::{ConfigError, Env};

use crate::auth::ApiKeys;
use crate::retention::{MAX_RETENTION_DAYS, RetentionConfig};

/// Where rows are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseConfig {
    /// Embedded SQLite file (`sqlite://PATH`); the parent directory is created at start-up.
    Sqlite { path: PathBuf },
    /// PostgreSQL (`postgres://...` or `postgresql://...`), with the minisource REST API's schema.
    Postgres { url: String },
}

impl DatabaseConfig {
    /// Parses a `DATABASE_URL` value.
    pub fn parse(url: &str) -> Result<DatabaseConfig, String> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseConfig::Postgres {
                url: url.to_owned(),
            });
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| format!("expected sqlite://PATH or postgres://URL, got {url:?}"))?;
        if path.is_empty() {
            return Err("sqlite path is empty".into());
        }
        Ok(DatabaseConfig::Sqlite {
            path: PathBuf::from(path),
        })
    }

    /// Backend name for logs and `/storage`.
    pub fn backend(&self) -> &'static str {
        match self {
            DatabaseConfig::Sqlite { .. } => "sqlite",
            DatabaseConfig::Postgres { .. } => "postgres",
        }
    }
}

/// Bytes in one GiB, the unit of `LOG_MAX_SIZE_GB`.
const GIB: u64 = 1 << 30;

/// Everything log-service needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// REST API (`BIND_ADDR`, default 127.0.0.1:5002).
    pub rest_addr: SocketAddr,
    /// OTLP gRPC receiver (`OTLP_GRPC_ADDR`, default 127.0.0.1:4317).
    pub otlp_grpc_addr: SocketAddr,
    /// OTLP HTTP receiver (`OTLP_HTTP_ADDR`, default 127.0.0.1:4318).
    pub otlp_http_addr: SocketAddr,
    /// The distributed-logging gRPC API, ingest and query (`GRPC_ADDR`, default 127.0.0.1:50051).
    pub grpc_addr: SocketAddr,
    /// Storage (`DATABASE_URL`, default `sqlite://./data/log-service.db`).
    pub database: DatabaseConfig,
    /// Rows that may wait for the writer before ingest answers 429 / RESOURCE_EXHAUSTED.
    pub queue_capacity: usize,
    /// Most rows the writer puts in one transaction (group commit).
    pub max_batch_rows: usize,
    /// Largest accepted request body, in bytes (HTTP and gRPC).
    pub max_body_bytes: usize,
    /// Logs the live tail's broadcast keeps for subscribers that are behind (`STREAM_BUFFER`).
    pub stream_buffer: usize,
    /// Interval of the live tail's `: keep-alive` comments (`STREAM_HEARTBEAT_MS`).
    pub stream_heartbeat: std::time::Duration,
    /// How long a peer may take on any listener (`HTTP_*_TIMEOUT_MS`).
    pub limits: server::Limits,
    /// Default days kept, the size cap and the enforcement interval (`LOG_RETENTION_DAYS`,
    /// `LOG_MAX_SIZE_GB`, `RETENTION_INTERVAL`).
    pub retention: RetentionConfig,
    /// When set, the bearer token the retention admin routes require (`ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// Log alert rules: evaluation and delivery to Alertmanager.
    pub alerts: AlertsConfig,
    /// The API keys every request must carry one of (`API_KEYS_FILE`); none: `X-Tenant-ID`
    /// alone decides the tenant, as without access control.
    pub api_keys: Option<ApiKeys>,
}

/// How log alert rules are evaluated and where their alerts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertsConfig {
    /// Time between two evaluations of every rule (`ALERT_EVAL_INTERVAL`, default 15s).
    pub eval_interval: Duration,
    /// Alertmanager's base URL (`ALERTMANAGER_URL`); alerts go to `<url>/api/v2/alerts`. Unset:
    /// rules are evaluated and their state shown, nothing is sent.
    pub alertmanager_url: Option<String>,
    /// Longest wait for Alertmanager to answer one delivery (`ALERTMANAGER_TIMEOUT`, default 10s).
    pub alertmanager_timeout: Duration,
    /// Rules loaded at start, upserted by name (`ALERT_RULES_FILE`).
    pub rules_file: Option<PathBuf>,
    /// Base of the links in alerts (`PUBLIC_URL`); `http://<BIND_ADDR>` when unset.
    pub public_url: Option<String>,
}

impl Default for AlertsConfig {
    fn default() -> AlertsConfig {
        AlertsConfig {
            eval_interval: Duration::from_secs(15),
            alertmanager_url: None,
            alertmanager_timeout: Duration::from_secs(10),
            rules_file: None,
            public_url: None,
        }
    }
}

impl AlertsConfig {
    fn from_env(env: &Env) -> Result<AlertsConfig, ConfigError> {
        let defaults = AlertsConfig::default();
        let eval_interval = env.duration("ALERT_EVAL_INTERVAL", defaults.eval_interval)?;
        if eval_interval < Duration::from_millis(10) {
            return Err(ConfigError::new(
                "ALERT_EVAL_INTERVAL",
                env.string("ALERT_EVAL_INTERVAL", ""),
                "must be at least 10ms",
            ));
        }
        let alertmanager_timeout =
            env.duration("ALERTMANAGER_TIMEOUT", defaults.alertmanager_timeout)?;
        let alertmanager_url = match env.get("ALERTMANAGER_URL") {
            None => None,
            // The HTTP client is built without TLS: Alertmanager sits beside log-service.
            Some(url) if !url.starts_with("http://") => {
                return Err(ConfigError::new(
                    "ALERTMANAGER_URL",
                    url,
                    "expected an http:// URL such as http://alertmanager:9093",
                ));
            }
            Some(_) => Some(env.http_url("ALERTMANAGER_URL", "")?),
        };
        let public_url = match env.get("PUBLIC_URL") {
            None => None,
            Some(_) => Some(env.http_url("PUBLIC_URL", "")?),
        };
        Ok(AlertsConfig {
            eval_interval,
            alertmanager_url,
            alertmanager_timeout,
            rules_file: env.get("ALERT_RULES_FILE").map(PathBuf::from),
            public_url,
        })
    }
}

impl Config {
    /// Defaults of the contract, with every address on port 0 and storage in `path`: what tests use.
    pub fn for_tests(path: impl Into<PathBuf>) -> Config {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("static address");
        Config {
            rest_addr: any,
            otlp_grpc_addr: any,
            otlp_http_addr: any,
            grpc_addr: any,
            database: DatabaseConfig::Sqlite { path: path.into() },
            ..Config::defaults()
        }
    }

    fn defaults() -> Config {
        let addr = |s: &str| s.parse().expect("static address");
        Config {
            rest_addr: addr("127.0.0.1:5002"),
            otlp_grpc_addr: addr("127.0.0.1:4317"),
            otlp_http_addr: addr("127.0.0.1:4318"),
            grpc_addr: addr("127.0.0.1:50051"),
            database: DatabaseConfig::Sqlite {
                path: PathBuf::from("./data/log-service.db"),
            },
            queue_capacity: 500_000,
            max_batch_rows: 50_000,
            max_body_bytes: 16 * 1024 * 1024,
            stream_buffer: 16_384,
            stream_heartbeat: std::time::Duration::from_secs(15),
            limits: server::Limits::default(),
            alerts: AlertsConfig::default(),
            retention: RetentionConfig {
                default_days: 30,
                max_size_bytes: 50 * GIB,
                interval: std::time::Duration::from_secs(300),
            },
            admin_token: None,
            api_keys: None,
        }
    }

    /// Reads `env`.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let defaults = Config::defaults();
        let database = match env.get("DATABASE_URL") {
            None => defaults.database,
            Some(url) => DatabaseConfig::parse(url)
                .map_err(|reason| ConfigError::new("DATABASE_URL", url, reason))?,
        };
        let limits = server::Limits::from_env(env)?;
        // A heartbeat rarer than the idle timeout would let the listener close a quiet stream,
        // so a short idle timeout shortens the default heartbeat to half of it.
        let idle_ms = limits.idle_timeout.as_millis() as u64;
        let default_heartbeat_ms = (defaults.stream_heartbeat.as_millis() as u64).min(idle_ms / 2);
        let heartbeat_ms = env.at_least("STREAM_HEARTBEAT_MS", default_heartbeat_ms.max(1), 1)?;
        if heartbeat_ms >= idle_ms {
            return Err(ConfigError::new(
                "STREAM_HEARTBEAT_MS",
                heartbeat_ms.to_string(),
                "must be shorter than HTTP_IDLE_TIMEOUT_MS",
            ));
        }
        let default_days = env.parse("LOG_RETENTION_DAYS", defaults.retention.default_days)?;
        if !(1..=MAX_RETENTION_DAYS).contains(&default_days) {
            return Err(ConfigError::new(
                "LOG_RETENTION_DAYS",
                default_days.to_string(),
                format!("expected 1 to {MAX_RETENTION_DAYS} days"),
            ));
        }
        let max_gb: f64 = env.parse("LOG_MAX_SIZE_GB", 50.0)?;
        if !(max_gb.is_finite() && max_gb > 0.0) {
            return Err(ConfigError::new(
                "LOG_MAX_SIZE_GB",
                max_gb.to_string(),
                "expected a positive number of GiB (fractions allowed)",
            ));
        }
        let retention = RetentionConfig {
            default_days,
            max_size_bytes: (max_gb * GIB as f64) as u64,
            interval: env.duration("RETENTION_INTERVAL", defaults.retention.interval)?,
        };
        let api_keys = match env.get("API_KEYS_FILE") {
            Some(path) => Some(
                ApiKeys::load(std::path::Path::new(path))
                    .map_err(|reason| ConfigError::new("API_KEYS_FILE", path, reason))?,
            ),
            None => None,
        };
        Ok(Config {
            api_keys,
            retention,
            admin_token: env.get("ADMIN_TOKEN").map(str::to_owned),
            stream_buffer: env.at_least("STREAM_BUFFER", defaults.stream_buffer, 1)?,
            stream_heartbeat: std::time::Duration::from_millis(heartbeat_ms),
            rest_addr: env.addr("BIND_ADDR", defaults.rest_addr)?,
            otlp_grpc_addr: env.addr("OTLP_GRPC_ADDR", defaults.otlp_grpc_addr)?,
            otlp_http_addr: env.addr("OTLP_HTTP_ADDR", defaults.otlp_http_addr)?,
            grpc_addr: env.addr("GRPC_ADDR", defaults.grpc_addr)?,
            database,
            limits,
            alerts: AlertsConfig::from_env(env)?,
            ..defaults
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that each `(variable, value)` alone stops the start with an error naming it.
    fn assert_each_refused(cases: &[(&str, &str)]) {
        for &(variable, value) in cases {
            let err = Config::from_env(&Env::from_pairs([(variable, value)])).unwrap_err();
            assert_eq!(err.variable, variable, "{value}");
        }
    }

    #[test]
    fn defaults_follow_the_contract() {
        let config = Config::from_env(&Env::default()).unwrap();
        assert_eq!(config.rest_addr.to_string(), "127.0.0.1:5002");
        assert_eq!(config.otlp_grpc_addr.port(), 4317);
        assert_eq!(config.otlp_http_addr.port(), 4318);
        assert_eq!(config.grpc_addr.port(), 50051);
        assert_eq!(
            config.database,
            DatabaseConfig::Sqlite {
                path: "./data/log-service.db".into()
            }
        );
    }

    #[test]
    fn retention_has_defaults_and_takes_fractional_caps() {
        let config = Config::from_env(&Env::default()).unwrap();
        assert_eq!(config.retention.default_days, 30);
        assert_eq!(config.retention.max_size_bytes, 50 * GIB);
        assert_eq!(config.retention.interval.as_secs(), 300);
        assert_eq!(config.admin_token, None);
        let config = Config::from_env(&Env::from_pairs([
            ("LOG_RETENTION_DAYS", "7"),
            ("LOG_MAX_SIZE_GB", "0.5"),
            ("RETENTION_INTERVAL", "250ms"),
            ("ADMIN_TOKEN", "s3cret"),
        ]))
        .unwrap();
        assert_eq!(config.retention.default_days, 7);
        assert_eq!(config.retention.max_size_bytes, GIB / 2);
        assert_eq!(config.retention.interval.as_millis(), 250);
        assert_eq!(config.admin_token.as_deref(), Some("s3cret"));
    }

    #[test]
    fn postgres_urls_select_postgres_and_port_zero_is_allowed() {
        let config = Config::from_env(&Env::from_pairs([
            ("DATABASE_URL", "postgres://postgres@127.0.0.1/test"),
            ("BIND_ADDR", "0.0.0.0:0"),
        ]))
        .unwrap();
        assert_eq!(config.database.backend(), "postgres");
        assert_eq!(config.rest_addr.port(), 0);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Config::from_env(&Env::from_pairs([("OTLP_HTTP_ADDR", "nope")])).unwrap_err();
        assert_eq!(err.variable, "OTLP_HTTP_ADDR");
        assert!(err.to_string().contains("OTLP_HTTP_ADDR"));
        let err = Config::from_env(&Env::from_pairs([("DATABASE_URL", "mysql://x")])).unwrap_err();
        assert_eq!(err.variable, "DATABASE_URL");
        let err =
            Config::from_env(&Env::from_pairs([("STREAM_HEARTBEAT_MS", "200000")])).unwrap_err();
        assert_eq!(err.variable, "STREAM_HEARTBEAT_MS");
        let err = Config::from_env(&Env::from_pairs([("STREAM_BUFFER", "0")])).unwrap_err();
        assert_eq!(err.variable, "STREAM_BUFFER");
        assert_each_refused(&[
            ("LOG_RETENTION_DAYS", "0"),
            ("LOG_RETENTION_DAYS", "3651"),
            ("LOG_MAX_SIZE_GB", "0"),
            ("LOG_MAX_SIZE_GB", "-1"),
            ("LOG_MAX_SIZE_GB", "lots"),
            ("RETENTION_INTERVAL", "5"),
        ]);
    }

    #[test]
    fn a_short_idle_timeout_shortens_the_default_heartbeat() {
        let config =
            Config::from_env(&Env::from_pairs([("HTTP_IDLE_TIMEOUT_MS", "1000")])).unwrap();
        assert_eq!(
            config.stream_heartbeat,
            std::time::Duration::from_millis(500)
        );
        let config = Config::from_env(&Env::from_pairs::<&str, &str>([])).unwrap();
        assert_eq!(config.stream_heartbeat, std::time::Duration::from_secs(15));
    }

    #[test]
    fn alert_settings_default_to_evaluating_without_sending() {
        let alerts = Config::from_env(&Env::default()).unwrap().alerts;
        assert_eq!(alerts.eval_interval, Duration::from_secs(15));
        assert_eq!(alerts.alertmanager_url, None);
        assert_eq!(alerts.rules_file, None);
        let alerts = Config::from_env(&Env::from_pairs([
            ("ALERT_EVAL_INTERVAL", "200ms"),
            ("ALERTMANAGER_URL", "http://alertmanager:9093/"),
            ("ALERT_RULES_FILE", "observability/log-alert-rules.json"),
            ("PUBLIC_URL", "http://logs.example:5002"),
        ]))
        .unwrap()
        .alerts;
        assert_eq!(alerts.eval_interval, Duration::from_millis(200));
        assert_eq!(
            alerts.alertmanager_url.as_deref(),
            Some("http://alertmanager:9093")
        );
        assert_eq!(
            alerts.public_url.as_deref(),
            Some("http://logs.example:5002")
        );
        assert_each_refused(&[
            ("ALERT_EVAL_INTERVAL", "15"),
            ("ALERT_EVAL_INTERVAL", "1ms"),
            ("ALERTMANAGER_URL", "alertmanager:9093"),
            ("ALERTMANAGER_URL", "https://alertmanager:9093"),
            ("ALERTMANAGER_TIMEOUT", "0"),
            ("PUBLIC_URL", "logs.example"),
        ]);
    }

    #[test]
    fn a_keys_file_loads_and_a_bad_one_stops_the_start_naming_the_variable() {
        let dir = std::env::temp_dir().join(format!("log-service-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sha = "a".repeat(64);
        let good =
            format!(r#"[{{"name": "ci", "tenant": "acme", "role": "write", "sha256": "{sha}"}}]"#);
        let bad_role = good.replace("write", "owner");
        let bad_hash = good.replace(&sha, "xyz");
        let duplicate = format!(
            r#"[{{"name": "ci", "tenant": "a", "role": "read", "sha256": "{sha}"}},
                {{"name": "ci", "tenant": "b", "role": "read", "sha256": "{sha}"}}]"#
        );
        let load = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            Config::from_env(&Env::from_pairs([(
                "API_KEYS_FILE",
                path.to_str().unwrap(),
            )]))
        };
        let config = load("good.json", &good).unwrap();
        assert!(config.api_keys.is_some());
        assert!(
            Config::from_env(&Env::default())
                .unwrap()
                .api_keys
                .is_none()
        );
        for (name, text, problem) in [
            ("broken.json", "[{", "not a JSON list"),
            ("role.json", bad_role.as_str(), "unknown role \"owner\""),
            ("hash.json", bad_hash.as_str(), "64 hex digits"),
            ("twice.json", duplicate.as_str(), "\"ci\" appears twice"),
        ] {
            let err = load(name, text).unwrap_err();
            assert_eq!(err.variable, "API_KEYS_FILE", "{name}");
            let line = err.to_string();
            assert!(
                line.contains("API_KEYS_FILE") && line.contains(problem),
                "{name}: {line}"
            );
            assert!(!line.contains('\n'), "one line: {line}");
        }
        let missing = dir.join("missing.json");
        let err = Config::from_env(&Env::from_pairs([(
            "API_KEYS_FILE",
            missing.to_str().unwrap(),
        )]))
        .unwrap_err();
        assert!(err.to_string().contains("cannot be read"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
