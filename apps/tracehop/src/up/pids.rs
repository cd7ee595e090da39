//! The pid file of `tracehop up --detach` and the processes it names: how `up` finds a running
//! stack and how `down` stops it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cli::DownArgs;

/// Name of the pid file in the log directory, one `name pid` line per service.
pub(super) const PID_FILE: &str = "tracehop.pids";

pub(super) fn signal(pid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

/// True when `pid` is a live (not zombie) process whose command name is `name`.
fn is_service(pid: u32, name: &str) -> bool {
    let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
        return false;
    };
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state letter follows the parenthesised command name.
    let zombie = state
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    // The kernel keeps 15 bytes of the name; the service names fit.
    comm.trim_end() == &name[..name.len().min(15)] && !zombie
}

fn read_pid_file(path: &Path) -> Option<Vec<(String, u32)>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|l| {
                let (name, pid) = l.split_once(' ')?;
                Some((name.to_owned(), pid.trim().parse().ok()?))
            })
            .collect(),
    )
}

pub(super) fn alive_from_pid_file(path: &Path) -> Option<Vec<(String, u32)>> {
    let entries = read_pid_file(path)?;
    Some(
        entries
            .into_iter()
            .filter(|(n, p)| is_service(*p, n))
            .collect(),
    )
}

/// Stops what `up --detach` started: SIGTERM in reverse order, wait, SIGKILL after the timeout.
pub async fn down(args: DownArgs) -> anyhow::Result<()> {
    let pid_file = args.log_dir.join(PID_FILE);
    let Some(entries) = read_pid_file(&pid_file) else {
        bail!(
            "no {} found; nothing started with `tracehop up --detach --log-dir {}`",
            pid_file.display(),
            args.log_dir.display()
        );
    };
    let alive: Vec<(String, u32)> = entries
        .into_iter()
        .filter(|(n, p)| is_service(*p, n))
        .collect();
    for (name, pid) in alive.iter().rev() {
        signal(*pid, Signal::SIGTERM);
        eprintln!("stopping {name} (pid {pid})");
    }
    let until = Instant::now() + args.timeout;
    while Instant::now() < until && alive.iter().any(|(n, p)| is_service(*p, n)) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (name, pid) in &alive {
        if is_service(*pid, name) {
            eprintln!(
                "{name} (pid {pid}) did not stop within {:?}; killing it",
                args.timeout
            );
            signal(*pid, Signal::SIGKILL);
        }
    }
    let _ = std::fs::remove_file(&pid_file);
    eprintln!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_recognised_by_its_name_only() {
        let me = std::process::id();
        let comm = std::fs::read_to_string(format!("/proc/{me}/comm")).unwrap();
        assert!(is_service(me, comm.trim_end()));
        assert!(!is_service(me, "order-gateway"));
    }
}
