//! `tracehop up` (foreground, stopped with Ctrl-C, also during start-up), `tracehop up --detach`
//! with `tracehop down`, and Ctrl-C during `tracehop load`, as processes: the tracehop binary starts the real service
//! binaries next to it (`cargo build --workspace --bins` puts them in target/<profile>/) on free
//! ports, with a private log directory, SQLite file and `AMQP_PREFIX`, on the tests' RabbitMQ.
//!
//! Readiness waits are generous (debug binaries on a loaded machine); the stop behaviour is held
//! to what tracehop promises: everything gone within 10 s of Ctrl-C or `down`.

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use system_tests::StackOptions;

/// What `tracehop up` starts, in start order.
const SERVICES: [&str; 4] = [
    "log-service",
    "payment-service",
    "email-service",
    "order-gateway",
];
/// How long `up` may take until every service is ready.
const READY: Duration = Duration::from_secs(60);
/// How long stopping may take: tracehop gives the services 10 s after SIGTERM.
const STOP: Duration = Duration::from_secs(10);

fn tracehop_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tracehop"))
}

/// The directory of the tracehop binary, which `up` takes the service binaries from.
fn bin_dir() -> PathBuf {
    // Each lookup fails the test, saying how to build it, when a service binary is missing.
    for name in SERVICES {
        testkit::process::binary(name);
    }
    tracehop_exe()
        .parent()
        .expect("the tracehop binary has a directory")
        .to_path_buf()
}

/// A fresh `AMQP_PREFIX`, so this run's queues are its own.
fn amqp_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("test.up.{test}.{}-{nanos}.", std::process::id())
}

/// The seven ports of `up`, distinct and free a moment ago.
#[derive(Clone)]
struct Ports {
    gateway: u16,
    payment: u16,
    email: u16,
    log_service: u16,
    otlp_grpc: u16,
    otlp_http: u16,
    grpc: u16,
}

impl Ports {
    fn free() -> Ports {
        // Holding all listeners at once makes the ports distinct.
        let listeners: Vec<TcpListener> = (0..7)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
            .collect();
        let p: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().expect("bound").port())
            .collect();
        Ports {
            gateway: p[0],
            payment: p[1],
            email: p[2],
            log_service: p[3],
            otlp_grpc: p[4],
            otlp_http: p[5],
            grpc: p[6],
        }
    }

    fn all(&self) -> [u16; 7] {
        [
            self.gateway,
            self.payment,
            self.email,
            self.log_service,
            self.otlp_grpc,
            self.otlp_http,
            self.grpc,
        ]
    }

    /// The base URL each service of [`SERVICES`] answers at.
    fn url(&self, service: &str) -> String {
        let port = match service {
            "log-service" => self.log_service,
            "payment-service" => self.payment,
            "email-service" => self.email,
            "order-gateway" => self.gateway,
            other => panic!("unknown service {other}"),
        };
        format!("http://127.0.0.1:{port}")
    }

    fn assert_free(&self) {
        for port in self.all() {
            assert!(
                TcpListener::bind(("127.0.0.1", port)).is_ok(),
                "port {port} is still taken"
            );
        }
    }
}

/// A temporary directory with the log directory and SQLite file of one `up`.
struct Scene {
    dir: tempfile::TempDir,
    ports: Ports,
    prefix: String,
}

impl Scene {
    fn new(test: &str) -> Scene {
        Scene {
            dir: tempfile::Builder::new()
                .prefix("tracehop-up-")
                .tempdir()
                .expect("temp dir"),
            ports: Ports::free(),
            prefix: amqp_prefix(test),
        }
    }

