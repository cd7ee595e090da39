//! Hostile input against the real binaries: slow and idle peers on every listener, random
//! methods, malformed trace context, control characters, idempotency-key abuse, other media
//! types, unknown routes, and what log-service and `tracehop logs` make of hostile log data.
//!
//! Every server runs as a child process with short `HTTP_*_TIMEOUT_MS`, so an attack that the
//! defaults would let run for minutes is over in seconds. Each test starts its own processes
//! (its own `AMQP_PREFIX`, log directory and database), so the tests run in parallel. The
//! figures a reader wants (how long a connection lived, how big `/metrics` grew, how much memory
//! a batch cost) are printed on lines starting with `hostile:`; `-- --nocapture` shows them.

#[path = "hostile_input/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use support::{
    Attack, BODY_TIMEOUT, HEADER_TIMEOUT, IDLE_TIMEOUT, LogServiceProcess, Services, addr_of,
    client, closest_timeout, mib, proc_kib, reset_peak,
};
use system_tests::{assert_error_body, is_trace_id};
use testkit::wait_until;
use tokio::task::JoinSet;

/// Scheduling slack on a busy machine: a connection must end within its timeout plus this.
const MARGIN: Duration = Duration::from_millis(1000);
/// An order with another body than the sample order: 3 x 777 EUR.
const OTHER_ORDER: &str = r#"{"customer_email":"customer@example.com","currency":"EUR",
    "items":[{"sku":"SKU-TRACE-001","quantity":3,"unit_price_cents":777}]}"#;

/// An answer as the assertions look at it.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HeaderMap,
    json: Value,
    bytes: usize,
}

async fn read(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body");
    Answer {
        status,
        headers,
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        bytes: body.len(),
    }
}

