//! The service binaries as child processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::outbox::Outbox;

/// Returns a loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Locates a binary of the workspace next to the running test: the test runs as
/// `target/<profile>/deps/<test>-<hash>`, the binaries are `target/<profile>/<name>`.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bins -p order-gateway -p payment-service -p email-service` first",
        path.display()
    );
    path
}

/// Sends `signal` (a name such as `TERM`, `KILL`, `STOP`, `CONT`) to one process.
pub fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Sends `signal` to every process of the group led by `pgid`.
pub(crate) fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// One service binary running as a child process, listening on its own loopback port, with its
/// stdout and stderr in `<dir>/<name>.out`. Dropping it kills the process.
pub struct Service {
    name: &'static str,
    port: u16,
    env: Vec<(String, String)>,
    dir: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Service {
    /// Starts `name` (a binary of the workspace) with `env` plus `BIND_ADDR` on a free port.
    pub fn start(name: &'static str, env: Vec<(String, String)>, dir: &Path) -> Self {
        let mut service = Self {
            name,
            port: free_port(),
            env,
            dir: dir.to_owned(),
            child: None,
            starts: 0,
        };
        service.restart();
        service
    }

    /// The binary's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process id of the running process.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("service is running").id()
    }

    /// Starts the process again, same port and environment (after [`Service::kill`] or an exit).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is still running", self.name);
        self.starts += 1;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.out", self.name)))
            .expect("service output file");
        let child = Command::new(binary(self.name))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("BIND_ADDR", format!("127.0.0.1:{}", self.port))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("output file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", self.name));
        self.child = Some(child);
    }

    /// Sends `signal` (`TERM`, `STOP`, `CONT`, ...) to the process.
    pub fn signal(&self, sig: &str) {
        signal(self.pid(), sig);
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits up to `timeout` for the process to exit; returns its status, or `None` (still
    /// running) after the timeout.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().expect("service was started");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit; returns the status and how long the
    /// exit took, or `None` when the process was still running at the deadline (it is then
    /// killed).
    pub async fn terminate(&mut self, timeout: Duration) -> Option<(ExitStatus, Duration)> {
        let started = Instant::now();
        self.signal("TERM");
        let status = self.wait_exit(timeout).await;
        if status.is_none() {
            self.kill();
        }
        status.map(|s| (s, started.elapsed()))
    }

    /// Waits until `GET /ready` answers 200.
    pub async fn wait_ready(&mut self, client: &reqwest::Client, timeout: Duration) {
        let url = format!("{}/ready", self.url());
        let deadline = Instant::now() + timeout;
        loop {
            let ready = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{} exited ({status}) before becoming ready:\n{}",
                    self.name,
                    self.output_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready within {timeout:?}:\n{}",
                self.name,
                self.output_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET /ready`'s status code (0 when there is no answer within a second).
    pub async fn ready_status(&self, client: &reqwest::Client) -> u16 {
        client
            .get(format!("{}/ready", self.url()))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// The last lines of the process's output (for failure messages).
    pub fn output_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join(format!("{}.out", self.name)))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The three services as processes on one broker, sharing a fresh `AMQP_PREFIX` and `LOG_DIR`.
pub struct Stack {
    /// order-gateway.
    pub gateway: Service,
    /// payment-service.
    pub payment: Service,
    /// email-service.
    pub email: Service,
    /// The `AMQP_PREFIX` of this stack.
    pub prefix: String,
    /// A client for the tests (no proxy, generous but bounded timeout).
    pub client: reqwest::Client,
    log_dir: tempfile::TempDir,
}

impl Stack {
    /// Starts payment-service, email-service and order-gateway against `amqp_url` and waits
    /// until all three are ready. `env` comes on top of the defaults: OTLP export off, quiet
    /// stdout, a 50 ms retry backoff.
    pub async fn start(amqp_url: &str, env: &[(&str, &str)]) -> Self {
        let log_dir = tempfile::Builder::new()
            .prefix("chaos-stack-")
            .tempdir()
            .expect("log dir");
        let prefix = format!("chaos-{}.", uuid::Uuid::new_v4().simple());
        let mut common: Vec<(String, String)> = [
            ("AMQP_URL", amqp_url),
            ("AMQP_PREFIX", prefix.as_str()),
            ("LOG_DIR", &log_dir.path().display().to_string()),
            ("OTEL_SDK_DISABLED", "true"),
            ("EMAIL_RETRY_BACKOFF_MS", "50"),
            ("RUST_LOG", "info"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for (k, v) in env {
            common.retain(|(key, _)| key != k);
            common.push(((*k).to_owned(), (*v).to_owned()));
        }
        let payment = Service::start("payment-service", common.clone(), log_dir.path());
        let email = Service::start("email-service", common.clone(), log_dir.path());
        let mut gateway_env = common;
        gateway_env.push(("PAYMENT_URL".into(), payment.url()));
        let gateway = Service::start("order-gateway", gateway_env, log_dir.path());
        let mut stack = Self {
            gateway,
            payment,
            email,
            prefix,
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

    /// The names of this stack's exchanges and queues.
    pub fn names(&self) -> messaging::Names {
        messaging::Names::new(&self.prefix)
    }

    /// The shared `LOG_DIR`.
    pub fn log_dir(&self) -> &Path {
        self.log_dir.path()
    }

    /// The e-mails sent so far (`$LOG_DIR/outbox.jsonl`).
    pub fn outbox(&self) -> Outbox {
        Outbox::read(&self.log_dir.path().join("outbox.jsonl"))
    }

    /// Waits up to `timeout` until every order of `order_ids` has an outbox line, and returns the
    /// outbox then.
    pub async fn wait_until_emailed(&self, order_ids: &[&str], timeout: Duration) -> Outbox {
        crate::wait_until("every confirmed order to be e-mailed", timeout, || async {
            let outbox = self.outbox();
            order_ids
                .iter()
                .all(|id| outbox.count(id) > 0)
                .then_some(outbox)
        })
        .await
    }

    /// The JSON log lines of `service` (`$LOG_DIR/<service>.log`) whose `message` is `message`.
    pub fn log_lines(&self, service: &str, message: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.log_dir.path().join(format!("{service}.log")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == message)
            .collect()
    }
}
