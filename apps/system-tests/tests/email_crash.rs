//! email-service is killed with SIGKILL twice while it works through a stream of orders, and
//! restarted on the same outbox: no confirmed order loses its e-mail, none gets two.

use std::time::{Duration, Instant};

use testkit::load::confirmed_order_ids;
use testkit::process::Stack;
use testkit::{Load, RabbitNode, wait_until};

const ORDERS: usize = 400;
const WORKERS: usize = 8;
const PACE: Duration = Duration::from_millis(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_email_service_loses_and_repeats_no_email() {
    let node = RabbitNode::start().await;
    // Slow sends and a small prefetch keep deliveries in flight and a backlog in the queue, so
    // each kill lands between "received" and "acked" for several of them.
    let mut stack = Stack::start(
        &node.amqp_url(),
        &[("EMAIL_LATENCY_MS", "40"), ("EMAIL_PREFETCH", "8")],
    )
    .await;
    let names = stack.names();
    let load = Load::start(&stack.client, &stack.gateway.url(), WORKERS, PACE, ORDERS);

    let mut kills = Vec::new();
    for round in 1..=2 {
        let target = round * ORDERS / 4;
        let stack_ref = &stack;
        wait_until(
            "e-mails before the kill",
            Duration::from_secs(60),
            move || async move { (stack_ref.outbox().len() >= target).then_some(()) },
        )
        .await;
        stack.email.kill();
        let sent_at_kill = stack.outbox().len();
        let confirmed_at_kill = load.count(201);
        let backlog = node.ready_messages(&names.queue).await;
        let restarted = Instant::now();
        stack.email.restart();
        stack
            .email
            .wait_ready(&stack.client, Duration::from_secs(30))
            .await;
        println!(
            "email crash {round}: killed at {sent_at_kill} e-mails sent of {confirmed_at_kill} \
             orders confirmed, {backlog} ready in the queue; consuming again after {:?}",
            restarted.elapsed()
        );
        kills.push((sent_at_kill, confirmed_at_kill, backlog));
    }
    let load_ref = &load;
    wait_until(
        "every order to be answered",
        Duration::from_secs(60),
        move || async move { (load_ref.answered() == ORDERS).then_some(()) },
    )
    .await;
    let samples = load.finish().await;

    let confirmed = confirmed_order_ids(&samples);
    let (outbox, _) = stack
        .finish_emailing(&node.amqp_url(), &confirmed, &[&names.queue])
        .await;
    let duplicates = outbox.duplicates();
    let ignored = stack
        .log_messages("email-service", "e-mail already sent; redelivery ignored")
        .len();
    println!(
        "email crash: orders sent {}, 201 {}, e-mailed {} (lines {}), duplicated {}, \
         redeliveries recognised as sent {ignored}, torn lines {}",
        samples.len(),
        confirmed.len(),
        outbox.per_order.len(),
        outbox.len(),
        duplicates.len(),
        outbox.torn
    );

    assert_eq!(samples.len(), ORDERS);
    assert_eq!(
        confirmed.len(),
        ORDERS,
        "the broker stayed up: every order is confirmed"
    );
    for (sent, confirmed_then, backlog) in &kills {
        assert!(
            sent < confirmed_then && *backlog > 0,
            "each kill hits a consumer with e-mails still to send"
        );
    }
    for id in &confirmed {
        assert_eq!(outbox.count(id), 1, "order {id}");
    }
    assert!(
        duplicates.is_empty(),
        "orders e-mailed twice: {duplicates:?}"
    );
    assert_eq!(outbox.len(), ORDERS, "one line per order, nothing else");
}
