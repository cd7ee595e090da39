//! `tracehop up` and `tracehop down`: log-service and the three services as child processes.
//!
//! The binaries are the ones next to the tracehop executable, so `target/release/tracehop up`
//! starts `target/release/order-gateway` and its siblings. Each child gets its own process group:
//! a Ctrl-C on the terminal reaches tracehop alone, which then stops the children in reverse start
//! order (gateway first, log-service last, so the others' final telemetry still lands), with
//! SIGTERM, a deadline, then SIGKILL.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use nix::sys::signal::Signal;

use crate::cli::UpArgs;

mod broker;
mod pids;
mod spec;

pub use pids::down;
use pids::{PID_FILE, alive_from_pid_file, signal};
use spec::{Spec, specs};

/// How long the children may take to stop after SIGTERM when `up` itself is stopped.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// A started service.
struct Running {
    name: &'static str,
    url: String,
    child: Child,
    stdout: PathBuf,
}

fn bin_dir(args: &UpArgs) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &args.bin_dir {
        return Ok(dir.clone());
    }
    let exe = std::env::current_exe().context("cannot tell where the tracehop executable is")?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow!("{} has no parent directory", exe.display()))
}

/// The last non-empty line a child wrote, which usually says why it stopped.
fn last_line(path: &Path) -> Option<String> {
    let file = File::open(path).ok()?;
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
        .last()
}

/// Starts everything, waits for readiness, then either returns (`--detach`) or supervises until
/// Ctrl-C, SIGTERM or a child's exit.
pub async fn up(mut args: UpArgs) -> anyhow::Result<()> {
    let bins = bin_dir(&args)?;
    if let Some(nodes) = args.brokers {
        args.amqp_url = broker::start_cluster(nodes, &bins)?;
    }
    std::fs::create_dir_all(&args.log_dir)
        .with_context(|| format!("cannot create the log directory {}", args.log_dir.display()))?;
    let log_dir = args
        .log_dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", args.log_dir.display()))?;
    let specs = specs(&args, &log_dir);
    for spec in &specs {
        let path = bins.join(spec.name);
        if !path.is_file() {
            bail!(
                "{} is not at {}; build the services next to tracehop: cargo build --release -p tracehop -p order-gateway -p payment-service -p email-service -p log-service",
                spec.name,
                path.display()
            );
        }
    }
    let pid_file = log_dir.join(PID_FILE);
    if let Some(alive) = alive_from_pid_file(&pid_file)
        && !alive.is_empty()
    {
        bail!(
            "services from an earlier `tracehop up --detach` still run ({}); stop them with `tracehop down --log-dir {}`",
            alive
                .iter()
                .map(|(n, p)| format!("{n} pid {p}"))
                .collect::<Vec<_>>()
                .join(", "),
            args.log_dir.display()
        );
    }
    broker::check(&args.amqp_url)?;
    for spec in &specs {
        for (key, value) in &spec.env {
            if key.ends_with("_ADDR")
                && let Err(err) = TcpListener::bind(value.as_str())
            {
                bail!(
                    "{value} (for {} {key}) is not free ({err}); is tracehop already up? stop it with `tracehop down`, or choose other ports",
                    spec.name
                );
            }
        }
    }

    // Listen before the first child starts: with SIGINT's default action a Ctrl-C during start-up
    // would end tracehop at once and leave the services started so far running, in their own
    // process groups, with no pid file. Both listeners exist from here on, so no signal is lost.
    let mut stop = StopSignals::listen()?;
    let mut running: Vec<Running> = Vec::new();
    let started = start_all(&specs, &bins, &log_dir, &args, &mut running, &mut stop).await;
    if let Err(err) = started {
        stop_all(&mut running, STOP_DEADLINE).await;
        return Err(err);
    }

    println!();
    for r in &running {
        println!("  {:<16} {}", r.name, r.url);
    }
    println!("  logs             {}", log_dir.display());
    if !args.no_log_service {
        println!(
            "  web view         http://127.0.0.1:{}/  (logs, traces, services, alerts)",
            args.log_service_port
        );
    }
    println!();

    if args.detach {
        let lines: String = running
            .iter()
            .map(|r| format!("{} {}\n", r.name, r.child.id()))
            .collect();
        std::fs::write(&pid_file, lines)
            .with_context(|| format!("cannot write the pid file {}", pid_file.display()))?;
        println!(
            "running in the background (pids in {}); stop with `tracehop down --log-dir {}`",
            pid_file.display(),
            args.log_dir.display()
        );
        return Ok(());
    }

    println!("press Ctrl-C to stop");
    let exited = loop {
        tokio::select! {
            () = stop.recv() => break None,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if let Some(r) = running
            .iter_mut()
            .find_map(|r| matches!(r.child.try_wait(), Ok(Some(_))).then_some(r))
        {
            let why = last_line(&r.stdout).unwrap_or_default();
            break Some(format!(
                "{} exited unexpectedly ({}); see {}",
                r.name,
                why,
                r.stdout.display()
            ));
        }
    };
    eprintln!("stopping...");
    stop_all(&mut running, STOP_DEADLINE).await;
    match exited {
        Some(message) => Err(anyhow!(message)),
        None => {
            eprintln!("stopped");
            Ok(())
        }
    }
}

/// SIGINT (Ctrl-C) and SIGTERM, listened for from before the first child starts.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> anyhow::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind| signal(kind).context("cannot listen for signals");
        Ok(StopSignals {
            interrupt: listen(SignalKind::interrupt())?,
            terminate: listen(SignalKind::terminate())?,
        })
    }

    /// Completes at the next SIGINT or SIGTERM (or one that came since the last call).
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