/// Sends `method url` with `headers` (repeated names are sent repeatedly) and `body`.
async fn send(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let mut request = client.request(method, url).build().expect("request");
    for (name, value) in headers {
        request.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    if let Some(body) = body {
        *request.body_mut() = Some(body.to_owned().into());
    }
    read(client.execute(request).await.expect("an answer")).await
}

/// `GET url`, with no headers.
async fn get(client: &reqwest::Client, url: &str) -> Answer {
    send(client, Method::GET, url, &[], None).await
}

/// `GET url` with `authorization` as its `Authorization` header, or with none.
async fn get_authorized(
    client: &reqwest::Client,
    url: &str,
    authorization: Option<&str>,
) -> Answer {
    let headers: Vec<(&str, &str)> = authorization
        .map(|value| ("authorization", value))
        .into_iter()
        .collect();
    send(client, Method::GET, url, &headers, None).await
}

impl Services {
    /// `POST /create-order` to the gateway with `headers` and `body`.
    async fn order(&self, headers: &[(&str, &str)], body: Option<&str>) -> Answer {
        let url = format!("{}/create-order", self.gateway());
        send(&self.stack.client, Method::POST, &url, headers, body).await
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// Checks the one JSON error shape, `{"error": {"code", "message"}, "trace_id"}`, and `code`.
fn assert_error_shape(answer: &Answer, status: u16, code: &str, what: &str) {
    assert_eq!(answer.status, status, "{what}: {:?}", answer.json);
    assert_error_body(&answer.json, code, what);
}

/// A listening port, with a route of it that takes a body.
#[derive(Debug, Clone, Copy)]
struct Listener {
    name: &'static str,
    addr: SocketAddr,
    method: &'static str,
    path: &'static str,
    content_type: &'static str,
}

/// Every listener of the four servers.
fn listeners(services: &Services, log: &LogServiceProcess) -> [Listener; 7] {
    let stack = &services.stack;
    let json = "application/json";
    let grpc = "application/grpc";
    let listener = |name, addr, method, path, content_type| Listener {
        name,
        addr,
        method,
        path,
        content_type,
    };
    [
        listener(
            "order-gateway",
            addr_of(&stack.gateway),
            "POST",
            "/create-order",
            json,
        ),
        listener(
            "payment-service",
            addr_of(&stack.payment),
            "POST",
            "/process-payment",
            json,
        ),
        listener(
            "email-service admin",
            addr_of(&stack.email),
            "PUT",
            "/admin/faults",
            json,
        ),
        listener(
            "log-service BIND_ADDR",
            log.rest(),
            "POST",
            "/api/v1/logs",
            json,
        ),
        listener(
            "log-service OTLP_HTTP_ADDR",
            log.otlp_http,
            "POST",
            "/v1/logs",
            "application/x-protobuf",
        ),
        listener(
            "log-service OTLP_GRPC_ADDR",
            log.otlp_grpc,
            "POST",
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            grpc,
        ),
        listener(
            "log-service GRPC_ADDR",
            log.grpc,
            "POST",
            "/logs.LogIngestionService/SendLog",
            grpc,
        ),
    ]
}

/// Runs `attacks` on every listener at once; returns (listener, attack, ending) in order.
async fn attack_every_listener(
    services: &Services,
    log: &LogServiceProcess,
    attacks: &[Attack],
) -> Vec<(&'static str, Attack, support::Ending)> {
    let give_up = IDLE_TIMEOUT + 2 * MARGIN;
    let mut set = JoinSet::new();
    for (i, l) in listeners(services, log).into_iter().enumerate() {
        for (j, attack) in attacks.iter().copied().enumerate() {
            set.spawn(async move {
                let ending =
                    support::attack(l.addr, attack, l.method, l.path, l.content_type, give_up)
                        .await;
                ((i, j), l.name, attack, ending)
            });
        }
    }
    let mut results = set.join_all().await;
    results.sort_by_key(|r| r.0);
    results
        .into_iter()
        .map(|(_, name, attack, ending)| (name, attack, ending))
        .collect()
}

fn describe(name: &str, attack: Attack, ending: &support::Ending) -> String {
    let outcome = match (ending.ended, ending.status) {
        (false, _) => "still open".to_owned(),
        (true, Some(status)) => format!("answered {status}"),
        (true, None) => "closed".to_owned(),
    };
    format!(
        "{name:<27} {:<10} {outcome} after {:>5} ms ({})",
        format!("{attack:?}"),
        ending.elapsed.as_millis(),
        closest_timeout(ending.elapsed)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_idle_and_half_sent_connections_are_cut_off_on_every_listener() {
    let (services, log) = tokio::join!(Services::start(&[]), LogServiceProcess::start());

    let results = attack_every_listener(
        &services,
        &log,
        &[Attack::Slowloris, Attack::Idle, Attack::HalfBody],
    )
    .await;

    let mut late = Vec::new();
    for (name, attack, ending) in &results {
        let line = describe(name, *attack, ending);
        println!("hostile: {line}");
        // A peer that never starts a request is held to the header timeout, like a slow one.
        let bound = match attack {
            Attack::Slowloris | Attack::Idle => HEADER_TIMEOUT,
            Attack::HalfBody => BODY_TIMEOUT,
        } + MARGIN;
        if !ending.ended || ending.elapsed > bound {
            late.push(format!("{line}; expected within {} ms", bound.as_millis()));
        }
    }
    assert!(
        late.is_empty(),
        "connections held past their timeout:\n{}",
        late.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_outlives_the_idle_timeout() {
    // A payment takes twice the idle timeout: the client waits without a byte moving, as any
    // client of a slow handler does, and is owed the answer.
    let services = Services::start(&[
        ("HTTP_IDLE_TIMEOUT_MS", "1000"),
        ("PAYMENT_LATENCY_MS", "2000"),
    ])
    .await;
    let client = client();
    let body = json!({"order_id": "0b6a4c6e-4b1e-4f55-9d0c-3d1f1a1b2c3d", "amount_cents": 100,
                      "currency": "USD", "customer_email": "slow@example.com"})
    .to_string();
    let url = format!("{}/process-payment", services.stack.payment.url());

    let started = Instant::now();
    let answer = client
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;

    let took = started.elapsed();
    match &answer {
        Ok(r) => println!(
            "hostile: a 2 s payment, 1 s idle timeout: {} after {took:.2?}",
            r.status()
        ),
        Err(e) => {
            println!("hostile: a 2 s payment, 1 s idle timeout: no answer after {took:.2?} ({e})")
        }
    }
    assert_eq!(answer.expect("an answer").status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_methods_leave_the_metrics_bounded() {
    const REQUESTS: usize = 2000;
    const WORKERS: usize = 8;
    let services = Services::start(&[]).await;
    let client = client();
    let gateway = services.gateway();
    let before = testkit::http::metrics(&client, &gateway).await;

    let mut set = JoinSet::new();
    for worker in 0..WORKERS {
        let (client, url) = (client.clone(), format!("{gateway}/create-order"));
        set.spawn(async move {
            let mut statuses = BTreeMap::<u16, usize>::new();
            for n in (worker..REQUESTS).step_by(WORKERS) {
                let method = Method::from_bytes(format!("XQ{n}").as_bytes()).expect("method");
                let status = client
                    .request(method, &url)
                    .send()
                    .await
                    .expect("an answer")
                    .status()
                    .as_u16();
                *statuses.entry(status).or_default() += 1;
            }
            statuses
        });
    }
    let mut statuses = BTreeMap::<u16, usize>::new();
    for part in set.join_all().await {
        for (status, n) in part {
            *statuses.entry(status).or_default() += n;
        }
    }
    let after = testkit::http::metrics(&client, &gateway).await;

    println!(
        "hostile: /metrics {} bytes before, {} bytes after {REQUESTS} requests with random methods \
         (answers {statuses:?})",
        before.len(),
        after.len()
    );
    assert_eq!(statuses, BTreeMap::from([(405, REQUESTS)]));
    assert!(
        after.len() <= before.len() + 8 * 1024,
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
    assert!(
        !after.contains("XQ"),
        "a raw method became a label value:\n{after}"
    );
    assert!(
        after.contains(&format!(
            r#"http_request_duration_seconds_count{{method="_OTHER",route="/create-order",status_code="405"}} {REQUESTS}"#
        )),
        "every request is counted under _OTHER:\n{after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_traceparent_starts_a_new_trace_and_a_valid_one_is_continued() {
    let services = Services::start(&[]).await;

    let short = services
        .order(&[("traceparent", "00-0af7-b7ad-01")], None)
        .await;
    let valid_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let valid = services
        .order(
            &[(
                "traceparent",
                &format!("00-{valid_trace}-00f067aa0ba902b7-01"),
            )],
            None,
        )
        .await;

    let new_trace = short.json["trace_id"].as_str().unwrap_or_default();
    println!("hostile: traceparent 00-0af7-b7ad-01 -> trace {new_trace}");
    assert_eq!(short.status, 201, "{:?}", short.json);
    assert!(is_trace_id(&short.json["trace_id"]), "{:?}", short.json);
    assert!(
        !new_trace.ends_with("0af7") && !new_trace.starts_with("00000000"),
        "the short trace id was padded into {new_trace}"
    );
    let traceresponse = short.headers["traceresponse"].to_str().unwrap();
    assert!(traceresponse.starts_with(&format!("00-{new_trace}-")));
    assert_eq!(valid.status, 201, "{:?}", valid.json);
    assert_eq!(
        valid.json["trace_id"], valid_trace,
        "a valid parent is continued"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_the_email_are_refused_before_any_payment() {
    let services = Services::start(&[]).await;
    let with_email = |email: &str| {
        json!({"customer_email": email, "currency": "USD",
               "items": [{"sku": "SKU-1", "quantity": 1, "unit_price_cents": 100}]})
        .to_string()
    };

    for email in ["a\u{0}@b.co", "a\u{7}@b.co"] {
        let answer = services.order(&[JSON], Some(&with_email(email))).await;
        assert_error_shape(&answer, 422, "invalid_order", &format!("{email:?}"));
        let message = answer.json["error"]["message"].as_str().unwrap();
        assert!(message.contains("customer_email"), "{message}");
    }
    // A good order after them: once its e-mail is out, any e-mail of the refused ones would be too.
    let good = services.order(&[JSON], Some(&with_email("ok@b.co"))).await;
    assert_eq!(good.status, 201, "{:?}", good.json);
    let order_id = good.json["order_id"].as_str().unwrap();
    let outbox = services
        .stack
        .wait_until_emailed(&[order_id], Duration::from_secs(15))
        .await;

    assert_eq!(
        outbox.len(),
        1,
        "only the good order is e-mailed: {outbox:?}"
    );
    assert_eq!(outbox.entries[0]["to"], "ok@b.co");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_is_one_visible_value_bound_to_one_order() {
    let services = Services::start(&[]).await;
    let key = ("idempotency-key", "order-7f3a");

    let first = services.order(&[key], None).await;
    let other_body = services.order(&[key, JSON], Some(OTHER_ORDER)).await;
    let tab = services
        .order(&[("idempotency-key", "order\t7f3a")], None)
        .await;
    let two = services
        .order(
            &[("idempotency-key", "a-1"), ("idempotency-key", "a-2")],
            None,
        )
        .await;
    let again = services.order(&[key], None).await;

    assert_eq!(first.status, 201, "{:?}", first.json);
    let order_id = first.json["order_id"].as_str().unwrap();
    assert_error_shape(&other_body, 422, "idempotency_conflict", "another body");
    assert_error_shape(&tab, 400, "invalid_idempotency_key", "a TAB in the key");
    assert_error_shape(&two, 400, "invalid_idempotency_key", "two keys");
    assert_eq!(again.status, 201, "{:?}", again.json);
    assert_eq!(
        again.json["order_id"], order_id,
        "a retry is the same order"
    );
    let outbox = services
        .stack
        .wait_until_emailed(&[order_id], Duration::from_secs(15))
        .await;
    assert_eq!(outbox.len(), 1, "one e-mail in all: {outbox:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_json_bodies_place_orders() {
    let services = Services::start(&[]).await;

    let mut refused = Vec::new();
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let answer = services
            .order(&[("content-type", content_type)], Some(OTHER_ORDER))
            .await;
        assert_error_shape(&answer, 415, "unsupported_media_type", content_type);
        refused.push(answer);
    }
    let json_body = services.order(&[JSON], Some(OTHER_ORDER)).await;
    let empty = services.order(&[], None).await;

    assert_eq!(json_body.status, 201, "{:?}", json_body.json);
    assert_eq!(json_body.json["payment"]["amount_cents"], 3 * 777);
    assert_eq!(empty.status, 201, "{:?}", empty.json);
    assert_eq!(
        empty.json["payment"]["amount_cents"], 1999,
        "the sample order"
    );
    let ids = [&json_body, &empty].map(|a| a.json["order_id"].as_str().unwrap().to_owned());
    let outbox = services
        .stack
        .wait_until_emailed(&[&ids[0], &ids[1]], Duration::from_secs(15))
        .await;
    assert_eq!(
        outbox.len(),
        2,
        "the refused bodies placed nothing: {outbox:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_json_and_the_bearer_scheme_is_case_insensitive() {
    let token = "s3cret-token";
    let services = Services::start(&[("ADMIN_TOKEN", token)]).await;
    let client = client();
    let gateway = services.gateway();

    let not_found = get(&client, &format!("{gateway}/nope")).await;
    let wrong_method = get(&client, &format!("{gateway}/create-order")).await;
    assert_error_shape(&not_found, 404, "not_found", "GET /nope");
    assert_error_shape(
        &wrong_method,
        405,
        "method_not_allowed",
        "GET /create-order",
    );

    for service in [&services.stack.payment, &services.stack.email] {
        let url = format!("{}/admin/faults", service.url());
        let name = service.name();
        let lower = get_authorized(&client, &url, Some(&format!("bearer {token}"))).await;
        let upper = get_authorized(&client, &url, Some(&format!("Bearer {token}"))).await;
        let wrong = get_authorized(&client, &url, Some("bearer not-the-token")).await;
        let none = get_authorized(&client, &url, None).await;
        assert_eq!(
            lower.status, 200,
            "{name}, lowercase scheme: {:?}",
            lower.json
        );
        assert!(
            lower.json["latency_ms"].is_number(),
            "{name}: {:?}",
            lower.json
        );
        assert_eq!(upper.status, 200, "{name}: {:?}", upper.json);
        assert_error_shape(&wrong, 401, "unauthorized", &format!("{name}, wrong token"));
        assert_error_shape(&none, 401, "unauthorized", &format!("{name}, no token"));
    }
}

/// `http_requests_rejected_total` by (code, route), from the Prometheus text.
fn rejected_counts(metrics: &str) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("http_requests_rejected_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        counts.insert(
            (label("code"), label("route")),
            value.trim().parse().unwrap_or(0),
        );
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rejection_is_logged_once_and_counted() {
    let services = Services::start(&[]).await;
    let client = client();
    let gateway = services.gateway();
    let post = format!("{gateway}/create-order");
    let bad_email = json!({"customer_email": "a\u{7}@b.co", "currency": "USD",
        "items": [{"sku": "S", "quantity": 1, "unit_price_cents": 1}]})
    .to_string();

    let rejections: Vec<(u16, &str, &str, Answer)> = vec![
        (
            400,
            "invalid_json",
            "/create-order",
            services.order(&[JSON], Some("{")).await,
        ),
        (
            400,
            "invalid_json",
            "/create-order",
            services.order(&[JSON], Some("not json")).await,
        ),
        (
            400,
            "invalid_idempotency_key",
            "/create-order",
            services.order(&[("idempotency-key", "a\tb")], None).await,
        ),
        (
            404,
            "not_found",
            "unmatched",
            get(&client, &format!("{gateway}/nope")).await,
        ),
        (
            404,
            "not_found",
            "unmatched",
            send(
                &client,
                Method::DELETE,
                &format!("{gateway}/x/y"),
                &[],
                None,
            )
            .await,
        ),
        (
            405,
            "method_not_allowed",
            "/create-order",
            get(&client, &post).await,
        ),
        (
            415,
            "unsupported_media_type",
            "/create-order",
            services
                .order(&[("content-type", "text/plain")], Some("{}"))
                .await,
        ),
        (
            422,
            "invalid_order",
            "/create-order",
            services.order(&[JSON], Some(r#"{"items": []}"#)).await,
        ),
        (
            422,
            "invalid_order",
            "/create-order",
            services.order(&[JSON], Some(&bad_email)).await,
        ),
    ];
    let mut expected = BTreeMap::<(String, String), u64>::new();
    for (status, code, route, answer) in &rejections {
        assert_error_shape(answer, *status, code, &format!("{status} {code}"));
        *expected
            .entry(((*code).to_owned(), (*route).to_owned()))
            .or_default() += 1;
    }

    // The log file is written as the requests are answered; give it a moment to catch up.
    let lines = wait_until(
        "a log line per rejection",
        Duration::from_secs(10),
        || async {
            let lines = services
                .stack
                .log_messages("order-gateway", "request rejected");
            (lines.len() >= rejections.len()).then_some(lines)
        },
    )
    .await;
    let mut logged = BTreeMap::<(String, String), u64>::new();
    for line in &lines {
        assert_eq!(line["level"], "INFO", "{line}");
        let field = |k: &str| line[k].as_str().unwrap_or_default().to_owned();
        *logged.entry((field("code"), field("route"))).or_default() += 1;
    }
    let counted = rejected_counts(&testkit::http::metrics(&client, &gateway).await);

    println!("hostile: rejections sent {expected:?}");
    println!("hostile: rejections logged {logged:?}");
    println!("hostile: rejections counted {counted:?}");
    assert_eq!(logged, expected, "one INFO line per rejection");
    assert_eq!(counted, expected, "http_requests_rejected_total");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracehop_logs_shows_control_characters_from_log_service_as_visible_escapes() {
    let log = LogServiceProcess::start().await;
    let client = client();
    let url = format!("{}/api/v1/logs", log.url());
    let message = "a\u{0}b\u{1b}[31mred";
    let dirty_service = "evil\u{0}svc\u{1b}[2J";
    let store = |service: &str| {
        let body = json!({"service_name": service, "level": "INFO", "message": message});
        let (client, url) = (&client, &url);
        async move { send(client, Method::POST, url, &[JSON], Some(&body.to_string())).await }
    };
    // log-service may refuse control characters in a service name; the message keeps them.
    let first = store(dirty_service).await;
    let service = if first.status == 201 {
        dirty_service
    } else {
        println!(
            "hostile: log-service refused a service name with NUL/ESC ({}); the message alone \
             carries them",
            first.status
        );
        let plain = store("plain-svc").await;
        assert_eq!(plain.status, 201, "{:?}", plain.json);
        "plain-svc"
    };

    let tracehop = |color: &'static str| {
        let url = log.url();
        tokio::task::spawn_blocking(move || {
            Command::new(testkit::process::binary("tracehop"))
                .args(["--color", color, "logs", "--log-service", &url])
                .env_remove("NO_COLOR")
                .output()
                .expect("tracehop runs")
        })
    };
    let plain = tracehop("never").await.expect("tracehop");
    let coloured = tracehop("always").await.expect("tracehop");

    let shown = String::from_utf8_lossy(&plain.stdout);
    println!(
        "hostile: tracehop logs --color never printed {} bytes: {}",
        plain.stdout.len(),
        shown.trim_end()
    );
    assert!(
        plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    assert!(
        !plain.stdout.iter().any(|b| *b == 0 || *b == 0x1b),
        "raw NUL or ESC reached the terminal: {:?}",
        plain.stdout
    );
    assert!(shown.contains(r"a\u{0}b\u{1b}[31mred"), "{shown}");
    if service == dirty_service {
        assert!(shown.contains(r"evil\u{0}svc\u{1b}[2J"), "{shown}");
    }
    // With colour, the only escapes are tracehop's own styling, never the data's.
    let styled = String::from_utf8_lossy(&coloured.stdout);
    assert!(coloured.status.success());
    assert!(!coloured.stdout.contains(&0), "{styled:?}");
    assert!(styled.contains(r"a\u{0}b\u{1b}[31mred"), "{styled:?}");
    assert!(
        !styled.contains("\u{1b}[31mred") && !styled.contains("\u{1b}[2J"),
        "{styled:?}"
    );
}

/// `POST path` to log-service with a JSON body.
async fn post_log(
    client: &reqwest::Client,
    log: &LogServiceProcess,
    path: &str,
    body: &str,
) -> Answer {
    let url = format!("{}{path}", log.url());
    send(client, Method::POST, &url, &[JSON], Some(body)).await
}

/// A log-service error body: `{"error": {"code", "message", "field"?}}`.
fn error_text(answer: &Answer) -> String {
    format!(
        "{} {}",
        answer.json["error"]["field"].as_str().unwrap_or_default(),
        answer.json["error"]["message"].as_str().unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maximum_log_batch_costs_bounded_memory_and_a_larger_one_a_short_refusal() {
    const LIMIT_MIB: u64 = 64;
    /// Stays under log-service's 16 MiB body limit.
    const BODY_BUDGET: usize = 15 * 1024 * 1024;
    // The batch is answered after its commit, seconds later, with no byte moving meanwhile: a
    // request being answered is not idle (`a_slow_answer_outlives_the_idle_timeout`).
    let log = LogServiceProcess::start_with(&[]).await;
    let pid = log.service.pid();
    let client = client();
    let small: Vec<Value> = (0..10)
        .map(|i| json!({"service_name": "warm", "level": "INFO", "message": format!("warm {i}")}))
        .collect();
    let warm = post_log(
        &client,
        &log,
        "/api/v1/logs/batch",
        &json!(small).to_string(),
    )
    .await;
    assert_eq!(warm.status, 201, "{:?}", warm.json);
    let idle = proc_kib(pid, "VmRSS");

    // Far over any maximum, every entry invalid: the refusal says what the maximum is.
    let probe = 100_000;
    let invalid = |n: usize| format!("[{}]", vec![r#"{"level":"LOUD"}"#; n].join(","));
    let refused = post_log(&client, &log, "/api/v1/logs/batch", &invalid(probe)).await;
    println!(
        "hostile: batch of {probe} invalid entries -> {} with a {} byte body: {}",
        refused.status,
        refused.bytes,
        error_text(&refused)
    );
    assert!(
        [413, 422].contains(&refused.status),
        "status {}",
        refused.status
    );
    assert!(refused.bytes < 64 * 1024, "{} bytes", refused.bytes);
    let message = refused.json["error"]["message"]
        .as_str()
        .unwrap_or_default();
    let max: usize = message
        .split("at most ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the refusal names the maximum: {message}"));
    let just_over = post_log(&client, &log, "/api/v1/logs/batch", &invalid(max + 1)).await;
    println!(
        "hostile: batch of {} invalid entries -> {} with a {} byte body",
        max + 1,
        just_over.status,
        just_over.bytes
    );
    assert!([413, 422].contains(&just_over.status));
    assert!(just_over.bytes < 64 * 1024, "{} bytes", just_over.bytes);

    // The maximum batch, as large as the body limit lets each of its messages be.
    let filler = (BODY_BUDGET / max).saturating_sub(80).min(64 * 1024 - 1);
    let entries: Vec<Value> = (0..max)
        .map(|i| {
            json!({"service_name": "batch", "level": "INFO",
                   "message": format!("{i:06} {}", "x".repeat(filler))})
        })
        .collect();
    let body = json!(entries).to_string();
    let peak_reset = reset_peak(pid);
    let sampler = {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut peak = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(proc_kib(pid, "VmRSS"));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            peak
        });
        (stop, task)
    };
    let started = Instant::now();
    let stored = post_log(&client, &log, "/api/v1/logs/batch", &body).await;
    let took = started.elapsed();
    sampler.0.store(true, std::sync::atomic::Ordering::Relaxed);
    let sampled = sampler.1.await.expect("sampler");
    let hwm = if peak_reset {
        proc_kib(pid, "VmHWM")
    } else {
        0
    };
    let peak = sampled.max(hwm);
    let above = peak.saturating_sub(idle);
    println!(
        "hostile: log-service idle RSS {:.1} MiB; batch of {max} entries ({:.1} MiB) -> {} in \
         {took:.2?}; peak RSS {:.1} MiB, {:.1} MiB above idle",
        mib(idle),
        body.len() as f64 / (1024.0 * 1024.0),
        stored.status,
        mib(peak),
        mib(above)
    );
    assert_eq!(stored.status, 201, "{}", error_text(&stored));
    assert_eq!(stored.json["accepted"], max);
    assert!(
        above <= LIMIT_MIB * 1024,
        "peak {:.1} MiB above idle",
        mib(above)
    );

    // And the memory goes back.
    let started = Instant::now();
    let settled = loop {
        let rss = proc_kib(pid, "VmRSS");
        if rss <= idle + LIMIT_MIB * 1024 || started.elapsed() > Duration::from_secs(60) {
            break rss;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    println!(
        "hostile: log-service RSS {:.1} MiB {:.1} s after the batch ({:.1} MiB above idle)",
        mib(settled),
        started.elapsed().as_secs_f64(),
        mib(settled.saturating_sub(idle))
    );
    assert!(settled <= idle + LIMIT_MIB * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_timestamp_past_2262_is_out_of_range_not_malformed() {
    let log = LogServiceProcess::start().await;
    let client = client();
    let body = json!({"service_name": "s", "level": "INFO", "message": "m",
                      "timestamp": "2263-01-01T00:00:00Z"});

    let answer = post_log(&client, &log, "/api/v1/logs", &body.to_string()).await;

    let text = error_text(&answer);
    println!("hostile: timestamp 2263-01-01 -> {} {text}", answer.status);
    assert_eq!(answer.status, 422, "{:?}", answer.json);
    assert!(text.contains("timestamp"), "{text}");
    assert!(text.contains("out of range"), "{text}");
    assert!(!text.contains("not an RFC 3339"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_log_json_and_an_otlp_json_array_are_bad_requests() {
    let log = LogServiceProcess::start().await;
    let client = client();

    let truncated = post_log(
        &client,
        &log,
        "/api/v1/logs",
        r#"{"service_name":"s","level":"INFO","mess"#,
    )
    .await;
    let otlp_url = format!("http://{}/v1/logs", log.otlp_http);
    let array = send(&client, Method::POST, &otlp_url, &[JSON], Some("[]")).await;

    println!(
        "hostile: truncated JSON -> {}; OTLP/JSON [] -> {} {:?}",
        truncated.status, array.status, array.json
    );
    assert_eq!(truncated.status, 400, "{:?}", truncated.json);
    assert_eq!(array.status, 400, "{:?}", array.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_log_field_is_refused_by_name() {
    let log = LogServiceProcess::start().await;
    let client = client();
    let body = json!({"service_name": "s", "level": "INFO", "message": "m", "colour": "red"});

    let answer = post_log(&client, &log, "/api/v1/logs", &body.to_string()).await;

    let text = error_text(&answer);
    println!("hostile: unknown field colour -> {} {text}", answer.status);
    assert_eq!(answer.status, 422, "{:?}", answer.json);
    assert!(text.contains("colour"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logs_of_an_unknown_trace_are_not_found_like_the_trace() {
    let log = LogServiceProcess::start().await;
    let client = client();
    let unknown = "7d1c5e0c9b2a4f6e8d3b1a0c9e8f7d6c";

    let logs = get(
        &client,
        &format!("{}/api/v1/logs/trace/{unknown}", log.url()),
    )
    .await;
    let trace = get(&client, &format!("{}/api/v1/traces/{unknown}", log.url())).await;

    println!(
        "hostile: unknown trace: /api/v1/logs/trace -> {}, /api/v1/traces -> {}",
        logs.status, trace.status
    );
    assert_eq!(trace.status, 404, "{:?}", trace.json);
    assert_eq!(logs.status, 404, "{:?}", logs.json);
    assert_eq!(logs.json["error"]["code"], trace.json["error"]["code"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_plain_log_body_is_an_unsupported_media_type() {
    let log = LogServiceProcess::start().await;
    let client = client();
    let body = json!({"service_name": "s", "level": "INFO", "message": "m"}).to_string();

    let answer = send(
        &client,
        Method::POST,
        &format!("{}/api/v1/logs", log.url()),
        &[("content-type", "text/plain")],
        Some(&body),
    )
    .await;

    println!(
        "hostile: text/plain log -> {} {:?}",
        answer.status, answer.json
    );
    assert_eq!(answer.status, 415, "{:?}", answer.json);
    assert!(
        answer.json["error"]["code"].is_string(),
        "{:?}",
        answer.json
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_are_refused_in_a_service_name_and_kept_in_a_message() {
    let log = LogServiceProcess::start().await;
    let client = client();
    let entry = |service: &str| {
        json!({"service_name": service, "level": "INFO", "message": "a\u{0}b\u{1b}[31mred"})
            .to_string()
    };

    let mut refusals = Vec::new();
    for service in ["svc\u{0}", "svc\u{1b}[2J"] {
        let answer = post_log(&client, &log, "/api/v1/logs", &entry(service)).await;
        refusals.push((service, answer.status, error_text(&answer)));
    }
    let kept = post_log(&client, &log, "/api/v1/logs", &entry("svc")).await;

    println!(
        "hostile: service names with NUL/ESC -> {refusals:?}; message with them -> {}",
        kept.status
    );
    for (service, status, text) in &refusals {
        assert_eq!(*status, 422, "{service:?}: {text}");
        assert!(text.contains("service_name"), "{service:?}: {text}");
    }
    assert_eq!(kept.status, 201, "{:?}", kept.json);
    let id = &kept.json["id"];
    let stored = get(&client, &format!("{}/api/v1/logs/{id}", log.url())).await;
    let message = stored.json["message"]
        .as_str()
        .or_else(|| stored.json["log"]["message"].as_str());
    assert_eq!(message, Some("a\u{0}b\u{1b}[31mred"), "{:?}", stored.json);
}
