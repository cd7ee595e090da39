//! The broker goes away and comes back: services start without it, say they are not ready,
//! fail orders fast with 503, reconnect, and then carry orders end to end again.

use std::time::{Duration, Instant};

use system_tests::{Stack, StackOptions, spawn_stack};
use testkit::TcpProxy;
use testkit::http::ready_status;

async fn wait_status(stack: &Stack, url: &str, want: u16) {
    let what = format!("{url}/ready to answer {want}");
    testkit::wait_until(&what, Duration::from_secs(20), || async move {
        (ready_status(&stack.client, url).await == want).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_wait_for_the_broker_and_reconnect_after_an_outage() {
    let proxy = TcpProxy::closed("127.0.0.1:5672".parse().unwrap()).await;
    let stack = spawn_stack(StackOptions {
        env: vec![
            (
                "AMQP_URL".into(),
                format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port()),
            ),
            ("PUBLISH_CONFIRM_TIMEOUT_MS".into(), "1000".into()),
        ],
        no_ready_wait: true,
        ..StackOptions::default()
    })
    .await;
    let email_url = stack.email_url.clone();

    // Broker absent: alive, not ready, and an order fails fast with 503.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let health = testkit::http::get(&stack.client, &format!("{}/health", stack.payment_url)).await;
    assert_eq!(health.status(), 200);
    assert_eq!(ready_status(&stack.client, &stack.payment_url).await, 503);
    assert_eq!(ready_status(&stack.client, &email_url).await, 503);
    let started = Instant::now();
    let response = stack.create_order(None).await;
    assert_eq!(response.status, 503, "{:?}", response.json);
    assert_eq!(response.json["error"]["code"], "payment_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );

    // Broker arrives: both become ready without a restart and an order is e-mailed.
    proxy.restore().await;
    wait_status(&stack, &stack.payment_url, 200).await;
    wait_status(&stack, &email_url, 200).await;
    let first = stack.create_order(None).await;
    assert_eq!(first.status, 201, "{:?}", first.json);
    stack
        .wait_for_outbox(Duration::from_secs(15), |l| l.len() == 1)
        .await;

    // Broker lost mid-life: not ready, fast 503s; back again: orders flow and nothing repeats.
    proxy.cut();
    wait_status(&stack, &stack.payment_url, 503).await;
    let response = stack.create_order(None).await;
    assert_eq!(response.status, 503);
    proxy.restore().await;
    wait_status(&stack, &stack.payment_url, 200).await;
    wait_status(&stack, &email_url, 200).await;
    let second = stack.create_order(None).await;
    assert_eq!(second.status, 201, "{:?}", second.json);
    let outbox = stack
        .wait_for_outbox(Duration::from_secs(15), |l| l.len() >= 2)
        .await;
    assert_eq!(outbox.len(), 2, "{outbox:#?}");
    assert_eq!(outbox.entries[1]["order_id"], second.json["order_id"]);
    stack.stop().await;
}
