//! Three email-service replicas compete for the quorum queue of a three-node RabbitMQ cluster
//! while orders arrive at a steady rate for at least a minute. The node that leads the queue
//! stops, one replica is killed with SIGKILL (its unacknowledged deliveries go to the other
//! two), and the node comes back. Every order answered 201 is e-mailed exactly once: the
//! replicas share one outbox file, and that file, not a replica's memory, says what was sent.
//! An order retried with its Idempotency-Key through another gateway and payment replica is the
//! same order with one e-mail. Then every replica of every service gets SIGTERM and must exit
//! within 5 s. Prints each
//! replica's share of the e-mails, the failover time and the latencies.

use std::time::{Duration, Instant};

use testkit::load::{assert_confirmed_or_unavailable, confirmed_order_ids, percentile};
use testkit::process::Stack;
use testkit::{Load, RabbitCluster, Sample};

/// Concurrent clients.
const WORKERS: usize = 6;
/// Each client places at most one order per this interval: a steady 30 orders/s.
const PACE: Duration = Duration::from_millis(200);
/// Orders confirmed in each phase: before the stop, with the node away, after the kill, with
/// the node back.
const CONFIRMED_PER_PHASE: usize = 60;
/// The load lasts at least this long.
const LOAD_FOR: Duration = Duration::from_secs(60);
/// How long a replica may take to exit after SIGTERM.
const EXIT_WITHIN: Duration = Duration::from_secs(5);

/// `emails_sent_total{status="sent"}` of the email-service at `url`.
async fn emails_sent(client: &reqwest::Client, url: &str) -> f64 {
    testkit::http::metrics(client, url)
        .await
        .lines()
        .find(|line| line.starts_with("emails_sent_total{") && line.contains("status=\"sent\""))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_consumer_replicas_email_each_order_once_through_a_node_loss_and_a_kill() {
    let mut cluster = RabbitCluster::start(3).await;
    let amqp_url = cluster.amqp_url();
    let mut stack = Stack::start(&amqp_url, &[("AMQP_QUEUE_TYPE", "quorum")]).await;
    stack.add_email_replicas(2).await;
    let names = stack.names();
    let started = Instant::now();
    let load = Load::start(&stack.client, &stack.gateway.url(), WORKERS, PACE, 20_000);
    let phase = |what: &'static str| {
        load.wait_for_more(201, CONFIRMED_PER_PHASE, what, Duration::from_secs(90))
    };
    phase("orders confirmed with three replicas").await;

    let leader = cluster.leader_of(&names.queue).await;
    let leader_name = cluster.node(leader).name().to_owned();
    let down_at = Instant::now();
    cluster.node(leader).stop().await;
    phase("orders confirmed with the leader gone").await;

    // A replica dies holding deliveries it has not acknowledged.
    let killed_sent = emails_sent(&stack.client, &stack.email_replicas[0].url()).await;
    stack.email_replicas[0].kill();
    phase("orders confirmed after a replica was killed").await;

    cluster.node(leader).restart().await;
    cluster.wait_running(3, Duration::from_secs(60)).await;
    let back_at = Instant::now();
    phase("orders confirmed with the node back").await;
    if let Some(rest) = LOAD_FOR.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let samples = load.finish().await;
    let load_took = started.elapsed();

    // A client retries its order with the same Idempotency-Key through another gateway and
    // payment replica: the same order, the same payment, and (below) one e-mail.
    let mut payment_b = stack.start_replica("payment-service", &[]).await;
    let mut gateway_b = stack
        .start_replica("order-gateway", &[("PAYMENT_URL", &payment_b.url())])
        .await;
    let place = |gateway: String| {
        let client = stack.client.clone();
        async move {
            let answer = client
                .post(format!("{gateway}/create-order"))
                .header("idempotency-key", "retried-on-another-replica")
                .send()
                .await
                .expect("an answer");
            assert_eq!(answer.status(), 201);
            answer
                .json::<serde_json::Value>()
                .await
                .expect("a JSON answer")
        }
    };
    let first = place(stack.gateway.url()).await;
    let retried = place(gateway_b.url()).await;
    assert_eq!(first["order_id"], retried["order_id"]);
    assert_eq!(
        first["payment"]["payment_id"],
        retried["payment"]["payment_id"]
    );
    let retried_order = first["order_id"].as_str().unwrap().to_owned();
    let mut confirmed = confirmed_order_ids(&samples);
    confirmed.push(&retried_order);

    // Each replica's share, read before they stop.
    stack
        .wait_until_emailed(&confirmed, Duration::from_secs(60))
        .await;
    let mut shares = vec![format!("killed replica {killed_sent} (when killed)")];
    let client = stack.client.clone();
    let urls: Vec<String> = stack.running_email_services().map(|e| e.url()).collect();
    for url in urls {
        shares.push(format!("{url} {}", emails_sent(&client, &url).await));
    }
    let (outbox, email_exits) = stack
        .finish_emailing(&amqp_url, &confirmed, &[&names.queue, &names.retry_queue])
        .await;
    let mut exits = email_exits;
    for service in [
        &mut stack.payment,
        &mut stack.gateway,
        &mut payment_b,
        &mut gateway_b,
    ] {
        let (status, took) = service
            .terminate(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{} exits after SIGTERM", service.name()));
        assert!(status.success(), "{} exit: {status}", service.name());
        exits.push(took);
    }

    let during: Vec<Duration> = samples
        .iter()
        .filter(|s| s.started >= down_at && s.started <= back_at)
        .map(|s| s.latency)
        .collect();
    let first_201_after = samples
        .iter()
        .filter(|s| s.started >= down_at && s.status == 201)
        .map(|s| s.started + s.latency)
        .min()
        .expect("an order confirmed after the stop");
    let count = |status: u16| {
        samples
            .iter()
            .filter(|s: &&Sample| s.status == status)
            .count()
    };
    println!(
        "replicas on a cluster: {} orders in {load_took:?} ({:.1}/s), 201 {}, 503 {}, e-mailed {}, \
         duplicated {}; leader {leader_name} stopped, first order confirmed {:?} after; latency \
         with the node away p50 {:?} p99 {:?}; e-mails per replica: {}; exit after SIGTERM \
         (email x2, payment x2, gateway x2): {exits:?}",
        samples.len(),
        samples.len() as f64 / load_took.as_secs_f64(),
        count(201),
        count(503),
        outbox.per_order.len(),
        outbox.duplicates().len(),
        first_201_after.saturating_duration_since(down_at),
        percentile(&during, 50.0),
        percentile(&during, 99.0),
        shares.join(", "),
    );

    assert_confirmed_or_unavailable(&samples);
    outbox.assert_each_emailed_once(&confirmed);
    assert_eq!(
        exits.len(),
        6,
        "two replicas each of email-service, payment-service and order-gateway stopped"
    );
    for took in &exits {
        assert!(
            *took <= EXIT_WITHIN,
            "a replica took {took:?} to exit after SIGTERM"
        );
    }
    drop(stack);
    drop(cluster);
}
