//! HTTP telemetry shared by every service: the SERVER span of each request (parent taken from the
//! incoming `traceparent`), `http_request_duration_seconds`, the `traceresponse` header, the
//! propagation headers of outgoing calls.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use opentelemetry::trace::TraceContextExt;
use prometheus::{HistogramVec, IntCounterVec, Registry};
use tracing::{Instrument, Span, field};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::propagation::{HeaderExtractor, HeaderInjector};

/// Routes that are probed, not used: they get metrics but no span, so scrapes do not drown traces.
const UNTRACED: [&str; 4] = ["/health", "/ready", "/live", "/metrics"];

/// Marks a response as a rejected request, with the error code of its body and the message,
/// so [`instrument`] logs it once and counts it by a bounded code.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// The stable error code (`invalid_json`, `not_found`, ...).
    pub code: &'static str,
    /// What was wrong, for the log line.
    pub message: String,
}

/// `http_request_duration_seconds{method, route, status_code}` and
/// `http_requests_rejected_total{route, code}`.
#[derive(Clone)]
pub struct HttpMetrics {
    duration: HistogramVec,
    rejected: IntCounterVec,
}

impl HttpMetrics {
    /// Creates both and registers them in `registry`.
    pub fn new(registry: &Registry) -> Self {
        let duration = crate::metrics::duration_histogram(
            registry,
            "http_request_duration_seconds",
            "Duration of HTTP requests served, by method, matched route and status code.",
            &["method", "route", "status_code"],
        );
        let rejected = crate::metrics::counter(
            registry,
            "http_requests_rejected_total",
            "Requests answered with a client error, by matched route and error code.",
            &["route", "code"],
        );
        Self { duration, rejected }
    }
}

/// Wraps every route of `router` with the SERVER span, the duration histogram, `traceresponse`
/// and the log line and count of each rejected request.
pub fn instrument(router: Router, metrics: HttpMetrics) -> Router {
    router.layer(axum::middleware::from_fn_with_state(metrics, track))
}

async fn track(State(metrics): State<HttpMetrics>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let method_label = method_label(&method);
    // A bounded label: the route template, never the raw path.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let route_label = route.as_deref().unwrap_or("unmatched").to_owned();

    let response = if UNTRACED.contains(&route_label.as_str()) {
        let mut response = next.run(req).await;
        response
            .headers_mut()
            .insert("traceresponse", unsampled_traceresponse());
        response
    } else {
        let name = match &route {
            Some(r) => format!("{method_label} {r}"),
            None => method_label.to_owned(),
        };
        let server_address = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| h.split(':').next().unwrap_or(h).to_owned());
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = %name,
            otel.kind = "server",
            http.request.method = method_label,
            http.request.method_original = (method_label != method.as_str()).then(|| method.as_str()),
            http.route = route.as_deref(),
            url.path = %req.uri().path(),
            url.scheme = "http",
            server.address = server_address.as_deref(),
            network.protocol.version = ?req.version(),
            http.response.status_code = field::Empty,
            otel.status_code = field::Empty,
            error.type = field::Empty,
        );
        // The parent must be set before the span is first entered.
        let parent = crate::propagation::extract(&HeaderExtractor(req.headers()));
        let _ = span.set_parent(parent);
        let mut response = next.run(req).instrument(span.clone()).await;
        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", status.as_str());
        }
        if let Some(value) = traceresponse(&span) {
            response.headers_mut().insert("traceresponse", value);
        }
        response
    };
    let status = response.status();
    metrics
        .duration
        .with_label_values(&[method_label, &route_label, status.as_str()])
        .observe(start.elapsed().as_secs_f64());
    let rejection = response
        .extensions()
        .get::<Rejection>()
        .map(|r| (r.code, r.message.clone()))
        .or_else(|| grpc_rejection(response.headers()));
    if let Some((code, message)) = rejection {
        metrics
            .rejected
            .with_label_values(&[&route_label, code])
            .inc();
        // Info, not warn: a rejection is the client's mistake, and a flood of them must not
        // read as the server failing.
        tracing::info!(
            method = method_label,
            route = %route_label,
            status = status.as_u16(),
            code,
            reason = %truncate(&message, 200),
            "request rejected"
        );
    }
    response
}

/// A gRPC answer whose status says the request was at fault (gRPC answers those with HTTP 200
/// and the status in `grpc-status`): its code's name and `grpc-message`.
fn grpc_rejection(headers: &http::HeaderMap) -> Option<(&'static str, String)> {
    let code = match headers.get("grpc-status")?.as_bytes() {
        b"3" => "invalid_argument",
        b"5" => "not_found",
        b"6" => "already_exists",
        b"7" => "permission_denied",
        b"8" => "resource_exhausted",
        b"9" => "failed_precondition",
        b"11" => "out_of_range",
        b"12" => "unimplemented",
        b"16" => "unauthenticated",
        _ => return None,
    };
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(|m| m.replace("%20", " "))
        .unwrap_or_default();
    Some((code, message))
}

/// A bounded label for a request method: the standard ones, and `_OTHER` for any other (as the
/// OpenTelemetry conventions name it), so random methods cannot grow the label set.
fn method_label(method: &http::Method) -> &'static str {
    use http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

/// At most `max` characters of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// A `traceresponse` for a probe: fresh ids flagged not sampled (`-00`), since probes are
/// answered without recording a span, yet every response names its trace.
fn unsampled_traceresponse() -> HeaderValue {
    use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
    let ids = RandomIdGenerator::default();
    HeaderValue::from_str(&format!(
        "00-{}-{}-00",
        ids.new_trace_id(),
        ids.new_span_id()
    ))
    .expect("hex ids form a valid header value")
}

/// The W3C `traceresponse` header value of `span`: `00-<trace id>-<span id>-<flags>`.
fn traceresponse(span: &Span) -> Option<HeaderValue> {
    let cx = span.context();
    let otel_span = cx.span();
    let sc = otel_span.span_context();
    if !sc.is_valid() {
        return None;
    }
    HeaderValue::from_str(&format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    ))
    .ok()
}

/// Creates the CLIENT span of an outgoing request; record the status with [`record_client_status`].
pub fn client_span(method: &str, url: &str) -> Span {
    let uri: Option<http::Uri> = url.parse().ok();
    let host = uri.as_ref().and_then(|u| u.host().map(str::to_owned));
    let port = uri.as_ref().and_then(|u| {
        u.port_u16().or(match u.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        })
    });
    tracing::info_span!(
        "HTTP client request",
        otel.name = %method,
        otel.kind = "client",
        http.request.method = %method,
        url.full = %url,
        server.address = host.as_deref(),
        server.port = port,
        http.response.status_code = field::Empty,
        otel.status_code = field::Empty,
        error.type = field::Empty,
    )
}

/// Records the outcome of a CLIENT span: the status code, and Error for 5xx or a transport error.
pub fn record_client_status(span: &Span, outcome: Result<StatusCode, &str>) {
    match outcome {
        Ok(status) => {
            span.record("http.response.status_code", status.as_u16());
            if status.is_server_error() {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", status.as_str());
            }
        }
        Err(kind) => {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", kind);
        }
    }
}

/// Returns the propagation headers (`traceparent`, `tracestate`, `baggage`) for a call made in
/// `cx`.
pub fn propagation_headers(cx: &opentelemetry::Context) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    crate::propagation::inject(cx, &mut HeaderInjector(&mut headers));
    headers
}
