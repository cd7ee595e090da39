//! The RabbitMQ of the tests: the shared broker (`AMQP_URL`, else 127.0.0.1:5672), on which each
//! test keeps to its own `AMQP_PREFIX`, and [`RabbitNode`], a private node for the tests that stop
//! and kill their broker. The helpers here reach past the services to the broker itself, to plant
//! a message, take what a queue holds or clean up after a test.

mod cluster;
mod node;

pub use cluster::RabbitCluster;
pub use node::RabbitNode;

use std::collections::HashMap;
use std::time::Duration;

use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};

/// Returns the AMQP URL of the shared broker (`AMQP_URL`, else the local default).
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A message taken from a queue: its body and its string and integer headers as text.
pub type Message = (Vec<u8>, HashMap<String, String>);

/// Publishes a persistent message with string `headers` to `exchange`, bypassing
/// payment-service (to play a poison message), and waits for the broker's confirm.
pub async fn publish_raw(
    amqp_url: &str,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) {
    let connection = messaging::connect(amqp_url, "testkit")
        .await
        .expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    let mut table = FieldTable::default();
    for (k, v) in headers {
        table.insert((*k).into(), AMQPValue::LongString((*v).into()));
    }
    channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            lapin::BasicProperties::default()
                .with_delivery_mode(2)
                .with_headers(table),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    let _ = connection.close(200, "done".into()).await;
}

/// Takes every message currently ready in `queue`.
pub async fn drain_queue(amqp_url: &str, queue: &str) -> Vec<Message> {
    let connection = messaging::connect(amqp_url, "testkit")
        .await
        .expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    let mut out = Vec::new();
    while let Some(message) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .expect("basic.get")
    {
        let headers = message
            .delivery
            .properties
            .headers()
            .as_ref()
            .map(|t| {
                t.inner()
                    .iter()
                    .filter_map(|(k, v)| match v {
                        AMQPValue::LongString(s) => Some((
                            k.as_str().to_owned(),
                            String::from_utf8_lossy(s.as_bytes()).into_owned(),
                        )),
                        AMQPValue::LongUInt(n) => Some((k.as_str().to_owned(), n.to_string())),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push((message.delivery.data.clone(), headers));
    }
    let _ = connection.close(200, "done".into()).await;
    out
}

/// Returns the number of messages ready in `queue` (deliveries not yet acked are not counted).
pub async fn ready_messages(amqp_url: &str, queue: &str) -> u32 {
    let connection = messaging::connect(amqp_url, "testkit inspector")
        .await
        .expect("connect to the broker");
    let channel = connection.create_channel().await.expect("channel");
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue exists");
    let _ = connection.close(200, "done".into()).await;
    declared.message_count()
}

/// Waits until none of `queues` holds a ready message; panics after `timeout`.
pub async fn wait_drained(amqp_url: &str, queues: &[&str], timeout: std::time::Duration) {
    crate::wait_until("the queues to drain", timeout, || async {
        let mut ready = 0;
        for queue in queues {
            ready += ready_messages(amqp_url, queue).await;
        }
        (ready == 0).then_some(())
    })
    .await;
}

/// Deletes the queues and exchanges of `prefix`, so that a test leaves the shared broker as it
/// found it. Best effort: a broker that is gone has nothing to clean.
pub async fn delete_topology(amqp_url: &str, prefix: &str) {
    let cleanup = async {
        let Ok(connection) = messaging::connect(amqp_url, "testkit cleanup").await else {
            return;
        };
        if let Ok(channel) = connection.create_channel().await {
            messaging::delete_topology(&channel, &messaging::Names::new(prefix)).await;
        }
        let _ = connection.close(200, "done".into()).await;
    };
    // lapin can leave a call pending for ever when the broker drops the connection under it; a
    // test that passed must not hang in its cleanup, and what it leaves is under its own prefix.
    if tokio::time::timeout(CLEANUP_DEADLINE, cleanup)
        .await
        .is_err()
    {
        eprintln!(
            "testkit: deleting the {prefix}* queues and exchanges took over {CLEANUP_DEADLINE:?}; left them"
        );
    }
}

/// The longest a test's broker cleanup may take.
const CLEANUP_DEADLINE: Duration = Duration::from_secs(15);
