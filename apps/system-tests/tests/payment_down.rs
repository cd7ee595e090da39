//! payment-service frozen (SIGSTOP: connections are accepted, nothing answers) and then dead
//! (SIGKILL: connections are refused): the gateway answers every order with a clear 503 within
//! `PAYMENT_TIMEOUT_MS`, says it is not ready, and takes orders again once payment-service is
//! back.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use testkit::load::{order_once, percentile};
use testkit::process::Stack;
use testkit::{RabbitNode, Sample};
use tokio::task::JoinSet;

const TIMEOUT_MS: u64 = 1000;
const CONCURRENT: usize = 8;
const ROUNDS: usize = 2;

/// Places `CONCURRENT` orders at once, `ROUNDS` times.
async fn burst(stack: &Stack) -> Vec<Sample> {
    let mut all = Vec::new();
    for _ in 0..ROUNDS {
        let mut set = JoinSet::new();
        for _ in 0..CONCURRENT {
            let (client, url) = (stack.client.clone(), stack.gateway.url());
            set.spawn(async move { order_once(&client, &url).await });
        }
        while let Some(sample) = set.join_next().await {
            all.push(sample.expect("order task"));
        }
    }
    all
}

/// How many orders a burst sent, how many were answered 503, and their latency spread.
fn summary(samples: &[Sample]) -> String {
    let latencies = latencies(samples);
    format!(
        "{} orders, 503 {}, latency min {:?} p99 {:?} max {:?}",
        samples.len(),
        samples.iter().filter(|s| s.status == 503).count(),
        percentile(&latencies, 0.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 100.0),
    )
}

fn latencies(samples: &[Sample]) -> Vec<Duration> {
    samples.iter().map(|s| s.latency).collect()
}

fn assert_clear_503(samples: &[Sample], what: &str) {
    for s in samples {
        assert_eq!(s.status, 503, "{what}: {s:?}");
        assert_eq!(
            s.code.as_deref(),
            Some("payment_unavailable"),
            "{what}: {s:?}"
        );
        assert!(
            s.trace_id.is_some(),
            "{what}: an error still names its trace: {s:?}"
        );
    }
}

/// The gateway really waited for its `deadline` (payment-service answered too late or never),
/// and no longer than the deadline plus scheduling slack.
fn assert_answered_at_the_deadline(samples: &[Sample], deadline: Duration, what: &str) {
    for s in samples {
        assert!(
            s.latency >= deadline.mul_f64(0.9) && s.latency < deadline + Duration::from_secs(1),
            "{what}: answered after {:?}, deadline {deadline:?}",
            s.latency
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_answers_503_within_its_timeout_when_payment_is_down() {
    let node = RabbitNode::start().await;
    let timeout_ms = TIMEOUT_MS.to_string();
    let mut stack = Stack::start(&node.amqp_url(), &[("PAYMENT_TIMEOUT_MS", &timeout_ms)]).await;
    let timeout = Duration::from_millis(TIMEOUT_MS);
    let client = stack.client.clone();

    let warm = burst(&stack).await;
    assert!(warm.iter().all(|s| s.status == 201), "{warm:?}");

    // Slow: payment-service answers, but after the gateway's deadline.
    let faults = format!("{}/admin/faults", stack.payment.url());
    let set_latency = |ms: u64| {
        let request = client
            .put(&faults)
            .body(format!(r#"{{"latency_ms": {ms}}}"#));
        async move {
            let response = request.send().await.expect("payment-service answers");
            assert_eq!(response.status(), 200, "PUT /admin/faults");
        }
    };
    set_latency(2 * TIMEOUT_MS).await;
    let slow = burst(&stack).await;
    set_latency(0).await;

    // Frozen: the kernel still accepts connections, so only the gateway's deadline ends the wait.
    stack.payment.signal("STOP");
    let frozen = burst(&stack).await;
    let gateway_ready_frozen = stack.gateway.ready_status(&client).await;
    stack.payment.signal("CONT");
    stack.wait_ready(Duration::from_secs(30)).await;

    // Dead: connections are refused, so the answer comes at once.
    stack.payment.kill();
    let dead = burst(&stack).await;
    let gateway_ready_dead = stack.gateway.ready_status(&client).await;
    let restarted = Instant::now();
    stack.payment.restart();
    stack.wait_ready(Duration::from_secs(30)).await;
    let back_after = restarted.elapsed();
    let after = burst(&stack).await;

    // Orders confirmed before and after are e-mailed once each; an order the gateway gave up on
    // while payment-service was frozen may still be charged and e-mailed once it thaws.
    let confirmed: Vec<&str> = warm
        .iter()
        .chain(&after)
        .filter_map(|s| s.order_id.as_deref())
        .collect();
    let outbox = stack
        .wait_until_emailed(&confirmed, Duration::from_secs(30))
        .await;
    let emailed_after_503 = |samples: &[Sample]| {
        let traces: HashSet<&str> = samples
            .iter()
            .filter_map(|s| s.trace_id.as_deref())
            .collect();
        outbox
            .order_of_trace
            .keys()
            .filter(|t| traces.contains(t.as_str()))
            .count()
    };

    println!(
        "payment slow (latency {} ms): {}; e-mailed all the same (so far) {}",
        2 * TIMEOUT_MS,
        summary(&slow),
        emailed_after_503(&slow),
    );
    println!(
        "payment frozen: {} (PAYMENT_TIMEOUT_MS {TIMEOUT_MS}); gateway /ready {gateway_ready_frozen}; \
         e-mailed all the same (so far) {}",
        summary(&frozen),
        emailed_after_503(&frozen),
    );
    println!(
        "payment dead: {}; gateway /ready {gateway_ready_dead}; back after restart in {back_after:?}",
        summary(&dead),
    );
    println!(
        "payment down: confirmed {}, e-mailed {}, duplicated {}",
        confirmed.len(),
        confirmed.iter().filter(|id| outbox.count(id) > 0).count(),
        outbox.duplicates().len()
    );

    assert_clear_503(&slow, "payment slow");
    assert_answered_at_the_deadline(&slow, timeout, "payment slow");
    assert_clear_503(&frozen, "payment frozen");
    assert_answered_at_the_deadline(&frozen, timeout, "payment frozen");
    assert_eq!(
        gateway_ready_frozen, 503,
        "gateway /ready while payment is frozen"
    );
    assert_clear_503(&dead, "payment dead");
    for s in &dead {
        assert!(
            s.latency < timeout,
            "payment dead: a refused connection is answered before the deadline, took {:?}",
            s.latency
        );
    }
    assert_eq!(
        gateway_ready_dead, 503,
        "gateway /ready while payment is dead"
    );
    assert!(after.iter().all(|s| s.status == 201), "{after:?}");
    for id in &confirmed {
        assert_eq!(outbox.count(id), 1, "order {id}");
    }
    assert!(outbox.duplicates().is_empty(), "{:?}", outbox.duplicates());
}
