//! Whole-system test support for tracehop: [`spawn_stack`] starts order-gateway, payment-service
//! and email-service in the test process on port 0, each in its own `tracing` dispatcher (so each
//! has its own `service.name`, log file and exporters, as separate processes would), against the
//! real RabbitMQ with a unique `AMQP_PREFIX` and exporting to a [`testkit::OtlpReceiver`];
//! [`LogService`] starts log-service the same way.
//!
//! The suites in `tests/` use this in-process stack where the services only need to run, and
//! [`testkit::process::Stack`] (the service binaries as child processes, on a private
//! [`testkit::RabbitNode`]) where a test signals, kills or restarts a service or its broker.
//! Every call into the apps' start-up code is in one module, `spawn`.

mod spawn;
mod stack;

pub use spawn::LogService;
pub use stack::{Stack, StackOptions, spawn_stack};
pub use testkit::http::Response;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

/// True for a trace id as the services write it: 32 hex digits.
pub fn is_trace_id(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Checks the one JSON error body, `{"error": {"code", "message"}, "trace_id"}`: the `code`, a
/// message that says what is wrong, and the trace the error belongs to. `what` names the request
/// in a failure.
pub fn assert_error_body(json: &Value, code: &str, what: &str) {
    assert_eq!(json["error"]["code"], code, "{what}: {json:?}");
    let message = json["error"]["message"].as_str().unwrap_or_default();
    assert!(
        !message.is_empty(),
        "{what}: a message says what is wrong: {json:?}"
    );
    assert!(
        is_trace_id(&json["trace_id"]),
        "{what}: the error names its trace: {json:?}"
    );
}

/// The services of the log lines in `answer["logs"]` (a trace or a page of logs, as
/// log-service's REST API and `tracehop logs --json` give them).
pub fn logged_services(answer: &Value) -> HashSet<&str> {
    answer["logs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["service_name"].as_str())
        .collect()
}

/// Polls log-service's REST API at `rest` until the trace holds all six spans of an order and
/// log lines of all three services, and returns it; spans and logs arrive in separate batches, so
/// a first answer may be partial. `via` names the path in the panic message.
pub async fn wait_for_whole_trace(
    client: &reqwest::Client,
    rest: &str,
    trace_id: &str,
    via: &str,
) -> Value {
    let url = &format!("{rest}/api/v1/traces/{trace_id}");
    let what = format!("trace {trace_id} to be complete {via}");
    testkit::wait_until(&what, Duration::from_secs(20), || async move {
        let r = testkit::http::get(client, url).await;
        if r.status() != 200 {
            return None;
        }
        let trace: Value = r.json().await.unwrap();
        let spans = trace["spans"].as_array().map_or(0, Vec::len);
        let whole = spans == 6 && logged_services(&trace).len() == 3;
        whole.then_some(trace)
    })
    .await
}
