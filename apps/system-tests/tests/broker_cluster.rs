//! A three-node RabbitMQ cluster with quorum queues loses the node that leads the e-mail queue
//! in the middle of a steady load, and gets it back. The services are given every node's URL
//! (`AMQP_URL` as a list) and `AMQP_QUEUE_TYPE=quorum`: the publisher and the consumer fail over
//! to a surviving node, the queue elects a new leader, and every order answered 201 is e-mailed
//! exactly once. Prints the failover time and the latencies around it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use testkit::load::{assert_confirmed_or_unavailable, confirmed_order_ids, percentile};
use testkit::process::Stack;
use testkit::{Load, RabbitCluster, Sample};

/// Concurrent clients.
const WORKERS: usize = 6;
/// Each client places at most one order per this interval: a steady 30 orders/s.
const PACE: Duration = Duration::from_millis(200);
/// Orders confirmed before the node stops, while it is away, and after it is back.
const CONFIRMED_PER_PHASE: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_orders_are_emailed_once_when_the_quorum_leader_dies() {
    let mut cluster = RabbitCluster::start(3).await;
    let amqp_url = cluster.amqp_url();
    let mut stack = Stack::start(&amqp_url, &[("AMQP_QUEUE_TYPE", "quorum")]).await;
    let names = stack.names();
    let load = Load::start(&stack.client, &stack.gateway.url(), WORKERS, PACE, 20_000);
    load.wait_for_more(
        201,
        CONFIRMED_PER_PHASE,
        "orders confirmed on the whole cluster",
        Duration::from_secs(60),
    )
    .await;

    // The node that leads the e-mail queue goes away.
    let leader = cluster.leader_of(&names.queue).await;
    let leader_name = cluster.node(leader).name().to_owned();
    let confirmed_before = load.count(201);
    let down_at = Instant::now();
    cluster.node(leader).stop().await;
    let stopped_at = Instant::now();
    let recovered = tokio::time::timeout(
        Duration::from_secs(90),
        load.wait_for_more(
            201,
            CONFIRMED_PER_PHASE,
            "orders confirmed with the leader gone",
            Duration::from_secs(95),
        ),
    )
    .await;
    if recovered.is_err() {
        // Each distinct warning or error once, with how often it was logged: a refused
        // publish is logged per order, thousands of times.
        let mut logged: std::collections::BTreeMap<(String, String, String), usize> =
            std::collections::BTreeMap::new();
        for service in ["payment-service", "email-service"] {
            for line in stack.log_lines(service) {
                if line["level"] != "INFO" {
                    let text = |key: &str| line[key].as_str().unwrap_or_default().to_owned();
                    *logged
                        .entry((service.to_owned(), text("message"), text("error")))
                        .or_default() += 1;
                }
            }
        }
        for ((service, message, error), times) in &logged {
            println!("{service}: {times} x {message}: {error}");
        }
        println!("{}", cluster.describe().await);
        panic!(
            "no {CONFIRMED_PER_PHASE} orders confirmed within 90 s of stopping {leader_name}: \
             201 {} 503 {} of {}",
            load.count(201),
            load.count(503),
            load.answered()
        );
    }
    let new_leader = cluster.leader_of(&names.queue).await;
    assert_ne!(new_leader, leader, "the queue kept a stopped leader");

    // It comes back and rejoins.
    cluster.node(leader).restart().await;
    cluster.wait_running(3, Duration::from_secs(60)).await;
    let back_at = Instant::now();
    load.wait_for_more(
        201,
        CONFIRMED_PER_PHASE,
        "orders confirmed with the node back",
        Duration::from_secs(60),
    )
    .await;
    let samples = load.finish().await;

    let confirmed = confirmed_order_ids(&samples);
    let (outbox, _) = stack
        .finish_emailing(&amqp_url, &confirmed, &[&names.queue, &names.retry_queue])
        .await;

    // The figures.
    let after_stop: Vec<&Sample> = samples.iter().filter(|s| s.started >= down_at).collect();
    let first_201_after = after_stop
        .iter()
        .filter(|s| s.status == 201)
        .map(|s| s.started + s.latency)
        .min()
        .expect("an order confirmed after the stop");
    let during: Vec<&Sample> = after_stop
        .iter()
        .copied()
        .filter(|s| s.started <= back_at)
        .collect();
    let latencies = |set: &[&Sample]| -> Vec<Duration> { set.iter().map(|s| s.latency).collect() };
    let before: Vec<&Sample> = samples.iter().filter(|s| s.started < down_at).collect();
    let count = |status: u16| samples.iter().filter(|s| s.status == status).count();
    println!(
        "broker cluster: leader {leader_name} stopped in {:?}; first order confirmed {:?} after the \
         stop began; orders sent {}, 201 {}, 503 {}, e-mailed {}, duplicated {}; latency before \
         p50 {:?} p99 {:?}, with the leader away p50 {:?} p99 {:?} max {:?}; 201 before the stop {}",
        stopped_at - down_at,
        first_201_after.saturating_duration_since(down_at),
        samples.len(),
        count(201),
        count(503),
        outbox.per_order.len(),
        outbox.duplicates().len(),
        percentile(&latencies(&before), 50.0),
        percentile(&latencies(&before), 99.0),
        percentile(&latencies(&during), 50.0),
        percentile(&latencies(&during), 99.0),
        percentile(&latencies(&during), 100.0),
        confirmed_before,
    );

    // The promise.
    assert_confirmed_or_unavailable(&samples);
    outbox.assert_each_emailed_once(&confirmed);
    let confirmed_set: HashSet<&str> = confirmed.iter().copied().collect();
    let unconfirmed_emails = outbox
        .per_order
        .keys()
        .filter(|o| !confirmed_set.contains(o.as_str()))
        .count();
    println!(
        "broker cluster: e-mails of orders answered 503 (paid all the same): {unconfirmed_emails}"
    );
    drop(stack);
    drop(cluster);
}