    fn log_dir(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    fn log_dir_arg(&self) -> String {
        self.log_dir().display().to_string()
    }

    /// tracehop with a clean environment: no inherited service settings, OTLP export on.
    fn tracehop(&self, args: &[&str]) -> Command {
        let mut command = Command::new(tracehop_exe());
        command
            .args(args)
            .env("AMQP_PREFIX", &self.prefix)
            .env("TRACEHOP_STATE_DIR", self.dir.path().join("state"))
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        for name in [
            "OTEL_SDK_DISABLED",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "LOG_DIR",
            "DATABASE_URL",
            "BIND_ADDR",
            "ADMIN_TOKEN",
            "TRACEHOP_GATEWAY_URL",
            "TRACEHOP_PAYMENT_URL",
            "TRACEHOP_EMAIL_URL",
            "TRACEHOP_LOG_SERVICE_URL",
        ] {
            command.env_remove(name);
        }
        command
    }

    /// `up` with every port, the log directory and the database in this scene.
    fn up_args(&self, detach: bool) -> Vec<String> {
        let p = &self.ports;
        let mut args: Vec<String> = vec!["up".into()];
        if detach {
            args.push("--detach".into());
        }
        let database = format!("sqlite://{}", self.dir.path().join("logs.db").display());
        for (flag, value) in [
            ("--log-dir", self.log_dir_arg()),
            ("--database", database),
            ("--amqp-url", testkit::broker::amqp_url()),
            ("--gateway-port", p.gateway.to_string()),
            ("--payment-port", p.payment.to_string()),
            ("--email-port", p.email.to_string()),
            ("--log-service-port", p.log_service.to_string()),
            ("--otlp-grpc-port", p.otlp_grpc.to_string()),
            ("--otlp-http-port", p.otlp_http.to_string()),
            ("--grpc-port", p.grpc.to_string()),
            ("--ready-timeout", format!("{}s", READY.as_secs())),
        ] {
            args.push(flag.into());
            args.push(value);
        }
        args
    }

    /// Places one order through the gateway with `tracehop order --json`.
    /// Starts `tracehop up` in the foreground with its output captured; the guard stops
    /// whatever it started if the test fails.
    fn spawn_foreground_up(&self) -> (u32, Capture, Capture, Cleanup) {
        let args = self.up_args(false);
        let mut child = self
            .tracehop(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tracehop starts");
        let pid = child.id();
        let stdout = Capture::new(child.stdout.take());
        let stderr = Capture::new(child.stderr.take());
        let guard = Cleanup {
            prefix: self.prefix.clone(),
            tracehop: Some(child),
        };
        (pid, stdout, stderr, guard)
    }

    fn order(&self) -> Value {
        let gateway = self.ports.url("order-gateway");
        let run = run(
            self.tracehop(&["--gateway", &gateway, "order", "--json"]),
            Duration::from_secs(30),
        )
        .ok();
        let json: Value = serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("order output is not JSON ({e}): {}", run.stdout));
        assert_eq!(json["http_status"], 201, "{json}");
        json
    }

    fn assert_service_logs(&self) {
        for name in SERVICES {
            let log = self.log_dir().join(format!("{name}.log"));
            let text = std::fs::read_to_string(&log)
                .unwrap_or_else(|e| panic!("{} is not there ({e})", log.display()));
            let first = text.lines().next().unwrap_or("");
            assert!(
                serde_json::from_str::<Value>(first).is_ok(),
                "{} holds no JSON log line: {first:?}",
                log.display()
            );
        }
    }
}

/// A pipe read to its end by a thread; what arrived so far can be looked at any time.
struct Capture {
    text: Arc<Mutex<String>>,
    thread: JoinHandle<()>,
}

impl Capture {
    fn new(pipe: Option<impl Read + Send + 'static>) -> Capture {
        let mut pipe = pipe.expect("a piped stream");
        let text = Arc::new(Mutex::new(String::new()));
        let sink = text.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("capture lock")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Capture { text, thread }
    }

    fn snapshot(&self) -> String {
        self.text.lock().expect("capture lock").clone()
    }

    fn finish(self) -> String {
        let _ = self.thread.join();
        let text = self.text.lock().expect("capture lock");
        text.clone()
    }
}

/// What one run of tracehop did.
#[derive(Debug)]
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    fn ok(self) -> Run {
        assert!(self.status.success(), "{self:#?}");
        self
    }

    /// A failure the way users should see it: exit code 1, one line, no backtrace.
    fn one_line_error(self) -> String {
        assert_eq!(self.status.code(), Some(1), "{self:#?}");
        common::assert_one_line_error(&self.stderr)
    }
}

/// Waits up to `limit` for `child` to exit.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `command` to its end; past `limit` it (and whatever it started) is killed.
fn run(mut command: Command, limit: Duration) -> Run {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tracehop starts");
    let stdout = Capture::new(child.stdout.take());
    let stderr = Capture::new(child.stderr.take());
    let Some(status) = wait_exit(&mut child, limit) else {
        kill_all(&children_of(child.id()));
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{command:?} did not finish within {limit:?}\nstdout: {}\nstderr: {}",
            stdout.snapshot(),
            stderr.snapshot()
        );
    };
    let took = started.elapsed();
    Run {
        status,
        stdout: stdout.finish(),
        stderr: stderr.finish(),
        took,
    }
}

/// State letter and parent pid from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may hold spaces; the fields after it do not.
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim_end().to_owned())
}

/// True while `pid` is a running (not zombie) process called `name`.
fn alive(pid: u32, name: &str) -> bool {
    // The kernel keeps 15 bytes of the name.
    comm(pid).is_some_and(|c| c == name[..name.len().min(15)])
        && stat(pid).is_some_and(|(state, _)| !matches!(state, 'Z' | 'X'))
}

