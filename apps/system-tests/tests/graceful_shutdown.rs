//! SIGTERM while there is work: each service binary finishes what it holds (orders answered,
//! e-mails sent and acked) and exits with status 0 within 5 s, with OTLP export on, whether the
//! collector is there, refuses connections (a closed port), or accepts them and never answers.

use std::time::{Duration, Instant};

use testkit::load::order_once;
use testkit::process::{Service, Stack, free_port};
use testkit::{OtlpReceiver, RabbitNode, Sample, wait_until};
use tokio::task::JoinSet;

/// The promise of convention 8: a missing collector never delays exit by more than a few seconds.
const EXIT_DEADLINE: Duration = Duration::from_secs(5);
/// Orders in flight when the signal arrives.
const IN_FLIGHT: usize = 8;

fn fire(stack: &Stack, n: usize) -> JoinSet<Sample> {
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (client, url) = (stack.client.clone(), stack.gateway.url());
        set.spawn(async move { order_once(&client, &url).await });
    }
    set
}

async fn collect(mut set: JoinSet<Sample>) -> Vec<Sample> {
    let mut out = Vec::new();
    while let Some(s) = set.join_next().await {
        out.push(s.expect("order task"));
    }
    out
}

async fn wait_received(stack: &Stack, total: usize) {
    wait_until(
        "the gateway to receive the orders",
        Duration::from_secs(10),
        || async {
            (stack.log_messages("order-gateway", "order received").len() >= total).then_some(())
        },
    )
    .await;
}

/// SIGTERMs `service` while it holds `orders`, and returns how long it took to exit: it must exit
/// 0 within 15 s, having answered every order 201, each answer coming after the signal (so the
/// order really was in flight).
async fn terminate_draining(
    service: &mut Service,
    collector: &str,
    orders: JoinSet<Sample>,
) -> Duration {
    let name = service.name();
    let signalled = Instant::now();
    let (status, took) = service
        .terminate(Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("{name} ({collector}) still running 15 s after SIGTERM"));
    let answers = collect(orders).await;
    println!("shutdown {name}, {collector}: {status} after {took:?}");
    assert!(status.success(), "{name} ({collector}): {status}");
    for a in &answers {
        assert_eq!(a.status, 201, "{name} ({collector}) drains: {a:?}");
        assert!(
            a.started + a.latency > signalled,
            "an order was still in flight at {name}'s SIGTERM"
        );
    }
    took
}

/// One collector set-up: starts a stack exporting to `endpoint`, SIGTERMs each service while it
/// has work, and returns the exit times (payment-service, order-gateway, email-service).
async fn run(node: &RabbitNode, collector: &str, endpoint: &str) -> Vec<(&'static str, Duration)> {
    let mut stack = Stack::start(
        &node.amqp_url(),
        &[
            ("OTEL_SDK_DISABLED", "false"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("PAYMENT_LATENCY_MS", "1000"),
            ("EMAIL_LATENCY_MS", "2000"),
        ],
    )
    .await;
    let names = stack.names();
    let mut times = Vec::new();

    // payment-service, holding IN_FLIGHT payments (each takes 1 s). The gateway logs each order
    // just before calling payment-service; 200 ms more lets the calls arrive.
    let orders = fire(&stack, IN_FLIGHT);
    wait_received(&stack, IN_FLIGHT).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let took = terminate_draining(&mut stack.payment, collector, orders).await;
    times.push(("payment-service", took));
    stack.payment.restart();
    stack
        .payment
        .wait_ready(&stack.client, Duration::from_secs(30))
        .await;

    // order-gateway, holding IN_FLIGHT orders waiting for payment-service.
    let orders = fire(&stack, IN_FLIGHT);
    wait_received(&stack, 2 * IN_FLIGHT).await;
    let took = terminate_draining(&mut stack.gateway, collector, orders).await;
    times.push(("order-gateway", took));

    // email-service, with fresh e-mails in flight (each takes 2 s): payments placed directly at
    // payment-service, whose 201 means the event is confirmed and on its way to the consumer.
    let mut payments = JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (client, url) = (stack.client.clone(), stack.payment.url());
        payments.spawn(async move {
            let order_id = uuid::Uuid::new_v4().to_string();
            let response = client
                .post(format!("{url}/process-payment"))
                .json(&serde_json::json!({
                    "order_id": order_id,
                    "amount_cents": 1999,
                    "currency": "USD",
                    "customer_email": "shutdown@example.com",
                }))
                .send()
                .await
                .expect("payment-service answers");
            assert_eq!(response.status(), 201, "payment of {order_id}");
            order_id
        });
    }
    let mut fresh = Vec::new();
    while let Some(order_id) = payments.join_next().await {
        fresh.push(order_id.expect("payment task"));
    }
    let before = stack.outbox();
    let (status, took) = stack
        .email
        .terminate(Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("email-service ({collector}) still running 15 s after SIGTERM"));
    let outbox = stack.outbox();
    let pending = fresh.iter().filter(|id| before.count(id) == 0).count();
    println!(
        "shutdown email-service, {collector}: {status} after {took:?} \
         ({pending} e-mails in flight at the signal)"
    );
    assert!(status.success(), "email-service ({collector}): {status}");
    assert!(
        pending > 0,
        "email-service had e-mails in flight at SIGTERM"
    );
    for id in &fresh {
        assert_eq!(outbox.count(id), 1, "in-flight e-mail of {id} finishes");
    }
    assert_eq!(outbox.len(), 3 * IN_FLIGHT, "every order e-mailed");
    assert!(outbox.duplicates().is_empty());
    assert_eq!(node.ready_messages(&names.queue).await, 0, "and acked");
    times.push(("email-service", took));
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_exits_cleanly_within_5_s_of_sigterm_whatever_the_collector_does() {
    let node = RabbitNode::start().await;
    let receiver = OtlpReceiver::start().await;
    let closed = format!("http://127.0.0.1:{}", free_port());
    let silent = OtlpReceiver::silent().await;

    let mut results = Vec::new();
    for (collector, endpoint) in [
        ("collector up", receiver.endpoint()),
        ("collector port closed", closed),
        ("collector silent", silent.endpoint()),
    ] {
        for (service, took) in run(&node, collector, &endpoint).await {
            results.push((service, collector, took));
        }
    }
    drop(silent);

    let exported = receiver.spans().len();
    println!("shutdown: spans received by the collector {exported}");
    for (service, collector, took) in &results {
        println!("shutdown: {service:<16} {collector:<22} exit 0 after {took:?}");
    }
    assert!(exported > 0, "the collector received the services' spans");
    let late: Vec<_> = results
        .iter()
        .filter(|(_, _, took)| *took > EXIT_DEADLINE)
        .collect();
    assert!(late.is_empty(), "exits over {EXIT_DEADLINE:?}: {late:?}");
}
