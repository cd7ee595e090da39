//! The three services running in the test process.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::broker::{self, Message};
use testkit::http::{self, Response};
use testkit::{LogDir, OtlpReceiver, Outbox};

use crate::spawn::{self, Running};

/// Options of [`spawn_stack`].
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Extra environment for every service (`PAYMENT_FAILURE_RATE`, `EMAIL_MAX_ATTEMPTS`, ...).
    pub env: Vec<(String, String)>,
    /// When set, overrides the OTLP endpoint (otherwise the stack's own receiver).
    pub otlp_endpoint: Option<String>,
    /// Returns without waiting for `/ready` (for tests that start with the broker away).
    pub no_ready_wait: bool,
}

impl StackOptions {
    /// Returns the default options with `env` added to every service's environment, the usual
    /// way a test turns on a fault knob or a limit.
    pub fn with_env(env: &[(&str, &str)]) -> Self {
        Self {
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Self::default()
        }
    }
}

/// The three services running in this process.
pub struct Stack {
    /// Base URL of order-gateway.
    pub gateway_url: String,
    /// Base URL of payment-service.
    pub payment_url: String,
    /// Base URL of email-service's admin server.
    pub email_url: String,
    /// The `AMQP_PREFIX` of this stack.
    pub prefix: String,
    /// The OTLP receiver every service exports to (unless the options name another endpoint).
    pub receiver: OtlpReceiver,
    /// An HTTP client for the tests.
    pub client: reqwest::Client,
    log_dir: LogDir,
    running: Vec<Running>,
}

/// Starts the three services with a fresh prefix, log directory and OTLP receiver, and waits
/// until each is ready.
pub async fn spawn_stack(options: StackOptions) -> Stack {
    let receiver = OtlpReceiver::start().await;
    let log_dir = LogDir::new();
    let prefix = testkit::unique_prefix();
    let mut env = testkit::service_env(&broker::amqp_url(), &prefix, log_dir.path());
    env.insert("BIND_ADDR".into(), "127.0.0.1:0".into());
    env.insert(
        "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
        options
            .otlp_endpoint
            .clone()
            .unwrap_or_else(|| receiver.endpoint()),
    );
    env.extend(options.env.iter().cloned());

    let (payment_addr, payment) = spawn::payment_service(&env).await;
    let payment_url = format!("http://{payment_addr}");
    let mut gateway_env = env.clone();
    gateway_env.insert("PAYMENT_URL".into(), payment_url.clone());
    let (gateway_addr, gateway) = spawn::order_gateway(&gateway_env).await;
    let (email_addr, email) = spawn::email_service(&env).await;

    let stack = Stack {
        gateway_url: format!("http://{gateway_addr}"),
        payment_url,
        email_url: format!("http://{email_addr}"),
        prefix,
        receiver,
        client: reqwest::Client::new(),
        log_dir,
        running: vec![payment, gateway, email],
    };
    if !options.no_ready_wait {
        stack.wait_ready().await;
    }
    stack
}

impl Stack {
    /// Waits until every service answers `/ready` with 200.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for url in [&self.gateway_url, &self.payment_url, &self.email_url] {
            while http::ready_status(&self.client, url).await != 200 {
                assert!(Instant::now() < deadline, "{url} never became ready");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Sends `POST /create-order` with an optional raw JSON body.
    pub async fn create_order(&self, body: Option<&str>) -> Response {
        http::create_order(&self.client, &self.gateway_url, body)
            .await
            .expect("gateway answers")
    }

    /// Returns the JSON lines of `$LOG_DIR/<service>.log`.
    pub fn log_lines(&self, service: &str) -> Vec<Value> {
        self.log_dir.lines(service)
    }

    /// Returns the e-mails sent so far.
    pub fn outbox(&self) -> Outbox {
        self.log_dir.outbox()
    }

    /// Returns the path of the log directory.
    pub fn log_dir(&self) -> &Path {
        self.log_dir.path()
    }

    /// Waits until `pred` holds for the outbox and returns it; panics after `timeout`.
    pub async fn wait_for_outbox(
        &self,
        timeout: Duration,
        pred: impl Fn(&Outbox) -> bool,
    ) -> Outbox {
        self.log_dir.wait_for_outbox(timeout, pred).await
    }

    /// Returns the `/metrics` text of the service at `base_url`.
    pub async fn metrics(&self, base_url: &str) -> String {
        http::metrics(&self.client, base_url).await
    }

    /// Returns the names of this stack's topology.
    pub fn names(&self) -> messaging::Names {
        messaging::Names::new(&self.prefix)
    }

    /// Publishes a raw message to this stack's payments exchange (bypassing payment-service).
    pub async fn publish_raw(&self, routing_key: &str, body: &[u8], headers: &[(&str, &str)]) {
        let exchange = self.names().exchange;
        broker::publish_raw(&broker::amqp_url(), &exchange, routing_key, body, headers).await;
    }

    /// Takes every message currently in `queue` (body and string headers).
    pub async fn drain_queue(&self, queue: &str) -> Vec<Message> {
        broker::drain_queue(&broker::amqp_url(), queue).await
    }

    /// Stops every service gracefully and deletes this stack's queues and exchanges.
    pub async fn stop(self) {
        for r in &self.running {
            r.stop();
        }
        for r in self.running {
            r.join(Duration::from_secs(10)).await;
        }
        broker::delete_topology(&broker::amqp_url(), &self.prefix).await;
    }
}
