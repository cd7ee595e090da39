//! Telemetry settings read from the standard `OTEL_*` variables, `RUST_LOG` and `LOG_DIR`.

use std::path::PathBuf;

/// The wire protocol used to reach the OTLP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (tonic), the default; port 4317 by convention.
    Grpc,
    /// OTLP over HTTP with protobuf bodies; port 4318 by convention.
    HttpProtobuf,
}

/// A setting that could not be parsed; the message names the variable.
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

/// Everything [`crate::init`] needs; built from the environment or by hand in tests.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Resource `service.name`, also the `service` field of every log line and the log file name.
    pub service_name: String,
    /// OTLP endpoint base URL (no signal path).
    pub otlp_endpoint: String,
    /// OTLP wire protocol.
    pub otlp_protocol: OtlpProtocol,
    /// When true, nothing is exported over OTLP; spans still get ids so logs stay correlated.
    pub sdk_disabled: bool,
    /// Extra resource attributes (`OTEL_RESOURCE_ATTRIBUTES`).
    pub resource_attributes: Vec<(String, String)>,
    /// `RUST_LOG`-style filter for the JSON log output.
    pub log_filter: String,
    /// Directory of `<service>.log`; `None` disables the file.
    pub log_dir: Option<PathBuf>,
    /// Whether JSON lines also go to stdout.
    pub log_stdout: bool,
}

impl TelemetryConfig {
    /// Builds a configuration for `default_service` from the process environment.
    pub fn from_env(default_service: &str) -> Result<Self, ConfigError> {
        Self::from_lookup(default_service, |key| std::env::var(key).ok())
    }

    /// Builds a configuration from any key lookup, so tests need not touch the process environment.
    pub fn from_lookup(
        default_service: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let nonempty = |key: &str| get(key).filter(|v| !v.trim().is_empty());
        let otlp_protocol = match nonempty("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
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
        let otlp_endpoint = match nonempty("OTEL_EXPORTER_OTLP_ENDPOINT") {
            Some(url) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::new(
                        "OTEL_EXPORTER_OTLP_ENDPOINT",
                        url,
                        "expected an http:// or https:// URL",
                    ));
                }
                url.trim_end_matches('/').to_owned()
            }
            None => match otlp_protocol {
                OtlpProtocol::Grpc => "http://127.0.0.1:4317".to_owned(),
                OtlpProtocol::HttpProtobuf => "http://127.0.0.1:4318".to_owned(),
            },
        };
        let sdk_disabled = boolean(&nonempty, "OTEL_SDK_DISABLED", false)?;
        let log_stdout = boolean(&nonempty, "LOG_STDOUT", true)?;
        let resource_attributes = match nonempty("OTEL_RESOURCE_ATTRIBUTES") {
            Some(raw) => parse_resource_attributes(&raw)?,
            None => Vec::new(),
        };
        Ok(Self {
            service_name: nonempty("OTEL_SERVICE_NAME").unwrap_or_else(|| default_service.into()),
            otlp_endpoint,
            otlp_protocol,
            sdk_disabled,
            resource_attributes,
            log_filter: nonempty("RUST_LOG").unwrap_or_else(|| "info".into()),
            log_dir: Some(PathBuf::from(
                nonempty("LOG_DIR").unwrap_or_else(|| "./logs".into()),
            )),
            log_stdout,
        })
    }
}

/// Reads `true` or `false` (any case) from `key`, `default` when it is unset or empty.
fn boolean(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(ConfigError::new(key, v, "expected true or false")),
    }
}

/// Parses `key1=value1,key2=value2` (values percent-decoded, as the specification asks).
fn parse_resource_attributes(raw: &str) -> Result<Vec<(String, String)>, ConfigError> {
    raw.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                ConfigError::new("OTEL_RESOURCE_ATTRIBUTES", raw, "expected key=value pairs")
            })?;
            let key = key.trim();
            if key.is_empty() {
                return Err(ConfigError::new(
                    "OTEL_RESOURCE_ATTRIBUTES",
                    raw,
                    "empty attribute key",
                ));
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
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<TelemetryConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TelemetryConfig::from_lookup("svc", |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_specification() {
        let c = config(&[]).unwrap();
        assert_eq!(c.service_name, "svc");
        assert_eq!(c.otlp_endpoint, "http://127.0.0.1:4317");
        assert_eq!(c.otlp_protocol, OtlpProtocol::Grpc);
        assert!(!c.sdk_disabled);
        assert!(c.log_stdout);
        assert_eq!(c.log_filter, "info");
    }

    #[test]
    fn log_stdout_can_be_turned_off() {
        assert!(!config(&[("LOG_STDOUT", "false")]).unwrap().log_stdout);
        assert!(config(&[("LOG_STDOUT", "TRUE")]).unwrap().log_stdout);
        let e = config(&[("LOG_STDOUT", "no")]).unwrap_err();
        assert_eq!(e.variable, "LOG_STDOUT");
    }

    #[test]
    fn http_protocol_defaults_to_port_4318() {
        let c = config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]).unwrap();
        assert_eq!(c.otlp_endpoint, "http://127.0.0.1:4318");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = config(&[("OTEL_SDK_DISABLED", "maybe")]).unwrap_err();
        assert_eq!(e.variable, "OTEL_SDK_DISABLED");
        let e = config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]).unwrap_err();
        assert!(e.to_string().contains("OTEL_EXPORTER_OTLP_PROTOCOL"));
        let e = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317")]).unwrap_err();
        assert_eq!(e.variable, "OTEL_EXPORTER_OTLP_ENDPOINT");
    }

    #[test]
    fn resource_attributes_are_parsed_and_decoded() {
        let c = config(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=dev,team=a%20b",
        )])
        .unwrap();
        assert_eq!(
            c.resource_attributes,
            vec![
                ("deployment.environment".into(), "dev".into()),
                ("team".into(), "a b".into())
            ]
        );
        assert!(config(&[("OTEL_RESOURCE_ATTRIBUTES", "novalue")]).is_err());
    }
}
