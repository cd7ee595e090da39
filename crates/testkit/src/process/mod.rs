//! Child processes: the service binaries, one [`Service`] each, and [`Stack`], the three of them
//! on one broker. Every long-running process a test starts (a service, a RabbitMQ node) is
//! started by `spawn` here, so that each has its output in a file, takes signals the same way
//! and is killed with its guard.
//!
//! The binaries are the workspace's own, next to the running test in `target/<profile>/`, as
//! `tracehop up` takes them from next to itself; `cargo build --bins` puts them there.

mod stack;

pub use stack::Stack;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::http;

/// The ports [`free_port`] hands out: below Linux's ephemeral range (32768 and up), from which
/// the kernel takes the source port of every outgoing connection and every `bind(0)`. A port
/// from there can be taken by some test's client socket between the pick and the child's bind
/// (seen as "Address already in use"); a port from here only by another explicit bind.
const PICKED_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Returns a loopback port that was free a moment ago and that no other call in this process
/// has returned: the calls walk [`PICKED_PORTS`] from a start set by the process id, so two test
/// processes rarely walk the same ports either.
pub fn free_port() -> u16 {
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicU32, Ordering};
    let width = u32::from(PICKED_PORTS.end - PICKED_PORTS.start);
    static NEXT: LazyLock<AtomicU32> =
        LazyLock::new(|| AtomicU32::new(std::process::id().wrapping_mul(7_919)));
    for _ in 0..width {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % width;
        let port = PICKED_PORTS.start + u16::try_from(offset).expect("offset < width");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {PICKED_PORTS:?}")
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
        "{} is missing: run `cargo build --workspace --bins` first",
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

/// Starts `command` with stdin closed and stdout and stderr appended to `output` (read back by
/// the failure messages). With `own_group` the child leads a new process group, so that
/// [`signal_group`] also reaches whatever it starts in turn.
pub(crate) fn spawn(
    mut command: Command,
    output: &Path,
    own_group: bool,
) -> std::io::Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(output)?;
    command
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    if own_group {
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
    }
    command.spawn()
}

/// The exit status of `child` once it has exited; `None` while it runs (or was never started).
pub(crate) fn exited(child: &mut Option<Child>) -> Option<ExitStatus> {
    child.as_mut().and_then(|c| c.try_wait().ok().flatten())
}

/// How many of its last output lines a failure message about a process quotes.
const TAIL_LINES: usize = 30;

/// The last [`TAIL_LINES`] lines of the file `path` (for failure messages).
pub(crate) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// Polls `probe` every `every` until it answers true, while the process `child` (called `name`,
/// writing to `output`) comes up; panics, quoting the output's tail, when the process exits
/// first or `timeout` passes. `what` is what the probe sees: "ready", "accepting AMQP
/// connections".
pub(crate) async fn wait_up<F, Fut>(
    child: &mut Option<Child>,
    name: &str,
    output: &Path,
    what: &str,
    timeout: Duration,
    every: Duration,
    mut probe: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !probe().await {
        if let Some(status) = exited(child) {
            panic!(
                "{name} exited ({status}) before it was {what}; output:\n{}",
                tail(output)
            );
        }
        assert!(
            Instant::now() < deadline,
            "{name} not {what} within {timeout:?}; output:\n{}",
            tail(output)
        );
        tokio::time::sleep(every).await;
    }
}

/// One service binary running as a child process, listening on its own loopback port, with its
/// stdout and stderr in `<dir>/<name>-<port>.out`. Dropping it kills the process.
pub struct Service {
    name: &'static str,
    port: u16,
    env: BTreeMap<String, String>,
    dir: PathBuf,
    child: Option<Child>,
}

impl Service {
    /// Starts `name` (a binary of the workspace) with `env` plus `BIND_ADDR` on a free port.
    pub fn start(name: &'static str, env: BTreeMap<String, String>, dir: &Path) -> Self {
        let mut service = Self {
            name,
            port: free_port(),
            env,
            dir: dir.to_owned(),
            child: None,
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
        let mut command = Command::new(binary(self.name));
        command
            .envs(&self.env)
            .env("BIND_ADDR", format!("127.0.0.1:{}", self.port));
        let child = spawn(command, &self.output(), false)
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
        let ready = || async {
            client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        };
        let every = Duration::from_millis(20);
        let output = self.output();
        wait_up(
            &mut self.child,
            self.name,
            &output,
            "ready",
            timeout,
            every,
            ready,
        )
        .await;
    }

    /// `GET /ready`'s status code (0 when there is no answer within a second).
    pub async fn ready_status(&self, client: &reqwest::Client) -> u16 {
        http::ready_status(client, &self.url()).await
    }

    /// Whether the process was started and has not been seen to exit or been killed.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The file holding the process's stdout and stderr, `<dir>/<name>-<port>.out` (replicas
    /// of one service share a directory).
    pub fn output(&self) -> PathBuf {
        self.dir.join(format!("{}-{}.out", self.name, self.port))
    }

    /// The last lines of the process's output (for failure messages).
    pub fn output_tail(&self) -> String {
        tail(&self.output())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process that writes `line` and exits with status 3, with its output in `dir`.
    fn short_lived(dir: &Path, line: &str) -> (Option<Child>, PathBuf) {
        let output = dir.join("short.out");
        let mut command = Command::new("sh");
        command.args(["-c", &format!("echo {line}; exit 3")]);
        (
            Some(spawn(command, &output, false).expect("sh starts")),
            output,
        )
    }

    #[tokio::test]
    #[should_panic(expected = "short exited (exit status: 3) before it was ready; output:\nboom")]
    async fn a_process_that_exits_while_awaited_fails_the_wait_quoting_its_output() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut child, output) = short_lived(dir.path(), "boom");
        let (timeout, every) = (Duration::from_secs(10), Duration::from_millis(5));
        let never = || async { false };
        wait_up(&mut child, "short", &output, "ready", timeout, every, never).await;
    }

    #[tokio::test]
    async fn a_probe_that_answers_ends_the_wait() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = None;
        let output = dir.path().join("none.out");
        let mut probes = 0;
        let third = || {
            probes += 1;
            let answered = probes == 3;
            async move { answered }
        };
        let every = Duration::from_millis(1);
        wait_up(
            &mut child,
            "x",
            &output,
            "ready",
            Duration::from_secs(5),
            every,
            third,
        )
        .await;
        assert_eq!(probes, 3);
    }
}
