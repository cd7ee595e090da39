//! The order path end to end: three real services in this process, the real RabbitMQ, a real
//! OTLP receiver.

use std::time::Duration;

use serde_json::Value;
use system_tests::{StackOptions, assert_error_body, is_trace_id, spawn_stack};
use testkit::Span;

const WAIT: Duration = Duration::from_secs(15);

fn find<'a>(spans: &'a [Span], service: &str, name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.service == service && s.name == name)
        .unwrap_or_else(|| panic!("no span {service} / {name} in {spans:#?}"))
}

/// Whether every hop has exported its spans (two each from the gateway and payment-service,
/// `email_spans` from email-service): each service exports on its own schedule, so the last
/// hop's spans can arrive before the first hop's.
fn every_hop_exported(spans: &[Span], email_spans: usize) -> bool {
    let count = |service: &str| spans.iter().filter(|s| s.service == service).count();
    count("order-gateway") >= 2
        && count("payment-service") >= 2
        && count("email-service") >= email_spans
}

fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_is_one_trace_of_six_spans_across_http_and_rabbitmq() {
    let stack = spawn_stack(StackOptions::default()).await;
    let names = stack.names();

    let response = stack.create_order(None).await;

    assert_eq!(response.status, 201, "{:?}", response.json);
    assert_eq!(response.json["status"], "confirmed");
    assert_eq!(response.json["payment"]["status"], "succeeded");
    assert_eq!(response.json["payment"]["amount_cents"], 1999);
    let order_id = response.json["order_id"].as_str().unwrap().to_owned();
    let trace_id = response.json["trace_id"].as_str().unwrap().to_owned();
    let traceresponse = response.headers["traceresponse"].to_str().unwrap();
    assert!(
        traceresponse.starts_with(&format!("00-{trace_id}-")),
        "{traceresponse}"
    );

    let spans = stack
        .receiver
        .wait_for_trace(&trace_id, WAIT, |s| every_hop_exported(s, 2))
        .await;
    let server = find(&spans, "order-gateway", "POST /create-order");
    let client = find(&spans, "order-gateway", "POST");
    let payment = find(&spans, "payment-service", "POST /process-payment");
    let publish = find(
        &spans,
        "payment-service",
        &format!("publish {}", names.exchange),
    );
    let process = find(&spans, "email-service", &format!("process {}", names.queue));
    let send = find(&spans, "email-service", "send email");
    assert_eq!(
        spans.len(),
        6,
        "exactly the six spans of the order: {spans:#?}"
    );

    // The parent chain, hop by hop.
    assert_eq!(server.parent_span_id, "", "the gateway span is the root");
    assert_eq!(client.parent_span_id, server.span_id);
    assert_eq!(payment.parent_span_id, client.span_id);
    assert_eq!(publish.parent_span_id, payment.span_id);
    assert_eq!(process.parent_span_id, publish.span_id);
    assert_eq!(send.parent_span_id, process.span_id);
    assert_eq!(
        process.links,
        vec![(trace_id.clone(), publish.span_id.clone())]
    );
    assert_eq!(
        traceresponse,
        format!("00-{trace_id}-{}-01", server.span_id)
    );

    // Kinds and semantic-convention attributes.
    let kinds: Vec<_> = [server, client, payment, publish, process, send]
        .iter()
        .map(|s| s.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "SERVER", "CLIENT", "SERVER", "PRODUCER", "CONSUMER", "INTERNAL"
        ]
    );
    assert_eq!(server.attributes["http.request.method"], "POST");
    assert_eq!(server.attributes["http.route"], "/create-order");
    assert_eq!(server.attributes["http.response.status_code"], "201");
    assert_eq!(
        client.attributes["url.full"],
        format!("{}/process-payment", stack.payment_url)
    );
    assert_eq!(client.attributes["server.address"], "127.0.0.1");
    assert_eq!(client.attributes["http.response.status_code"], "201");
    assert_eq!(payment.attributes["http.route"], "/process-payment");
    for s in [publish, process] {
        assert_eq!(s.attributes["messaging.system"], "rabbitmq");
        assert_eq!(
            s.attributes["messaging.rabbitmq.destination.routing_key"],
            "payment.succeeded"
        );
        assert!(s.attributes.contains_key("messaging.message.id"));
    }
    assert_eq!(
        publish.attributes["messaging.destination.name"],
        names.exchange
    );
    assert_eq!(publish.attributes["messaging.operation.type"], "publish");
    assert_eq!(
        process.attributes["messaging.destination.name"],
        names.queue
    );
    assert_eq!(process.attributes["messaging.operation.type"], "process");
    assert_eq!(
        publish.attributes["messaging.message.id"],
        process.attributes["messaging.message.id"]
    );
    assert!(spans.iter().all(|s| s.status != "ERROR"));

    // JSON logs of all three services carry the trace id, and the span id of the span they were in.
    for service in ["order-gateway", "payment-service", "email-service"] {
        let lines = stack.log_lines(service);
        let in_trace: Vec<&Value> = lines
            .iter()
            .filter(|l| l["trace_id"] == trace_id.as_str())
            .collect();
        assert!(
            !in_trace.is_empty(),
            "{service} logged nothing in the trace: {lines:#?}"
        );
        for line in &in_trace {
            assert_eq!(line["service"], service);
            assert!(
                spans.iter().any(|s| line["span_id"] == s.span_id.as_str()),
                "{line}"
            );
            assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
            assert!(
                !line.to_string().contains("customer@example.com"),
                "e-mail not masked: {line}"
            );
        }
    }
    let email_logs = stack.log_lines("email-service");
    assert!(
        email_logs
            .iter()
            .any(|l| l["baggage.order_id"] == order_id.as_str()),
        "order.id baggage did not reach email-service: {email_logs:#?}"
    );

    // One e-mail, in the same trace.
    let outbox = stack.wait_for_outbox(WAIT, |l| !l.is_empty()).await;
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox.entries[0]["order_id"], order_id.as_str());
    assert_eq!(outbox.entries[0]["trace_id"], trace_id.as_str());
    assert_eq!(outbox.entries[0]["to"], "customer@example.com");

    // OTLP log records of each service carry the trace context too.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let logs = stack.receiver.logs();
        let services: std::collections::HashSet<_> = logs
            .iter()
            .filter(|l| l.trace_id == trace_id)
            .map(|l| l.service.clone())
            .collect();
        if services.len() == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "OTLP logs with the trace id only from {services:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The counters counted it.
    let gateway = stack.metrics(&stack.gateway_url).await;
    assert_eq!(
        counter(&gateway, "orders_created_total{status=\"confirmed\"}"),
        1.0
    );
    assert!(gateway.contains("http_request_duration_seconds_count{method=\"POST\",route=\"/create-order\",status_code=\"201\"} 1"));
    assert!(gateway.contains("process_resident_memory_bytes"));
    let payment_metrics = stack.metrics(&stack.payment_url).await;
    assert_eq!(
        counter(
            &payment_metrics,
            "payment_processed_total{status=\"succeeded\"}"
        ),
        1.0
    );
    assert_eq!(
        counter(
            &payment_metrics,
            &format!(
                "amqp_messages_published_total{{exchange=\"{}\",outcome=\"confirmed\",routing_key=\"payment.succeeded\"}}",
                names.exchange
            )
        ),
        1.0
    );
    let email_metrics = stack.metrics(&stack.email_url).await;
    assert_eq!(
        counter(&email_metrics, "emails_sent_total{status=\"sent\"}"),
        1.0
    );
    assert_eq!(
        counter(
            &email_metrics,
            &format!(
                "amqp_messages_consumed_total{{outcome=\"acked\",queue=\"{}\"}}",
                names.queue
            )
        ),
        1.0
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_payment_answers_402_with_error_spans_and_sends_no_email() {
    let stack = spawn_stack(StackOptions::with_env(&[("PAYMENT_FAILURE_RATE", "1")])).await;
    let names = stack.names();

    let response = stack.create_order(None).await;

    assert_eq!(response.status, 402, "{:?}", response.json);
    assert_eq!(response.json["status"], "payment_declined");
    assert!(is_trace_id(&response.json["trace_id"]));
    let trace_id = response.json["trace_id"].as_str().unwrap();
    let spans = stack
        .receiver
        .wait_for_trace(trace_id, WAIT, |s| every_hop_exported(s, 1))
        .await;
    assert_eq!(
        find(&spans, "order-gateway", "POST /create-order").status,
        "ERROR"
    );
    assert_eq!(find(&spans, "order-gateway", "POST").status, "ERROR");
    assert_eq!(
        find(&spans, "payment-service", "POST /process-payment").status,
        "ERROR"
    );
    let publish = find(
        &spans,
        "payment-service",
        &format!("publish {}", names.exchange),
    );
    assert_eq!(
        publish.attributes["messaging.rabbitmq.destination.routing_key"],
        "payment.failed"
    );
    let process = find(&spans, "email-service", &format!("process {}", names.queue));
    assert_eq!(
        process.attributes["messaging.rabbitmq.destination.routing_key"],
        "payment.failed"
    );
    assert!(
        !spans.iter().any(|s| s.name == "send email"),
        "no e-mail for a declined payment"
    );

    // The consumer acked the event and wrote nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(stack.outbox().is_empty());
    let gateway = stack.metrics(&stack.gateway_url).await;
    assert_eq!(
        counter(
            &gateway,
            "orders_created_total{status=\"payment_declined\"}"
        ),
        1.0
    );
    assert_eq!(
        counter(&gateway, "orders_created_total{status=\"confirmed\"}"),
        0.0
    );
    let payment_metrics = stack.metrics(&stack.payment_url).await;
    assert_eq!(
        counter(
            &payment_metrics,
            "payment_processed_total{status=\"declined\"}"
        ),
        1.0
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_documented_errors() {
    let stack = spawn_stack(StackOptions::default()).await;
    let item = |q: i64, p: i64| {
        format!(
            r#"{{"customer_email":"a@example.com","items":[{{"sku":"A","quantity":{q},"unit_price_cents":{p}}}]}}"#
        )
    };
    let cases: Vec<(String, u16, &str, &str)> = vec![
        ("{not json".into(), 400, "invalid_json", ""),
        (r#"{"customer_email":"a@example.com","items":[]}"#.into(), 422, "invalid_order", "items"),
        (item(0, 100), 422, "invalid_order", "items[0].quantity"),
        (item(1, -1), 422, "invalid_order", "items[0].unit_price_cents"),
        (item(-1, 1), 422, "invalid_order", "quantity"),
        (r#"{"customer_email":"not-an-address","items":[{"sku":"A","quantity":1,"unit_price_cents":1}]}"#.into(), 422, "invalid_order", "customer_email"),
        (r#"{"customer_email":"a@example.com","items":"many"}"#.into(), 422, "invalid_order", "items"),
        (format!(r#"{{"customer_email":"a@example.com","pad":"{}"}}"#, "x".repeat(70 * 1024)), 413, "payload_too_large", ""),
    ];
    for (body, status, code, names_field) in cases {
        let response = stack.create_order(Some(&body)).await;
        let shown = &body[..body.len().min(80)];
        assert_eq!(response.status, status, "{shown}: {:?}", response.json);
        assert_error_body(&response.json, code, shown);
        let message = response.json["error"]["message"].as_str().unwrap();
        assert!(message.contains(names_field), "{shown}: {message}");
        assert!(response.headers.contains_key("traceresponse"));
    }
    // Every response names its trace: probes (not recorded, flagged -00) and unknown routes too.
    for path in ["/health", "/metrics", "/no-such-route"] {
        let r = testkit::http::get(&stack.client, &format!("{}{path}", stack.gateway_url)).await;
        let header = r.headers()["traceresponse"].to_str().unwrap().to_owned();
        assert_eq!(header.len(), 55, "{path}: {header}");
        assert!(header.starts_with("00-"), "{path}: {header}");
        if path == "/no-such-route" {
            assert_eq!(r.status(), 404);
            assert!(header.ends_with("-01"), "{path}: {header}");
        } else {
            assert!(header.ends_with("-00"), "{path}: {header}");
        }
    }

    // payment-service validates too.
    let response = stack
        .client
        .post(format!("{}/process-payment", stack.payment_url))
        .header("content-type", "application/json")
        .body(r#"{"order_id":"o","amount_cents":-5,"currency":"USD","customer_email":"a@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["error"]["code"], "invalid_payment");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("amount_cents")
    );

    // Nothing was ordered, and the failures were counted by status.
    let gateway = stack.metrics(&stack.gateway_url).await;
    assert_eq!(
        counter(&gateway, "orders_created_total{status=\"confirmed\"}"),
        0.0
    );
    assert!(gateway.contains("http_request_duration_seconds_count{method=\"POST\",route=\"/create-order\",status_code=\"422\"} 6"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_and_the_next_order_still_goes_through() {
    let stack = spawn_stack(StackOptions::default()).await;
    let names = stack.names();

    stack
        .publish_raw("payment.succeeded", b"this is not json", &[])
        .await;
    stack
        .publish_raw(
            "payment.succeeded",
            br#"{"event_id":"e1","order_id":"o1"}"#,
            &[],
        )
        .await;
    let response = stack.create_order(None).await;
    assert_eq!(response.status, 201);

    let outbox = stack.wait_for_outbox(WAIT, |l| !l.is_empty()).await;
    assert_eq!(outbox.entries[0]["order_id"], response.json["order_id"]);
    let deadline = std::time::Instant::now() + WAIT;
    let mut dead = Vec::new();
    while dead.len() < 2 {
        dead.extend(stack.drain_queue(&names.dead_letter_queue).await);
        assert!(
            std::time::Instant::now() < deadline,
            "dead letters: {dead:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead.len(), 2);
    let bodies: Vec<&[u8]> = dead.iter().map(|(b, _)| b.as_slice()).collect();
    assert!(bodies.contains(&b"this is not json".as_slice()));
    for (_, headers) in &dead {
        let reason = &headers[messaging::DEAD_LETTER_REASON_HEADER];
        assert!(reason.starts_with("invalid event body"), "{reason}");
    }
    let email_metrics = stack.metrics(&stack.email_url).await;
    assert_eq!(
        counter(
            &email_metrics,
            &format!(
                "amqp_messages_consumed_total{{outcome=\"dead_lettered\",queue=\"{}\"}}",
                names.queue
            )
        ),
        2.0
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_payment_request_is_answered_with_the_first_result_and_one_email() {
    let stack = spawn_stack(StackOptions::default()).await;
    let body = r#"{"order_id":"order-idem-1","amount_cents":500,"currency":"EUR","customer_email":"b@example.com"}"#;
    let mut answers = Vec::new();
    for _ in 0..3 {
        let r = stack
            .client
            .post(format!("{}/process-payment", stack.payment_url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        answers.push(r.json::<Value>().await.unwrap());
    }
    assert_eq!(answers[0]["payment_id"], answers[1]["payment_id"]);
    assert_eq!(answers[0]["payment_id"], answers[2]["payment_id"]);
    stack.wait_for_outbox(WAIT, |l| !l.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stack.outbox().len(), 1, "one charge, one event, one e-mail");
    let metrics = stack.metrics(&stack.payment_url).await;
    assert_eq!(
        counter(&metrics, "payment_processed_total{status=\"succeeded\"}"),
        1.0
    );

    // A client's Idempotency-Key makes a retried order the same order: same id, one e-mail.
    let place = |key: String| {
        stack
            .client
            .post(format!("{}/create-order", stack.gateway_url))
            .header("idempotency-key", key)
            .send()
    };
    let first: Value = place("client-key-1".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let again = place("client-key-1".into()).await.unwrap();
    assert_eq!(again.status(), 201);
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["order_id"], again["order_id"]);
    assert_eq!(
        first["payment"]["payment_id"],
        again["payment"]["payment_id"]
    );
    stack.wait_for_outbox(WAIT, |l| l.len() == 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stack.outbox().len(),
        2,
        "the retried order sent no second e-mail"
    );
    let bad = place("x".repeat(300)).await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_idempotency_key"
    );
    stack.stop().await;
}

/// Sends `body` to a service's `PUT /admin/faults` at `url` with the test's admin token.
async fn put_faults(client: &reqwest::Client, url: &str, body: &'static str) -> reqwest::Response {
    client
        .put(url)
        .bearer_auth("s3cret")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_knobs_are_validated_and_guarded_by_the_admin_token() {
    let stack = spawn_stack(StackOptions::with_env(&[("ADMIN_TOKEN", "s3cret")])).await;
    let url = format!("{}/admin/faults", stack.payment_url);
    let r = stack.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = put_faults(&stack.client, &url, r#"{"failure_rate": 3}"#).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("failure_rate"));
    let r = put_faults(&stack.client, &url, r#"{"unavailable": true}"#).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["unavailable"], true);

    // payment unavailable: the gateway answers 503 payment_unavailable, and counts a failed order.
    let response = stack.create_order(None).await;
    assert_eq!(response.status, 503);
    assert_eq!(response.json["error"]["code"], "payment_unavailable");
    assert!(is_trace_id(&response.json["trace_id"]));
    let gateway = stack.metrics(&stack.gateway_url).await;
    assert_eq!(
        counter(&gateway, "orders_created_total{status=\"failed\"}"),
        1.0
    );

    // email-service: pausing stops consuming (not ready), resuming delivers the waiting e-mail.
    let email_faults = format!("{}/admin/faults", &stack.email_url);
    let r = put_faults(&stack.client, &email_faults, r#"{"paused": true}"#).await;
    assert_eq!(r.status(), 200);
    put_faults(&stack.client, &url, r#"{"unavailable": false}"#).await;
    let deadline = std::time::Instant::now() + WAIT;
    while stack
        .client
        .get(format!("{}/ready", &stack.email_url))
        .send()
        .await
        .unwrap()
        .status()
        != 503
    {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let response = stack.create_order(None).await;
    assert_eq!(response.status, 201);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(stack.outbox().is_empty(), "paused consumer sent an e-mail");
    put_faults(&stack.client, &email_faults, r#"{"paused": false}"#).await;
    let outbox = stack.wait_for_outbox(WAIT, |l| !l.is_empty()).await;
    assert_eq!(outbox.entries[0]["order_id"], response.json["order_id"]);
    stack.stop().await;
}