/// The processes whose parent is `ppid`, with their names.
fn children_of(ppid: u32) -> Vec<(u32, String)> {
    let mut children: Vec<(u32, String)> = std::fs::read_dir("/proc")
        .expect("/proc is readable")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| stat(*pid).is_some_and(|(_, parent)| parent == ppid))
        .filter_map(|pid| Some((pid, comm(pid)?)))
        .collect();
    children.sort();
    children
}

/// True when `pid` has a handler for `signal` (its bit in `SigCgt` of `/proc/<pid>/status`).
fn catches(pid: u32, signal: Signal) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal as i32 - 1)) != 0)
}

fn send(pid: u32, signal: Signal) {
    let pid = i32::try_from(pid).expect("a pid fits i32");
    kill(Pid::from_raw(pid), signal).expect("the signal is sent");
}

/// SIGKILL to each process that still is the named service.
fn kill_all(processes: &[(u32, String)]) {
    for (pid, name) in processes {
        if alive(*pid, name) {
            send(*pid, Signal::SIGKILL);
        }
    }
}

/// `pid name` of each `name pid` line of the pid file `up --detach` writes.
fn read_pid_file(path: &Path) -> Vec<(u32, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (name, pid) = l.split_once(' ')?;
            Some((pid.trim().parse().ok()?, name.to_owned()))
        })
        .collect()
}

/// The running service processes that carry `AMQP_PREFIX=<prefix>` in their environment: what
/// one test's tracehop started, children or orphans, and nothing of any other test.
fn services_with_prefix(prefix: &str) -> Vec<(u32, String)> {
    let marker = format!("AMQP_PREFIX={prefix}");
    std::fs::read_dir("/proc")
        .expect("/proc is readable")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let name = comm(pid)?;
            if !SERVICES.contains(&name.as_str()) || !alive(pid, &name) {
                return None;
            }
            let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            environ
                .split(|b| *b == 0)
                .any(|var| var == marker.as_bytes())
                .then_some((pid, name))
        })
        .collect()
}

/// Kills whatever a test started when it ends (early, on a failed assertion): every service
/// process with the test's `AMQP_PREFIX`, then tracehop itself.
struct Cleanup {
    prefix: String,
    tracehop: Option<Child>,
}

