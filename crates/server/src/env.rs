//! Configuration from the environment: one reader ([`Env`]) and one error ([`ConfigError`]) for
//! every server, so each variable is parsed, defaulted and reported the same way.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use telemetry::{OtlpProtocol, TelemetryConfig};

/// A variable that could not be used; the message names the variable, the value and what was
/// expected, so a bad deployment fails at start-up with one readable line.
#[derive(Debug, thiserror::Error)]
#[error("invalid value {value:?} for {variable}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// The value found.
    pub value: String,
    /// What was expected instead.
    pub reason: String,
}

impl ConfigError {
    /// Builds an error for `variable` holding `value`.
    pub fn new(
        variable: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            variable,
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// A snapshot of environment variables. Tests build one from pairs instead of mutating the
/// process environment, which would leak between tests running in parallel.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// Reads the process environment once.
    pub fn process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    /// Builds an environment from name/value pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Returns the trimmed value of `name`; an empty value counts as unset, as shells and compose
    /// files often write `NAME=` for "not set".
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Returns a string, `default` when unset.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).to_owned()
    }

    /// Parses `name` as `T`, `default` when unset.
    pub fn parse<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e: T::Err| ConfigError::new(name, raw, e.to_string())),
        }
    }

    /// Parses a listen address (`HOST:PORT`; port 0 lets the system choose).
    pub fn addr(&self, name: &'static str, default: SocketAddr) -> Result<SocketAddr, ConfigError> {
        self.parse(name, default)
            .map_err(|e| ConfigError::new(name, e.value, "expected HOST:PORT"))
    }

    /// Parses a duration given in milliseconds.
    pub fn millis(&self, name: &'static str, default_ms: u64) -> Result<Duration, ConfigError> {
        self.parse(name, default_ms).map(Duration::from_millis)
    }

    /// Parses a duration written as Prometheus writes one: a whole number with a unit, `ms`, `s`,
    /// `m` or `h` (`200ms`, `15s`, `5m`), or several in a row (`1m30s`); `0` needs no unit.
    pub fn duration(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => parse_duration(raw).map_err(|reason| ConfigError::new(name, raw, reason)),
        }
    }

    /// Parses a whole number of at least `min`.
    pub fn at_least<T>(&self, name: &'static str, default: T, min: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
        T::Err: std::fmt::Display,
    {
        let value = self.parse(name, default)?;
        if value < min {
            return Err(ConfigError::new(
                name,
                value.to_string(),
                format!("must be at least {min}"),
            ));
        }
        Ok(value)
    }

    /// Parses a share between 0 and 1.
    pub fn rate(&self, name: &'static str, default: f64) -> Result<f64, ConfigError> {
        let value: f64 = self.parse(name, default)?;
        if !(0.0..=1.0).contains(&value) {
            return Err(ConfigError::new(
                name,
                value.to_string(),
                "expected a number between 0 and 1",
            ));
        }
        Ok(value)
    }

    /// Parses `true` or `false` in any case.
    pub fn boolean(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(ConfigError::new(name, other, "expected true or false")),
        }
    }

    /// Parses an `http://` or `https://` base URL, without its trailing slash.
    pub fn http_url(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let url = self.string(name, default);
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::new(
                name,
                url,
                "expected an http:// or https:// URL",
            ));
        }
        Ok(url.trim_end_matches('/').to_owned())
    }

    /// Reads the telemetry settings: the standard `OTEL_*` variables, `RUST_LOG`, `LOG_DIR` and
    /// `LOG_STDOUT`, with `default_service` as `service.name` when `OTEL_SERVICE_NAME` is unset.
    pub fn telemetry(&self, default_service: &str) -> Result<TelemetryConfig, ConfigError> {
        let otlp_protocol = match self.get("OTEL_EXPORTER_OTLP_PROTOCOL") {
            None | Some("grpc") => OtlpProtocol::Grpc,
            Some("http/protobuf") => OtlpProtocol::HttpProtobuf,
            Some(other) => {
                return Err(ConfigError::new(
                    "OTEL_EXPORTER_OTLP_PROTOCOL",
                    other,
                    "expected grpc or http/protobuf",
                ));
            }
        };
        // The specification's default port differs by protocol.
        let default_endpoint = match otlp_protocol {
            OtlpProtocol::Grpc => "http://127.0.0.1:4317",
            OtlpProtocol::HttpProtobuf => "http://127.0.0.1:4318",
        };
        let resource_attributes = match self.get("OTEL_RESOURCE_ATTRIBUTES") {
            Some(raw) => parse_resource_attributes(raw)?,
            None => Vec::new(),
        };
        Ok(TelemetryConfig {
            service_name: self.string("OTEL_SERVICE_NAME", default_service),
            otlp_endpoint: self.http_url("OTEL_EXPORTER_OTLP_ENDPOINT", default_endpoint)?,
            otlp_protocol,
            sdk_disabled: self.boolean("OTEL_SDK_DISABLED", false)?,
            resource_attributes,
            log_filter: self.string("RUST_LOG", "info"),
            log_dir: Some(PathBuf::from(self.string("LOG_DIR", "./logs"))),
            log_stdout: self.boolean("LOG_STDOUT", true)?,
        })
    }
}

