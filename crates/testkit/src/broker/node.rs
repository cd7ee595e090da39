//! A private RabbitMQ node for the tests that stop and kill their broker.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{free_port, signal_group, spawn, wait_up};

/// Where the Debian package keeps the scripts that run as the calling user. The `/usr/sbin`
/// wrappers switch to the `rabbitmq` user with `su` when called by root, which would hide the
/// node's process from us and lose the temp directory's ownership.
const SBIN: &str = "/usr/lib/rabbitmq/bin";

/// How long a (re)start may take before the test gives up; a node boots in 3 to 10 s on two
/// busy cores.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

/// A RabbitMQ node of its own: node name `test-<random>@localhost`, a free AMQP port and a free
/// distribution port on loopback, its data, logs, configuration and Erlang cookie in a temporary
/// directory, no plugins. It runs as a child process in its own process group, so a kill takes
/// the whole Erlang VM with it; dropping the node kills it and removes the directory.
pub struct RabbitNode {
    name: String,
    port: u16,
    dist_port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    starts: u32,
}

impl RabbitNode {
    /// Starts a fresh node and waits until it accepts AMQP connections and reports itself booted.
    pub async fn start() -> Self {
        Self::start_with_cookie(&uuid::Uuid::new_v4().simple().to_string()).await
    }

    /// Starts a fresh node with the Erlang `cookie` of its cluster: nodes (and their
    /// `rabbitmqctl`) talk to each other only when they share it.
    pub async fn start_with_cookie(cookie: &str) -> Self {
        let executable = Path::new(SBIN).join("rabbitmq-server");
        assert!(
            executable.exists(),
            "{} is missing: install the Debian package rabbitmq-server",
            executable.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("testkit-rabbit-")
            .tempdir()
            .expect("temp dir for the node");
        for sub in ["home", "mnesia", "log"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("node directories");
        }
        let cookie_file = dir.path().join("home/.erlang.cookie");
        std::fs::write(&cookie_file, cookie).expect("cookie file");
        // Erlang refuses a cookie that others may read.
        std::fs::set_permissions(
            &cookie_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o400),
        )
        .expect("cookie file mode");
        // An empty env file keeps /etc/rabbitmq/rabbitmq-env.conf (node name, port) out.
        std::fs::write(dir.path().join("rabbitmq-env.conf"), "").expect("env file");
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").expect("plugins file");
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            "# A private test node: no plugin ports, a small disk limit so a full test disk\n\
             # does not block publishers, quiet logs.\n\
             disk_free_limit.absolute = 1MB\n\
             log.file.level = warning\n\
             log.console = false\n",
        )
        .expect("config file");
        let mut node = Self {
            name: format!(
                "test-{}@localhost",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
            port: free_port(),
            dist_port: free_port(),
            dir,
            child: None,
            starts: 0,
        };
        node.restart().await;
        node
    }

    /// The node name (for `rabbitmqctl -n`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The AMQP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The AMQP URL of the node.
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Whether the node's process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let dir = self.dir.path();
        let path = |p: &str| dir.join(p).display().to_string();
        vec![
            // The Erlang cookie lives in $HOME: a private one for the node and its rabbitmqctl.
            ("HOME", path("home")),
            ("RABBITMQ_CONF_ENV_FILE", path("rabbitmq-env.conf")),
            ("RABBITMQ_NODENAME", self.name.clone()),
            ("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1".into()),
            ("RABBITMQ_NODE_PORT", self.port.to_string()),
            ("RABBITMQ_DIST_PORT", self.dist_port.to_string()),
            ("RABBITMQ_MNESIA_BASE", path("mnesia")),
            ("RABBITMQ_LOG_BASE", path("log")),
            ("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf")),
            ("RABBITMQ_ADVANCED_CONFIG_FILE", path("advanced.config")),
            ("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins")),
            ("ERL_EPMD_ADDRESS", "127.0.0.1".into()),
            (
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}".into(),
            ),
        ]
    }

    /// Starts the node again on the same ports and data directory (durable queues and persistent
    /// messages survive) and waits until it is booted. Also used for the first start.
    pub async fn restart(&mut self) {
        assert!(!self.is_running(), "node {} is already running", self.name);
        self.starts += 1;
        let mut command = Command::new(Path::new(SBIN).join("rabbitmq-server"));
        command.envs(self.env()).current_dir(self.dir.path());
        self.child = Some(spawn(command, &self.output(), true).expect("rabbitmq-server starts"));
        self.wait_booted().await;
    }

    async fn wait_booted(&mut self) {
        let url = self.amqp_url();
        let accepts = || async {
            let attempt = tokio::time::timeout(
                Duration::from_secs(5),
                messaging::connect(&url, "testkit probe"),
            )
            .await;
            let Ok(Ok(connection)) = attempt else {
                return false;
            };
            let _ = connection.close(200, "probe".into()).await;
            true
        };
        let name = format!("node {}", self.name);
        let output = self.output();
        let every = Duration::from_millis(100);
        let what = "accepting AMQP connections";
        wait_up(
            &mut self.child,
            &name,
            &output,
            what,
            BOOT_TIMEOUT,
            every,
            accepts,
        )
        .await;
        let out = self.ctl(&["await_startup", "--timeout", "60"]).await;
        assert!(
            out.status.success(),
            "rabbitmqctl await_startup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the node cleanly (`rabbitmqctl stop`) and waits until its process has exited.
    pub async fn stop(&mut self) {
        let out = self.ctl(&["stop"]).await;
        assert!(
            out.status.success(),
            "rabbitmqctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.wait_exit(Duration::from_secs(30)).await;
    }

    /// Kills the node's whole process group with SIGKILL, as a crash or an OOM kill would.
    pub async fn kill(&mut self) {
        if let Some(child) = &self.child {
            signal_group(child.id(), "KILL");
        }
        self.wait_exit(Duration::from_secs(10)).await;
    }

    async fn wait_exit(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.is_running() {
            if Instant::now() > deadline {
                if let Some(child) = &self.child {
                    signal_group(child.id(), "KILL");
                }
                panic!("node {} did not exit within {timeout:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The shell exits after the VM; its helpers (erl_child_setup, ...) share the group.
        if let Some(mut child) = self.child.take() {
            signal_group(child.id(), "KILL");
            let _ = child.wait();
        }
    }

    /// Runs `rabbitmqctl -n <node> <args>` against this node.
    pub async fn ctl(&self, args: &[&str]) -> std::process::Output {
        tokio::process::Command::new(Path::new(SBIN).join("rabbitmqctl"))
            .envs(self.env())
            .current_dir(self.dir.path())
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("rabbitmqctl runs")
    }

    /// Returns the number of messages ready in `queue` on this node.
    pub async fn ready_messages(&self, queue: &str) -> u32 {
        super::ready_messages(&self.amqp_url(), queue).await
    }

    /// The data directory (for diagnostics).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    fn output(&self) -> PathBuf {
        self.dir.path().join(format!("server-{}.out", self.starts))
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_group(child.id(), "KILL");
            let _ = child.wait();
        }
    }
}