impl Cleanup {
    /// tracehop's exit status, if it has already exited: a start-up wait stops early on it.
    fn tracehop_exited(&mut self) -> Option<ExitStatus> {
        self.tracehop
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        kill_all(&services_with_prefix(&self.prefix));
        if let Some(child) = &mut self.tracehop {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `GET path` on a loopback port; the status code, if anything answered.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    std::io::Write::write_all(
        &mut stream,
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .ok()?;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.split_whitespace().nth(1)?.parse().ok()
}

fn assert_gone(services: &[(u32, String)]) {
    for (pid, name) in services {
        assert!(!alive(*pid, name), "{name} (pid {pid}) still runs");
    }
}

#[test]
fn foreground_up_serves_orders_and_ctrl_c_stops_every_service() {
    let bins = bin_dir();
    let scene = Scene::new("fg");
    let (pid, stdout, stderr, mut guard) = scene.spawn_foreground_up();

    let deadline = Instant::now() + READY;
    while !stdout.snapshot().contains("press Ctrl-C to stop") {
        let exited = guard.tracehop_exited();
        assert!(
            exited.is_none() && Instant::now() < deadline,
            "no \"press Ctrl-C to stop\" within {READY:?} (exit: {exited:?})\nstdout: {}\nstderr: {}",
            stdout.snapshot(),
            stderr.snapshot()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The four services are tracehop's children, started from the binaries next to it.
    let services = children_of(pid);
    assert_eq!(services, {
        let mut mine = services_with_prefix(&scene.prefix);
        mine.sort();
        mine
    });
    let mut names: Vec<&str> = services.iter().map(|(_, n)| n.as_str()).collect();
    names.sort_unstable();
    let mut expected = SERVICES;
    expected.sort_unstable();
    assert_eq!(names, expected, "{services:?}");
    for (child_pid, name) in &services {
        assert!(alive(*child_pid, name), "{name} is not running");
        let exe = std::fs::read_link(format!("/proc/{child_pid}/exe")).expect("exe link");
        assert!(
            exe.starts_with(&bins),
            "{name} runs {}, not the binary in {}",
            exe.display(),
            bins.display()
        );
    }
    let listing = stdout.snapshot();
    for name in SERVICES {
        let url = scene.ports.url(name);
        assert!(
            listing
                .lines()
                .any(|l| l.split_whitespace().eq([name, url.as_str()])),
            "{name} at {url} not listed:\n{listing}"
        );
    }

    // The stack serves an order end to end.
    let order = scene.order();
    let order_id = order["order_id"].as_str().expect("order_id").to_owned();

    // Ctrl-C reaches tracehop alone (the children have their own process groups).
    let interrupted = Instant::now();
    send(pid, Signal::SIGINT);
    let child = guard.tracehop.as_mut().expect("tracehop");
    let status = wait_exit(child, STOP + Duration::from_secs(10));
    let took = interrupted.elapsed();
    let stderr_text = stderr.snapshot();
    let status = status
        .unwrap_or_else(|| panic!("tracehop still runs {took:?} after SIGINT\n{stderr_text}"));
    assert!(
        took < STOP,
        "stopping took {took:?}, more than {STOP:?}\n{stderr_text}"
    );
    assert!(
        status.success(),
        "{status}\nstdout: {}\nstderr: {stderr_text}",
        stdout.snapshot()
    );
    let stderr_text = stderr.finish();
    let _ = stdout.finish();
    assert!(
        stderr_text.lines().any(|l| l.trim() == "stopped"),
        "{stderr_text}"
    );
    assert!(
        !stderr_text.contains("killing it"),
        "every service stops on SIGTERM:\n{stderr_text}"
    );

    // tracehop reaped its children: no process, no zombie, every port free again.
    for (child_pid, name) in &services {
        assert!(
            comm(*child_pid).is_none_or(|c| c != *name),
            "{name} (pid {child_pid}) is still in the process table"
        );
    }
    scene.ports.assert_free();

    // The services wrote their JSON logs into --log-dir; the gateway's has the order.
    scene.assert_service_logs();
    let gateway_log =
        std::fs::read_to_string(scene.log_dir().join("order-gateway.log")).unwrap_or_default();
    assert!(
        gateway_log.contains(&order_id),
        "order {order_id} not in order-gateway.log"
    );
}

#[test]
fn detached_up_runs_in_the_background_until_down() {
    let bins = bin_dir();
    let scene = Scene::new("detach");
    let pid_file = scene.log_dir().join("tracehop.pids");
    let guard = Cleanup {
        prefix: scene.prefix.clone(),
        tracehop: None,
    };
    let args = scene.up_args(true);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let up = run(scene.tracehop(&args), READY + Duration::from_secs(10)).ok();
    assert!(
        up.stdout.contains("running in the background")
            && up.stdout.contains("tracehop down --log-dir"),
        "{up:#?}"
    );

    // The pid file names the four services, in start order, all running.
    let services = read_pid_file(&pid_file);
    let names: Vec<&str> = services.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, SERVICES, "{pid_file:?}: {services:?}");
    for (pid, name) in &services {
        assert!(alive(*pid, name), "{name} (pid {pid}) is not running");
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe link");
        assert!(exe.starts_with(&bins), "{name} runs {}", exe.display());
    }
    assert_eq!(http_status(scene.ports.gateway, "/ready"), Some(200));
    scene.order();

    // A second `up` in the same log directory refuses and says how to stop the first.
    let err = run(scene.tracehop(&args), Duration::from_secs(30)).one_line_error();
    assert!(
        err.contains("still run")
            && err.contains(&format!("tracehop down --log-dir {}", scene.log_dir_arg())),
        "{err}"
    );
    // Elsewhere, but on the same ports: the taken port is named, and so is `tracehop down`.
    let other = Scene {
        dir: tempfile::tempdir().expect("temp dir"),
        ports: scene.ports.clone(),
        prefix: scene.prefix.clone(),
    };
    let other_args = other.up_args(true);
    let other_args: Vec<&str> = other_args.iter().map(String::as_str).collect();
    let err = run(scene.tracehop(&other_args), Duration::from_secs(30)).one_line_error();
    assert!(
        err.contains("is not free") && err.contains("tracehop down"),
        "{err}"
    );
    // Neither attempt disturbed the running services.
    assert_eq!(read_pid_file(&pid_file), services);
    for (pid, name) in &services {
        assert!(alive(*pid, name), "{name} (pid {pid}) stopped");
    }

    let down = run(
        scene.tracehop(&["down", "--log-dir", &scene.log_dir_arg()]),
        STOP + Duration::from_secs(10),
    )
    .ok();
    assert!(down.took < STOP, "down took {:?}\n{down:#?}", down.took);
    for (pid, name) in &services {
        assert!(
            down.stderr
                .contains(&format!("stopping {name} (pid {pid})")),
            "{down:#?}"
        );
    }
    assert!(
        down.stderr.lines().any(|l| l.trim() == "stopped"),
        "{down:#?}"
    );
    assert!(
        !down.stderr.contains("killing it"),
        "every service stops on SIGTERM: {down:#?}"
    );
    // The services were orphans; whoever adopted them may leave zombies, which hold no port.
    assert_gone(&services);
    assert_eq!(services_with_prefix(&scene.prefix), []);
    scene.ports.assert_free();
    assert!(!pid_file.exists(), "down removes {}", pid_file.display());
    scene.assert_service_logs();

    // Nothing left to stop: a one-line error naming the missing pid file.
    let err = run(
        scene.tracehop(&["down", "--log-dir", &scene.log_dir_arg()]),
        Duration::from_secs(30),
    )
    .one_line_error();
    assert!(
        err.contains("tracehop.pids") && err.contains("nothing started"),
        "{err}"
    );
    drop(guard);
}

#[test]
fn ctrl_c_during_start_up_stops_the_services_started_so_far() {
    bin_dir();
    let scene = Scene::new("startup");
    let (pid, stdout, stderr, mut guard) = scene.spawn_foreground_up();

    // Ctrl-C as soon as the first service (log-service) runs, long before all are ready.
    let deadline = Instant::now() + READY;
    let first = loop {
        // A child forked but not yet exec'd still carries tracehop's name.
        if let Some(first) = children_of(pid)
            .into_iter()
            .find(|(_, name)| SERVICES.contains(&name.as_str()))
        {
            break first;
        }
        let exited = guard.tracehop_exited();
        assert!(
            exited.is_none() && Instant::now() < deadline,
            "no service started (exit: {exited:?})\nstderr: {}",
            stderr.snapshot()
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(first.1, "log-service", "log-service starts first");
    let interrupted = Instant::now();
    send(pid, Signal::SIGINT);
    let child = guard.tracehop.as_mut().expect("tracehop");
    let status = wait_exit(child, STOP + Duration::from_secs(10));
    let took = interrupted.elapsed();
    let status = status.unwrap_or_else(|| {
        panic!(
            "tracehop still runs {took:?} after SIGINT\n{}",
            stderr.snapshot()
        )
    });
    let stderr = stderr.finish();
    let stdout = stdout.finish();
    // Not stopped by the signal itself: tracehop handled it and says so in one line.
    assert_eq!(
        status.code(),
        Some(1),
        "{status}\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(took < STOP, "stopping took {took:?}\n{stderr}");
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("tracehop: interrupted while starting"),
        "{stderr}"
    );
    assert!(
        !stdout.contains("press Ctrl-C to stop"),
        "interrupted, yet it went on: {stdout}"
    );
    // Whatever had started is stopped, not left running without tracehop.
    assert!(
        !alive(first.0, &first.1),
        "log-service (pid {}) still runs",
        first.0
    );
    assert_eq!(services_with_prefix(&scene.prefix), []);
    scene.ports.assert_free();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_load_still_reports_what_was_sent() {
    let stack = system_tests::spawn_stack(StackOptions::default()).await;
    let state = tempfile::tempdir().expect("temp dir");
    let mut child = tokio::process::Command::new(tracehop_exe())
        .args([
            "--gateway",
            &stack.gateway_url,
            "load",
            "--concurrency",
            "4",
            "--duration",
            "60s",
            "--json",
        ])
        .env("TRACEHOP_STATE_DIR", state.path())
        .env_remove("ADMIN_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("tracehop starts");
    let pid = child.id().expect("a pid");

    // Wait until the load runs and tracehop handles SIGINT, then let it send for 2 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !catches(pid, Signal::SIGINT) {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let output = child.wait_with_output().await.expect("output");
            panic!(
                "load exited ({status}) before it ran: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        assert!(Instant::now() < deadline, "tracehop never handles SIGINT");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    send(pid, Signal::SIGINT);
    let output = tokio::time::timeout(Duration::from_secs(5), child.wait_with_output())
        .await
        .expect("load stops within 5 s of Ctrl-C")
        .expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{}\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    assert!(stderr.contains("interrupted"), "{stderr}");

    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"));
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"));
    assert!(n(&report["sent"]) > 0, "{report:#}");
    common::assert_load_report_adds_up(&report, 1);
    // The run ended at Ctrl-C, not after the 60 s asked for.
    let seconds = report["duration_s"].as_f64().expect("duration_s");
    assert!((1.0..20.0).contains(&seconds), "{report:#}");
    stack.stop().await;
}
