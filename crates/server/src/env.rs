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

/// Parses `250ms`, `30s`, `5m`, `2h` or `1d` (see [`Env::duration`]).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let expected = "expected a whole number with a unit: ms, s, m, h or d (e.g. 250ms, 30s, 5m)";
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| expected.to_owned())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| expected.to_owned())?;
    let millis_per_unit: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(expected.to_owned()),
    };
    if n == 0 {
        return Err("must be longer than zero".into());
    }
    n.checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| "too long".into())
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

    /// Parses a duration written as a whole number and a unit: `250ms`, `30s`, `5m`, `2h` or
    /// `1d`; `default` when unset. Zero is refused: every such setting is an interval or a
    /// deadline, and zero of either means a busy loop or no time at all.
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
    /// `AMQP_URL` (default the local broker as `guest`): one node's URL, or a cluster's nodes'
    /// separated by commas, tried in order.
    pub url: String,
    /// `AMQP_PREFIX` (default none), in front of every exchange and queue name, so parallel
    /// runs never share a queue.
    pub prefix: String,
    /// `OTEL_SERVICE_NAME` (default the server's name): the `app_id` of published messages and
    /// the name of the connection in the broker's management view.
    pub app_id: String,
    /// `AMQP_QUEUE_TYPE=quorum` (default `classic`): declare quorum queues, replicated on the
    /// cluster's nodes.
    pub quorum: bool,
}

impl Amqp {
    /// Reads `AMQP_URL`, `AMQP_PREFIX`, `AMQP_QUEUE_TYPE` and `OTEL_SERVICE_NAME` (default
    /// `service`) from `env`.
    pub fn from_env(env: &Env, service: &str) -> Result<Self, ConfigError> {
        let url = env.string("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f");
        let nodes: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        let not_amqp = |node: &&str| !(node.starts_with("amqp://") || node.starts_with("amqps://"));
        if nodes.is_empty() || nodes.iter().any(not_amqp) {
            return Err(ConfigError::new(
                "AMQP_URL",
                "(not shown: it may hold a password)",
                "must be one or more amqp:// or amqps:// URLs separated by commas",
            ));
        }
        let quorum = match env.get("AMQP_QUEUE_TYPE").unwrap_or("classic") {
            "classic" => false,
            "quorum" => true,
            other => {
                return Err(ConfigError::new(
                    "AMQP_QUEUE_TYPE",
                    other,
                    "must be classic or quorum",
                ));
            }
        };
        Ok(Self {
            url,
            prefix: env.string("AMQP_PREFIX", ""),
            app_id: env.string("OTEL_SERVICE_NAME", service),
            quorum,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit() {
        let env = Env::from_pairs([("A", "250ms"), ("B", "30s"), ("C", "5m"), ("D", "1d")]);
        for (name, expected) in [
            ("A", Duration::from_millis(250)),
            ("B", Duration::from_secs(30)),
            ("C", Duration::from_secs(300)),
            ("D", Duration::from_secs(86_400)),
        ] {
            assert_eq!(
                env.duration(name, Duration::ZERO).unwrap(),
                expected,
                "{name}"
            );
        }
        assert_eq!(
            env.duration("UNSET", Duration::from_secs(7)).unwrap(),
            Duration::from_secs(7)
        );
        for bad in [
            "5",
            "m",
            "5 minutes",
            "-5s",
            "0s",
            "1.5s",
            "99999999999999999d",
        ] {
            let err = Env::from_pairs([("X", bad)])
                .duration("X", Duration::ZERO)
                .unwrap_err();
            assert_eq!(err.variable, "X", "{bad}");
        }
    }

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
