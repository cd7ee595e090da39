//! The broker goes away twice in the middle of a concurrent load, once stopped cleanly
//! (`rabbitmqctl stop`) and once killed (SIGKILL of the whole Erlang VM), and comes back on the
//! same data directory. Every order answered 201 must be e-mailed exactly once, no order twice,
//! and the orders placed while the broker is away must fail fast with a clear 503.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use testkit::load::{assert_confirmed_or_unavailable, confirmed_order_ids, percentile};
use testkit::process::Stack;
use testkit::{Load, RabbitNode, Sample, wait_until};

/// Concurrent clients.
const WORKERS: usize = 8;
/// Each client places at most one order per this interval.
const PACE: Duration = Duration::from_millis(200);
/// Orders confirmed before, between and after the outages.
const CONFIRMED_PER_PHASE: usize = 40;
/// What "fast" means for an order placed while the broker is away: well below the gateway's
/// 5 s payment timeout and payment-service's 5 s confirm timeout, i.e. no request waits for a
/// broker that is not there (with room for two busy cores while the node boots).
const FAST: Duration = Duration::from_secs(2);

struct Outage {
    how: &'static str,
    down_at: Instant,
    back_at: Instant,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_orders_are_emailed_once_across_broker_stop_and_kill() {
    let mut node = RabbitNode::start().await;
    let mut stack = Stack::start(&node.amqp_url(), &[]).await;
    let names = stack.names();
    let load = Load::start(&stack.client, &stack.gateway.url(), WORKERS, PACE, 10_000);
    let phase = |what: &'static str| {
        load.wait_for_more(201, CONFIRMED_PER_PHASE, what, Duration::from_secs(60))
    };

    let mut outages = Vec::new();
    for how in ["stop", "kill"] {
        phase("orders confirmed before the outage").await;
        let down_at = Instant::now();
        match how {
            "stop" => node.stop().await,
            _ => node.kill().await,
        }
        let (client, payment) = (&stack.client, &stack.payment);
        wait_until(
            "payment-service to report the broker lost",
            Duration::from_secs(10),
            move || async move { (payment.ready_status(client).await == 503).then_some(()) },
        )
        .await;
        let gone_at = Instant::now();
        node.restart().await;
        let booted_at = Instant::now();
        stack.wait_ready(Duration::from_secs(60)).await;
        let back_at = Instant::now();
        println!(
            "broker {how}: node gone after {:?}, booted again after {:?}, services ready after {:?}",
            gone_at - down_at,
            booted_at - gone_at,
            back_at - booted_at
        );
        outages.push(Outage {
            how,
            down_at,
            back_at,
        });
    }
    phase("orders confirmed after the outages").await;
    let samples = load.finish().await;

    // Every confirmed order reaches the outbox; then the queues drain and the consumer stops
    // cleanly, so nothing is left that could still send later.
    let confirmed = confirmed_order_ids(&samples);
    let (outbox, _) = stack
        .finish_emailing(
            &node.amqp_url(),
            &confirmed,
            &[&names.queue, &names.retry_queue],
        )
        .await;

    // The figures.
    let count = |status: u16| samples.iter().filter(|s| s.status == status).count();
    let failed_trace_ids: HashSet<&str> = samples
        .iter()
        .filter(|s| s.status == 503)
        .filter_map(|s| s.trace_id.as_deref())
        .collect();
    let confirmed_set: HashSet<&str> = confirmed.iter().copied().collect();
    let emailed_after_503 = outbox
        .order_of_trace
        .keys()
        .filter(|t| failed_trace_ids.contains(t.as_str()))
        .count();
    let unknown: Vec<&String> = outbox
        .per_order
        .keys()
        .filter(|o| !confirmed_set.contains(o.as_str()))
        .filter(|o| {
            !outbox
                .order_of_trace
                .iter()
                .any(|(t, order)| order == *o && failed_trace_ids.contains(t.as_str()))
        })
        .collect();
    let duplicates = outbox.duplicates();
    println!(
        "broker restart: orders sent {}, 201 {}, 503 {}, other {}, e-mailed {} (lines {}), \
         e-mailed after a 503 {}, duplicated {}, unknown {}, torn lines {}",
        samples.len(),
        count(201),
        count(503),
        samples.len() - count(201) - count(503),
        outbox.per_order.len(),
        outbox.len(),
        emailed_after_503,
        duplicates.len(),
        unknown.len(),
        outbox.torn
    );
    let mut causes: std::collections::BTreeMap<String, usize> = Default::default();
    for line in stack.log_messages(
        "payment-service",
        "payment event not confirmed by the broker",
    ) {
        *causes
            .entry(line["error"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    println!("broker restart: why payment-service answered 503: {causes:?}");
    let mut slow = Vec::new();
    for outage in &outages {
        let during: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.started >= outage.down_at && s.started <= outage.back_at)
            .collect();
        let latencies: Vec<Duration> = during.iter().map(|s| s.latency).collect();
        let failed = during.iter().filter(|s| s.status == 503).count();
        let emailed = during
            .iter()
            .filter(|s| s.status == 503)
            .filter_map(|s| s.trace_id.as_deref())
            .filter(|t| outbox.order_of_trace.contains_key(*t))
            .count();
        let p99 = percentile(&latencies, 99.0);
        println!(
            "broker {}: outage {:?}, orders placed during it {}, 503 {} (e-mailed all the same {}), \
             latency p50 {:?} p99 {:?} max {:?}",
            outage.how,
            outage.back_at - outage.down_at,
            during.len(),
            failed,
            emailed,
            percentile(&latencies, 50.0),
            p99,
            percentile(&latencies, 100.0),
        );
        assert!(failed > 0, "the {} outage failed no order", outage.how);
        if p99 > FAST {
            slow.push((outage.how, p99));
        }
    }

    // The promise.
    assert_confirmed_or_unavailable(&samples);
    outbox.assert_each_emailed_once(&confirmed);
    assert!(
        unknown.is_empty(),
        "e-mails of orders never placed: {unknown:?}"
    );
    assert!(
        slow.is_empty(),
        "orders placed during an outage waited (p99 over {FAST:?}): {slow:?}"
    );
    drop(stack);
    drop(node);
}
