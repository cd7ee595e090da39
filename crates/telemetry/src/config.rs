//! Telemetry settings; the `server` crate reads them from the standard `OTEL_*` variables,
//! `RUST_LOG`, `LOG_DIR` and `LOG_STDOUT`.

use std::path::PathBuf;

/// The wire protocol used to reach the OTLP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (tonic), the default; port 4317 by convention.
    Grpc,
    /// OTLP over HTTP with protobuf bodies; port 4318 by convention.
    HttpProtobuf,
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
