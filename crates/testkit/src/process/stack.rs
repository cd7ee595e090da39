//! The three service binaries on one broker.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::Service;
use crate::{LogDir, Outbox};

/// The three services as processes on one broker, sharing a fresh `AMQP_PREFIX` and `LOG_DIR`,
/// for the tests that signal, kill and restart a service.
pub struct Stack {
    /// order-gateway.
    pub gateway: Service,
    /// payment-service.
    pub payment: Service,
    /// email-service.
    pub email: Service,
    /// More email-service replicas competing for the same queue, sharing the outbox
    /// ([`Stack::add_email_replicas`]).
    pub email_replicas: Vec<Service>,
    /// The `AMQP_PREFIX` of this stack.
    pub prefix: String,
    /// A client for the tests (no proxy, generous but bounded timeout).
    pub client: reqwest::Client,
    /// The environment every service of the stack was started with.
    env: std::collections::BTreeMap<String, String>,
    log_dir: LogDir,
}

impl Stack {
    /// Starts payment-service, email-service and order-gateway against `amqp_url` and waits
    /// until all three are ready. `env` comes on top of [`crate::service_env`] with OTLP export
    /// off.
    pub async fn start(amqp_url: &str, env: &[(&str, &str)]) -> Self {
        let log_dir = LogDir::new();
        let prefix = crate::unique_prefix();
        let mut common = crate::service_env(amqp_url, &prefix, log_dir.path());
        common.insert("OTEL_SDK_DISABLED".into(), "true".into());
        common.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let payment = Service::start("payment-service", common.clone(), log_dir.path());
        let email = Service::start("email-service", common.clone(), log_dir.path());
        let mut gateway_env = common.clone();
        gateway_env.insert("PAYMENT_URL".into(), payment.url());
        let gateway = Service::start("order-gateway", gateway_env, log_dir.path());
        let mut stack = Self {
            gateway,
            payment,
            email,
            email_replicas: Vec::new(),
            prefix,
            env: common,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .no_proxy()
                .build()
                .expect("client"),
            log_dir,
        };
        stack.wait_ready(Duration::from_secs(30)).await;
        stack
    }

    /// Waits until the three services answer `/ready` with 200.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let client = self.client.clone();
        self.payment.wait_ready(&client, timeout).await;
        self.email.wait_ready(&client, timeout).await;
        self.gateway.wait_ready(&client, timeout).await;
    }

    /// Starts one more replica of `name` with the stack's environment (the same queues, the same
    /// outbox file) plus `env`, and waits until it is ready.
    pub async fn start_replica(&self, name: &'static str, env: &[(&str, &str)]) -> Service {
        let mut env_of_replica = self.env.clone();
        env_of_replica.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let mut replica = Service::start(name, env_of_replica, self.log_dir.path());
        replica
            .wait_ready(&self.client, Duration::from_secs(30))
            .await;
        replica
    }

    /// Starts `count` more email-service replicas competing for the same queue.
    pub async fn add_email_replicas(&mut self, count: usize) {
        for _ in 0..count {
            let replica = self.start_replica("email-service", &[]).await;
            self.email_replicas.push(replica);
        }
    }

    /// Every email-service process still running: the first and the added replicas.
    pub fn running_email_services(&mut self) -> impl Iterator<Item = &mut Service> {
        std::iter::once(&mut self.email)
            .chain(self.email_replicas.iter_mut())
            .filter(|service| service.is_running())
    }

    /// Returns the names of this stack's exchanges and queues.
    pub fn names(&self) -> messaging::Names {
        messaging::Names::new(&self.prefix)
    }

    /// Returns the shared `LOG_DIR`.
    pub fn log_dir(&self) -> &Path {
        self.log_dir.path()
    }

    /// Returns the e-mails sent so far.
    pub fn outbox(&self) -> Outbox {
        self.log_dir.outbox()
    }

    /// Waits up to `timeout` until every order of `order_ids` has an e-mail, and returns the
    /// outbox then.
    pub async fn wait_until_emailed(&self, order_ids: &[&str], timeout: Duration) -> Outbox {
        self.log_dir.wait_until_emailed(order_ids, timeout).await
    }

    /// Ends a run of orders: waits until every order of `confirmed` has an e-mail and `queues`
    /// (on the broker at `amqp_url`) are drained, then SIGTERMs every running email-service
    /// replica and asserts that each exits 0 leaving no delivery unacked, so that nothing is
    /// left that could still send later. Returns the outbox then, and how long each replica
    /// took to exit after its SIGTERM.
    pub async fn finish_emailing(
        &mut self,
        amqp_url: &str,
        confirmed: &[&str],
        queues: &[&str],
    ) -> (Outbox, Vec<Duration>) {
        self.wait_until_emailed(confirmed, Duration::from_secs(60))
            .await;
        crate::broker::wait_drained(amqp_url, queues, Duration::from_secs(30)).await;
        let mut exits = Vec::new();
        for email in self.running_email_services() {
            let (status, took) = email
                .terminate(Duration::from_secs(10))
                .await
                .expect("email-service exits after SIGTERM");
            assert!(status.success(), "email-service exit: {status}");
            exits.push(took);
        }
        let mut unacked = 0;
        for queue in queues {
            unacked += crate::broker::ready_messages(amqp_url, queue).await;
        }
        assert_eq!(unacked, 0, "deliveries left unacked at shutdown");
        (self.outbox(), exits)
    }

    /// Returns every JSON log line of `service`.
    pub fn log_lines(&self, service: &str) -> Vec<Value> {
        self.log_dir.lines(service)
    }

    /// Returns the JSON log lines of `service` whose `message` is `message`.
    pub fn log_messages(&self, service: &str, message: &str) -> Vec<Value> {
        self.log_dir.messages(service, message)
    }
}