async fn start_all(
    specs: &[Spec],
    bins: &Path,
    log_dir: &Path,
    args: &UpArgs,
    running: &mut Vec<Running>,
    stop: &mut StopSignals,
) -> anyhow::Result<()> {
    let spinner = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
        spinner.set_style(style);
    }
    spinner.enable_steady_tick(Duration::from_millis(100));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .context("failed to build the HTTP client")?;
    let deadline = Instant::now() + args.ready_timeout;
    for spec in specs {
        let stdout_path = log_dir.join(format!("{}.stdout", spec.name));
        let stdout = File::create(&stdout_path)
            .with_context(|| format!("cannot create {}", stdout_path.display()))?;
        let stderr = stdout.try_clone()?;
        let child = Command::new(bins.join(spec.name))
            .envs(spec.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}", bins.join(spec.name).display()))?;
        running.push(Running {
            name: spec.name,
            url: spec.url.clone(),
            child,
            stdout: stdout_path,
        });
        let r = running.last_mut().expect("just pushed");
        spinner.set_message(format!("starting {} ({}/ready)", r.name, r.url));
        loop {
            if let Ok(Some(status)) = r.child.try_wait() {
                spinner.finish_and_clear();
                bail!(
                    "{} exited during start-up ({status}): {}; see {}",
                    r.name,
                    last_line(&r.stdout).unwrap_or_default(),
                    r.stdout.display()
                );
            }
            let ready = client
                .get(format!("{}/ready", r.url))
                .send()
                .await
                .is_ok_and(|resp| resp.status().is_success());
            if ready {
                spinner.suspend(|| eprintln!("ready  {:<16} {}", r.name, r.url));
                break;
            }
            if Instant::now() > deadline {
                spinner.finish_and_clear();
                bail!(
                    "{} at {} was not ready within {:?}; see {}",
                    r.name,
                    r.url,
                    args.ready_timeout,
                    r.stdout.display()
                );
            }
            tokio::select! {
                () = stop.recv() => {
                    spinner.finish_and_clear();
                    bail!(
                        "interrupted while starting {}; the services started so far were stopped",
                        r.name
                    );
                }
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }
    spinner.finish_and_clear();
    Ok(())
}

/// SIGTERM to each child in reverse start order, wait for all until `deadline`, SIGKILL the rest.
async fn stop_all(running: &mut [Running], deadline: Duration) {
    for r in running.iter_mut().rev() {
        if matches!(r.child.try_wait(), Ok(None)) {
            signal(r.child.id(), Signal::SIGTERM);
        }
    }
    let until = Instant::now() + deadline;
    while Instant::now() < until
        && running
            .iter_mut()
            .any(|r| matches!(r.child.try_wait(), Ok(None)))
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for r in running.iter_mut() {
        if matches!(r.child.try_wait(), Ok(None)) {
            eprintln!("{} did not stop within {deadline:?}; killing it", r.name);
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The processes `tracehop up` with `flags` starts, logging to `/tmp/l`.
    fn specs_for(flags: &[&str]) -> Vec<Spec> {
        let argv = ["tracehop", "up"].iter().chain(flags).copied();
        let Ok(cli) = crate::cli::parse_from(argv) else {
            panic!("the command line parses")
        };
        let crate::cli::Command::Up(args) = cli.command else {
            panic!("not up")
        };
        specs(&args, Path::new("/tmp/l"))
    }

    #[test]
    fn services_share_ports_and_export_to_log_service() {
        let specs = specs_for(&[
            "--gateway-port",
            "4000",
            "--payment-port",
            "4001",
            "--payment-latency-ms",
            "7",
        ]);
        let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "log-service",
                "payment-service",
                "email-service",
                "order-gateway"
            ]
        );
        let env = |name: &str, key: &str| {
            specs
                .iter()
                .find(|s| s.name == name)
                .and_then(|s| s.env.iter().find(|(k, _)| *k == key))
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            env("order-gateway", "PAYMENT_URL").unwrap(),
            "http://127.0.0.1:4001"
        );
        assert_eq!(env("order-gateway", "BIND_ADDR").unwrap(), "127.0.0.1:4000");
        assert_eq!(env("payment-service", "PAYMENT_LATENCY_MS").unwrap(), "7");
        assert_eq!(
            env("email-service", "OTEL_EXPORTER_OTLP_ENDPOINT").unwrap(),
            "http://127.0.0.1:4317"
        );
        assert_eq!(
            env("log-service", "OTLP_GRPC_ADDR").unwrap(),
            "127.0.0.1:4317"
        );
        assert_eq!(env("email-service", "LOG_DIR").unwrap(), "/tmp/l");
        assert_eq!(env("log-service", "ALERTMANAGER_URL"), None);
    }

    #[test]
    fn log_service_gets_the_alertmanager_and_the_rules_file() {
        let specs = specs_for(&[
            "--alertmanager-url",
            "http://127.0.0.1:9093/",
            "--alert-rules",
            "/etc/tracehop/rules.json",
        ]);
        let log_service = specs.iter().find(|s| s.name == "log-service").unwrap();
        let env = |key: &str| {
            log_service
                .env
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(env("ALERTMANAGER_URL"), Some("http://127.0.0.1:9093"));
        assert_eq!(env("ALERT_RULES_FILE"), Some("/etc/tracehop/rules.json"));
        let others = specs.iter().filter(|s| s.name != "log-service");
        assert!(
            others
                .flat_map(|s| &s.env)
                .all(|(k, _)| *k != "ALERTMANAGER_URL")
        );
    }
}