/// Where a server that uses RabbitMQ finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amqp {
    /// `AMQP_URL` (default the local broker as `guest`).
    pub url: String,
    /// `AMQP_PREFIX` (default none), in front of every exchange and queue name, so parallel
    /// runs never share a queue.
    pub prefix: String,
}

impl Amqp {
    /// Reads `AMQP_URL` and `AMQP_PREFIX` from `env`.
    pub fn from_env(env: &Env) -> Self {
        Self {
            url: env.string("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
            prefix: env.string("AMQP_PREFIX", ""),
        }
    }
}

/// Parses `key1=value1,key2=value2` (values percent-decoded, as the specification asks).
fn parse_resource_attributes(raw: &str) -> Result<Vec<(String, String)>, ConfigError> {
    const NAME: &str = "OTEL_RESOURCE_ATTRIBUTES";
    raw.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| ConfigError::new(NAME, raw, "expected key=value pairs"))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(ConfigError::new(NAME, raw, "empty attribute key"));
            }
            Ok((key.to_owned(), percent_decode(value.trim())))
        })
        .collect()
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads `15s`, `200ms`, `1m30s` or `0`; the reason names what was expected.
fn parse_duration(raw: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a duration such as 200ms, 15s, 5m or 1h";
    if raw == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = raw;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: u64 = rest[..digits].parse().map_err(|_| EXPECTED.to_owned())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            _ => return Err(EXPECTED.to_owned()),
        };
        rest = &rest[unit_len..];
        total = total.saturating_add(part);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn values_are_parsed_and_errors_name_the_variable() {
        let e = env(&[("X", " abc "), ("R", "1.5"), ("EMPTY", "  ")]);
        assert_eq!(e.parse::<u64>("X", 1).unwrap_err().variable, "X");
        assert_eq!(e.parse::<u64>("Y", 7).unwrap(), 7);
        assert_eq!(e.parse::<u64>("EMPTY", 7).unwrap(), 7);
        assert_eq!(e.string("X", "d"), "abc");
        assert!(e.rate("R", 0.0).is_err());
        assert_eq!(
            e.at_least::<u32>("Z", 0, 1).unwrap_err().reason,
            "must be at least 1"
        );
        assert_eq!(
            e.addr("X", "127.0.0.1:1".parse().unwrap())
                .unwrap_err()
                .variable,
            "X"
        );
    }

    #[test]
    fn durations_take_prometheus_units_and_refuse_bare_numbers() {
        let e = env(&[
            ("A", "200ms"),
            ("B", "15s"),
            ("C", "1m30s"),
            ("D", "2h"),
            ("Z", "0"),
            ("BARE", "15"),
            ("BAD", "5 days"),
        ]);
        let d = |n| e.duration(n, Duration::from_secs(9));
        assert_eq!(d("A").unwrap(), Duration::from_millis(200));
        assert_eq!(d("B").unwrap(), Duration::from_secs(15));
        assert_eq!(d("C").unwrap(), Duration::from_secs(90));
        assert_eq!(d("D").unwrap(), Duration::from_secs(7200));
        assert_eq!(d("Z").unwrap(), Duration::ZERO);
        assert_eq!(d("UNSET").unwrap(), Duration::from_secs(9));
        assert_eq!(d("BARE").unwrap_err().variable, "BARE");
        assert!(d("BAD").unwrap_err().reason.contains("15s"));
    }

    #[test]
    fn telemetry_defaults_follow_the_specification() {
        let c = env(&[]).telemetry("svc").unwrap();
        assert_eq!(c.service_name, "svc");
        assert_eq!(c.otlp_endpoint, "http://127.0.0.1:4317");
        assert_eq!(c.otlp_protocol, OtlpProtocol::Grpc);
        assert!(!c.sdk_disabled);
        assert!(c.log_stdout);
        assert_eq!(c.log_filter, "info");
        let c = env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")])
            .telemetry("svc")
            .unwrap();
        assert_eq!(c.otlp_endpoint, "http://127.0.0.1:4318");
    }

    #[test]
    fn telemetry_errors_name_the_variable() {
        for (name, value) in [
            ("OTEL_SDK_DISABLED", "maybe"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317"),
            ("LOG_STDOUT", "no"),
            ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
        ] {
            let e = env(&[(name, value)]).telemetry("svc").unwrap_err();
            assert_eq!(e.variable, name);
        }
        assert!(
            !env(&[("LOG_STDOUT", "FALSE")])
                .telemetry("s")
                .unwrap()
                .log_stdout
        );
    }

    #[test]
    fn resource_attributes_are_parsed_and_decoded() {
        let c = env(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=dev,team=a%20b",
        )])
        .telemetry("svc")
        .unwrap();
        assert_eq!(
            c.resource_attributes,
            vec![
                ("deployment.environment".into(), "dev".into()),
                ("team".into(), "a b".into())
            ]
        );
    }
}
