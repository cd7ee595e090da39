//! Failed sends are retried with backoff, each attempt a CONSUMER span of the same trace, and
//! dead-lettered after `EMAIL_MAX_ATTEMPTS`.

use std::time::Duration;

use serde_json::Value;
use system_tests::{StackOptions, spawn_stack};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_that_fails_twice_is_sent_once_on_the_third_attempt() {
    let stack = spawn_stack(StackOptions::with_env(&[("EMAIL_MAX_ATTEMPTS", "3")])).await;
    let names = stack.names();
    let faults = format!("{}/admin/faults", &stack.email_url);
    let r = stack
        .client
        .put(&faults)
        .body(r#"{"fail_next": 2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["fail_next"], 2);

    let response = stack.create_order(None).await;
    assert_eq!(response.status, 201);
    let trace_id = response.json["trace_id"].as_str().unwrap();

    let outbox = stack.wait_for_outbox(WAIT, |l| !l.is_empty()).await;
    assert_eq!(outbox.entries[0]["order_id"], response.json["order_id"]);
    let spans = stack
        .receiver
        .wait_for_trace(trace_id, WAIT, |s| {
            s.iter().filter(|s| s.kind == "CONSUMER").count() == 3
                && s.iter().filter(|s| s.name == "send email").count() == 3
        })
        .await;
    let publish = spans.iter().find(|s| s.kind == "PRODUCER").unwrap();
    let mut consumers: Vec<_> = spans.iter().filter(|s| s.kind == "CONSUMER").collect();
    consumers.sort_by_key(|s| s.attributes["messaging.delivery.attempt"].clone());
    let attempts: Vec<&str> = consumers
        .iter()
        .map(|s| s.attributes["messaging.delivery.attempt"].as_str())
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    for (i, c) in consumers.iter().enumerate() {
        assert_eq!(
            c.parent_span_id, publish.span_id,
            "every attempt continues the producer's trace"
        );
        assert_eq!(
            c.status,
            if i < 2 { "ERROR" } else { "UNSET" },
            "attempt {}",
            i + 1
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stack.outbox().len(), 1, "sent exactly once");
    let metrics = stack.metrics(&stack.email_url).await;
    assert!(
        metrics.contains(&format!(
            "amqp_messages_consumed_total{{outcome=\"retried\",queue=\"{}\"}} 2",
            names.queue
        )),
        "{metrics}"
    );
    assert!(metrics.contains("emails_sent_total{status=\"failed\"} 2"));
    assert!(metrics.contains("emails_sent_total{status=\"sent\"} 1"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_that_always_fails_ends_in_the_dead_letter_queue() {
    let stack = spawn_stack(StackOptions::with_env(&[
        ("EMAIL_MAX_ATTEMPTS", "2"),
        ("EMAIL_FAILURE_RATE", "1"),
    ]))
    .await;
    let names = stack.names();
    let response = stack.create_order(None).await;
    assert_eq!(response.status, 201);

    let deadline = std::time::Instant::now() + WAIT;
    let dead = loop {
        let dead = stack.drain_queue(&names.dead_letter_queue).await;
        if !dead.is_empty() {
            break dead;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead.len(), 1);
    let (body, headers) = &dead[0];
    let event: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(event["order_id"], response.json["order_id"]);
    assert_eq!(headers[messaging::ATTEMPT_HEADER], "2");
    assert_eq!(
        headers[messaging::DEAD_LETTER_REASON_HEADER],
        "mail server refused the message"
    );
    assert!(
        headers.contains_key("traceparent"),
        "the trace context survives dead-lettering"
    );
    assert!(stack.outbox().is_empty());
    stack.stop().await;
}
